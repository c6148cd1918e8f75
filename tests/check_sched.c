// SPDX-License-Identifier: MIT
/* tests/check_sched.c - placeholder until the suite is written. */
int main(void)
{
	return 77;
}
