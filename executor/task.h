/* SPDX-License-Identifier: MIT */
/*
 * executor/task.h - a task, and what the task core (task.c) offers the
 * schedulers and the executor.
 *
 * A task is one allocation: the 64-byte header below, then the future's
 * body, copied in by rouse_spawn().  The header's state word
 * (task_state.h) says where the task is in its life; its reference count
 * says how long the memory must live.  The two lifetimes are separate:
 * the future (the body) is dropped exactly once, when the task finishes
 * (its output fields stay in the body for the join handle); the memory
 * goes when the last reference does, and a waker may hold one long after
 * the executor is freed.  Memory that outlives its task's finish holds a
 * reference to its executor's memory in turn (sched.h), so t->ex is valid
 * as long as the memory is.
 *
 * Its inline functions call nothing; task.c defines the rest, which
 * executor.c, current.c and multi.c call.
 */
#ifndef ROUSE_EXECUTOR_TASK_H
#define ROUSE_EXECUTOR_TASK_H

#include <stdbool.h>
#include <stdint.h>

#include "executor-internal.h"
#include "../lib/list.h"

struct rouse__task {
	uint64_t state;			/* atomic; see task_state.h */
	struct rouse__slink qlink;	/* run queue link */
	struct rouse_executor *ex;	/* valid as long as the memory */
	struct rouse_link all;		/* executor's task list */
	uint64_t id;
	struct rouse_waker join_waker;	/* see TASK_JOIN_WAKER */
	/* the future's body follows, 16-byte aligned */
} __attribute__((aligned(16)));

_Static_assert(sizeof(struct rouse__task) == 64,
	       "a task header is one cache line");

/* The task a run queue's link belongs to. */
static inline struct rouse__task *task_of_qlink(struct rouse__slink *l)
{
	return l == NULL ? NULL : rouse__container_of(l, struct rouse__task,
						      qlink);
}

static inline struct rouse_future *task_body(struct rouse__task *t)
{
	return (struct rouse_future *)(void *)(t + 1);
}

#define rouse__task_run ROUSE__NS(task_run)
#define rouse__task_cancel_all ROUSE__NS(task_cancel_all)
#define rouse__task_count ROUSE__NS(task_count)
#define rouse__task_none ROUSE__NS(task_none)

/* What became of a task that a scheduler ran. */
enum rouse__run {
	RUN_IDLE,	/* pending: a wake will queue it again */
	RUN_REQUEUE,	/* pending and woken meanwhile: queue it again here */
	RUN_COMPLETED,	/* its poll returned READY */
	RUN_CANCELLED,	/* it was aborted: dropped instead of polled */
};

/*
 * For the schedulers: poll t, just taken from a queue, once on this
 * thread (or drop it if it was cancelled).  On RUN_REQUEUE the caller
 * puts it back in its own queue, behind the others (a yield, or a wake
 * during the poll); t may be queued again by a wake at any time after
 * RUN_IDLE, through the scheduler's schedule_local or the injection
 * queue, and must not be touched after the other two.
 */
enum rouse__run rouse__task_run(struct rouse__task *t);
/*
 * For rouse_executor_free(), the executor's threads stopped and its
 * injection queue closed: cancel every unfinished task, wherever it is
 * queued, and drop its body.  The queues are not looked at again.
 * Returns how many it cancelled.
 */
uint64_t rouse__task_cancel_all(struct rouse_executor *ex);
/* How many of ex's tasks are unfinished (each list under its lock). */
uint64_t rouse__task_count(struct rouse_executor *ex);
/* Whether none is: the same, in O(1). */
bool rouse__task_none(struct rouse_executor *ex);

#endif /* ROUSE_EXECUTOR_TASK_H */
