// SPDX-License-Identifier: MIT
/* tests/check_blocking.c - the blocking pool: results, cap, idle exit, drop. */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <rouse/blocking.h>
#include <rouse/executor.h>

#include "testutil.h"

#define MS INT64_C(1000000)

static struct rouse_blocking_pool *pool_make(unsigned int max_threads,
					     int64_t idle_timeout_ns)
{
	struct rouse_blocking_pool_config cfg;
	struct rouse_blocking_pool *p = NULL;

	ck_assert_int_eq(rouse_blocking_pool_config_init(&cfg), 0);
	cfg.max_threads = max_threads;
	cfg.idle_timeout_ns = idle_timeout_ns;
	ck_assert_int_eq(rouse_blocking_pool_new(&cfg, &p), 0);
	ck_assert_ptr_nonnull(p);
	return p;
}

static struct rouse_blocking_pool_stats stats_of(struct rouse_blocking_pool *p)
{
	struct rouse_blocking_pool_stats s;

	ck_assert_int_eq(rouse_blocking_pool_get_stats(p, &s), 0);
	return s;
}

/* Wait until the pool counts n live threads (the tcase timeout bounds it). */
static void wait_pool_threads(struct rouse_blocking_pool *p, unsigned int n)
{
	while (stats_of(p).threads != n)
		sched_yield();
}

/*
 * Wait until n calls have returned and idle threads wait for work: a
 * thread waits again only after it has completed its call, so with every
 * thread idle, those calls' futures are complete too.
 */
static void wait_pool_done(struct rouse_blocking_pool *p, uint64_t n,
			   unsigned int idle)
{
	for (;;) {
		struct rouse_blocking_pool_stats st = stats_of(p);

		if (st.completed == n && st.idle == idle)
			return;
		sched_yield();
	}
}

/* Wait until n threads of the pool wait for work. */
static void wait_pool_idle(struct rouse_blocking_pool *p, unsigned int n)
{
	while (stats_of(p).idle != n)
		sched_yield();
}

static void spawn(struct rouse_blocking_pool *p, rouse_blocking_fn *fn,
		  void *arg, struct rouse_blocking *out)
{
	ck_assert_int_eq(rouse_spawn_blocking(p, fn, arg, out), 0);
}

/* Block until b is ready, check it ran and returned want; drop it. */
static void await_value(struct rouse_blocking *b, void *want)
{
	ck_assert_int_eq(rouse_block_on(&b->base), 0);
	ck_assert_int_eq(b->result, 0);
	ck_assert_ptr_eq(b->value, want);
	ck_assert_int_eq(rouse_future_drop(&b->base), 0);
}

/* ---- jobs ------------------------------------------------------------ */

static void *square_fn(void *arg)
{
	intptr_t x = (intptr_t)arg;

	return (void *)(x * x);
}

static atomic_int counter_runs;

/* Counts that it ran; returns its argument. */
static void *counter_fn(void *arg)
{
	atomic_fetch_add(&counter_runs, 1);
	return arg;
}

/*
 * A gate that the test opens: jobs count themselves in, wait for it, and
 * count themselves out as their last act.
 */
struct gate {
	pthread_mutex_t m;
	pthread_cond_t c;
	bool open;
	atomic_int entered;
	atomic_int left;
};

static void gate_init(struct gate *g)
{
	ck_assert_int_eq(pthread_mutex_init(&g->m, NULL), 0);
	ck_assert_int_eq(pthread_cond_init(&g->c, NULL), 0);
	g->open = false;
	atomic_init(&g->entered, 0);
	atomic_init(&g->left, 0);
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->m);
	g->open = true;
	pthread_cond_broadcast(&g->c);
	pthread_mutex_unlock(&g->m);
}

static void gate_destroy(struct gate *g)
{
	ck_assert_int_eq(pthread_cond_destroy(&g->c), 0);
	ck_assert_int_eq(pthread_mutex_destroy(&g->m), 0);
}

static void gate_pass(struct gate *g)
{
	atomic_fetch_add(&g->entered, 1);
	pthread_mutex_lock(&g->m);
	while (!g->open)
		pthread_cond_wait(&g->c, &g->m);
	pthread_mutex_unlock(&g->m);
}

static struct gate *the_gate;

/* Waits at the_gate; returns its argument. */
static void *gated_fn(void *arg)
{
	gate_pass(the_gate);
	atomic_fetch_add(&the_gate->left, 1);
	return arg;
}

