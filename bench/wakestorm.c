// SPDX-License-Identifier: MIT
/*
 * bench/wakestorm.c - the wakestorm benchmark: a foreign thread wakes the
 * waker of a future that runs in rouse_block_on(); a delivery is one
 * poll.  Calls only rouse and the harness (bench.h).
 *
 * The loop thread (main, role 0) runs rouse_block_on() on ws_future.  Its
 * first poll clones its context's waker, publishes it, opens the CPU
 * phase and meets the sender at the barrier; every later poll is one
 * delivery.  The sender (role 1) calls rouse_waker_wake_by_ref() on that
 * clone n times, storing last = 1 (seq_cst) before the final one.  The
 * poll that sees last == 1 takes t_seen and is ready.
 *
 * A poll happens only after a wake was consumed (the thread parker never
 * returns spuriously without a timeout), so 1 <= deliveries <= n.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include <rouse/executor.h>

#include "bench.h"

static struct wakestorm {
	/* Written by the sender, read by the loop. */
	_Alignas(64) atomic_int last;

	/* Read by the sender: written once, before the barrier. */
	_Alignas(64) struct rouse_waker waker;	/* the clone the sender wakes */

	/* The loop's own. */
	_Alignas(64) bool published;
	uint64_t deliveries;
	uint64_t t_seen;
	uint64_t cpu0;
	struct rouse_executor_stats s0;

	/* The sender's own. */
	_Alignas(64) uint64_t t0, t_sent;

	uint64_t n, pin;
	pthread_barrier_t go;
} ws_state;

struct ws_future {
	struct rouse_future base;
	struct wakestorm *ws;
};

static enum rouse_poll ws_poll(struct rouse_future *self,
			       struct rouse_context *cx)
{
	struct wakestorm *ws = ((struct ws_future *)self)->ws;

	if (!ws->published) {
		check_rouse("rouse_waker_clone",
			    rouse_waker_clone(cx->waker, &ws->waker));
		ws->published = true;
		check_rouse("rouse_executor_get_stats",
			    rouse_executor_get_stats(&ws->s0));
		ws->cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
		/* The barrier publishes the waker to the sender. */
		barrier_wait(&ws->go);
		return ROUSE_PENDING;
	}
	ws->deliveries++;
	if (atomic_load(&ws->last) == 0)
		return ROUSE_PENDING;
	ws->t_seen = now_ns();
	return ROUSE_READY;
}

static const struct rouse_future_vtable ws_vtable = {
	.poll = ws_poll,
};

static void *ws_sender(void *arg)
{
	struct wakestorm *ws = arg;
	const struct rouse_waker *w = &ws->waker;
	uint64_t i;

	pin_thread(ws->pin, 1);
	barrier_wait(&ws->go);
	ws->t0 = now_ns();
	for (i = 1; i < ws->n; i++)
		rouse_waker_wake_by_ref(w);
	atomic_store(&ws->last, 1);
	rouse_waker_wake_by_ref(w);
	ws->t_sent = now_ns();
	return NULL;
}

static void run_wakestorm(const struct args *a)
{
	struct wakestorm *ws = &ws_state;
	struct ws_future fut = { { &ws_vtable }, ws };
	struct rouse_executor_stats s1;
	uint64_t cpu1, wall;
	pthread_t ts;
	int err;

	ws->n = arg(a, "n");
	ws->pin = arg(a, "pin");
	err = pthread_barrier_init(&ws->go, NULL, 2);
	if (err != 0)
		fail_err("pthread_barrier_init", err);
	pin_thread(ws->pin, 0);
	ts = thread_start(ws_sender, ws);

	check_rouse("rouse_block_on", rouse_block_on(&fut.base));
	thread_join(ts);
	cpu1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	check_rouse("rouse_executor_get_stats", rouse_executor_get_stats(&s1));

	if (ws->deliveries < 1 || ws->deliveries > ws->n)
		fail("%" PRIu64 " deliveries for %" PRIu64 " wakes",
		     ws->deliveries, ws->n);
	rouse_waker_drop(&ws->waker);
	pthread_barrier_destroy(&ws->go);

	wall = ws->t_seen - ws->t0;
	print_head(ws->n, wall, cpu1 - ws->cpu0, (double)wall / ws->n);
	printf(" send_ns_per_op=%.2f deliveries=%" PRIu64 " eventfd_writes=%"
	       PRIu64 " parks=%" PRIu64,
	       (double)(ws->t_sent - ws->t0) / ws->n, ws->deliveries,
	       s1.eventfd_writes - ws->s0.eventfd_writes,
	       s1.parks - ws->s0.parks);
	print_end();
}

const struct bench bench_wakestorm = {
	"wakestorm",
	{ COUNT("n", "1000000"), PIN },
	NULL, run_wakestorm,
};
