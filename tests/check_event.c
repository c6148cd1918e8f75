// SPDX-License-Identifier: MIT
/* tests/check_event.c - placeholder, being written. */
int main(void)
{
	return 77;
}
