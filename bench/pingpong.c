// SPDX-License-Identifier: MIT
/*
 * bench/pingpong.c - the pingpong benchmark: two threads, each in
 * rouse_block_on() on its own future; A wakes B, B's poll wakes A; the
 * mean, p50 and p99 round trip, plus the eventfd writes the executor
 * made.  Calls only rouse and the harness (bench.h).
 *
 * Extra key via=executor (each thread parks on its eventfd) or
 * via=reactor (each thread drives its own reactor through
 * rouse_reactor_parker(): the wake crosses through the other reactor's
 * eventfd and epoll_wait).
 *
 * Thread A runs rouse_block_on() on fut_a, thread B on fut_b.  A round
 * trip: A bumps ping and wakes B; B's poll sees the new ping, bumps pong
 * and wakes A; A's poll sees the new pong and takes a timestamp.
 *
 * Each side clones the waker of its own context on its first poll and
 * publishes the clone with a release store; the other side wakes it with
 * rouse_waker_wake_by_ref().  B is started and publishes first; A waits
 * for that on a condition variable (untimed setup, before either future
 * depends on the other), then enters block_on, publishes its own waker
 * and sends the handshake ping.  The clones stay alive until both threads
 * are done and are dropped by main, so no wake can reach a freed parker.
 *
 * ping and pong are sequence numbers, so a poll that finds nothing new
 * (which block_on allows) is told apart from a delivery: B's "runs" count
 * pings handled, which must be n + 2 (handshake, n, stop).
 *
 * via=reactor: main creates a reactor per thread, and each thread runs
 * rouse_block_on_with() on its own reactor's parker, so that each one
 * blocks in its reactor's epoll_wait and the other side's wake writes
 * that reactor's wake eventfd.  eventfd_writes= (the executor's counter)
 * is printed for via=executor only: the reactor keeps no such count.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <rouse/executor.h>
#include <rouse/reactor.h>

#include "bench.h"

struct pingpong {
	/* Written by A, read by B. */
	_Alignas(64) atomic_uint_fast64_t ping;
	atomic_bool stop;
	_Atomic(const struct rouse_waker *) waker_a;
	struct rouse_waker waker_a_slot;

	/* Written by B, read by A. */
	_Alignas(64) atomic_uint_fast64_t pong;
	_Atomic(const struct rouse_waker *) waker_b;
	struct rouse_waker waker_b_slot;

	/* A's own state. */
	_Alignas(64) uint64_t n;
	uint64_t pings_sent;
	uint64_t pongs_seen;
	uint64_t done;		/* timed round trips */
	uint64_t a_polls;
	uint64_t t_prev;
	uint32_t *lat;
	struct mark m0, m1;
	struct rouse_executor_stats s0, s1;
	bool a_published;

	/* B's own state. */
	_Alignas(64) uint64_t pings_seen;
	uint64_t b_runs;	/* pings handled */
	uint64_t b_polls;
	bool b_published;
	int b_err;

	/* Setup: A waits here until B has published its waker. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool b_ready;
	uint64_t pin;

	/* via=reactor: one reactor per thread; NULL for via=executor. */
	struct rouse_reactor *reactor_a, *reactor_b;
	struct rouse_parker parker_a, parker_b;
};

struct pp_future {
	struct rouse_future base;	/* first: block_on sees this */
	struct pingpong *pp;
};

static struct pingpong pp_state;

/* Clone cx's waker into *slot and publish it through *pub. */
static void pp_publish(struct rouse_context *cx, struct rouse_waker *slot,
		       _Atomic(const struct rouse_waker *) *pub)
{
	check_rouse("rouse_waker_clone", rouse_waker_clone(cx->waker, slot));
	atomic_store_explicit(pub, slot, memory_order_release);
}

static void pp_wake(_Atomic(const struct rouse_waker *) *pub)
{
	const struct rouse_waker *w;

	w = atomic_load_explicit(pub, memory_order_acquire);
	if (w == NULL)
		fail("the other side's waker is not published");
	check_rouse("rouse_waker_wake_by_ref", rouse_waker_wake_by_ref(w));
}

/* A: the next ping (its value is seen by B's acquire), then the wake. */
static void pp_ping(struct pingpong *pp)
{
	atomic_store_explicit(&pp->ping, ++pp->pings_sent,
			      memory_order_release);
	pp_wake(&pp->waker_b);
}

static enum rouse_poll pp_a_poll(struct rouse_future *self,
				 struct rouse_context *cx)
{
	struct pingpong *pp = ((struct pp_future *)self)->pp;
	uint64_t pong, t;

	pp->a_polls++;
	if (!pp->a_published) {
		pp_publish(cx, &pp->waker_a_slot, &pp->waker_a);
		pp->a_published = true;
		pp_ping(pp);	/* the handshake */
		return ROUSE_PENDING;
	}
	pong = atomic_load_explicit(&pp->pong, memory_order_acquire);
	if (pong == pp->pongs_seen)
		return ROUSE_PENDING;	/* polled, but nothing new */
	t = now_ns();
	if (pong != pp->pongs_seen + 1 || pong != pp->pings_sent)
		fail("A saw pong %" PRIu64 " after %" PRIu64 " (ping %"
		     PRIu64 ")", pong, pp->pongs_seen, pp->pings_sent);
	pp->pongs_seen = pong;
	if (pong == 1) {
		/* The handshake is back: both threads run; start timing. */
		check_rouse("rouse_executor_get_stats",
			    rouse_executor_get_stats(&pp->s0));
		pp->m0 = mark_begin();
		pp->t_prev = pp->m0.wall;
	} else {
		pp->lat[pp->done++] = lat_clamp(t - pp->t_prev);
		pp->t_prev = t;
	}
	if (pp->done == pp->n) {
		pp->m1 = mark_end();
		check_rouse("rouse_executor_get_stats",
			    rouse_executor_get_stats(&pp->s1));
		atomic_store_explicit(&pp->stop, true, memory_order_relaxed);
		pp_ping(pp);	/* stop B (its release covers stop) */
		return ROUSE_READY;
	}
	pp_ping(pp);
	return ROUSE_PENDING;
}

