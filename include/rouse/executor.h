/* SPDX-License-Identifier: MIT */
/*
 * rouse/executor.h - librouse-executor: running futures to completion.
 *
 * Link with `pkg-config --cflags --libs rouse-executor`.
 */
#ifndef ROUSE_EXECUTOR_H
#define ROUSE_EXECUTOR_H

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
