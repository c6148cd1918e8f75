/* SPDX-License-Identifier: MIT */
/*
 * executor/sched.h - the executor object, and the interface between the
 * task core (task.c) and the two schedulers (current.c, multi.c).
 *
 * The files call each other one way only:
 *
 *   executor.c   the executor's life: new, block_on, free
 *     |    \
 *     |   current.c, multi.c   the schedulers: queues, threads, parking
 *     |    /
 *   task.c       the task core: spawn, wake, poll, join, abort
 *
 * task.c reaches a scheduler only through ex->sched, the table of
 * operations below that each scheduler fills in; it names neither.  The
 * schedulers call task.c to run tasks.  executor.c picks the table when it
 * makes an executor and calls both.  The injection queue and the
 * executor's memory, which all three use, are small inline functions here;
 * they call lib/ (the FIFO, the lock, the allocator), nothing else.
 * multi.c also calls idle.c, which reads the worker and executor structs.
 */
#ifndef ROUSE_EXECUTOR_SCHED_H
#define ROUSE_EXECUTOR_SCHED_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "executor-internal.h"
#include "../lib/mutex.h"
#include "task.h"

struct rouse__worker;

/*
 * What a scheduler does for the task core and the executor.  Every
 * operation is called on an executor that is not inherited through fork.
 */
struct rouse__sched {
	const char *name;
	/* rouse_executor_new(): start the scheduler's threads, if any. */
	int (*start)(struct rouse_executor *ex);
	/*
	 * Poll f to completion on the calling thread, running tasks; give
	 * up with -ETIMEDOUT at deadline (monotonic ns; -1: never).
	 */
	int (*block_on)(struct rouse_executor *ex, struct rouse_future *f,
			int64_t deadline);
	/*
	 * Queue t, whose SCHEDULED bit the caller set, on w: a thread of
	 * t's executor.  by_task: a task's poll on this thread woke it.
	 */
	void (*schedule_local)(struct rouse__worker *w, struct rouse__task *t,
			       bool by_task);
	/*
	 * Another thread has pushed onto the injection queue (inject_lock
	 * held; was_empty: the queue was empty before).  Make sure a thread
	 * will look: wake one now, or leave in *out a waker that the caller
	 * wakes once it has dropped the lock.
	 */
	void (*injected)(struct rouse_executor *ex, bool was_empty,
			 struct rouse_waker *out);
	/*
	 * rouse_executor_free(): stop the scheduler's threads, if any.
	 * What is left in its queues is then cancelled where it lies.
	 */
	void (*stop)(struct rouse_executor *ex);
};

#define rouse__sched_current ROUSE__NS(sched_current)
#define rouse__sched_multi ROUSE__NS(sched_multi)
extern const struct rouse__sched rouse__sched_current;	/* current.c */
extern const struct rouse__sched rouse__sched_multi;	/* multi.c */

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
 * A worker's counters (rouse_executor_metrics(3)).  Only the worker's own
 * thread writes them, with a relaxed load and store (no read-modify-
 * write); anyone reads them, relaxed, and sums them.
 */
struct rouse__worker_metrics {
	uint64_t spawned;	/* tasks spawned from this worker's thread */
	uint64_t completed;	/* tasks whose poll returned READY here */
	uint64_t aborted;	/* cancelled tasks dropped here */
	uint64_t polls;		/* task polls */
	uint64_t steals;	/* successful steals from another ring */
	uint64_t parks;		/* times it went to sleep */
	uint64_t driver_turns;	/* parks in the executor's parker */
	uint64_t budget_yields;	/* looks outside after event_interval polls */
};

static inline void counter_add(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n,
			 __ATOMIC_RELAXED);
}

/*
 * A thread that runs tasks: the thread inside block_on of a current-
 * thread executor, or one worker of a multi-thread one.
 */
