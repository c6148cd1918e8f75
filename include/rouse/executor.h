/* SPDX-License-Identifier: MIT */
/*
 * rouse/executor.h - librouse-executor: running futures to completion.
 *
 * Link with `pkg-config --cflags --libs rouse-executor`.
 */
#ifndef ROUSE_EXECUTOR_H
#define ROUSE_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#include <rouse/future.h>
#include <rouse/log.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Poll f on the calling thread until it is ready, parking on the thread's
 * eventfd while it is pending.  f is not dropped.  Returns 0, or -EINVAL,
 * -EDEADLK (called from inside a poll on this thread), or an error of
 * creating the thread's eventfd (-ENOMEM, -EMFILE, -ENFILE, -ENODEV):
 * rouse_block_on(3) lists them all.  Thread cancellation is held off
 * while it runs.
 */
int rouse_block_on(struct rouse_future *f);

/*
 * rouse_block_on(), parking through parker instead of the eventfd; errors
 * from the parker's waker and park (other than -ETIMEDOUT and -EINTR) are
 * returned as they are.
 */
int rouse_block_on_with(struct rouse_future *f,
			const struct rouse_parker *parker);

/*
 * Store in *out the calling thread's eventfd parker, creating it on first
 * use.  Only the calling thread may park it; any thread may unpark it.
 */
int rouse_thread_parker(struct rouse_parker *out);

/* ---- executors and tasks ----------------------------------------- */

/* A scheduler of tasks: see rouse_executor_new(3). */
struct rouse_executor;

enum rouse_executor_kind {
	/* Tasks run on the thread inside rouse_executor_block_on(). */
	ROUSE_EXECUTOR_CURRENT_THREAD = 0,
	/* Tasks run on a pool of worker threads, with work stealing. */
	ROUSE_EXECUTOR_MULTI_THREAD = 1,
};

/*
 * How to build an executor; rouse_executor_config_init() fills in the
 * defaults, then set what you need.  Fields may be added at the end.
 */
struct rouse_executor_config {
	enum rouse_executor_kind kind;
	/* Multi-thread: number of workers; 0 means one per online CPU. */
	unsigned int workers;
	/*
	 * Polls a worker makes between looks at the global queue and at
	 * its parker (a park with timeout 0), so that injected tasks and a
	 * driven reactor's events are not starved by local work.
	 */
	unsigned int event_interval;
	/*
	 * Polls in a row that the LIFO slot may give to tasks woken by the
	 * task just polled before the run queue gets its turn.
	 */
	unsigned int lifo_cap;
	/*
	 * Optional.  Current-thread: the parker rouse_executor_block_on()
	 * parks through (default: the calling thread's eventfd parker).
	 * Multi-thread: the parker that one idle worker at a time parks in
	 * (the others park on their own eventfds), e.g.
	 * rouse_reactor_parker(3) so that the workers drive a reactor in
	 * turn.  It is copied; it must outlive the executor.
	 */
	const struct rouse_parker *parker;
};

/* The result of spawning: a future that completes when the task does. */
struct rouse_join_handle {
	struct rouse_future base;
	void *task;			/* internal; NULL once released */
	/* When ready: 0 if the task completed, -ECANCELED if it did not. */
	int result;
	/*
	 * When ready with result 0: the task's future, which holds its
	 * output.  It stays valid until this handle is dropped.
	 */
	struct rouse_future *output;
};

int rouse_executor_config_init(struct rouse_executor_config *cfg);
int rouse_executor_new(const struct rouse_executor_config *cfg,
		       struct rouse_executor **out);
int rouse_executor_free(struct rouse_executor *ex);

/*
 * Poll f on the calling thread until it is ready, running ex's tasks
 * meanwhile when ex is a current-thread executor.
 */
int rouse_executor_block_on(struct rouse_executor *ex, struct rouse_future *f);

/* The executor whose task this thread is polling, or NULL. */
struct rouse_executor *rouse_executor_current(void);

/*
 * Move the size-byte future at f (never polled) into a new task of ex
 * (NULL: the current executor) and schedule it.  out receives the join
 * handle; with out NULL the task is detached.
 */
int rouse_spawn(struct rouse_executor *ex, const struct rouse_future *f,
		size_t size, struct rouse_join_handle *out);

/* Cancel the task of h; its join handle then reports -ECANCELED. */
int rouse_join_handle_abort(struct rouse_join_handle *h);

/* Let the task of h run on unobserved; releases h. */
int rouse_join_handle_detach(struct rouse_join_handle *h);

/* The id of the task of h (ids start at 1 and are never reused). */
uint64_t rouse_join_handle_id(const struct rouse_join_handle *h);

/* The id of the task this thread is polling, or 0 outside any task. */
uint64_t rouse_task_current_id(void);

/*
 * Stop ex: refuse new spawns (-ESHUTDOWN), give its tasks until timeout_ns
 * (-1: no limit) to finish, then cancel the rest and join its threads.
 * See rouse_executor_shutdown(3); rouse_executor_free() still follows.
 */
struct rouse_shutdown_report {
	uint64_t completed;	/* unfinished at the call, finished in time */
	uint64_t aborted;	/* cancelled at the deadline */
};

int rouse_executor_shutdown(struct rouse_executor *ex, int64_t timeout_ns,
			    struct rouse_shutdown_report *out);

/*
 * One executor's counters, summed over its workers: running totals since
 * it was made, except tasks_alive and inject_depth, which are now.  See
 * rouse_executor_metrics(3).  Fields may be added at the end.
 */
struct rouse_executor_metrics {
	unsigned int workers;
	uint64_t tasks_alive;	/* spawned and not yet finished */
	uint64_t spawned;
	uint64_t completed;	/* polls that returned READY */
	uint64_t aborted;	/* cancelled tasks dropped */
	uint64_t polls;		/* task polls */
	uint64_t steals;	/* batches stolen from another worker */
	uint64_t parks;		/* times a worker went to sleep */
	uint64_t driver_turns;	/* parks in the executor's parker */
	uint64_t budget_yields;	/* looks outside after event_interval polls */
	uint64_t inject_depth;	/* tasks in the injection queue */
};

/* One worker's share of the counters above. */
struct rouse_worker_metrics {
	uint64_t spawned;	/* spawns from this worker's thread */
	uint64_t completed;
	uint64_t aborted;
	uint64_t polls;
	uint64_t steals;
	uint64_t parks;
	uint64_t driver_turns;
	uint64_t budget_yields;
};

int rouse_executor_metrics(const struct rouse_executor *ex,
			   struct rouse_executor_metrics *out);
int rouse_executor_worker_metrics(const struct rouse_executor *ex,
				  unsigned int worker,
				  struct rouse_worker_metrics *out);

/* Process-wide counters of the executor's system calls. */
struct rouse_executor_stats {
	uint64_t parks;		 /* times a thread blocked on its eventfd */
	uint64_t eventfd_writes; /* wakes that found a thread parked */
};

int rouse_executor_get_stats(struct rouse_executor_stats *out);

int rouse_executor_set_log_level(enum rouse_log_level level);
int rouse_executor_set_log_sink(rouse_log_fn *sink, void *data);

#ifdef __cplusplus
}
#endif

#endif /* ROUSE_EXECUTOR_H */