/* ---- results ----------------------------------------------------------- */

START_TEST(test_results)
{
	struct rouse_blocking b[50];
	struct rouse_blocking_pool *p;
	int threads0 = test_count_threads_settled();
	intptr_t i;

	/*
	 * Idle threads wait with a timeout, but one of an hour: a thread that
	 * timed out would be a third start, so the test must not depend on
	 * how fast the machine runs the 50 jobs (under valgrind, say).
	 */
	p = pool_make(2, 3600000 * MS);
	for (i = 0; i < 50; i++)
		spawn(p, square_fn, (void *)i, &b[i]);
	for (i = 0; i < 50; i++)
		await_value(&b[i], (void *)(i * i));
	/* Never more threads than the cap, and they are reused. */
	ck_assert_uint_le(stats_of(p).threads_started, 2);
	ck_assert_uint_eq(stats_of(p).completed, 50);
	ck_assert_uint_eq(stats_of(p).queued, 0);
	ck_assert_int_eq(rouse_blocking_pool_free(p), 0);
	ck_assert_int_eq(test_wait_threads(threads0), threads0);
}
END_TEST

START_TEST(test_hand_poll_wakes)
{
	struct counting_waker c1, c2;
	struct rouse_waker w1 = counting_waker(&c1), w2 = counting_waker(&c2);
	struct rouse_blocking_pool *p = pool_make(1, -1);
	struct rouse_blocking b, late;
	struct gate g;
	int x = 7;

	gate_init(&g);
	the_gate = &g;
	spawn(p, gated_fn, &x, &b);
	ck_assert_int_eq(test_poll_with(&b.base, &w1), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&c1.clones), 1);
	ck_assert_int_eq(atomic_load(&c1.live), 2);
	/* The same waker again: nothing is cloned. */
	ck_assert_int_eq(test_poll_with(&b.base, &w1), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&c1.clones), 1);
	/* Another waker replaces it; the first is released unwoken. */
	ck_assert_int_eq(test_poll_with(&b.base, &w2), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&c1.live), 1);
	ck_assert_int_eq(atomic_load(&c2.live), 2);
	test_spin_until_eq(&g.entered, 1);
	ck_assert_int_eq(counting_waker_total_wakes(&c2), 0);
	gate_open(&g);
	/* One wake, of the kept waker, which uses it up. */
	test_spin_until_eq(&c2.live, 1);
	ck_assert_int_eq(atomic_load(&c2.wakes), 1);
	ck_assert_int_eq(counting_waker_total_wakes(&c1), 0);
	b.result = 1;
	ck_assert_int_eq(test_poll_with(&b.base, &w2), ROUSE_READY);
	ck_assert_int_eq(b.result, 0);
	ck_assert_ptr_eq(b.value, &x);
	/* Ready stays ready, and the output stays. */
	ck_assert_int_eq(test_poll_with(&b.base, &w1), ROUSE_READY);
	ck_assert_ptr_eq(b.value, &x);
	ck_assert_int_eq(rouse_future_drop(&b.base), 0);
	ck_assert_int_eq(rouse_future_drop(&b.base), -EINVAL);

	/* Done before its first poll: ready at once, no waker kept. */
	spawn(p, square_fn, (void *)(intptr_t)9, &late);
	wait_pool_done(p, 2, 1);
	ck_assert_int_eq(test_poll_with(&late.base, &w1), ROUSE_READY);
	ck_assert_int_eq(atomic_load(&c1.clones), 1);
	ck_assert_ptr_eq(late.value, (void *)(intptr_t)81);
	ck_assert_int_eq(rouse_future_drop(&late.base), 0);

	ck_assert_int_eq(rouse_blocking_pool_free(p), 0);
	counting_waker_drop_last(&w1, &c1);
	counting_waker_drop_last(&w2, &c2);
	ck_assert_int_eq(atomic_load(&c2.wakes), 1);
	gate_destroy(&g);
}
END_TEST

/* ---- the cap and the queue ----------------------------------------- */

