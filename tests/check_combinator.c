// SPDX-License-Identifier: MIT
/* tests/check_combinator.c - yield, join, select and async functions. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <rouse/alloc.h>
#include <rouse/async.h>
#include <rouse/combinator.h>
#include <rouse/executor.h>
#include <rouse/reactor.h>

#include "testutil.h"

/* ---- a future that is ready when told ------------------------------ */

/*
 * Pending until ctl_complete(); keeps a clone of the latest poll's waker
 * and wakes it (consuming it) at the completion.  Safe to complete from
 * any thread.  Counts its polls and drops.
 */
struct ctl {
	struct rouse_future base;
	pthread_mutex_t lock;
	bool ready;			/* under lock */
	int value;			/* output; set before ready */
	struct rouse_waker waker;	/* under lock; vtable NULL: none */
	atomic_int polls;
	atomic_int drops;
};

static enum rouse_poll ctl_poll(struct rouse_future *f,
				struct rouse_context *cx)
{
	struct ctl *c = (struct ctl *)f;
	enum rouse_poll r = ROUSE_PENDING;

	atomic_fetch_add(&c->polls, 1);
	pthread_mutex_lock(&c->lock);
	if (c->ready) {
		r = ROUSE_READY;
	} else if (!rouse_waker_will_wake(&c->waker, cx->waker)) {
		rouse_waker_drop(&c->waker);
		ck_assert_int_eq(rouse_waker_clone(cx->waker, &c->waker), 0);
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

static void ctl_drop(struct rouse_future *f)
{
	struct ctl *c = (struct ctl *)f;

	pthread_mutex_lock(&c->lock);
	rouse_waker_drop(&c->waker);	/* -EINVAL when there is none */
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_destroy(&c->lock);
	atomic_fetch_add(&c->drops, 1);
}

static const struct rouse_future_vtable ctl_vtable = {
	.poll = ctl_poll,
	.drop = ctl_drop,
};

static void ctl_init(struct ctl *c)
{
	c->base.vtable = &ctl_vtable;
	ck_assert_int_eq(pthread_mutex_init(&c->lock, NULL), 0);
	c->ready = false;
	c->value = 0;
	c->waker.data = NULL;
	c->waker.vtable = NULL;
	atomic_init(&c->polls, 0);
	atomic_init(&c->drops, 0);
}

/*
 * Make c ready with value v and wake the waker it kept, if any; returns
 * 1 when there was one.
 */
static int ctl_complete(struct ctl *c, int v)
{
	struct rouse_waker w;

	pthread_mutex_lock(&c->lock);
	c->value = v;
	c->ready = true;
	w = c->waker;
	c->waker.vtable = NULL;
	pthread_mutex_unlock(&c->lock);
	return rouse_waker_wake(&w) == 0;	/* -EINVAL: there was none */
}

static int polls_of(struct ctl *c)
{
	return atomic_load(&c->polls);
}

static int drops_of(struct ctl *c)
{
	return atomic_load(&c->drops);
}

/* ---- yield ----------------------------------------------------------- */

START_TEST(test_yield_hand)
{
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct rouse_context cx = { &w };
	struct rouse_yield y;

	ck_assert_int_eq(rouse_yield_init(NULL), -EINVAL);
	ck_assert_int_eq(rouse_yield_init(&y), 0);
	/* Pending once, after a wake by reference: the task runs again. */
	ck_assert_int_eq(test_poll_with(&y.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&cw.wake_by_refs), 1);
	ck_assert_int_eq(atomic_load(&cw.wakes), 0);
	ck_assert_int_eq(atomic_load(&cw.clones), 0);
	ck_assert_int_eq(test_poll_with(&y.base, &w), ROUSE_READY);
	ck_assert_int_eq(test_poll_with(&y.base, &w), ROUSE_READY);
	ck_assert_int_eq(atomic_load(&cw.wake_by_refs), 1);
	ck_assert_int_eq(rouse_future_drop(&y.base), 0);
	ck_assert_int_eq(rouse_future_drop(&y.base), -EINVAL);

	/* Initialised again, and polled directly: the same once more. */
	ck_assert_int_eq(rouse_yield_init(&y), 0);
	ck_assert_int_eq(rouse_yield_poll(&y.base, &cx), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&cw.wake_by_refs), 2);
	ck_assert_int_eq(rouse_yield_poll(&y.base, &cx), ROUSE_READY);
	ck_assert_int_eq(atomic_load(&cw.wake_by_refs), 2);
	ck_assert_int_eq(rouse_future_drop(&y.base), 0);
	counting_waker_drop_last(&w, &cw);
}
END_TEST

START_TEST(test_yield_block_on)
{
	struct rouse_executor_stats s0, s1;
	struct rouse_yield y;
	int i;

	test_warm_thread_parker();
	s0 = test_executor_stats();
	for (i = 0; i < 1000; i++) {
		ck_assert_int_eq(rouse_yield_init(&y), 0);
		ck_assert_int_eq(rouse_block_on(&y.base), 0);
		ck_assert_int_eq(y.yielded, 1);
		ck_assert_int_eq(rouse_future_drop(&y.base), 0);
	}
	/* The wake came from inside the poll: no park blocked for it. */
	s1 = test_executor_stats();
	ck_assert_uint_eq(s1.parks, s0.parks);
	ck_assert_uint_eq(s1.eventfd_writes, s0.eventfd_writes);
}
END_TEST

/* ---- join ------------------------------------------------------------ */

START_TEST(test_join_einval)
{
	struct ctl a, b;
	struct rouse_future *fs[2] = { &a.base, &b.base };
	struct rouse_future *nul[2] = { &a.base, NULL };
	bool done[2];
	struct rouse_join j;

	ctl_init(&a);
	ctl_init(&b);
	ck_assert_int_eq(rouse_join_init(NULL, fs, done, 2), -EINVAL);
	ck_assert_int_eq(rouse_join_init(&j, NULL, done, 2), -EINVAL);
	ck_assert_int_eq(rouse_join_init(&j, fs, NULL, 2), -EINVAL);
	ck_assert_int_eq(rouse_join_init(&j, nul, done, 2), -EINVAL);
	b.base.vtable = NULL;		/* dropped, say */
	ck_assert_int_eq(rouse_join_init(&j, fs, done, 2), -EINVAL);
	b.base.vtable = &ctl_vtable;
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	ck_assert_int_eq(rouse_future_drop(&b.base), 0);
	ck_assert_int_eq(polls_of(&a) + polls_of(&b), 0);
}
END_TEST

/* The k-th permutation of 0..n-1 (Lehmer code), into p. */
static void permutation(int k, int n, int *p)
{
	int pool[8], i, j, f = 1;

	for (i = 0; i < n; i++) {
		pool[i] = i;
		f *= i + 1;
	}
	for (i = 0; i < n; i++) {
		int idx;

		f /= n - i;
		idx = k / f;
		k %= f;
		p[i] = pool[idx];
		for (j = idx; j < n - i - 1; j++)
			pool[j] = pool[j + 1];
	}
}

#define JN 4

START_TEST(test_join_orders)
{
	int k;

	/* Every order in which four futures can finish. */
	for (k = 0; k < 24; k++) {
		struct counting_waker cw;
		struct rouse_waker w = counting_waker(&cw);
		struct ctl c[JN];
		struct rouse_future *fs[JN];
		bool done[JN] = { true, true, true, true };
		struct rouse_join j;
		int order[JN], i, s;

		permutation(k, JN, order);
		for (i = 0; i < JN; i++) {
			ctl_init(&c[i]);
			fs[i] = &c[i].base;
		}
		ck_assert_int_eq(rouse_join_init(&j, fs, done, JN), 0);
		ck_assert_uint_eq(j.remaining, JN);
		for (i = 0; i < JN; i++)
			ck_assert(!done[i]);
		ck_assert_int_eq(test_poll_with(&j.base, &w), ROUSE_PENDING);
		for (i = 0; i < JN; i++)
			ck_assert_int_eq(polls_of(&c[i]), 1);
		for (s = 0; s < JN; s++) {
			int n = order[s];

			ctl_complete(&c[n], 10 + n);
			/* Its own waker was woken, and woke the join's task. */
			ck_assert_int_eq(atomic_load(&cw.wakes), s + 1);
			ck_assert_int_eq(test_poll_with(&j.base, &w),
					 s == JN - 1 ? ROUSE_READY :
						       ROUSE_PENDING);
			ck_assert(done[n]);
			ck_assert_uint_eq(j.remaining, JN - 1 - s);
			/* That poll polled the one woken, and no other. */
			for (i = 0; i < JN; i++)
				ck_assert_int_eq(polls_of(&c[i]),
						 i == n ? 2 : 1 + done[i]);
		}
		for (s = 0; s < JN; s++)
			ck_assert_int_eq(c[s].value, 10 + s);
		ck_assert_int_eq(test_poll_with(&j.base, &w), ROUSE_READY);
		/* The finished futures are the caller's: the join keeps out. */
		ck_assert_int_eq(rouse_future_drop(&j.base), 0);
		for (i = 0; i < JN; i++) {
			ck_assert_int_eq(drops_of(&c[i]), 0);
			ck_assert_int_eq(rouse_future_drop(&c[i].base), 0);
			ck_assert_int_eq(drops_of(&c[i]), 1);
		}
		/*
		 * The join kept a clone of the task's waker, taken again
		 * after each wake used one up; the children kept their own.
		 */
		ck_assert_int_eq(atomic_load(&cw.clones), JN + 1);
		counting_waker_drop_last(&w, &cw);
	}
}
END_TEST

START_TEST(test_join_drop_midway)
{
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct ctl c[5];
	struct rouse_future *fs[5];
	bool done[5];
	struct rouse_join j;
	int i;

	for (i = 0; i < 5; i++) {
		ctl_init(&c[i]);
		fs[i] = &c[i].base;
	}
	ck_assert_int_eq(rouse_join_init(&j, fs, done, 5), 0);
	ck_assert_int_eq(test_poll_with(&j.base, &w), ROUSE_PENDING);
	ctl_complete(&c[1], 1);
	ctl_complete(&c[3], 3);
	ck_assert_int_eq(test_poll_with(&j.base, &w), ROUSE_PENDING);
	ck_assert_uint_eq(j.remaining, 3);
	/* Dropping it drops exactly the three that did not finish. */
	ck_assert_int_eq(rouse_future_drop(&j.base), 0);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(drops_of(&c[i]), i % 2 == 0 ? 1 : 0);
	/* Their kept clones went with them; the caller drops the rest. */
	ck_assert_int_eq(atomic_load(&cw.live), 1);
	ck_assert_int_eq(c[1].value + c[3].value, 4);
	ck_assert_int_eq(rouse_future_drop(&c[1].base), 0);
	ck_assert_int_eq(rouse_future_drop(&c[3].base), 0);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(drops_of(&c[i]), 1);
	counting_waker_drop_last(&w, &cw);
}
END_TEST

START_TEST(test_join_drop_unpolled)
{
	struct ctl c[3];
	struct rouse_future *fs[3] = { &c[0].base, &c[1].base, &c[2].base };
	bool done[3];
	struct rouse_join j;
	int i;

	for (i = 0; i < 3; i++)
		ctl_init(&c[i]);
	ck_assert_int_eq(rouse_join_init(&j, fs, done, 3), 0);
	ck_assert_int_eq(rouse_future_drop(&j.base), 0);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(drops_of(&c[i]), 1);
		ck_assert_int_eq(polls_of(&c[i]), 0);
		ck_assert_ptr_null(c[i].base.vtable);
	}
}
END_TEST

