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
	 * Multi-thread: the parker of worker 0 (the others park on their
	 * own eventfds), e.g. rouse_reactor_parker(3) so that worker 0
	 * drives a reactor.  It is copied; it must outlive the executor.
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