START_TEST(test_cap_exact)
{
	struct rouse_blocking_pool_stats s;
	struct rouse_blocking_pool *p = pool_make(3, -1);
	struct rouse_blocking b[8];
	int threads0 = test_count_threads_settled();
	struct gate g;
	intptr_t i;

	gate_init(&g);
	the_gate = &g;
	for (i = 0; i < 8; i++)
		spawn(p, gated_fn, (void *)i, &b[i]);
	/* Exactly the cap run; the rest wait in the queue. */
	test_spin_until_eq(&g.entered, 3);
	s = stats_of(p);
	ck_assert_uint_eq(s.threads, 3);
	ck_assert_uint_eq(s.running, 3);
	ck_assert_uint_eq(s.idle, 0);
	ck_assert_uint_eq(s.queued, 5);
	ck_assert_uint_eq(s.threads_started, 3);
	ck_assert_uint_eq(s.max_threads, 3);
	ck_assert_uint_eq(s.completed, 0);
	ck_assert_int_eq(test_count_threads(), threads0 + 3);
	ck_assert_int_eq(atomic_load(&g.entered), 3);
	gate_open(&g);
	for (i = 0; i < 8; i++)
		await_value(&b[i], (void *)i);
	s = stats_of(p);
	ck_assert_uint_eq(s.threads_started, 3);
	ck_assert_uint_eq(s.completed, 8);
	ck_assert_uint_eq(s.queued, 0);
	ck_assert_uint_eq(s.running, 0);
	ck_assert_int_eq(rouse_blocking_pool_free(p), 0);
	ck_assert_int_eq(test_wait_threads(threads0), threads0);
	gate_destroy(&g);
}
END_TEST

#define FIFO_JOBS 64

static atomic_int fifo_next;
static int fifo_order[FIFO_JOBS];

static void *fifo_fn(void *arg)
{
	fifo_order[atomic_fetch_add(&fifo_next, 1)] = (int)(intptr_t)arg;
	return NULL;
}

START_TEST(test_fifo)
{
	struct rouse_blocking_pool *p = pool_make(1, -1);
	struct rouse_blocking first, b[FIFO_JOBS];
	struct gate g;
	int i;

	gate_init(&g);
	the_gate = &g;
	atomic_store(&fifo_next, 0);
	/* One thread, held while the others queue up. */
	spawn(p, gated_fn, NULL, &first);
	test_spin_until_eq(&g.entered, 1);
	for (i = 0; i < FIFO_JOBS; i++)
		spawn(p, fifo_fn, (void *)(intptr_t)i, &b[i]);
	ck_assert_uint_eq(stats_of(p).queued, FIFO_JOBS);
	gate_open(&g);
	await_value(&first, NULL);
	for (i = 0; i < FIFO_JOBS; i++)
		await_value(&b[i], NULL);
	for (i = 0; i < FIFO_JOBS; i++)
		ck_assert_int_eq(fifo_order[i], i);
	ck_assert_int_eq(rouse_blocking_pool_free(p), 0);
	gate_destroy(&g);
}
END_TEST

/* ---- dropping -------------------------------------------------------- */

START_TEST(test_drop_before_start)
{
	struct counting_waker c;
	struct rouse_waker w = counting_waker(&c);
	struct rouse_blocking_pool *p = pool_make(1, -1);
	struct rouse_blocking held, polled, never;
	struct gate g;

	gate_init(&g);
	the_gate = &g;
	atomic_store(&counter_runs, 0);
	spawn(p, gated_fn, NULL, &held);
	test_spin_until_eq(&g.entered, 1);
	/* The one thread is held: these two wait in the queue. */
	spawn(p, counter_fn, NULL, &polled);
	spawn(p, counter_fn, NULL, &never);
	ck_assert_int_eq(test_poll_with(&polled.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&c.live), 2);
	ck_assert_uint_eq(stats_of(p).queued, 2);
	/* Dropped before they start: out of the queue, waker released. */
	ck_assert_int_eq(rouse_future_drop(&polled.base), 0);
	ck_assert_int_eq(atomic_load(&c.live), 1);
	ck_assert_uint_eq(stats_of(p).queued, 1);
	ck_assert_int_eq(rouse_future_drop(&never.base), 0);
	ck_assert_uint_eq(stats_of(p).queued, 0);
	gate_open(&g);
	await_value(&held, NULL);
	/* Once every thread is joined, neither has run. */
	ck_assert_int_eq(rouse_blocking_pool_free(p), 0);
	ck_assert_int_eq(atomic_load(&counter_runs), 0);
	ck_assert_int_eq(counting_waker_total_wakes(&c), 0);
	counting_waker_drop_last(&w, &c);
	gate_destroy(&g);
}
END_TEST