START_TEST(test_join_ready_at_once)
{
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct ctl c[3];
	struct rouse_future *fs[3] = { &c[0].base, &c[1].base, &c[2].base };
	bool done[3];
	struct rouse_join j;
	int i;

	for (i = 0; i < 3; i++) {
		ctl_init(&c[i]);
		ctl_complete(&c[i], i);
	}
	ck_assert_int_eq(rouse_join_init(&j, fs, done, 3), 0);
	ck_assert_int_eq(test_poll_with(&j.base, &w), ROUSE_READY);
	for (i = 0; i < 3; i++) {
		ck_assert(done[i]);
		ck_assert_int_eq(polls_of(&c[i]), 1);
		ck_assert_int_eq(rouse_future_drop(&c[i].base), 0);
	}
	ck_assert_int_eq(counting_waker_total_wakes(&cw), 0);
	ck_assert_int_eq(rouse_future_drop(&j.base), 0);

	/* Nothing to wait for: ready at the first poll. */
	ck_assert_int_eq(rouse_join_init(&j, fs, done, 0), 0);
	ck_assert_int_eq(test_poll_with(&j.base, &w), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&j.base), 0);
	counting_waker_drop_last(&w, &cw);
}
END_TEST

/*
 * Wake the waker c keeps, if it keeps one, and leave c as it is: a
 * spurious wake.  Returns 1 when there was a waker to wake.
 */
static int ctl_poke(struct ctl *c)
{
	struct rouse_waker w = { NULL, NULL };

	pthread_mutex_lock(&c->lock);
	if (c->waker.vtable != NULL)
		rouse_waker_clone(&c->waker, &w);
	pthread_mutex_unlock(&c->lock);
	return rouse_waker_wake(&w) == 0;
}

static int polls_total(struct ctl *c, int n)
{
	int i, sum = 0;

	for (i = 0; i < n; i++)
		sum += polls_of(&c[i]);
	return sum;
}

#define WN 100

/*
 * A wake polls the future woken and no other, however many wait: the
 * polls of a join are one per future at the first poll, then one per
 * wake.
 */
