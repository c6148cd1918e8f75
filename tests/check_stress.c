// SPDX-License-Identifier: MIT
/* tests/check_stress.c - placeholder, being written. */
int main(void)
{
	return 77;
}