START_TEST(test_drop_while_running)
{
	struct counting_waker c;
	struct rouse_waker w = counting_waker(&c);
	struct rouse_blocking_pool *p = pool_make(2, -1);
	struct rouse_blocking polled, unpolled, finished;
	struct gate g;

	gate_init(&g);
	the_gate = &g;
	spawn(p, gated_fn, NULL, &polled);
	spawn(p, gated_fn, NULL, &unpolled);
	ck_assert_int_eq(test_poll_with(&polled.base, &w), ROUSE_PENDING);
	test_spin_until_eq(&g.entered, 2);
	ck_assert_uint_eq(stats_of(p).running, 2);
	/* Dropped while their functions run: the waker is given back. */
	ck_assert_int_eq(rouse_future_drop(&polled.base), 0);
	ck_assert_int_eq(rouse_future_drop(&unpolled.base), 0);
	ck_assert_int_eq(atomic_load(&c.live), 1);
	ck_assert_int_eq(atomic_load(&c.drops), 1);
	/* The functions run to their end; nobody is woken. */
	gate_open(&g);
	wait_pool_done(p, 2, 2);
	ck_assert_int_eq(atomic_load(&g.left), 2);
	ck_assert_int_eq(counting_waker_total_wakes(&c), 0);

	/* Completed and dropped unpolled: released all the same. */
	spawn(p, square_fn, (void *)(intptr_t)3, &finished);
	wait_pool_done(p, 3, 2);
	ck_assert_int_eq(rouse_future_drop(&finished.base), 0);
	ck_assert_int_eq(rouse_blocking_pool_free(p), 0);
	counting_waker_drop_last(&w, &c);
	gate_destroy(&g);
}
END_TEST

/* free() waits for a function whose future was dropped. */
START_TEST(test_free_waits_dropped)
{
	struct rouse_blocking_pool *p = pool_make(1, -1);
	struct rouse_blocking b;
	struct gate g;

	gate_init(&g);
	the_gate = &g;
	spawn(p, gated_fn, NULL, &b);
	test_spin_until_eq(&g.entered, 1);
	ck_assert_int_eq(rouse_future_drop(&b.base), 0);
	gate_open(&g);
	ck_assert_int_eq(rouse_blocking_pool_free(p), 0);
	ck_assert_int_eq(atomic_load(&g.left), 1);
	gate_destroy(&g);
}
END_TEST

/* ---- freeing the pool -------------------------------------------------- */

struct freer {
	struct rouse_blocking_pool *p;
	atomic_int done;
	int err;
};

static void *freer_thread(void *arg)
{
	struct freer *f = arg;

	f->err = rouse_blocking_pool_free(f->p);
	atomic_store(&f->done, 1);
	return NULL;
}

START_TEST(test_free_cancels_queued)
{
	struct counting_waker c;
	struct rouse_waker w = counting_waker(&c);
	struct rouse_blocking running, polled, unpolled;
	struct freer f = { .err = 1 };
	struct gate g;
	int threads0 = test_count_threads_settled();
	int x = 5;
	pthread_t t;

	gate_init(&g);
	the_gate = &g;
	atomic_store(&counter_runs, 0);
	atomic_init(&f.done, 0);
	f.p = pool_make(1, -1);
	spawn(f.p, gated_fn, &x, &running);
	test_spin_until_eq(&g.entered, 1);
	/* Cancelled in queue order, so polled's wake comes last. */
	spawn(f.p, counter_fn, NULL, &unpolled);
	spawn(f.p, counter_fn, NULL, &polled);
	ck_assert_int_eq(test_poll_with(&polled.base, &w), ROUSE_PENDING);
	t = test_thread_start(freer_thread, &f);
	/* The queued jobs are cancelled first: their waiter is woken... */
	test_spin_until_eq(&c.wakes, 1);
	polled.result = 1;
	ck_assert_int_eq(test_poll_with(&polled.base, &w), ROUSE_READY);
	ck_assert_int_eq(polled.result, -ECANCELED);
	ck_assert_ptr_null(polled.value);
	ck_assert_int_eq(test_poll_with(&unpolled.base, &w), ROUSE_READY);
	ck_assert_int_eq(unpolled.result, -ECANCELED);
	/* ...while free waits for the held function, which cannot end. */
	ck_assert_int_eq(atomic_load(&f.done), 0);
	gate_open(&g);
	test_thread_join(t);
	ck_assert_int_eq(f.err, 0);
	ck_assert_int_eq(atomic_load(&g.left), 1);
	/* The running one finished; futures outlive their pool. */
	await_value(&running, &x);
	ck_assert_int_eq(rouse_future_drop(&polled.base), 0);
	ck_assert_int_eq(rouse_future_drop(&unpolled.base), 0);
	ck_assert_int_eq(atomic_load(&counter_runs), 0);
	ck_assert_int_eq(atomic_load(&c.wakes), 1);
	counting_waker_drop_last(&w, &c);
	ck_assert_int_eq(test_wait_threads(threads0), threads0);
	gate_destroy(&g);
}
END_TEST