START_TEST(test_join_polls_only_woken)
{
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct ctl *c = calloc(WN, sizeof(*c));
	struct rouse_future *fs[WN];
	bool done[WN];
	struct rouse_join j;
	int order[WN], i, s;
	uint64_t seed = 13;

	ck_assert_ptr_nonnull(c);
	for (i = 0; i < WN; i++) {
		ctl_init(&c[i]);
		fs[i] = &c[i].base;
		order[i] = i;
	}
	for (i = WN - 1; i > 0; i--) {
		int k = (int)(test_splitmix64(&seed) % (uint64_t)(i + 1));
		int t = order[i];

		order[i] = order[k];
		order[k] = t;
	}
	ck_assert_int_eq(rouse_join_init(&j, fs, done, WN), 0);
	ck_assert_int_eq(test_poll_with(&j.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(polls_total(c, WN), WN);
	/* Each kept a waker of its own, not the task's. */
	for (i = 0; i < WN; i++) {
		ck_assert_ptr_nonnull(c[i].waker.vtable);
		ck_assert(!rouse_waker_will_wake(&c[i].waker, &w));
	}
	ck_assert_int_eq(atomic_load(&cw.live), 2);

	/* A spurious wake: that one is polled again, and stays pending. */
	ck_assert_int_eq(ctl_poke(&c[37]), 1);
	ck_assert_int_eq(atomic_load(&cw.wakes), 1);
	ck_assert_int_eq(test_poll_with(&j.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(polls_of(&c[37]), 2);
	ck_assert_int_eq(polls_total(c, WN), WN + 1);
	/* Woken twice before a poll: polled once. */
	ck_assert_int_eq(ctl_poke(&c[5]) + ctl_poke(&c[5]), 2);
	ck_assert_int_eq(atomic_load(&cw.wakes), 2);
	ck_assert_int_eq(test_poll_with(&j.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(polls_total(c, WN), WN + 2);

	/* Completions in a shuffled order, one poll each. */
	for (s = 0; s < WN; s++) {
		int n = order[s];
		int before = polls_total(c, WN);

		ctl_complete(&c[n], n);
		ck_assert_int_eq(test_poll_with(&j.base, &w),
				 s == WN - 1 ? ROUSE_READY : ROUSE_PENDING);
		ck_assert(done[n]);
		ck_assert_int_eq(polls_total(c, WN), before + 1);
	}
	ck_assert_int_eq(atomic_load(&cw.wakes), 2 + WN);
	/* Ready: the join let go of the task's waker. */
	ck_assert_int_eq(atomic_load(&cw.live), 1);
	ck_assert_int_eq(rouse_future_drop(&j.base), 0);
	for (i = 0; i < WN; i++) {
		ck_assert_int_eq(c[i].value, i);
		ck_assert_int_eq(rouse_future_drop(&c[i].base), 0);
	}
	counting_waker_drop_last(&w, &cw);
	free(c);
}
END_TEST

/*
 * Several wakes between two polls: the next poll polls each once, in
 * the order of the wakes.
 */
struct order_fut {
	struct rouse_future base;
	struct rouse_waker waker;	/* a clone of the latest poll's */
	int id;
	int *log, *nlog;
	bool ready;
};

static enum rouse_poll order_poll(struct rouse_future *f,
				  struct rouse_context *cx)
{
	struct order_fut *o = (struct order_fut *)f;

	o->log[(*o->nlog)++] = o->id;
	if (o->ready)
		return ROUSE_READY;
	rouse_waker_drop(&o->waker);
	ck_assert_int_eq(rouse_waker_clone(cx->waker, &o->waker), 0);
	return ROUSE_PENDING;
}

static void order_drop(struct rouse_future *f)
{
	rouse_waker_drop(&((struct order_fut *)f)->waker);
}

static const struct rouse_future_vtable order_vtable = {
	order_poll, order_drop,
};

START_TEST(test_join_wake_order)
{
	struct order_fut o[6];
	struct rouse_future *fs[6];
	bool done[6];
	int log[32], nlog = 0, i;
	static const int woken[4] = { 4, 1, 5, 2 };
	struct rouse_join j;

	for (i = 0; i < 6; i++) {
		memset(&o[i], 0, sizeof(o[i]));
		o[i].base.vtable = &order_vtable;
		o[i].id = i;
		o[i].log = log;
		o[i].nlog = &nlog;
		fs[i] = &o[i].base;
	}
	ck_assert_int_eq(rouse_join_init(&j, fs, done, 6), 0);
	/* The first poll goes in index order. */
	ck_assert_int_eq(test_poll_noop(&j.base), ROUSE_PENDING);
	ck_assert_int_eq(nlog, 6);
	for (i = 0; i < 6; i++)
		ck_assert_int_eq(log[i], i);
	nlog = 0;
	for (i = 0; i < 4; i++) {
		o[woken[i]].ready = true;
		ck_assert_int_eq(rouse_waker_wake_by_ref(&o[woken[i]].waker),
				 0);
	}
	ck_assert_int_eq(test_poll_noop(&j.base), ROUSE_PENDING);
	ck_assert_int_eq(nlog, 4);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(log[i], woken[i]);
	ck_assert_uint_eq(j.remaining, 2);
	/* Dropped with two pending: exactly those two are dropped. */
	ck_assert_int_eq(rouse_future_drop(&j.base), 0);
	ck_assert_ptr_null(o[0].base.vtable);
	ck_assert_ptr_null(o[3].base.vtable);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(rouse_future_drop(&o[woken[i]].base), 0);
}
END_TEST

/*
 * A child's waker outlives the join: woken and dropped after the join
 * and every child are gone, from another thread too.
 */
static void *wake_kept_thread(void *arg)
{
	ck_assert_int_eq(rouse_waker_wake((struct rouse_waker *)arg), 0);
	return NULL;
}

START_TEST(test_join_waker_outlives)
{
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct ctl c[3];
	struct rouse_future *fs[3] = { &c[0].base, &c[1].base, &c[2].base };
	struct rouse_waker kept[3];
	bool done[3];
	struct rouse_join j;
	pthread_t t;
	int i;

	for (i = 0; i < 3; i++)
		ctl_init(&c[i]);
	ck_assert_int_eq(rouse_join_init(&j, fs, done, 3), 0);
	ck_assert_int_eq(test_poll_with(&j.base, &w), ROUSE_PENDING);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(rouse_waker_clone(&c[i].waker, &kept[i]), 0);
	ctl_complete(&c[1], 1);
	ck_assert_int_eq(test_poll_with(&j.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(rouse_future_drop(&j.base), 0);
	ck_assert_int_eq(rouse_future_drop(&c[1].base), 0);
	/* The join and its futures are gone; the task's waker too. */
	ck_assert_int_eq(atomic_load(&cw.live), 1);
	ck_assert_int_eq(rouse_waker_wake_by_ref(&kept[0]), 0);
	t = test_thread_start(wake_kept_thread, &kept[1]);
	test_thread_join(t);
	ck_assert_int_eq(rouse_waker_drop(&kept[0]), 0);
	ck_assert_int_eq(rouse_waker_wake(&kept[2]), 0);
	ck_assert_int_eq(counting_waker_total_wakes(&cw), 1);
	counting_waker_drop_last(&w, &cw);
}
END_TEST

/* An allocator whose malloc fails while fail_mallocs is set. */
static atomic_int fail_mallocs;

static void *fm_malloc(void *data, size_t size)
{
	(void)data;
	return atomic_load(&fail_mallocs) ? NULL : malloc(size);
}

static void *fm_realloc(void *data, void *ptr, size_t size)
{
	(void)data;
	return realloc(ptr, size);
}

static void fm_free(void *data, void *ptr)
{
	(void)data;
	free(ptr);
}

static const struct rouse_allocator fm_allocator = {
	fm_malloc, fm_realloc, fm_free, NULL,
};

/*
 * No memory for the wakers: the join polls every unfinished future with
 * the task's waker, and gets its wakers at the first poll that can.
 */
START_TEST(test_join_no_memory)
{
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct ctl c[4];
	struct rouse_future *fs[4];
	bool done[4];
	struct rouse_join j;
	int i;

	for (i = 0; i < 4; i++) {
		ctl_init(&c[i]);
		fs[i] = &c[i].base;
	}
	ck_assert_int_eq(rouse_executor_set_allocator(&fm_allocator), 0);
	atomic_store(&fail_mallocs, 1);
	ck_assert_int_eq(rouse_join_init(&j, fs, done, 4), 0);
	ck_assert_int_eq(test_poll_with(&j.base, &w), ROUSE_PENDING);
	/* Each keeps a clone of the task's own waker. */
	for (i = 0; i < 4; i++)
		ck_assert(rouse_waker_will_wake(&c[i].waker, &w));
	ctl_complete(&c[2], 2);
	ck_assert_int_eq(atomic_load(&cw.wakes), 1);
	ck_assert_int_eq(test_poll_with(&j.base, &w), ROUSE_PENDING);
	ck_assert(done[2]);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(polls_of(&c[i]), 2);

	/* Memory again: the next poll polls the three left, once each. */
	atomic_store(&fail_mallocs, 0);
	ck_assert_int_eq(test_poll_with(&j.base, &w), ROUSE_PENDING);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(polls_of(&c[i]), i == 2 ? 2 : 3);
	for (i = 0; i < 4; i++)
		ck_assert(i == 2 || !rouse_waker_will_wake(&c[i].waker, &w));
	ctl_complete(&c[0], 0);
	ck_assert_int_eq(test_poll_with(&j.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(polls_of(&c[0]), 4);
	ck_assert_int_eq(polls_of(&c[1]) + polls_of(&c[3]), 6);
	ck_assert_int_eq(rouse_future_drop(&j.base), 0);
	ck_assert_int_eq(drops_of(&c[1]) + drops_of(&c[3]), 2);
	ck_assert_int_eq(rouse_future_drop(&c[0].base), 0);
	ck_assert_int_eq(rouse_future_drop(&c[2].base), 0);
	ck_assert_int_eq(rouse_executor_set_allocator(NULL), 0);
	counting_waker_drop_last(&w, &cw);
}
END_TEST

/* One future: nothing to tell apart, so no wakers of its own. */
START_TEST(test_join_one)
{
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct ctl c;
	struct rouse_future *fs[1] = { &c.base };
	bool done[1];
	struct rouse_join j;

	ctl_init(&c);
	ck_assert_int_eq(rouse_executor_set_allocator(&fm_allocator), 0);
	atomic_store(&fail_mallocs, 1);
	ck_assert_int_eq(rouse_join_init(&j, fs, done, 1), 0);
	ck_assert_int_eq(test_poll_with(&j.base, &w), ROUSE_PENDING);
	ck_assert(rouse_waker_will_wake(&c.waker, &w));
	ctl_complete(&c, 7);
	ck_assert_int_eq(test_poll_with(&j.base, &w), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&j.base), 0);
	ck_assert_int_eq(rouse_future_drop(&c.base), 0);
	atomic_store(&fail_mallocs, 0);
	ck_assert_int_eq(rouse_executor_set_allocator(NULL), 0);
	counting_waker_drop_last(&w, &cw);
}
END_TEST

/*
 * Four threads complete and poke the futures of one join that the main
 * thread runs in rouse_block_on(): every future completes, and the join
 * polls no more than once per future plus once per wake.
 */
#define TJ_THREADS 4
#define TJ_PER 256
#define TJ_N (TJ_THREADS * TJ_PER)

struct tj_arg {
	struct ctl *c;
	int first;
	atomic_int wakes;
};

static void *tj_thread(void *arg)
{
	struct tj_arg *a = arg;
	uint64_t seed = (uint64_t)a->first + 1;
	int i;

	for (i = 0; i < TJ_PER; i++) {
		struct ctl *c = &a->c[a->first + i];
		struct ctl *p = &a->c[a->first +
				      (int)(test_splitmix64(&seed) % TJ_PER)];

		/* Poke one of ours that may or may not be done. */
		atomic_fetch_add(&a->wakes, ctl_poke(p));
		atomic_fetch_add(&a->wakes, ctl_complete(c, a->first + i));
	}
	return NULL;
}

START_TEST(test_join_threads)
{
	struct ctl *c = calloc(TJ_N, sizeof(*c));
	struct rouse_future **fs = calloc(TJ_N, sizeof(*fs));
	bool *done = calloc(TJ_N, sizeof(*done));
	struct tj_arg args[TJ_THREADS];
	pthread_t t[TJ_THREADS];
	struct rouse_join j;
	int i, wakes = 0;

	ck_assert(c != NULL && fs != NULL && done != NULL);
	for (i = 0; i < TJ_N; i++) {
		ctl_init(&c[i]);
		fs[i] = &c[i].base;
	}
	ck_assert_int_eq(rouse_join_init(&j, fs, done, TJ_N), 0);
	for (i = 0; i < TJ_THREADS; i++) {
		args[i].c = c;
		args[i].first = i * TJ_PER;
		atomic_init(&args[i].wakes, 0);
		t[i] = test_thread_start(tj_thread, &args[i]);
	}
	ck_assert_int_eq(rouse_block_on(&j.base), 0);
	for (i = 0; i < TJ_THREADS; i++) {
		test_thread_join(t[i]);
		wakes += atomic_load(&args[i].wakes);
	}
	ck_assert_uint_eq(j.remaining, 0);
	/* Each poll after the first answers a wake. */
	ck_assert_int_le(polls_total(c, TJ_N), TJ_N + wakes);
	ck_assert_int_eq(rouse_future_drop(&j.base), 0);
	for (i = 0; i < TJ_N; i++) {
		ck_assert(done[i]);
		ck_assert_int_eq(c[i].value, i);
		ck_assert_int_eq(rouse_future_drop(&c[i].base), 0);
	}
	free(c);
	free(fs);
	free(done);
}
END_TEST

/* ---- select ---------------------------------------------------------- */

START_TEST(test_select_einval)
{
	struct ctl a, b;
	struct rouse_future *fs[2] = { &a.base, &b.base };
	struct rouse_future *nul[2] = { NULL, &b.base };
	struct rouse_select s;

	ctl_init(&a);
	ctl_init(&b);
	ck_assert_int_eq(rouse_select_init(NULL, fs, 2, 0), -EINVAL);
	ck_assert_int_eq(rouse_select_init(&s, NULL, 2, 0), -EINVAL);
	ck_assert_int_eq(rouse_select_init(&s, fs, 0, 0), -EINVAL);
	/* SIZE_MAX is the index of no winner. */
	ck_assert_int_eq(rouse_select_init(&s, fs, SIZE_MAX, 0), -EINVAL);
	ck_assert_int_eq(rouse_select_init(&s, nul, 2, 0), -EINVAL);
	ck_assert_int_eq(rouse_select_init(&s, fs, 2, 0x2), -EINVAL);
	ck_assert_int_eq(rouse_select_init(&s, fs, 2, ~0u), -EINVAL);
	a.base.vtable = NULL;
	ck_assert_int_eq(rouse_select_init(&s, fs, 2, 0), -EINVAL);
	a.base.vtable = &ctl_vtable;
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	ck_assert_int_eq(rouse_future_drop(&b.base), 0);
}
END_TEST

START_TEST(test_select_winner)
{
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct ctl c[4];
	struct rouse_future *fs[4];
	struct rouse_select s;
	int i;

	for (i = 0; i < 4; i++) {
		ctl_init(&c[i]);
		fs[i] = &c[i].base;
	}
	ck_assert_int_eq(rouse_select_init(&s, fs, 4, 0), 0);
	ck_assert_uint_eq(s.index, SIZE_MAX);
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_PENDING);
	/* Nothing was woken: a second poll polls nothing. */
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_PENDING);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(polls_of(&c[i]), 1);
	ctl_complete(&c[2], 42);
	ck_assert_int_eq(atomic_load(&cw.wakes), 1);
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_READY);
	ck_assert_uint_eq(s.index, 2);
	/* Only the one woken was polled again. */
	ck_assert_int_eq(polls_of(&c[0]), 1);
	ck_assert_int_eq(polls_of(&c[1]), 1);
	ck_assert_int_eq(polls_of(&c[2]), 2);
	ck_assert_int_eq(polls_of(&c[3]), 1);
	/* The losers were dropped right then, once; not the winner. */
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(drops_of(&c[i]), i == 2 ? 0 : 1);
	ck_assert_int_eq(atomic_load(&cw.live), 1);
	/* Ready it stays, without polling anything. */
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_READY);
	ck_assert_int_eq(polls_of(&c[2]), 2);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(drops_of(&c[i]), i == 2 ? 0 : 1);
	/* The winner's output is in the winner, which the caller drops. */
	ck_assert_int_eq(c[2].value, 42);
	ck_assert_int_eq(rouse_future_drop(&c[2].base), 0);
	ck_assert_int_eq(drops_of(&c[2]), 1);
	counting_waker_drop_last(&w, &cw);
}
END_TEST

START_TEST(test_select_ties)
{
	struct ctl c[4];
	struct rouse_future *fs[4];
	struct rouse_select s;
	int i;

	for (i = 0; i < 4; i++) {
		ctl_init(&c[i]);
		fs[i] = &c[i].base;
	}
	ctl_complete(&c[3], 3);
	ctl_complete(&c[1], 1);
	ck_assert_int_eq(rouse_select_init(&s, fs, 4, 0), 0);
	ck_assert_int_eq(test_poll_noop(&s.base), ROUSE_READY);
	/* Both ready at the same poll: the lower index wins. */
	ck_assert_uint_eq(s.index, 1);
	ck_assert_int_eq(polls_of(&c[3]), 0);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(drops_of(&c[i]), i == 1 ? 0 : 1);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	ck_assert_int_eq(rouse_future_drop(&c[1].base), 0);
}
END_TEST

/* Three fair selects in a row over futures that are all ready. */
START_TEST(test_select_fair)
{
	size_t first = SIZE_MAX;
	bool won[3] = { false, false, false };
	int round, i;

	for (round = 0; round < 6; round++) {
		unsigned int flags = round < 3 ? ROUSE_SELECT_FAIR : 0;
		struct ctl c[3];
		struct rouse_future *fs[3];
		struct rouse_select s;

		for (i = 0; i < 3; i++) {
			ctl_init(&c[i]);
			ctl_complete(&c[i], i);
			fs[i] = &c[i].base;
		}
		ck_assert_int_eq(rouse_select_init(&s, fs, 3, flags), 0);
		ck_assert_int_eq(test_poll_noop(&s.base), ROUSE_READY);
		ck_assert_uint_lt(s.index, 3);
		if (round < 3) {
			/* Each fair select starts one place further. */
			if (round == 0)
				first = s.index;
			ck_assert_uint_eq(s.index, (first + round) % 3);
			won[s.index] = true;
		} else {
			ck_assert_uint_eq(s.index, 0);
		}
		/* Only the winner was polled. */
		for (i = 0; i < 3; i++)
			ck_assert_int_eq(polls_of(&c[i]),
					 (size_t)i == s.index ? 1 : 0);
		ck_assert_int_eq(rouse_future_drop(&s.base), 0);
		ck_assert_int_eq(rouse_future_drop(fs[s.index]), 0);
		for (i = 0; i < 3; i++)
			ck_assert_int_eq(drops_of(&c[i]), 1);
	}
	ck_assert(won[0] && won[1] && won[2]);
}
END_TEST

/* A wake polls only the future woken, and ties go by index. */
START_TEST(test_select_polls_only_woken)
{
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct ctl c[16];
	struct rouse_future *fs[16];
	struct rouse_select s;
	int i;

	for (i = 0; i < 16; i++) {
		ctl_init(&c[i]);
		fs[i] = &c[i].base;
	}
	ck_assert_int_eq(rouse_select_init(&s, fs, 16, 0), 0);
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(polls_total(c, 16), 16);
	ck_assert_int_eq(ctl_poke(&c[9]), 1);
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(polls_of(&c[9]), 2);
	ck_assert_int_eq(polls_total(c, 16), 17);
	/*
	 * 12 completes, then 3: both woken before the next poll, which
	 * polls 3 first (the lower index wins the tie) and stops there.
	 */
	ctl_complete(&c[12], 12);
	ctl_complete(&c[3], 3);
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_READY);
	ck_assert_uint_eq(s.index, 3);
	ck_assert_int_eq(polls_of(&c[3]), 2);
	ck_assert_int_eq(polls_of(&c[12]), 1);
	ck_assert_int_eq(polls_total(c, 16), 18);
	for (i = 0; i < 16; i++)
		ck_assert_int_eq(drops_of(&c[i]), i == 3 ? 0 : 1);
	/* The select let go of the task's waker when it was won. */
	ck_assert_int_eq(atomic_load(&cw.live), 1);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	ck_assert_int_eq(rouse_future_drop(&c[3].base), 0);
	counting_waker_drop_last(&w, &cw);
}
END_TEST

/* A fair select's ties among woken futures go round from its start. */
START_TEST(test_select_fair_woken)
{
	int round;

	for (round = 0; round < 3; round++) {
		struct ctl c[3];
		struct rouse_future *fs[3];
		struct rouse_select s;
		size_t start;
		int i;

		for (i = 0; i < 3; i++) {
			ctl_init(&c[i]);
			fs[i] = &c[i].base;
		}
		ck_assert_int_eq(rouse_select_init(&s, fs, 3,
						   ROUSE_SELECT_FAIR), 0);
		start = s.start;
		ck_assert_int_eq(test_poll_noop(&s.base), ROUSE_PENDING);
		/* All three wake, the start's last: the start still wins. */
		for (i = 1; i <= 3; i++)
			ctl_complete(&c[(start + (size_t)i) % 3], i);
		ck_assert_int_eq(test_poll_noop(&s.base), ROUSE_READY);
		ck_assert_uint_eq(s.index, start);
		ck_assert_int_eq(rouse_future_drop(&s.base), 0);
		ck_assert_int_eq(rouse_future_drop(fs[start]), 0);
	}
}
END_TEST

START_TEST(test_select_drop_pending)
{
	int polled;

	/* Pending, or never polled: dropping the select drops all. */
	for (polled = 0; polled < 2; polled++) {
		struct ctl c[3];
		struct rouse_future *fs[3];
		struct rouse_select s;
		int i;

		for (i = 0; i < 3; i++) {
			ctl_init(&c[i]);
			fs[i] = &c[i].base;
		}
		ck_assert_int_eq(rouse_select_init(&s, fs, 3, 0), 0);
		if (polled)
			ck_assert_int_eq(test_poll_noop(&s.base),
					 ROUSE_PENDING);
		ck_assert_int_eq(rouse_future_drop(&s.base), 0);
		for (i = 0; i < 3; i++) {
			ck_assert_int_eq(drops_of(&c[i]), 1);
			ck_assert_int_eq(polls_of(&c[i]), polled);
		}
	}
}
END_TEST

/* ---- async functions, polled by hand --------------------------------- */

/* Awaits a, b and c in turn, each initialised in the body. */
struct seq {
	struct rouse_future base;
	struct rouse_async co;
	struct ctl a, b, c;
	int steps;		/* how many stretches of the body ran */
	int result;		/* a + b + c, or a when it is negative */
};

static enum rouse_poll seq_poll(struct rouse_future *f,
				struct rouse_context *cx)
{
	struct seq *s = (struct seq *)f;

	ROUSE_ASYNC_BEGIN(&s->co, cx);
	s->steps++;
	ctl_init(&s->a);
	ROUSE_AWAIT(&s->a.base);
	s->steps++;
	s->result = s->a.value;
	rouse_future_drop(&s->a.base);
	if (s->result < 0)
		ROUSE_ASYNC_RETURN();	/* an error: the rest does not run */
	ctl_init(&s->b);
	ROUSE_AWAIT(&s->b.base);
	s->steps++;
	s->result += s->b.value;
	rouse_future_drop(&s->b.base);
	ctl_init(&s->c);
	ROUSE_AWAIT(&s->c.base);
	s->steps++;
	s->result += s->c.value;
	rouse_future_drop(&s->c.base);
	ROUSE_ASYNC_END();
}

/* Drop whatever is live: a NULL vtable makes rouse_future_drop() a no-op. */
static void seq_drop(struct rouse_future *f)
{
	struct seq *s = (struct seq *)f;

	rouse_future_drop(&s->a.base);
	rouse_future_drop(&s->b.base);
	rouse_future_drop(&s->c.base);
}

static const struct rouse_future_vtable seq_vtable = {
	.poll = seq_poll,
	.drop = seq_drop,
};

static void seq_init(struct seq *s)
{
	memset(s, 0, sizeof(*s));
	s->base.vtable = &seq_vtable;
	ck_assert_int_eq(rouse_async_init(&s->co), 0);
}

START_TEST(test_async_chain)
{
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct seq s;

	ck_assert_int_eq(rouse_async_init(NULL), -EINVAL);
	seq_init(&s);
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(s.steps, 1);
	ck_assert_int_eq(polls_of(&s.a), 1);
	/* A poll with nothing new resumes at the await, not before it. */
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(s.steps, 1);
	ck_assert_int_eq(polls_of(&s.a), 2);
	ctl_complete(&s.a, 1);
	ck_assert_int_eq(atomic_load(&cw.wakes), 1);
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(s.steps, 2);
	ck_assert_int_eq(drops_of(&s.a), 1);
	ck_assert_int_eq(polls_of(&s.b), 1);
	/* b ready before its next poll: straight on to c in one poll. */
	ctl_complete(&s.b, 20);
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(s.steps, 3);
	ck_assert_int_eq(drops_of(&s.b), 1);
	ck_assert_int_eq(polls_of(&s.c), 1);
	ctl_complete(&s.c, 300);
	ck_assert_int_eq(atomic_load(&cw.wakes), 3);
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_READY);
	ck_assert_int_eq(s.steps, 4);
	ck_assert_int_eq(s.result, 321);
	ck_assert_int_eq(drops_of(&s.c), 1);
	/* Finished: ready again, and the body does not run again. */
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_READY);
	ck_assert_int_eq(s.steps, 4);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	ck_assert_int_eq(drops_of(&s.a) + drops_of(&s.b) + drops_of(&s.c), 3);
	counting_waker_drop_last(&w, &cw);
}
END_TEST

START_TEST(test_async_early_return)
{
	struct seq s;

	seq_init(&s);
	ck_assert_int_eq(test_poll_noop(&s.base), ROUSE_PENDING);
	ctl_complete(&s.a, -EIO);
	ck_assert_int_eq(test_poll_noop(&s.base), ROUSE_READY);
	ck_assert_int_eq(s.result, -EIO);
	ck_assert_int_eq(s.steps, 2);
	ck_assert_ptr_null(s.b.base.vtable);	/* never reached */
	ck_assert_int_eq(test_poll_noop(&s.base), ROUSE_READY);
	ck_assert_int_eq(s.steps, 2);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	ck_assert_int_eq(drops_of(&s.a), 1);
}
END_TEST

START_TEST(test_async_drop_suspended)
{
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct seq s;

	/* Never polled: nothing is live, nothing is dropped. */
	seq_init(&s);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	ck_assert_int_eq(s.steps, 0);

	/* Suspended at b: dropping it drops b, which drops its clone. */
	seq_init(&s);
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_PENDING);
	ctl_complete(&s.a, 1);
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(polls_of(&s.b), 1);
	ck_assert_int_eq(atomic_load(&cw.live), 2);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	ck_assert_int_eq(drops_of(&s.a), 1);
	ck_assert_int_eq(drops_of(&s.b), 1);
	ck_assert_ptr_null(s.c.base.vtable);
	counting_waker_drop_last(&w, &cw);
}
END_TEST

/* n turns of: await a fresh ctl, yield by macro, yield by future. */
struct loop {
	struct rouse_future base;
	struct rouse_async co;
	int n;
	int i;			/* the loop counter lives here */
	int turns;
	int sum;
	struct ctl t;
	struct rouse_yield y;
};

static enum rouse_poll loop_poll(struct rouse_future *f,
				 struct rouse_context *cx)
{
	struct loop *l = (struct loop *)f;

	ROUSE_ASYNC_BEGIN(&l->co, cx);
	for (l->i = 0; l->i < l->n; l->i++) {
		ctl_init(&l->t);
		ROUSE_AWAIT(&l->t.base);
		l->sum += l->t.value;
		rouse_future_drop(&l->t.base);
		ROUSE_ASYNC_YIELD();
		rouse_yield_init(&l->y);
		ROUSE_AWAIT(&l->y.base);
		l->turns++;
	}
	ROUSE_ASYNC_END();
}

static void loop_drop(struct rouse_future *f)
{
	struct loop *l = (struct loop *)f;

	rouse_future_drop(&l->t.base);
	rouse_future_drop(&l->y.base);
}

static const struct rouse_future_vtable loop_vtable = {
	.poll = loop_poll,
	.drop = loop_drop,
};

static void loop_init(struct loop *l, int n)
{
	memset(l, 0, sizeof(*l));
	l->base.vtable = &loop_vtable;
	l->n = n;
}

START_TEST(test_async_loop)
{
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct loop l;
	int i;

	loop_init(&l, 5);
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(test_poll_with(&l.base, &w), ROUSE_PENDING);
		ck_assert_int_eq(l.turns, i);
		ck_assert_int_eq(polls_of(&l.t), 1);
		ctl_complete(&l.t, i + 1);
		ck_assert_int_eq(atomic_load(&cw.wakes), i + 1);
		/* The macro's yield, then the future's: one wake each. */
		ck_assert_int_eq(test_poll_with(&l.base, &w), ROUSE_PENDING);
		ck_assert_int_eq(atomic_load(&cw.wake_by_refs), 2 * i + 1);
		ck_assert_int_eq(test_poll_with(&l.base, &w), ROUSE_PENDING);
		ck_assert_int_eq(atomic_load(&cw.wake_by_refs), 2 * i + 2);
		ck_assert_int_eq(l.turns, i);
	}
	ck_assert_int_eq(test_poll_with(&l.base, &w), ROUSE_READY);
	ck_assert_int_eq(l.turns, 5);
	ck_assert_int_eq(l.sum, 15);
	ck_assert_int_eq(rouse_future_drop(&l.base), 0);
	counting_waker_drop_last(&w, &cw);

	/* Zero turns: ready at the first poll. */
	loop_init(&l, 0);
	ck_assert_int_eq(test_poll_noop(&l.base), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&l.base), 0);
}
END_TEST

