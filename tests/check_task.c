// SPDX-License-Identifier: MIT
/* tests/check_task.c - placeholder until the suite is written. */
int main(void)
{
	return 77;
}