START_TEST(test_free_blocked_waiter)
{
	struct rouse_blocking held, queued;
	struct freer f = { .err = 1 };
	struct gate g;
	pthread_t t;

	gate_init(&g);
	the_gate = &g;
	atomic_init(&f.done, 0);
	f.p = pool_make(1, -1);
	spawn(f.p, gated_fn, NULL, &held);
	test_spin_until_eq(&g.entered, 1);
	spawn(f.p, counter_fn, NULL, &queued);
	/* This thread blocks on the queued job; free's cancel wakes it. */
	t = test_thread_start(freer_thread, &f);
	ck_assert_int_eq(rouse_block_on(&queued.base), 0);
	ck_assert_int_eq(queued.result, -ECANCELED);
	ck_assert_int_eq(rouse_future_drop(&queued.base), 0);
	gate_open(&g);
	test_thread_join(t);
	ck_assert_int_eq(f.err, 0);
	await_value(&held, NULL);
	gate_destroy(&g);
}
END_TEST

/* A pool thread cannot free its own pool; it would wait for itself. */
static struct rouse_blocking_pool *self_pool;

static void *free_self_fn(void *arg)
{
	return (void *)(intptr_t)rouse_blocking_pool_free(self_pool);
}

START_TEST(test_free_from_own_thread)
{
	struct rouse_blocking b;

	self_pool = pool_make(1, -1);
	spawn(self_pool, free_self_fn, NULL, &b);
	await_value(&b, (void *)(intptr_t)-EDEADLK);
	ck_assert_int_eq(rouse_blocking_pool_free(self_pool), 0);
}
END_TEST