/*
 * An async function that awaits another (a seq), then a join of two, then
 * a select of two: the combinators and the macros together.
 */
struct outer {
	struct rouse_future base;
	struct rouse_async co;
	struct seq inner;
	struct ctl j[2];
	struct rouse_future *jf[2];
	bool jdone[2];
	struct rouse_join join;
	struct ctl s[2];
	struct rouse_future *sf[2];
	struct rouse_select sel;
	int result;
};

static enum rouse_poll outer_poll(struct rouse_future *f,
				  struct rouse_context *cx)
{
	struct outer *o = (struct outer *)f;

	ROUSE_ASYNC_BEGIN(&o->co, cx);
	seq_init(&o->inner);
	ROUSE_AWAIT(&o->inner.base);
	o->result = o->inner.result;
	rouse_future_drop(&o->inner.base);

	ctl_init(&o->j[0]);
	ctl_init(&o->j[1]);
	o->jf[0] = &o->j[0].base;
	o->jf[1] = &o->j[1].base;
	ck_assert_int_eq(rouse_join_init(&o->join, o->jf, o->jdone, 2), 0);
	ROUSE_AWAIT(&o->join.base);
	o->result += o->j[0].value + o->j[1].value;
	rouse_future_drop(&o->join.base);
	rouse_future_drop(&o->j[0].base);
	rouse_future_drop(&o->j[1].base);

