// SPDX-License-Identifier: MIT
/* tests/check_sleep.c - placeholder, being written. */
int main(void)
{
	return 77;
}
