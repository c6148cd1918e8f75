/* SPDX-License-Identifier: MIT */
/*
 * executor/task.h - tasks and the two schedulers that run them.
 *
 * A task is one allocation: the 64-byte header below, then the future's
 * body, copied in by rouse_spawn().  The header's state word says where
 * the task is in its life; the reference count in its upper bits says
 * how long the memory must live.  The two lifetimes are separate: the
 * future (the body) is dropped exactly once, when the task finishes
 * (its output fields stay in the body for the join handle); the memory
 * goes when the last reference does, and a waker may hold one long after
 * the executor is gone.
 */
#ifndef ROUSE_EXECUTOR_TASK_H
#define ROUSE_EXECUTOR_TASK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "executor-internal.h"

/*
 * The state word.  Flags in the low bits, references from bit 12 up.
 *
 * SCHEDULED  The task is in a run queue, or about to be put in one by
 *            whoever set the bit; while it is set a wake does nothing
 *            more.  Set by a wake or by abort; cleared by the worker that
 *            takes the task to poll it.  A wake while RUNNING sets it too,
 *            and the worker re-queues the task after the poll.
 * RUNNING    A worker is inside the future's poll, or the task woke
 *            itself in its poll and was queued again still RUNNING
 *            ("held": see rouse__task_run()).  Only the worker that has
 *            it touches the body.
 * COMPLETE   The poll returned READY and the future has been dropped;
 *            its output fields are in the body, which is never polled
 *            again.  Set together with DONE.  Never cleared.
 * CLOSED     Cancellation was asked for (abort, or the executor shut
 *            down) before completion: the next worker to see the task
 *            drops the body instead of polling it.  Wakes are ignored.
 * DONE       The body has been dropped (completed or cancelled): the
 *            task is finished.  Set once, by whoever dropped it.
 * HANDLE     A join handle exists.
 * JOIN_WAKER Who has join_waker: while clear and not DONE, the join
 *            handle, which may write it; while set, the task's side,
 *            which wakes it at DONE and then clears the bit to hand it
 *            back.  The handshake needs no lock (see task.c).
 *
 * References: one for the executor while the task is unfinished (it is
 * in the executor's task list), one for the join handle, one per waker.
 * Queue entries hold none: a queued task is unfinished, so the
 * executor's reference keeps it alive.
 */
#define TASK_SCHEDULED	 0x001u
#define TASK_RUNNING	 0x002u
#define TASK_COMPLETE	 0x004u
#define TASK_CLOSED	 0x008u
#define TASK_DONE	 0x010u
#define TASK_HANDLE	 0x020u
#define TASK_JOIN_WAKER	 0x040u
#define TASK_REF_SHIFT	 12
#define TASK_REF	 ((uint64_t)1 << TASK_REF_SHIFT)

struct rouse__task_link {
	struct rouse__task_link *prev, *next;
};

struct rouse__task {
	uint64_t state;			/* atomic; see above */
	struct rouse__task *next;	/* run queue link */
	struct rouse_executor *ex;	/* valid while unfinished */
	struct rouse__task_link all;	/* executor's task list */
	uint64_t id;
	struct rouse_waker join_waker;	/* see JOIN_WAKER */
	/* the future's body follows, 16-byte aligned */
} __attribute__((aligned(16)));

_Static_assert(sizeof(struct rouse__task) == 64,
	       "a task header is one cache line");

static inline struct rouse_future *task_body(struct rouse__task *t)
{
	return (struct rouse_future *)(void *)(t + 1);
}

/* The per-worker run queue of the multi-thread scheduler. */
#define RING_SIZE 256u
#define RING_MASK (RING_SIZE - 1)

struct rouse__ring {
	/* Owner pops and stealers steal here (CAS); owner pushes at tail. */
	uint32_t head __attribute__((aligned(64)));
	uint32_t tail __attribute__((aligned(64)));
	struct rouse__task *slots[RING_SIZE];	/* relaxed atomics */
};

/*
 * A thread that runs tasks: the thread inside block_on of a current-
 * thread executor, or one worker of a multi-thread one.
 */
struct rouse__worker {
	struct rouse_executor *ex;
	unsigned int index;
	/* current-thread: the run queue, touched only by this thread */
	struct rouse__task *head, *tail;
	/* multi-thread */
	struct rouse__ring ring;
	struct rouse__task *lifo;	/* woken by the task just polled */
	unsigned int lifo_run;		/* LIFO polls in a row */
	bool searching;			/* counted in ex->num_searching */
	bool idle;			/* in the idle stack; idle_lock */
	uint32_t rng;
	struct rouse_parker parker;
	struct rouse_waker unpark;	/* wakes this worker's parker */
	pthread_t thread;
	bool thread_started;
} __attribute__((aligned(64)));

#define TASK_SHARDS 16u