	ctl_init(&o->s[0]);
	ctl_init(&o->s[1]);
	o->sf[0] = &o->s[0].base;
	o->sf[1] = &o->s[1].base;
	ck_assert_int_eq(rouse_select_init(&o->sel, o->sf, 2, 0), 0);
	ROUSE_AWAIT(&o->sel.base);
	o->result += o->s[o->sel.index].value;
	rouse_future_drop(&o->sel.base);
	rouse_future_drop(o->sf[o->sel.index]);
	ROUSE_ASYNC_END();
}

static void outer_drop(struct rouse_future *f)
{
	struct outer *o = (struct outer *)f;
	int i;

	/*
	 * The combinators first: they drop what did not finish, so what is
	 * still live afterwards finished and is ours.
	 */
	rouse_future_drop(&o->inner.base);
	rouse_future_drop(&o->join.base);
	rouse_future_drop(&o->sel.base);
	for (i = 0; i < 2; i++) {
		rouse_future_drop(&o->j[i].base);
		rouse_future_drop(&o->s[i].base);
	}
}

static const struct rouse_future_vtable outer_vtable = {
	.poll = outer_poll,
	.drop = outer_drop,
};

static void outer_init(struct outer *o)
{
	memset(o, 0, sizeof(*o));
	o->base.vtable = &outer_vtable;
}