START_TEST(test_new_free_no_leak)
{
	struct rouse_blocking_pool *p;
	int threads0 = test_count_threads_settled();
	int fds0 = test_count_fds();
	int i;

	for (i = 0; i < 100; i++) {
		ck_assert_int_eq(rouse_blocking_pool_new(NULL, &p), 0);
		ck_assert_uint_eq(stats_of(p).threads, 0);
		ck_assert_uint_eq(stats_of(p).max_threads, 64);
		ck_assert_int_eq(rouse_blocking_pool_free(p), 0);
	}
	/* No thread is started until there is work. */
	ck_assert_int_eq(test_count_threads(), threads0);
	ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

/* ---- idle threads ------------------------------------------------------ */

/* _i: the idle timeout is 0 (leave at once) or 1 ms. */
START_TEST(test_idle_exit)
{
	struct rouse_blocking_pool *p;
	struct rouse_blocking b[4], again;
	int threads0 = test_count_threads_settled();
	struct gate g;
	intptr_t i;

	gate_init(&g);
	the_gate = &g;
	p = pool_make(4, _i == 0 ? 0 : MS);
	for (i = 0; i < 4; i++)
		spawn(p, gated_fn, (void *)i, &b[i]);
	test_spin_until_eq(&g.entered, 4);
	ck_assert_uint_eq(stats_of(p).threads, 4);
	ck_assert_int_eq(test_count_threads(), threads0 + 4);
	gate_open(&g);
	for (i = 0; i < 4; i++)
		await_value(&b[i], (void *)i);
	/* With nothing to do they all leave, and really end. */
	wait_pool_threads(p, 0);
	ck_assert_int_eq(test_wait_threads(threads0), threads0);
	ck_assert_uint_eq(stats_of(p).idle, 0);
	/* The pool starts a thread again for the next job. */
	spawn(p, square_fn, (void *)(intptr_t)4, &again);
	await_value(&again, (void *)(intptr_t)16);
	ck_assert_uint_eq(stats_of(p).threads_started, 5);
	wait_pool_threads(p, 0);
	ck_assert_int_eq(rouse_blocking_pool_free(p), 0);
	ck_assert_int_eq(test_wait_threads(threads0), threads0);
	gate_destroy(&g);
}
END_TEST

START_TEST(test_idle_reuse)
{
	struct rouse_blocking_pool *p = pool_make(4, -1);
	struct rouse_blocking b;
	int threads0 = test_count_threads_settled();
	intptr_t i;

	for (i = 0; i < 20; i++) {
		spawn(p, square_fn, (void *)i, &b);
		await_value(&b, (void *)(i * i));
		/* Once the thread waits for work, the next job takes it. */
		wait_pool_idle(p, 1);
	}
	ck_assert_uint_eq(stats_of(p).threads_started, 1);
	ck_assert_uint_eq(stats_of(p).threads, 1);
	ck_assert_int_eq(test_count_threads(), threads0 + 1);
	/* Free ends a thread that would never time out. */
	ck_assert_int_eq(rouse_blocking_pool_free(p), 0);
	ck_assert_int_eq(test_wait_threads(threads0), threads0);
}
END_TEST

/* ---- threads --------------------------------------------------------- */

static void *sigmask_fn(void *arg)
{
	sigset_t set;

	if (pthread_sigmask(SIG_BLOCK, NULL, &set) != 0)
		return NULL;
	return (void *)(intptr_t)(sigismember(&set, SIGINT) == 1 &&
				  sigismember(&set, SIGUSR1) == 1 &&
				  sigismember(&set, SIGTERM) == 1);
}

START_TEST(test_signals_blocked)
{
	struct rouse_blocking_pool *p = pool_make(1, -1);
	struct rouse_blocking b;

	spawn(p, sigmask_fn, NULL, &b);
	await_value(&b, (void *)(intptr_t)1);
	ck_assert_int_eq(rouse_blocking_pool_free(p), 0);
}
END_TEST

/* A pool thread may block on another job of its own pool. */
static struct rouse_blocking_pool *nest_pool;

static void *nest_fn(void *arg)
{
	struct rouse_blocking inner;
	void *v;

	if (rouse_spawn_blocking(nest_pool, square_fn, arg, &inner) != 0 ||
	    rouse_block_on(&inner.base) != 0 || inner.result != 0)
		return NULL;
	v = inner.value;
	rouse_future_drop(&inner.base);
	return v;
}

START_TEST(test_nested)
{
	struct rouse_blocking b;

	nest_pool = pool_make(2, -1);
	spawn(nest_pool, nest_fn, (void *)(intptr_t)12, &b);
	await_value(&b, (void *)(intptr_t)144);
	ck_assert_int_eq(rouse_blocking_pool_free(nest_pool), 0);
}
END_TEST

/* ---- many submitters ------------------------------------------------ */

#define SUBMITTERS 4
#define ROUNDS 1000
#define BATCH 4

struct submitter {
	struct rouse_blocking_pool *p;
	struct test_barrier *start;
	intptr_t base;
	int dropped;	/* futures dropped without waiting */
};

static void *submit_thread(void *arg)
{
	struct submitter *s = arg;
	struct rouse_blocking b[BATCH];
	intptr_t x;
	int r, k;

	test_barrier_wait(s->start);
	for (r = 0; r < ROUNDS; r++) {
		for (k = 0; k < BATCH; k++) {
			x = s->base + r * BATCH + k;
			ck_assert_int_eq(rouse_spawn_blocking(s->p, counter_fn,
							      (void *)x, &b[k]),
					 0);
		}
		for (k = 0; k < BATCH; k++) {
			x = s->base + r * BATCH + k;
			/* Some are dropped at once: queued, running or done. */
			if ((r + k) % 7 == 0) {
				ck_assert_int_eq(rouse_future_drop(&b[k].base),
						 0);
				s->dropped++;
				continue;
			}
			ck_assert_int_eq(rouse_block_on(&b[k].base), 0);
			ck_assert_int_eq(b[k].result, 0);
			ck_assert_ptr_eq(b[k].value, (void *)x);
			ck_assert_int_eq(rouse_future_drop(&b[k].base), 0);
		}
	}
	return NULL;
}

/* _i: idle timeout 0 (threads come and go all the time) or never. */
START_TEST(test_concurrent_submit)
{
	struct submitter s[SUBMITTERS];
	struct test_barrier start;
	struct rouse_blocking_pool_stats st;
	struct rouse_blocking_pool *p = pool_make(3, _i == 0 ? 0 : -1);
	int threads0 = test_count_threads_settled();
	pthread_t t[SUBMITTERS];
	int i, dropped = 0;

	atomic_store(&counter_runs, 0);
	test_barrier_init(&start, SUBMITTERS);
	for (i = 0; i < SUBMITTERS; i++) {
		s[i].p = p;
		s[i].start = &start;
		s[i].base = (intptr_t)i * 1000000;
		s[i].dropped = 0;
		t[i] = test_thread_start(submit_thread, &s[i]);
	}
	for (i = 0; i < SUBMITTERS; i++) {
		test_thread_join(t[i]);
		dropped += s[i].dropped;
	}
	ck_assert_int_gt(dropped, 0);
	/* Every job ran once, except dropped ones that had not started. */
	while (stats_of(p).running != 0)
		sched_yield();
	st = stats_of(p);
	ck_assert_uint_le(st.threads, 3);
	ck_assert_uint_eq(st.queued, 0);
	ck_assert_uint_eq(st.completed, (uint64_t)atomic_load(&counter_runs));
	ck_assert_int_ge(atomic_load(&counter_runs),
			 SUBMITTERS * ROUNDS * BATCH - dropped);
	ck_assert_int_le(atomic_load(&counter_runs),
			 SUBMITTERS * ROUNDS * BATCH);
	ck_assert_int_eq(rouse_blocking_pool_free(p), 0);
	ck_assert_int_eq(test_wait_threads(threads0), threads0);
	test_barrier_destroy(&start);
}
END_TEST

/* ---- no thread to be had ------------------------------------------- */

/*
 * pthread_create(3), interposed: while fail_creates is above 0 on the
 * calling thread, calls fail with EAGAIN as they would at the process
 * limit (which root, who runs these tests in CI, does not have).  The
 * others go on to the next definition: the C library's, or a sanitizer's.
 */
static __thread int fail_creates;

typedef int create_fn(pthread_t *, const pthread_attr_t *,
		      void *(*)(void *), void *);

int pthread_create(pthread_t *t, const pthread_attr_t *attr,
		   void *(*fn)(void *), void *arg)
{
	static _Atomic(create_fn *) next_create;
	create_fn *next;

	if (fail_creates > 0) {
		fail_creates--;
		return EAGAIN;
	}
	/* Threads may race here; they all find the same answer. */
	next = atomic_load_explicit(&next_create, memory_order_relaxed);
	if (next == NULL) {
		next = (create_fn *)dlsym(RTLD_NEXT, "pthread_create");
		atomic_store_explicit(&next_create, next,
				      memory_order_relaxed);
	}
	return next(t, attr, fn, arg);
}

START_TEST(test_no_thread)
{
	struct rouse_blocking_pool *p = pool_make(2, -1);
	struct rouse_blocking held, queued, b;
	struct gate g;

	gate_init(&g);
	the_gate = &g;
	/* No thread at all: the call is refused, nothing stays queued. */
	b.job = (void *)0x3;
	fail_creates = 1;
	ck_assert_int_eq(rouse_spawn_blocking(p, square_fn, NULL, &b),
			 -EAGAIN);
	ck_assert_int_eq(fail_creates, 0);
	ck_assert_ptr_eq(b.job, (void *)0x3);
	ck_assert_uint_eq(stats_of(p).queued, 0);
	ck_assert_uint_eq(stats_of(p).threads, 0);

	/* With a thread alive, the call waits for it instead. */
	spawn(p, gated_fn, NULL, &held);
	test_spin_until_eq(&g.entered, 1);
	fail_creates = 1;
	spawn(p, square_fn, (void *)(intptr_t)6, &queued);
	ck_assert_int_eq(fail_creates, 0);
	ck_assert_uint_eq(stats_of(p).threads, 1);
	ck_assert_uint_eq(stats_of(p).queued, 1);
	gate_open(&g);
	await_value(&held, NULL);
	await_value(&queued, (void *)(intptr_t)36);
	ck_assert_uint_eq(stats_of(p).threads_started, 1);
	ck_assert_int_eq(rouse_blocking_pool_free(p), 0);
	gate_destroy(&g);
}
END_TEST

/* ---- bad input and the default pool ---------------------------------- */

START_TEST(test_einval)
{
	struct rouse_blocking_pool_config cfg;
	struct rouse_blocking_pool *p = (struct rouse_blocking_pool *)0x1;
	struct rouse_blocking_pool_stats st;
	struct rouse_blocking b;
	struct rouse_blocking_pool *real;

	ck_assert_int_eq(rouse_blocking_pool_config_init(NULL), -EINVAL);
	ck_assert_int_eq(rouse_blocking_pool_config_init(&cfg), 0);
	ck_assert_uint_eq(cfg.max_threads, 64);
	ck_assert(cfg.idle_timeout_ns == INT64_C(10000000000));
	ck_assert_int_eq(rouse_blocking_pool_new(NULL, NULL), -EINVAL);
	ck_assert_int_eq(rouse_blocking_pool_new(&cfg, NULL), -EINVAL);
	cfg.max_threads = 0;
	ck_assert_int_eq(rouse_blocking_pool_new(&cfg, &p), -EINVAL);
	ck_assert_ptr_eq(p, (struct rouse_blocking_pool *)0x1);
	ck_assert_int_eq(rouse_blocking_pool_free(NULL), -EINVAL);
	ck_assert_int_eq(rouse_blocking_pool_get_stats(NULL, &st), -EINVAL);
	ck_assert_int_eq(rouse_blocking_pool_default(NULL), -EINVAL);

	real = pool_make(1, -1);
	ck_assert_int_eq(rouse_blocking_pool_get_stats(real, NULL), -EINVAL);
	b.job = (void *)0x2;
	ck_assert_int_eq(rouse_spawn_blocking(real, NULL, NULL, &b), -EINVAL);
	ck_assert_ptr_eq(b.job, (void *)0x2);
	ck_assert_int_eq(rouse_spawn_blocking(real, square_fn, NULL, NULL),
			 -EINVAL);
	ck_assert_int_eq(rouse_spawn_blocking(NULL, NULL, NULL, &b), -EINVAL);
	/* Nothing was queued by the failures. */
	ck_assert_uint_eq(stats_of(real).queued, 0);
	ck_assert_uint_eq(stats_of(real).threads_started, 0);
	ck_assert_int_eq(rouse_blocking_pool_free(real), 0);
}
END_TEST

START_TEST(test_default_pool)
{
	struct rouse_blocking_pool *d1 = NULL, *d2 = NULL;
	struct rouse_blocking b[8];
	intptr_t i;

	for (i = 0; i < 8; i++)
		spawn(NULL, square_fn, (void *)i, &b[i]);
	for (i = 0; i < 8; i++)
		await_value(&b[i], (void *)(i * i));
	ck_assert_int_eq(rouse_blocking_pool_default(&d1), 0);
	ck_assert_int_eq(rouse_blocking_pool_default(&d2), 0);
	ck_assert_ptr_nonnull(d1);
	ck_assert_ptr_eq(d1, d2);
	ck_assert_uint_eq(stats_of(d1).completed, 8);
	ck_assert_uint_eq(stats_of(d1).max_threads, 64);
	/* It lives as long as the process. */
	ck_assert_int_eq(rouse_blocking_pool_free(d1), -EINVAL);
	spawn(d1, square_fn, (void *)(intptr_t)5, &b[0]);
	await_value(&b[0], (void *)(intptr_t)25);
}
END_TEST

static Suite *blocking_suite(void)
{
	Suite *s = suite_create("blocking");
	TCase *tc;

	tc = tcase_create("results");
	tcase_add_test(tc, test_results);
	tcase_add_test(tc, test_hand_poll_wakes);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("cap");
	tcase_add_test(tc, test_cap_exact);
	tcase_add_test(tc, test_fifo);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("drop");
	tcase_add_test(tc, test_drop_before_start);
	tcase_add_test(tc, test_drop_while_running);
	tcase_add_test(tc, test_free_waits_dropped);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("free");
	tcase_add_test(tc, test_free_cancels_queued);
	tcase_add_test(tc, test_free_blocked_waiter);
	tcase_add_test(tc, test_free_from_own_thread);
	tcase_add_test(tc, test_new_free_no_leak);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("idle");
	tcase_add_loop_test(tc, test_idle_exit, 0, 2);
	tcase_add_test(tc, test_idle_reuse);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_add_test(tc, test_signals_blocked);
	tcase_add_test(tc, test_nested);
	tcase_add_loop_test(tc, test_concurrent_submit, 0, 2);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = tcase_create("no_thread");
	tcase_add_test(tc, test_no_thread);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("einval");
	tcase_add_test(tc, test_einval);
	suite_add_tcase(s, tc);

	/* Last: the default pool's threads outlive the test. */
	tc = tcase_create("default");
	tcase_add_test(tc, test_default_pool);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return test_run_suite(blocking_suite());
}