static enum rouse_poll pp_b_poll(struct rouse_future *self,
				 struct rouse_context *cx)
{
	struct pingpong *pp = ((struct pp_future *)self)->pp;
	uint64_t ping;
	int err;

	pp->b_polls++;
	if (!pp->b_published) {
		pp_publish(cx, &pp->waker_b_slot, &pp->waker_b);
		pp->b_published = true;
		err = pthread_mutex_lock(&pp->lock);
		if (err != 0)
			fail_err("pthread_mutex_lock", err);
		pp->b_ready = true;
		err = pthread_cond_signal(&pp->cond);
		if (err != 0)
			fail_err("pthread_cond_signal", err);
		err = pthread_mutex_unlock(&pp->lock);
		if (err != 0)
			fail_err("pthread_mutex_unlock", err);
	}
	ping = atomic_load_explicit(&pp->ping, memory_order_acquire);
	if (ping == pp->pings_seen)
		return ROUSE_PENDING;	/* polled, but nothing new */
	if (ping != pp->pings_seen + 1)
		fail("B saw ping %" PRIu64 " after %" PRIu64, ping,
		     pp->pings_seen);
	pp->pings_seen = ping;
	pp->b_runs++;
	if (atomic_load_explicit(&pp->stop, memory_order_relaxed))
		return ROUSE_READY;
	atomic_store_explicit(&pp->pong, ping, memory_order_release);
	pp_wake(&pp->waker_a);
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable pp_a_vtable = {
	.poll = pp_a_poll,
};

static const struct rouse_future_vtable pp_b_vtable = {
	.poll = pp_b_poll,
};

static void *pp_thread_b(void *arg)
{
	struct pingpong *pp = arg;
	struct pp_future fut = { { &pp_b_vtable }, pp };

	pin_thread(pp->pin, 1);
	if (pp->reactor_b != NULL)
		pp->b_err = rouse_block_on_with(&fut.base, &pp->parker_b);
	else
		pp->b_err = rouse_block_on(&fut.base);
	check_rouse("rouse_block_on (thread B)", pp->b_err);
	return NULL;
}

static void run_pingpong(const struct args *a)
{
	struct pingpong *pp = &pp_state;
	struct pp_future fut = { { &pp_a_vtable }, pp };
	uint64_t n = arg(a, "n");
	bool via_reactor = arg(a, "via") == 1;
	char via[16];
	pthread_t tb;
	int err;

	pp->n = n;
	pp->pin = arg(a, "pin");
	if (via_reactor) {
		pp->reactor_a = driven_reactor(a, &pp->parker_a);
		pp->reactor_b = driven_reactor(a, &pp->parker_b);
	}
	pp->lat = xcalloc(n, sizeof(*pp->lat));
	err = pthread_mutex_init(&pp->lock, NULL);
	if (err == 0)
		err = pthread_cond_init(&pp->cond, NULL);
	if (err != 0)
		fail_err("pthread_mutex_init/pthread_cond_init", err);

	pin_thread(pp->pin, 0);
	tb = thread_start(pp_thread_b, pp);
	err = pthread_mutex_lock(&pp->lock);
	while (err == 0 && !pp->b_ready)
		err = pthread_cond_wait(&pp->cond, &pp->lock);
	if (err == 0)
		err = pthread_mutex_unlock(&pp->lock);
	if (err != 0)
		fail_err("waiting for thread B", err);
	if (atomic_load_explicit(&pp->waker_b, memory_order_acquire) == NULL)
		fail("thread B is ready but its waker is not published");

	if (via_reactor)
		err = rouse_block_on_with(&fut.base, &pp->parker_a);
	else
		err = rouse_block_on(&fut.base);
	check_rouse("rouse_block_on (thread A)", err);
	thread_join(tb);

	if (pp->done != n || pp->pongs_seen != n + 1)
		fail("%" PRIu64 " timed round trips, expected %" PRIu64,
		     pp->done, n);
	if (pp->b_runs != n + 2)
		fail("B ran %" PRIu64 " times, expected %" PRIu64,
		     pp->b_runs, n + 2);

	rouse_waker_drop(&pp->waker_a_slot);
	rouse_waker_drop(&pp->waker_b_slot);
	pthread_cond_destroy(&pp->cond);
	pthread_mutex_destroy(&pp->lock);
	rouse_reactor_free(pp->reactor_a);
	rouse_reactor_free(pp->reactor_b);

	lat_sort(pp->lat, n);
	print_phase(n, pp->m0, pp->m1);
	printf(" p50_ns=%" PRIu32 " p99_ns=%" PRIu32,
	       percentile(pp->lat, n, 50), percentile(pp->lat, n, 99));
	if (!via_reactor)
		printf(" eventfd_writes=%" PRIu64 " parks=%" PRIu64,
		       pp->s1.eventfd_writes - pp->s0.eventfd_writes,
		       pp->s1.parks - pp->s0.parks);
	printf(" via=%s", arg_word(a, "via", via, sizeof(via)));
	print_end();
	free(pp->lat);
}

const struct bench bench_pingpong = {
	"pingpong",
	{ COUNT("n", "100000"), PIN,
	  { "via", "executor", 0, 1, "executor|reactor" }, REACTOR },
	NULL, run_pingpong,
};
