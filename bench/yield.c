// SPDX-License-Identifier: MIT
/*
 * bench/yield.c - the yield benchmark: tasks on a current-thread
 * executor, each awaiting a rouse_yield future iters times.  Calls only
 * rouse, the harness (bench.h) and the task helpers (tasks.h, leaf.h).
 *
 * A current-thread executor runs nothing before block_on, so all tasks
 * are spawned first; the measured phase is the block_on of a root future
 * that the last task to finish wakes.
 */
#include <string.h>

#include <rouse/combinator.h>
#include <rouse/executor.h>

#include "bench.h"
#include "leaf.h"
#include "tasks.h"

/* A task that awaits a rouse_yield future iters times. */
struct yield_task {
	struct rouse_future base;
	uint64_t iters, done;
	struct rouse_yield y;		/* the await in progress */
	bool awaiting;
	struct task_bench *tb;
};

static enum rouse_poll yield_task_poll(struct rouse_future *f,
				       struct rouse_context *cx)
{
	struct yield_task *t = (struct yield_task *)f;

	while (t->done < t->iters) {
		if (!t->awaiting) {
			rouse_yield_init(&t->y);
			t->awaiting = true;
		}
		if (rouse_yield_poll(&t->y.base, cx) != ROUSE_READY)
			return ROUSE_PENDING;
		t->awaiting = false;
		t->done++;
	}
	task_finished(t->tb);
	return ROUSE_READY;
}

static const struct rouse_future_vtable yield_task_vt = { yield_task_poll,
							   NULL };

/* The root of block_on: ready when all n tasks finished. */
struct tasks_root {
	struct rouse_future base;
	struct task_bench *tb;
};

static enum rouse_poll tasks_root_poll(struct rouse_future *f,
				       struct rouse_context *cx)
{
	struct task_bench *tb = ((struct tasks_root *)f)->tb;

	root_waker_keep(&tb->root, cx);
	if (__atomic_load_n(&tb->finished, __ATOMIC_ACQUIRE) == tb->n)
		return ROUSE_READY;
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable tasks_root_vt = { tasks_root_poll,
							   NULL };

static void run_yield(const struct args *a)
{
	struct task_bench tb;
	struct tasks_root root = { { &tasks_root_vt }, &tb };
	uint64_t tasks = arg(a, "tasks"), iters = arg(a, "iters"), i;
	struct rouse_executor *e;

	memset(&tb, 0, sizeof(tb));
	tb.n = tasks;
	e = make_executor(ROUSE_EXECUTOR_CURRENT_THREAD, 1);
	for (i = 0; i < tasks; i++) {
		struct yield_task y;

		memset(&y, 0, sizeof(y));
		y.base.vtable = &yield_task_vt;
		y.iters = iters;
		y.tb = &tb;
		check_rouse("rouse_spawn", rouse_spawn(e, &y.base, sizeof(y),
						       NULL));
	}
	tb.t0 = mark_begin();
	check_rouse("rouse_executor_block_on",
		    rouse_executor_block_on(e, &root.base));
	tb.t1 = mark_end();
	print_phase(tasks * iters, tb.t0, tb.t1);
	print_end();
	root_waker_release(&tb.root);
	check_rouse("rouse_executor_free", rouse_executor_free(e));
}

const struct bench bench_yield = {
	"yield",
	{ COUNT("tasks", "100"), COUNT("iters", "10000") },
	NULL, run_yield,
};
