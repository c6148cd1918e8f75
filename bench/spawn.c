// SPDX-License-Identifier: MIT
/*
 * bench/spawn.c - the spawn benchmark: a root future on a current-thread
 * executor spawns n tasks with join handles, then awaits every handle;
 * also the heap bytes a task costs beyond its future.  Calls only rouse,
 * the harness (bench.h) and the task helpers (tasks.h).
 */
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include <rouse/executor.h>

#include "bench.h"
#include "tasks.h"

/*
 * The memory of a task beyond its future, as malloc sees it: spawn n
 * tasks that never run (a current-thread executor outside block_on) and
 * divide the growth of the heap's in-use bytes.  Untimed, after the run.
 */
static double bytes_per_task(uint64_t n)
{
	struct rouse_executor *e = make_executor(ROUSE_EXECUTOR_CURRENT_THREAD,
						 1);
	struct task_bench tb;
	struct mallinfo2 m0, m1;
	uint64_t i;

	memset(&tb, 0, sizeof(tb));
	m0 = mallinfo2();
	for (i = 0; i < n; i++) {
		struct unit_task u = { { &unit_vt }, &tb, i };

		check_rouse("rouse_spawn", rouse_spawn(e, &u.base, sizeof(u),
						       NULL));
	}
	m1 = mallinfo2();
	check_rouse("rouse_executor_free", rouse_executor_free(e));
	return (double)(m1.uordblks - m0.uordblks) / (double)n -
	       (double)sizeof(struct unit_task);
}

static void run_spawn(const struct args *a)
{
	struct task_bench tb;
	struct spawner sp;

	spawner_init(&sp, &tb, arg(a, "n"));
	tb.ex = make_executor(ROUSE_EXECUTOR_CURRENT_THREAD, 1);
	check_rouse("rouse_executor_block_on",
		    rouse_executor_block_on(tb.ex, &sp.base));
	rouse_future_drop(&sp.base);
	spawner_check(&tb);
	print_phase(tb.n, tb.t0, tb.t1);
	printf(" bytes_per_task=%.1f", bytes_per_task(tb.n));
	print_end();
	spawner_free(&tb);
}

const struct bench bench_spawn = {
	"spawn",
	{ COUNT("n", "100000") },
	NULL, run_spawn,
};