struct rouse__worker {
	struct rouse_executor *ex;
	unsigned int index;
	/* current-thread: the run queue, touched only by this thread */
	struct rouse__fifo runq;
	/* multi-thread */
	struct rouse__ring ring;
	struct rouse__task *lifo;	/* woken by the task just polled */
	unsigned int lifo_run;		/* LIFO polls in a row */
	bool searching;			/* counted in the idle word */
	bool sleeping;			/* on the sleepers stack; idle lock */
	const struct rouse_waker *via;	/* what wakes it there; idle lock */
	uint32_t rng;
	struct rouse_parker parker;	/* its thread's own */
	struct rouse_waker unpark;	/* wakes that parker */
	pthread_t thread;
	bool thread_started;
	struct rouse__worker_metrics m;
	/* references to ex's memory kept on this thread: executor_keep() */
	int64_t kept;
} __attribute__((aligned(64)));

static inline bool ring_empty(struct rouse__ring *r)
{
	return __atomic_load_n(&r->head, __ATOMIC_ACQUIRE) ==
	       __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
}

/* The sleepers of a multi-thread executor: see idle.c. */
struct rouse__idle {
	uint32_t word;			/* atomic: searching, sleeping */
	pthread_mutex_t lock;
	unsigned int *stack;		/* lock: the sleepers' indices; NULL:
					   a current-thread executor's, no lock */
	unsigned int n;			/* lock: how many */
};

#define TASK_SHARDS 16u

struct rouse__task_list {
	struct rouse__mutex lock;	/* lib/mutex.h */
	struct rouse_link head;		/* lock: the unfinished tasks */
} __attribute__((aligned(64)));

struct rouse_executor {
	const struct rouse__sched *sched;
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
	struct rouse__mutex inject_lock;	/* lib/mutex.h */
	struct rouse__fifo inject;
	size_t inject_len;		/* atomic reads without the lock */
	uint64_t foreign_spawned;	/* atomic: spawns from other threads */
	bool closed;			/* inject_lock; atomic reads */
	bool freeing;			/* inject_lock: free has begun */
	/*
	 * rouse_executor_shutdown(): set under inject_lock, read by spawn
	 * under a task list's lock and by a finishing task after it; while
	 * set, the last task to finish wakes shutdown_waker (inject_lock).
	 */
	bool shutting;
	bool shut_down;			/* inject_lock: threads gone, no tasks */
	struct rouse_waker shutdown_waker;
	unsigned int blockon_count;	/* inject_lock: multi-thread */
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
	struct rouse__idle idle;
	bool driver_held;		/* atomic: a worker has the parker */
	bool driver_failed;		/* atomic: it failed; nobody takes it */
	struct rouse_waker driver_unpark;	/* wakes the parker's holder */

	uint64_t shutdown_aborted;	/* atomic: tasks dropped at free */

	/*
	 * The memory's references: the program's (until free) and one per
	 * finished task whose memory a waker or a join handle still keeps
	 * (an unfinished task is the executor's to cancel at free).  So a
	 * wake on another thread may always look at the executor, even one
	 * being freed: free never waits for it.  Counted with a bias: see
	 * executor_keep().
	 */
	int64_t refs __attribute__((aligned(64)));
};

#define rouse__cur_worker ROUSE__NS(cur_worker)
#define rouse__cur_task ROUSE__NS(cur_task)
#define rouse__blockon_ex ROUSE__NS(blockon_ex)

/* The worker this thread is, or NULL. */
extern ROUSE__TLS struct rouse__worker *rouse__cur_worker;
/* The task being polled on this thread, or NULL. */
extern ROUSE__TLS struct rouse__task *rouse__cur_task;
/* The multi-thread executor whose block_on runs on this thread. */
extern ROUSE__TLS struct rouse_executor *rouse__blockon_ex;

#define rouse__idle_init ROUSE__NS(idle_init)
#define rouse__idle_pick ROUSE__NS(idle_pick)
#define rouse__idle_notify ROUSE__NS(idle_notify)
#define rouse__idle_found_work ROUSE__NS(idle_found_work)
#define rouse__idle_sleep ROUSE__NS(idle_sleep)
#define rouse__idle_maintain ROUSE__NS(idle_maintain)

/* idle.c: the sleepers of a multi-thread executor, and its driver. */
int rouse__idle_init(struct rouse__idle *id, unsigned int nworkers);
/*
 * Work was added: choose a sleeper to wake, unless a worker searches
 * already; *out gets a clone of the waker to wake it with (after any lock
 * is dropped).
 */
