// SPDX-License-Identifier: MIT
/* tests/check_io.c - placeholder, being written. */
int main(void)
{
	return 77;
}