START_TEST(test_async_nested)
{
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct outer o;

	outer_init(&o);
	ck_assert_int_eq(test_poll_with(&o.base, &w), ROUSE_PENDING);
	ctl_complete(&o.inner.a, 1);
	ck_assert_int_eq(test_poll_with(&o.base, &w), ROUSE_PENDING);
	ctl_complete(&o.inner.b, 2);
	ck_assert_int_eq(test_poll_with(&o.base, &w), ROUSE_PENDING);
	ctl_complete(&o.inner.c, 3);
	/* The inner function finishes; the join is polled in that poll. */
	ck_assert_int_eq(test_poll_with(&o.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(o.result, 6);
	ck_assert_int_eq(polls_of(&o.j[0]), 1);
	ctl_complete(&o.j[1], 20);
	ck_assert_int_eq(test_poll_with(&o.base, &w), ROUSE_PENDING);
	ctl_complete(&o.j[0], 10);
	ck_assert_int_eq(test_poll_with(&o.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(o.result, 36);
	ck_assert_int_eq(drops_of(&o.j[0]) + drops_of(&o.j[1]), 2);
	ctl_complete(&o.s[1], 100);
	ck_assert_int_eq(test_poll_with(&o.base, &w), ROUSE_READY);
	ck_assert_int_eq(o.result, 136);
	ck_assert_uint_eq(o.sel.index, 1);
	ck_assert_int_eq(drops_of(&o.s[0]), 1);
	ck_assert_int_eq(drops_of(&o.s[1]), 1);
	ck_assert_int_eq(rouse_future_drop(&o.base), 0);
	ck_assert_int_eq(atomic_load(&cw.wakes), 6);
	counting_waker_drop_last(&w, &cw);
}
END_TEST

/* Dropped while awaiting the join with one of two finished. */
START_TEST(test_async_nested_drop)
{
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct outer o;

	outer_init(&o);
	ck_assert_int_eq(test_poll_with(&o.base, &w), ROUSE_PENDING);
	ctl_complete(&o.inner.a, 1);
	ck_assert_int_eq(test_poll_with(&o.base, &w), ROUSE_PENDING);
	ctl_complete(&o.inner.b, 2);
	ck_assert_int_eq(test_poll_with(&o.base, &w), ROUSE_PENDING);
	ctl_complete(&o.inner.c, 3);
	ck_assert_int_eq(test_poll_with(&o.base, &w), ROUSE_PENDING);
	ctl_complete(&o.j[0], 10);
	ck_assert_int_eq(test_poll_with(&o.base, &w), ROUSE_PENDING);
	ck_assert(o.jdone[0] && !o.jdone[1]);
	ck_assert_int_eq(atomic_load(&cw.live), 2);
	ck_assert_int_eq(rouse_future_drop(&o.base), 0);
	/* The join dropped j[1]; the drop of outer dropped j[0]. */
	ck_assert_int_eq(drops_of(&o.j[0]), 1);
	ck_assert_int_eq(drops_of(&o.j[1]), 1);
	ck_assert_int_eq(drops_of(&o.inner.c), 1);
	ck_assert_ptr_null(o.s[0].base.vtable);
	counting_waker_drop_last(&w, &cw);
}
END_TEST

/* ---- with the reactor's futures -------------------------------------- */

/* An event, but no longer than a second; then a pause of 10 ms. */
struct wtp {
	struct rouse_future base;
	struct rouse_async co;
	struct rouse_reactor *r;
	struct rouse_event *ev;
	struct rouse_event_wait wait;
	struct rouse_sleep sleep;
	struct rouse_future *pair[2];
	struct rouse_select sel;
	int result;
};

#define MS 1000000LL

static enum rouse_poll wtp_poll(struct rouse_future *f,
				struct rouse_context *cx)
{
	struct wtp *w = (struct wtp *)f;

	ROUSE_ASYNC_BEGIN(&w->co, cx);
	w->pair[0] = &w->wait.op.base;
	w->pair[1] = &w->sleep.base;
	w->result = rouse_event_wait_init(&w->wait, w->ev);
	if (w->result == 0)
		w->result = rouse_sleep_init(&w->sleep, w->r, 1000 * MS);
	if (w->result == 0)
		w->result = rouse_select_init(&w->sel, w->pair, 2, 0);
	if (w->result < 0)
		ROUSE_ASYNC_RETURN();
	ROUSE_AWAIT(&w->sel.base);
	rouse_future_drop(w->pair[w->sel.index]);
	rouse_future_drop(&w->sel.base);
	if (w->sel.index == 1) {
		w->result = -ETIMEDOUT;
		ROUSE_ASYNC_RETURN();
	}
	w->result = rouse_sleep_init(&w->sleep, w->r, 10 * MS);
	if (w->result < 0)
		ROUSE_ASYNC_RETURN();
	ROUSE_AWAIT(&w->sleep.base);
	w->result = w->sleep.result;
	rouse_future_drop(&w->sleep.base);
	ROUSE_ASYNC_END();
}

static void wtp_drop(struct rouse_future *f)
{
	struct wtp *w = (struct wtp *)f;

	rouse_future_drop(&w->sel.base);
	rouse_future_drop(&w->wait.op.base);
	rouse_future_drop(&w->sleep.base);
}

static const struct rouse_future_vtable wtp_vtable = {
	.poll = wtp_poll,
	.drop = wtp_drop,
};

static void wtp_init(struct wtp *w, struct rouse_reactor *r,
		     struct rouse_event *ev)
{
	memset(w, 0, sizeof(*w));
	w->base.vtable = &wtp_vtable;
	w->r = r;
	w->ev = ev;
}

START_TEST(test_async_reactor)
{
	struct test_fixture fx;
	struct rouse_event *ev = NULL;
	struct wtp w;

	test_fixture_init(&fx);
	ck_assert_int_eq(rouse_reactor_clock_pause(fx.r), 0);
	ck_assert_int_eq(rouse_event_new(fx.r, &ev), 0);

	/* No event: the sleep wins at its deadline, not a moment before. */
	wtp_init(&w, fx.r, ev);
	ck_assert_int_eq(test_poll_with(&w.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(rouse_reactor_clock_advance(fx.r, 999 * MS), 0);
	ck_assert_int_eq(counting_waker_total_wakes(&fx.cw), 0);
	ck_assert_int_eq(rouse_reactor_clock_advance(fx.r, MS), 1);
	ck_assert_int_eq(atomic_load(&fx.cw.wakes), 1);
	ck_assert_int_eq(test_poll_with(&w.base, &fx.w), ROUSE_READY);
	ck_assert_int_eq(w.result, -ETIMEDOUT);
	ck_assert_uint_eq(w.sel.index, 1);
	/* The losing wait was dropped, with its waker. */
	ck_assert_ptr_null(w.wait.op.base.vtable);
	ck_assert_int_eq(atomic_load(&fx.cw.live), 1);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);

	/* The event first, then the pause. */
	wtp_init(&w, fx.r, ev);
	ck_assert_int_eq(test_poll_with(&w.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(rouse_event_notify(ev), 0);
	ck_assert_int_eq(rouse_reactor_turn(fx.r, 0), 1);
	ck_assert_int_eq(atomic_load(&fx.cw.wakes), 2);
	ck_assert_int_eq(test_poll_with(&w.base, &fx.w), ROUSE_PENDING);
	ck_assert_uint_eq(w.sel.index, 0);
	ck_assert_uint_eq(w.wait.count, 1);
	ck_assert_int_eq(rouse_reactor_clock_advance(fx.r, 10 * MS), 1);
	ck_assert_int_eq(atomic_load(&fx.cw.wakes), 3);
	ck_assert_int_eq(test_poll_with(&w.base, &fx.w), ROUSE_READY);
	ck_assert_int_eq(w.result, 0);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);

	/*
	 * Dropped while it waits for either: both go, with their wakers
	 * (the select's clone of the task's waker; theirs are the select's).
	 */
	wtp_init(&w, fx.r, ev);
	ck_assert_int_eq(test_poll_with(&w.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&fx.cw.live), 2);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	ck_assert_ptr_null(w.wait.op.base.vtable);
	ck_assert_ptr_null(w.sleep.base.vtable);
	ck_assert_int_eq(rouse_reactor_clock_advance(fx.r, 2000 * MS), 0);
	ck_assert_int_eq(atomic_load(&fx.cw.wakes), 3);

	rouse_event_free(ev);
	test_fixture_free(&fx);
}
END_TEST

/* ---- under rouse_block_on() ------------------------------------------ */

/* Completes each future once its owner has polled it: it really waits. */
struct completer {
	struct ctl **cs;
	int n;
};

static void *completer_thread(void *arg)
{
	struct completer *k = arg;
	int i;

	for (i = 0; i < k->n; i++) {
		test_spin_until_ge(&k->cs[i]->polls, 1);
		ctl_complete(k->cs[i], i + 1);
	}
	return NULL;
}

/* Awaits each of n futures that the test initialised, in turn. */
struct awaiter {
	struct rouse_future base;
	struct rouse_async co;
	struct ctl **cs;
	int n;
	int i;
	int sum;
};

static enum rouse_poll awaiter_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct awaiter *a = (struct awaiter *)f;

	ROUSE_ASYNC_BEGIN(&a->co, cx);
	for (a->i = 0; a->i < a->n; a->i++) {
		ROUSE_AWAIT(&a->cs[a->i]->base);
		a->sum += a->cs[a->i]->value;
		ROUSE_ASYNC_YIELD();
	}
	ROUSE_ASYNC_END();
}

static const struct rouse_future_vtable awaiter_vtable = {
	.poll = awaiter_poll,
	.drop = NULL,
};

START_TEST(test_block_on_all)
{
	struct ctl c[4];
	struct ctl *order[4] = { &c[2], &c[0], &c[3], &c[1] };
	struct rouse_future *fs[4];
	bool done[4];
	struct completer k = { order, 4 };
	struct rouse_join j;
	struct rouse_select s;
	struct awaiter a;
	pthread_t t;
	int i;

	/* A join, its futures finished by another thread in some order. */
	for (i = 0; i < 4; i++) {
		ctl_init(&c[i]);
		fs[i] = &c[i].base;
	}
	ck_assert_int_eq(rouse_join_init(&j, fs, done, 4), 0);
	t = test_thread_start(completer_thread, &k);
	ck_assert_int_eq(rouse_block_on(&j.base), 0);
	test_thread_join(t);
	ck_assert_uint_eq(j.remaining, 0);
	ck_assert_int_eq(c[2].value * 1000 + c[0].value * 100 +
			 c[3].value * 10 + c[1].value, 1234);
	ck_assert_int_eq(rouse_future_drop(&j.base), 0);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(rouse_future_drop(&c[i].base), 0);

	/* A select of four, one finished by another thread. */
	for (i = 0; i < 4; i++)
		ctl_init(&c[i]);
	ck_assert_int_eq(rouse_select_init(&s, fs, 4, ROUSE_SELECT_FAIR), 0);
	k.n = 1;
	t = test_thread_start(completer_thread, &k);
	ck_assert_int_eq(rouse_block_on(&s.base), 0);
	test_thread_join(t);
	ck_assert_uint_eq(s.index, 2);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(drops_of(&c[i]), i == 2 ? 0 : 1);
	ck_assert_int_eq(rouse_future_drop(&c[2].base), 0);

	/* An async function awaiting them one by one. */
	for (i = 0; i < 4; i++)
		ctl_init(&c[i]);
	memset(&a, 0, sizeof(a));
	a.base.vtable = &awaiter_vtable;
	a.cs = order;
	a.n = 4;
	k.n = 4;
	t = test_thread_start(completer_thread, &k);
	ck_assert_int_eq(rouse_block_on(&a.base), 0);
	test_thread_join(t);
	ck_assert_int_eq(a.sum, 10);
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(rouse_future_drop(&c[i].base), 0);
}
END_TEST

/* Yields n times, by the macro and by the future in turn. */
struct yielder {
	struct rouse_future base;
	struct rouse_async co;
	int n;
	int i;
	struct rouse_yield y;
};

static enum rouse_poll yielder_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct yielder *y = (struct yielder *)f;

	ROUSE_ASYNC_BEGIN(&y->co, cx);
	for (y->i = 0; y->i < y->n; y->i++) {
		if (y->i % 2 == 0) {
			ROUSE_ASYNC_YIELD();
		} else {
			rouse_yield_init(&y->y);
			ROUSE_AWAIT(&y->y.base);
		}
	}
	ROUSE_ASYNC_END();
}

static const struct rouse_future_vtable yielder_vtable = {
	.poll = yielder_poll,
	.drop = NULL,
};

START_TEST(test_block_on_yields)
{
	struct rouse_executor_stats s0, s1;
	struct test_watched w;
	struct yielder y;

	memset(&y, 0, sizeof(y));
	y.base.vtable = &yielder_vtable;
	y.n = 10000;
	test_watched_init(&w, &y.base);
	test_warm_thread_parker();
	s0 = test_executor_stats();
	ck_assert_int_eq(rouse_block_on(&w.base), 0);
	s1 = test_executor_stats();
	/* One poll per yield and one to finish; never a blocking park. */
	ck_assert_int_eq(y.i, 10000);
	ck_assert_int_eq(atomic_load(&w.polls), 10001);
	ck_assert_uint_eq(s1.parks, s0.parks);
	ck_assert_int_eq(rouse_future_drop(&y.base), 0);
}
END_TEST

/* ---- four threads ---------------------------------------------------- */

#define MT_THREADS 4
#define MT_ROUNDS 1000
#define MT_JOIN 4

/*
 * Each thread blocks on its own async function which, every round,
 * completes the next thread's futures of that round and then awaits a
 * join of its own (finished by the previous thread), then a select of two
 * of its own, of which the previous thread finishes one.
 */
struct mt_job {
	struct rouse_future base;
	struct rouse_async co;
	struct mt_job *next;
	struct test_barrier *start;
	int r;
	struct ctl joins[MT_ROUNDS][MT_JOIN];
	struct ctl sels[MT_ROUNDS][2];
	struct rouse_future *jf[MT_JOIN];
	bool jdone[MT_JOIN];
	struct rouse_join join;
	struct rouse_future *sf[2];
	struct rouse_select sel;
	long sum;
	int wrong;
};

static enum rouse_poll mt_poll(struct rouse_future *f,
			       struct rouse_context *cx)
{
	struct mt_job *m = (struct mt_job *)f;
	int i;

	ROUSE_ASYNC_BEGIN(&m->co, cx);
	for (m->r = 0; m->r < MT_ROUNDS; m->r++) {
		for (i = 0; i < MT_JOIN; i++)
			ctl_complete(&m->next->joins[m->r][i], m->r + i);
		ctl_complete(&m->next->sels[m->r][m->r % 2], 1);

		for (i = 0; i < MT_JOIN; i++)
			m->jf[i] = &m->joins[m->r][i].base;
		if (rouse_join_init(&m->join, m->jf, m->jdone, MT_JOIN) < 0)
			m->wrong++;
		ROUSE_AWAIT(&m->join.base);
		for (i = 0; i < MT_JOIN; i++) {
			m->sum += m->joins[m->r][i].value;
			rouse_future_drop(m->jf[i]);
		}
		rouse_future_drop(&m->join.base);

		m->sf[0] = &m->sels[m->r][0].base;
		m->sf[1] = &m->sels[m->r][1].base;
		if (rouse_select_init(&m->sel, m->sf, 2, 0) < 0)
			m->wrong++;
		ROUSE_AWAIT(&m->sel.base);
		if (m->sel.index != (size_t)(m->r % 2))
			m->wrong++;
		rouse_future_drop(m->sf[m->sel.index]);
		rouse_future_drop(&m->sel.base);
	}
	ROUSE_ASYNC_END();
}

static const struct rouse_future_vtable mt_vtable = {
	.poll = mt_poll,
	.drop = NULL,
};

static void *mt_thread(void *arg)
{
	struct mt_job *m = arg;

	test_barrier_wait(m->start);
	ck_assert_int_eq(rouse_block_on(&m->base), 0);
	return NULL;
}

START_TEST(test_four_threads)
{
	struct test_barrier start;
	struct mt_job *jobs;
	pthread_t t[MT_THREADS];
	long want = 0;
	int i, r, k;

	jobs = calloc(MT_THREADS, sizeof(*jobs));
	ck_assert_ptr_nonnull(jobs);
	test_barrier_init(&start, MT_THREADS);
	for (i = 0; i < MT_THREADS; i++) {
		struct mt_job *m = &jobs[i];

		m->base.vtable = &mt_vtable;
		m->next = &jobs[(i + 1) % MT_THREADS];
		m->start = &start;
		for (r = 0; r < MT_ROUNDS; r++) {
			for (k = 0; k < MT_JOIN; k++)
				ctl_init(&m->joins[r][k]);
			ctl_init(&m->sels[r][0]);
			ctl_init(&m->sels[r][1]);
		}
	}
	for (r = 0; r < MT_ROUNDS; r++)
		for (k = 0; k < MT_JOIN; k++)
			want += r + k;
	for (i = 0; i < MT_THREADS; i++)
		t[i] = test_thread_start(mt_thread, &jobs[i]);
	for (i = 0; i < MT_THREADS; i++)
		test_thread_join(t[i]);
	test_barrier_destroy(&start);
	for (i = 0; i < MT_THREADS; i++) {
		struct mt_job *m = &jobs[i];

		ck_assert_int_eq(m->wrong, 0);
		ck_assert_int_eq(m->sum, want);
		/* Every future dropped exactly once, by whoever owned it. */
		for (r = 0; r < MT_ROUNDS; r++) {
			for (k = 0; k < MT_JOIN; k++)
				ck_assert_int_eq(drops_of(&m->joins[r][k]), 1);
			ck_assert_int_eq(drops_of(&m->sels[r][0]), 1);
			ck_assert_int_eq(drops_of(&m->sels[r][1]), 1);
		}
		ck_assert_int_eq(rouse_future_drop(&m->base), 0);
	}
	free(jobs);
}
END_TEST

static Suite *combinator_suite(void)
{
	Suite *s = suite_create("combinator");
	TCase *tc;

	tc = tcase_create("yield");
	tcase_add_test(tc, test_yield_hand);
	tcase_add_test(tc, test_yield_block_on);
	suite_add_tcase(s, tc);

	tc = tcase_create("join");
	tcase_add_test(tc, test_join_einval);
	tcase_add_test(tc, test_join_orders);
	tcase_add_test(tc, test_join_drop_midway);
	tcase_add_test(tc, test_join_drop_unpolled);
	tcase_add_test(tc, test_join_ready_at_once);
	tcase_add_test(tc, test_join_polls_only_woken);
	tcase_add_test(tc, test_join_wake_order);
	tcase_add_test(tc, test_join_waker_outlives);
	tcase_add_test(tc, test_join_no_memory);
	tcase_add_test(tc, test_join_one);
	tcase_add_test(tc, test_join_threads);
	suite_add_tcase(s, tc);

	tc = tcase_create("select");
	tcase_add_test(tc, test_select_einval);
	tcase_add_test(tc, test_select_winner);
	tcase_add_test(tc, test_select_ties);
	tcase_add_test(tc, test_select_fair);
	tcase_add_test(tc, test_select_drop_pending);
	tcase_add_test(tc, test_select_polls_only_woken);
	tcase_add_test(tc, test_select_fair_woken);
	suite_add_tcase(s, tc);

	tc = tcase_create("async");
	tcase_add_test(tc, test_async_chain);
	tcase_add_test(tc, test_async_early_return);
	tcase_add_test(tc, test_async_drop_suspended);
	tcase_add_test(tc, test_async_loop);
	tcase_add_test(tc, test_async_nested);
	tcase_add_test(tc, test_async_nested_drop);
	tcase_add_test(tc, test_async_reactor);
	suite_add_tcase(s, tc);

	tc = tcase_create("block_on");
	tcase_add_test(tc, test_block_on_all);
	tcase_add_test(tc, test_block_on_yields);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_add_test(tc, test_four_threads);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return test_run_suite(combinator_suite());
}
