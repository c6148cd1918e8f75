// SPDX-License-Identifier: MIT
/*
 * bench/tasks.h - what the task benchmarks (yield, spawn, spawn-mt,
 * inject) share: the state of a run, executors, the trivial unit task,
 * and the spawner future of spawn and spawn-mt.  tasks.c calls only rouse
 * and the harness (bench.h).
 */
#ifndef ROUSE_BENCH_TASKS_H
#define ROUSE_BENCH_TASKS_H

#include <stdbool.h>
#include <stdint.h>

#include <rouse/executor.h>

#include "bench.h"

/* What the tasks of one run share. */
struct task_bench {
	uint64_t n, finished;		/* atomic: tasks that completed */
	struct rouse_waker root;	/* woken by the last task */
	uint8_t *ran;			/* spawn, inject, spawn-mt */
	struct mark t0, t1;		/* the measured phase */
	struct rouse_executor *ex;
	struct rouse_join_handle *h;
	uint64_t pin;
	int err;
};

/*
 * A task of tb completed; the last one wakes tb->root.  Inline: inject
 * calls it once per unit, inside the measured phase.
 */
static inline void task_finished(struct task_bench *tb)
{
	if (__atomic_add_fetch(&tb->finished, 1, __ATOMIC_ACQ_REL) == tb->n)
		rouse_waker_wake_by_ref(&tb->root);
}

struct rouse_executor *make_executor(enum rouse_executor_kind kind,
				     unsigned int workers);

/* The trivial task of spawn, inject and spawn-mt: it marks itself run. */
struct unit_task {
	struct rouse_future base;
	struct task_bench *tb;
	uint64_t i;
};

extern const struct rouse_future_vtable unit_vt;

/* Every unit of tb ran exactly once, or the run fails. */
void check_ran_once(const struct task_bench *tb);

/*
 * spawn and spawn-mt: a future that spawns n units with join handles
 * (rouse_spawn onto the executor it runs on), then awaits every handle;
 * t0 at the first spawn, t1 when the last handle is ready.
 */
struct spawner {
	struct rouse_future base;
	struct task_bench *tb;
	uint64_t next;
	bool spawned;
};

/* *tb for n units (ran[] and h[] allocated; no executor yet), and *sp. */
void spawner_init(struct spawner *sp, struct task_bench *tb, uint64_t n);
/* After the run: no spawn failed, and every unit ran once. */
void spawner_check(const struct task_bench *tb);
/* Free the executor and the arrays. */
void spawner_free(struct task_bench *tb);

#endif
