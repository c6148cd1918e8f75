// SPDX-License-Identifier: MIT
/*
 * bench/spawn-mt.c - the spawn-mt benchmark: the same as spawn, from a
 * task on a multi-thread executor with workers threads.  Calls only
 * rouse, the harness (bench.h) and the task helpers (tasks.h).
 */
#include <inttypes.h>
#include <stdio.h>

#include <rouse/executor.h>

#include "bench.h"
#include "tasks.h"

static void run_spawn_mt(const struct args *a)
{
	struct task_bench tb;
	struct spawner sp;
	struct rouse_join_handle root;
	uint64_t workers = arg(a, "workers");

	spawner_init(&sp, &tb, arg(a, "n"));
	if (workers > 1024)
		usage_error("workers=%" PRIu64 " is more than 1024", workers);
	tb.ex = make_executor(ROUSE_EXECUTOR_MULTI_THREAD,
			      (unsigned int)workers);
	/* From inside one task running on the executor. */
	check_rouse("rouse_spawn", rouse_spawn(tb.ex, &sp.base, sizeof(sp),
					       &root));
	check_rouse("rouse_executor_block_on",
		    rouse_executor_block_on(tb.ex, &root.base));
	check_rouse("spawner task", root.result);
	rouse_future_drop(&root.base);
	spawner_check(&tb);
	print_phase(tb.n, tb.t0, tb.t1);
	printf(" workers=%" PRIu64, workers);
	print_end();
	spawner_free(&tb);
}

const struct bench bench_spawn_mt = {
	"spawn-mt",
	{ COUNT("n", "100000"), COUNT("workers", "2") },
	NULL, run_spawn_mt,
};
