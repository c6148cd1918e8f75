/* SPDX-License-Identifier: MIT */
/*
 * rouse/blocking.h - run blocking functions on a bounded pool of threads,
 * each call returned as a future of its result.
 *
 * Part of librouse-executor: `pkg-config --cflags --libs rouse-executor`.
 * rouse_spawn_blocking(3) and rouse_blocking_pool_new(3) have the details.
 */
#ifndef ROUSE_BLOCKING_H
#define ROUSE_BLOCKING_H

#include <stdint.h>

#include <rouse/future.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A function to run on a pool thread; its return value is the output. */
typedef void *rouse_blocking_fn(void *arg);

/* A pool of threads for blocking work; opaque. */
struct rouse_blocking_pool;

/*
 * How to build a pool; rouse_blocking_pool_config_init() fills in the
 * defaults, then set what you need.  Fields may be added at the end.
 */
struct rouse_blocking_pool_config {
	/* Most threads alive at once; at least 1.  Default 64. */
	unsigned int max_threads;
	/*
	 * A thread that found no work for this long exits: 0 at once,
	 * negative never (until the pool is freed).  Default 10 s.
	 */
	int64_t idle_timeout_ns;
};

/* A snapshot of a pool, for tests and monitoring. */
struct rouse_blocking_pool_stats {
	unsigned int threads;	/* alive: starting, busy, idle, exiting */
	unsigned int running;	/* running a function now */
	unsigned int idle;	/* waiting for work */
	unsigned int max_threads;	/* the configured cap */
	uint64_t queued;	/* submitted, waiting for a thread */
	uint64_t threads_started;	/* since the pool was made */
	uint64_t completed;	/* functions that have returned */
};

/*
 * The future of one call.  Fixed layout; callers may read result and
 * value once it is ready, and must not touch job.
 */
struct rouse_blocking {
	struct rouse_future base;
	void *job;	/* internal: shared with the pool thread */
	/* When ready: 0 if fn ran, -ECANCELED or -EAGAIN if it never will. */
	int result;
	/* When ready with result 0: what fn returned. */
	void *value;
};

int rouse_blocking_pool_config_init(struct rouse_blocking_pool_config *cfg);

/* A new pool with no threads yet; cfg NULL means the defaults. */
int rouse_blocking_pool_new(const struct rouse_blocking_pool_config *cfg,
			    struct rouse_blocking_pool **out);

/*
 * Cancel the jobs not started (-ECANCELED), wait for the running ones,
 * join every thread, release the pool.
 */
int rouse_blocking_pool_free(struct rouse_blocking_pool *pool);

/* The process-wide pool that a NULL pool means; made on first use. */
int rouse_blocking_pool_default(struct rouse_blocking_pool **out);

int rouse_blocking_pool_get_stats(struct rouse_blocking_pool *pool,
				  struct rouse_blocking_pool_stats *out);

/*
 * Queue fn(arg) on pool (NULL: the default pool) now, and make *out the
 * future of its result.  Drop *out with rouse_future_drop() once.
 */
int rouse_spawn_blocking(struct rouse_blocking_pool *pool,
			 rouse_blocking_fn *fn, void *arg,
			 struct rouse_blocking *out);

#ifdef __cplusplus
}
#endif

#endif /* ROUSE_BLOCKING_H */