struct rouse__task_list {
	pthread_mutex_t lock;
	struct rouse__task_link head;	/* circular */
} __attribute__((aligned(64)));

struct rouse_executor {
	struct rouse_executor_config cfg;
	/*
	 * The fork generation it was made in.  In a child of fork() its
	 * threads are gone and its locks may be held for good: every call
	 * on it is refused with -ECHILD, and wakes of its tasks are ignored.
	 */
	unsigned int fork_gen;
	struct rouse_parker parker;	/* cfg.parker copied, if any */
	bool has_parker;

	/* Spawns and wakes from threads that are not this executor's. */
	pthread_mutex_t inject_lock;
	struct rouse__task *inject_head, *inject_tail;
	size_t inject_len;		/* atomic reads without the lock */
	bool closed;			/* inject_lock */
	bool freeing;			/* inject_lock: free has begun */
	unsigned int blockon_count;	/* inject_lock: multi-thread */
	uint64_t late_wakes;		/* inject_lock; see shutdown */
	/*
	 * current-thread: while a block_on runs, the waker that unparks its
	 * thread (owned by block_on's root waker, which outlives the time
	 * this is set); NULL when none runs.
	 */
	const struct rouse_waker *ct_unpark;	/* inject_lock */

	struct rouse__task_list lists[TASK_SHARDS];

	/* multi-thread */
	unsigned int nworkers;
	struct rouse__worker *workers;
	bool stop;			/* atomic */
	unsigned int num_idle;		/* atomic; changed under idle_lock */
	unsigned int num_searching;	/* atomic */
	pthread_mutex_t idle_lock;
	unsigned int *idle_stack;	/* idle_lock */
};

#define rouse__cur_worker ROUSE__NS(cur_worker)
#define rouse__cur_task ROUSE__NS(cur_task)
#define rouse__blockon_ex ROUSE__NS(blockon_ex)
#define rouse__task_run ROUSE__NS(task_run)
#define rouse__task_schedule ROUSE__NS(task_schedule)
#define rouse__task_unhold ROUSE__NS(task_unhold)
#define rouse__inject_push_locked ROUSE__NS(inject_push_locked)
#define rouse__inject_pop_locked ROUSE__NS(inject_pop_locked)
#define rouse__ct_schedule_local ROUSE__NS(ct_schedule_local)
#define rouse__ct_block_on ROUSE__NS(ct_block_on)
#define rouse__ct_drain ROUSE__NS(ct_drain)
#define rouse__mt_schedule_local ROUSE__NS(mt_schedule_local)
#define rouse__mt_pick_idle ROUSE__NS(mt_pick_idle)
#define rouse__mt_notify ROUSE__NS(mt_notify)
#define rouse__mt_start ROUSE__NS(mt_start)
#define rouse__mt_stop ROUSE__NS(mt_stop)
#define rouse__mt_drain ROUSE__NS(mt_drain)

/* The worker this thread is, or NULL. */
extern ROUSE__TLS struct rouse__worker *rouse__cur_worker;
/* The task being polled on this thread, or NULL. */
extern ROUSE__TLS struct rouse__task *rouse__cur_task;
/* The multi-thread executor whose block_on runs on this thread. */
extern ROUSE__TLS struct rouse_executor *rouse__blockon_ex;

/* Poll t once on this thread (or drop it if it was cancelled). */
void rouse__task_run(struct rouse__task *t);
/* Shutdown: a task drained from a queue is SCHEDULED, not held. */
void rouse__task_unhold(struct rouse__task *t);
/* Queue t, whose SCHEDULED bit the caller set, from any thread. */
void rouse__task_schedule(struct rouse__task *t, bool woken_by_task);

void rouse__inject_push_locked(struct rouse_executor *ex,
			       struct rouse__task *t);
struct rouse__task *rouse__inject_pop_locked(struct rouse_executor *ex);

void rouse__ct_schedule_local(struct rouse__worker *w, struct rouse__task *t);
int rouse__ct_block_on(struct rouse_executor *ex, struct rouse_future *f);
size_t rouse__ct_drain(struct rouse_executor *ex);

void rouse__mt_schedule_local(struct rouse__worker *w, struct rouse__task *t,
			      bool woken_by_task);
/*
 * Pick an idle worker to wake, unless one is searching already; *out gets
 * a clone of its unpark waker, to wake after any lock is dropped.
 */
bool rouse__mt_pick_idle(struct rouse_executor *ex, struct rouse_waker *out);
void rouse__mt_notify(struct rouse_executor *ex);
int rouse__mt_start(struct rouse_executor *ex);
void rouse__mt_stop(struct rouse_executor *ex);
size_t rouse__mt_drain(struct rouse_executor *ex);

#endif /* ROUSE_EXECUTOR_TASK_H */