bool rouse__idle_pick(struct rouse_executor *ex, struct rouse_waker *out);
/* The same, woken at once: from a worker's thread, no lock held. */
void rouse__idle_notify(struct rouse_executor *ex);
/* w, searching or not, has found a task to run. */
void rouse__idle_found_work(struct rouse__worker *w);
/* w found nothing to do: sleep until there is (taking the driver). */
void rouse__idle_sleep(struct rouse__worker *w);
/* w is busy: look at the driver and its parker without waiting. */
void rouse__idle_maintain(struct rouse__worker *w);

/* ---- the injection queue (inject_lock held) ----------------------------- */

static inline void inject_push_locked(struct rouse_executor *ex,
				      struct rouse__task *t)
{
	rouse__fifo_push(&ex->inject, &t->qlink);
	__atomic_store_n(&ex->inject_len, ex->inject_len + 1,
			 __ATOMIC_RELEASE);
}

static inline struct rouse__task *inject_pop_locked(struct rouse_executor *ex)
{
	struct rouse__task *t = task_of_qlink(rouse__fifo_pop(&ex->inject));

	if (t == NULL)
		return NULL;
	__atomic_store_n(&ex->inject_len, ex->inject_len - 1,
			 __ATOMIC_RELAXED);
	return t;
}

/* ---- the executor's memory ---------------------------------------------- */

static inline void idle_destroy(struct rouse__idle *id)
{
	if (id->stack != NULL)
		pthread_mutex_destroy(&id->lock);
	rouse__free(id->stack);
}

/* The memory alone: threads, tasks and parkers are gone by now. */
static inline void executor_destroy(struct rouse_executor *ex)
{
	idle_destroy(&ex->idle);
	rouse__aligned_free(ex->workers);
	rouse__aligned_free(ex);
}

/*
 * The references to the executor's memory (ex->refs) are counted with a
 * bias, so that the executor's own threads keep and drop theirs without
 * an atomic read-modify-write: they count in their worker's kept, which
 * only that thread writes.  ex->refs starts at EXECUTOR_BIAS, which
 * stands for the program's reference and for the workers' counts not yet
 * added; other threads add and subtract their references there, and the
 * bias keeps it above 0 however many they drop.  rouse_executor_free(),
 * once no thread is a worker of ex any more, adds the workers' counts and
 * takes the bias away in one step (executor_release()): from then on
 * ex->refs is the true count, and whoever brings it to 0 frees it.
 */
#define EXECUTOR_BIAS ((int64_t)1 << 62)

/* The worker of ex that this thread is, or NULL. */
static inline struct rouse__worker *executor_own_thread(
	struct rouse_executor *ex)
{
	struct rouse__worker *w = rouse__cur_worker;

	return w != NULL && w->ex == ex ? w : NULL;
}

/* A finished task's memory keeps the executor's. */
static inline void executor_keep(struct rouse_executor *ex)
{
	struct rouse__worker *w = executor_own_thread(ex);

	if (w != NULL)
		__atomic_store_n(&w->kept, w->kept + 1, __ATOMIC_RELAXED);
	else
		__atomic_fetch_add(&ex->refs, 1, __ATOMIC_RELAXED);
}

/* It lets go: the memory goes with the last reference. */
static inline void executor_unkeep(struct rouse_executor *ex)
{
	struct rouse__worker *w = executor_own_thread(ex);

	if (w != NULL)
		__atomic_store_n(&w->kept, w->kept - 1, __ATOMIC_RELAXED);
	else if (__atomic_sub_fetch(&ex->refs, 1, __ATOMIC_ACQ_REL) == 0)
		executor_destroy(ex);
}

/*
 * The program's reference goes (rouse_executor_free()), with its threads
 * stopped and joined: no thread is a worker of ex, nor will be again.
 */
static inline void executor_release(struct rouse_executor *ex)
{
	int64_t kept = 0;
	unsigned int i;

	for (i = 0; i < ex->nworkers; i++)
		kept += __atomic_load_n(&ex->workers[i].kept,
					__ATOMIC_RELAXED);
	if (__atomic_add_fetch(&ex->refs, kept - EXECUTOR_BIAS,
			       __ATOMIC_ACQ_REL) == 0)
		executor_destroy(ex);
}

#endif /* ROUSE_EXECUTOR_SCHED_H */
