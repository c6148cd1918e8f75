// SPDX-License-Identifier: MIT
/*
 * tests/check_sync.c - the primitives of sync.h: oneshot, mpsc, mutex,
 * semaphore, notify and the atomic waker, by hand with counting wakers,
 * dropped at every state, re-entered from a wake, and under contention
 * from 4 threads each in rouse_block_on().
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <rouse/executor.h>
#include <rouse/sync.h>

#include "testutil.h"

#define THREADS 4

/* A counting waker and its first reference, as one value. */
struct cw {
	struct counting_waker c;
	struct rouse_waker w;
};

static void cw_init(struct cw *x)
{
	x->w = counting_waker(&x->c);
}

static int cw_wakes(struct cw *x)
{
	return counting_waker_total_wakes(&x->c);
}

/* Poll f with x's waker. */
static int cw_poll(struct rouse_future *f, struct cw *x)
{
	return test_poll_with(f, &x->w);
}

/* Drop x's first reference: no reference may be left anywhere. */
static void cw_done(struct cw *x)
{
	counting_waker_drop_last(&x->w, &x->c);
}

/* Ask to be polled again and say pending: a yield inside a poll. */
static enum rouse_poll yield_now(struct rouse_context *cx)
{
	rouse_waker_wake_by_ref(cx->waker);
	return ROUSE_PENDING;
}

/* Run n threads at fn(args + i * size) and join them. */
static void run_threads(void *(*fn)(void *), void *args, size_t size, int n)
{
	pthread_t t[THREADS + 1];
	int i;

	ck_assert_int_le(n, THREADS + 1);
	for (i = 0; i < n; i++)
		t[i] = test_thread_start(fn, (char *)args + (size_t)i * size);
	for (i = 0; i < n; i++)
		test_thread_join(t[i]);
}

/* ==== mutex ============================================================ */

static struct rouse_mutex *mutex_make(void)
{
	struct rouse_mutex *m = NULL;

	ck_assert_int_eq(rouse_mutex_new(&m), 0);
	ck_assert_ptr_nonnull(m);
	return m;
}

START_TEST(test_mutex_basic)
{
	struct rouse_mutex *m = mutex_make();
	struct rouse_mutex_lock l;
	struct cw a;

	cw_init(&a);
	ck_assert_int_eq(rouse_mutex_unlock(m), -EPERM);
	ck_assert_int_eq(rouse_mutex_try_lock(m), 0);
	ck_assert_int_eq(rouse_mutex_try_lock(m), -EBUSY);
	ck_assert_int_eq(rouse_mutex_unlock(m), 0);
	ck_assert_int_eq(rouse_mutex_unlock(m), -EPERM);
	/* Free: the first poll takes it, without a clone of the waker. */
	ck_assert_int_eq(rouse_mutex_lock_init(&l, m), 0);
	ck_assert_int_eq(cw_poll(&l.base, &a), ROUSE_READY);
	ck_assert_int_eq(atomic_load(&a.c.clones), 0);
	ck_assert_int_eq(rouse_mutex_try_lock(m), -EBUSY);
	/* Dropping a lock that completed does not unlock. */
	ck_assert_int_eq(rouse_future_drop(&l.base), 0);
	ck_assert_int_eq(rouse_mutex_try_lock(m), -EBUSY);
	ck_assert_int_eq(rouse_mutex_unlock(m), 0);
	/* Locked mutexes may be freed; a dropped future never polled too. */
	ck_assert_int_eq(rouse_mutex_lock_init(&l, m), 0);
	ck_assert_int_eq(rouse_future_drop(&l.base), 0);
	ck_assert_int_eq(rouse_mutex_try_lock(m), 0);
	ck_assert_int_eq(rouse_mutex_free(m), 0);
	cw_done(&a);
}
END_TEST

START_TEST(test_mutex_fifo)
{
	struct rouse_mutex *m = mutex_make();
	struct rouse_mutex_lock l[3];
	struct cw c[3];
	int i;

	ck_assert_int_eq(rouse_mutex_try_lock(m), 0);
	for (i = 0; i < 3; i++) {
		cw_init(&c[i]);
		ck_assert_int_eq(rouse_mutex_lock_init(&l[i], m), 0);
		ck_assert_int_eq(cw_poll(&l[i].base, &c[i]), ROUSE_PENDING);
		ck_assert_int_eq(atomic_load(&c[i].c.live), 2);
	}
	/* Polling again with the same waker does not clone again. */
	ck_assert_int_eq(cw_poll(&l[1].base, &c[1]), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&c[1].c.clones), 1);
	for (i = 0; i < 3; i++) {
		int j;

		/* Handed over, never free: try_lock cannot overtake. */
		ck_assert_int_eq(rouse_mutex_unlock(m), 0);
		ck_assert_int_eq(rouse_mutex_try_lock(m), -EBUSY);
		for (j = 0; j < 3; j++)
			ck_assert_int_eq(cw_wakes(&c[j]), j <= i ? 1 : 0);
		ck_assert_int_eq(atomic_load(&c[i].c.live), 1);
		for (j = i + 1; j < 3; j++)
			ck_assert_int_eq(cw_poll(&l[j].base, &c[j]),
					 ROUSE_PENDING);
		ck_assert_int_eq(cw_poll(&l[i].base, &c[i]), ROUSE_READY);
		ck_assert_int_eq(cw_poll(&l[i].base, &c[i]), ROUSE_READY);
	}
	ck_assert_int_eq(rouse_mutex_unlock(m), 0);
	ck_assert_int_eq(rouse_mutex_try_lock(m), 0);
	ck_assert_int_eq(rouse_mutex_unlock(m), 0);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(rouse_future_drop(&l[i].base), 0);
		cw_done(&c[i]);
	}
	ck_assert_int_eq(rouse_mutex_free(m), 0);
}
END_TEST

START_TEST(test_mutex_cancel)
{
	struct rouse_mutex *m = mutex_make();
	struct rouse_mutex_lock a, b, c;
	struct cw wa, wb, wc, other;

	cw_init(&wa);
	cw_init(&wb);
	cw_init(&wc);
	cw_init(&other);
	ck_assert_int_eq(rouse_mutex_try_lock(m), 0);
	ck_assert_int_eq(rouse_mutex_lock_init(&a, m), 0);
	ck_assert_int_eq(rouse_mutex_lock_init(&b, m), 0);
	ck_assert_int_eq(rouse_mutex_lock_init(&c, m), 0);
	ck_assert_int_eq(cw_poll(&a.base, &wa), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&b.base, &wb), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&c.base, &wc), ROUSE_PENDING);
	/* A poll with another task's waker replaces the kept clone. */
	ck_assert_int_eq(cw_poll(&c.base, &other), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&wc.c.live), 1);
	ck_assert_int_eq(atomic_load(&other.c.live), 2);
	/* Pending and queued: leaves the queue, its clone dropped. */
	ck_assert_int_eq(rouse_mutex_free(m), -EBUSY);
	ck_assert_int_eq(rouse_future_drop(&b.base), 0);
	ck_assert_int_eq(atomic_load(&wb.c.live), 1);
	ck_assert_int_eq(cw_wakes(&wb), 0);
	/* Granted but never told: dropping it hands the mutex to c. */
	ck_assert_int_eq(rouse_mutex_unlock(m), 0);
	ck_assert_int_eq(cw_wakes(&wa), 1);
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	ck_assert_int_eq(cw_wakes(&other), 1);
	ck_assert_int_eq(rouse_mutex_try_lock(m), -EBUSY);
	ck_assert_int_eq(cw_poll(&c.base, &other), ROUSE_READY);
	/* c owns it; a completed future's drop changes nothing. */
	ck_assert_int_eq(rouse_future_drop(&c.base), 0);
	ck_assert_int_eq(rouse_mutex_try_lock(m), -EBUSY);
	/* Granted with nobody behind: its drop leaves the mutex free. */
	ck_assert_int_eq(rouse_mutex_lock_init(&a, m), 0);
	ck_assert_int_eq(cw_poll(&a.base, &wa), ROUSE_PENDING);
	ck_assert_int_eq(rouse_mutex_unlock(m), 0);
	ck_assert_int_eq(cw_wakes(&wa), 2);
	ck_assert_int_eq(rouse_mutex_free(m), -EBUSY);
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	ck_assert_int_eq(rouse_mutex_try_lock(m), 0);
	ck_assert_int_eq(rouse_mutex_free(m), 0);
	cw_done(&wa);
	cw_done(&wb);
	cw_done(&wc);
	cw_done(&other);
}
END_TEST

/*
 * A waker that polls its future inline, from inside the wake: the
 * mutex's unlock must not hold its lock across the wake, or this
 * deadlocks.  The future, once ready, unlocks from inside the wake too.
 */
struct inline_lock {
	struct rouse_mutex_lock l;
	struct rouse_mutex *m;
	struct rouse_waker w;
	int ready;
};

static void inline_lock_wake(struct call_waker *c, int nth)
{
	struct inline_lock *il = c->arg;

	if (test_poll_with(&il->l.base, &il->w) == ROUSE_READY) {
		il->ready++;
		ck_assert_int_eq(rouse_mutex_unlock(il->m), 0);
	}
}

START_TEST(test_mutex_wake_reenters)
{
	struct rouse_mutex *m = mutex_make();
	struct inline_lock il[2];
	struct call_waker c[2];
	int i;

	ck_assert_int_eq(rouse_mutex_try_lock(m), 0);
	for (i = 0; i < 2; i++) {
		il[i].m = m;
		il[i].ready = 0;
		il[i].w = call_waker(&c[i], inline_lock_wake, &il[i]);
		ck_assert_int_eq(rouse_mutex_lock_init(&il[i].l, m), 0);
		ck_assert_int_eq(test_poll_with(&il[i].l.base, &il[i].w),
				 ROUSE_PENDING);
	}
	/* One unlock runs the whole queue, each wake inside the last. */
	ck_assert_int_eq(rouse_mutex_unlock(m), 0);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(il[i].ready, 1);
		ck_assert_int_eq(rouse_future_drop(&il[i].l.base), 0);
		ck_assert_int_eq(rouse_waker_drop(&il[i].w), 0);
		ck_assert_int_eq(atomic_load(&c[i].live), 0);
	}
	ck_assert_int_eq(rouse_mutex_try_lock(m), 0);
	ck_assert_int_eq(rouse_mutex_free(m), 0);
}
END_TEST

START_TEST(test_mutex_einval)
{
	struct rouse_mutex *m = (struct rouse_mutex *)(void *)0x11;
	struct rouse_mutex_lock l;

	ck_assert_int_eq(rouse_mutex_new(NULL), -EINVAL);
	ck_assert_int_eq(rouse_mutex_free(NULL), -EINVAL);
	ck_assert_int_eq(rouse_mutex_try_lock(NULL), -EINVAL);
	ck_assert_int_eq(rouse_mutex_unlock(NULL), -EINVAL);
	ck_assert_int_eq(rouse_mutex_lock_init(&l, NULL), -EINVAL);
	ck_assert_int_eq(rouse_mutex_lock_init(NULL, m), -EINVAL);
}
END_TEST

/*
 * 4 threads: N lock / increment / unlock, some held across a yield, some
 * pending locks cancelled and redone.  A lock lost to a cancel hangs.
 */
#define MUTEX_ITERS 20000

struct mutex_worker {
	struct rouse_future base;
	struct rouse_mutex *m;
	struct test_barrier *start;
	long *counter;		/* guarded by m only */
	atomic_int *inside;	/* holders now: never more than 1 */
	struct rouse_mutex_lock lock;
	int i;
	int state;		/* 0 idle, 1 locking, 2 held over a yield */
	bool cancelled;		/* this iteration dropped a pending lock */
};

static void mutex_worker_critical(struct mutex_worker *w)
{
	(*w->counter)++;
	ck_assert_int_eq(atomic_fetch_sub(w->inside, 1), 1);
	ck_assert_int_eq(rouse_mutex_unlock(w->m), 0);
	w->i++;
	w->state = 0;
}

static enum rouse_poll mutex_worker_poll(struct rouse_future *f,
					 struct rouse_context *cx)
{
	struct mutex_worker *w = (struct mutex_worker *)f;

	while (w->i < MUTEX_ITERS) {
		if (w->state == 2) {
			mutex_worker_critical(w);
			continue;
		}
		if (w->state == 0) {
			if (w->i % 3 == 0 && rouse_mutex_try_lock(w->m) == 0)
				goto locked;
			ck_assert_int_eq(rouse_mutex_lock_init(&w->lock, w->m),
					 0);
			w->state = 1;
		}
		if (rouse_future_poll(&w->lock.base, cx) == ROUSE_PENDING) {
			if (w->i % 5 != 1 || w->cancelled)
				return ROUSE_PENDING;
			/*
			 * Cancel a pending lock, which the mutex may have
			 * been handed meanwhile: it must pass it on, or
			 * everybody hangs.  Then start over.
			 */
			ck_assert_int_eq(rouse_future_drop(&w->lock.base), 0);
			w->cancelled = true;
			w->state = 0;
			return yield_now(cx);
		}
		ck_assert_int_eq(rouse_future_drop(&w->lock.base), 0);
locked:
		w->cancelled = false;
		ck_assert_int_eq(atomic_fetch_add(w->inside, 1), 0);
		if (w->i % 8 == 0) {
			/* Hold it across a yield, so that others queue. */
			w->state = 2;
			return yield_now(cx);
		}
		mutex_worker_critical(w);
	}
	return ROUSE_READY;
}

static void mutex_worker_drop(struct rouse_future *f)
{
	struct mutex_worker *w = (struct mutex_worker *)f;

	if (w->state == 1)
		rouse_future_drop(&w->lock.base);
}

static const struct rouse_future_vtable mutex_worker_vtable = {
	mutex_worker_poll, mutex_worker_drop,
};

static void *mutex_thread(void *arg)
{
	struct mutex_worker *w = arg;

	test_barrier_wait(w->start);
	ck_assert_int_eq(rouse_block_on(&w->base), 0);
	ck_assert_int_eq(rouse_future_drop(&w->base), 0);
	return NULL;
}

START_TEST(test_mutex_contention)
{
	struct rouse_mutex *m = mutex_make();
	struct mutex_worker w[THREADS];
	struct test_barrier start;
	atomic_int inside = 0;
	long counter = 0;
	int i;

	test_barrier_init(&start, THREADS);
	for (i = 0; i < THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].base.vtable = &mutex_worker_vtable;
		w[i].m = m;
		w[i].start = &start;
		w[i].counter = &counter;
		w[i].inside = &inside;
	}
	run_threads(mutex_thread, w, sizeof(w[0]), THREADS);
	ck_assert_int_eq(counter, (long)THREADS * MUTEX_ITERS);
	/* Nothing is left queued, and it is free. */
	ck_assert_int_eq(rouse_mutex_try_lock(m), 0);
	ck_assert_int_eq(rouse_mutex_free(m), 0);
	test_barrier_destroy(&start);
}
END_TEST

/* ==== semaphore ======================================================== */

static struct rouse_semaphore *sem_make(size_t permits)
{
	struct rouse_semaphore *s = NULL;

	ck_assert_int_eq(rouse_semaphore_new(permits, &s), 0);
	ck_assert_ptr_nonnull(s);
	return s;
}

START_TEST(test_sem_basic)
{
	struct rouse_semaphore *s = sem_make(3);
	struct rouse_semaphore_acquire a;
	struct cw x;

	cw_init(&x);
	ck_assert_int_eq(rouse_semaphore_available(s), 3);
	ck_assert_int_eq(rouse_semaphore_try_acquire(s, 2), 0);
	ck_assert_int_eq(rouse_semaphore_available(s), 1);
	ck_assert_int_eq(rouse_semaphore_try_acquire(s, 2), -EAGAIN);
	ck_assert_int_eq(rouse_semaphore_acquire_init(&a, s, 1), 0);
	ck_assert_int_eq(cw_poll(&a.base, &x), ROUSE_READY);
	ck_assert_int_eq(atomic_load(&x.c.clones), 0);
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	ck_assert_int_eq(rouse_semaphore_available(s), 0);
	ck_assert_int_eq(rouse_semaphore_release(s, 3), 0);
	ck_assert_int_eq(rouse_semaphore_release(s, 0), 0);
	ck_assert_int_eq(rouse_semaphore_available(s), 3);
	/* More permits than it was created with are fine. */
	ck_assert_int_eq(rouse_semaphore_release(s, 7), 0);
	ck_assert_int_eq(rouse_semaphore_try_acquire(s, 10), 0);
	ck_assert_int_eq(rouse_semaphore_free(s), 0);

	s = sem_make((size_t)LONG_MAX);
	ck_assert_int_eq(rouse_semaphore_available(s), LONG_MAX);
	ck_assert_int_eq(rouse_semaphore_release(s, 1), -EOVERFLOW);
	ck_assert_int_eq(rouse_semaphore_try_acquire(s, 1), 0);
	ck_assert_int_eq(rouse_semaphore_release(s, 2), -EOVERFLOW);
	ck_assert_int_eq(rouse_semaphore_release(s, 1), 0);
	ck_assert_int_eq(rouse_semaphore_free(s), 0);
	cw_done(&x);
}
END_TEST

START_TEST(test_sem_fifo)
{
	struct rouse_semaphore *s = sem_make(2);
	struct rouse_semaphore_acquire big, small;
	struct cw wb, ws;

	cw_init(&wb);
	cw_init(&ws);
	/* A big request queues with the 2 free permits towards its 3. */
	ck_assert_int_eq(rouse_semaphore_acquire_init(&big, s, 3), 0);
	ck_assert_int_eq(cw_poll(&big.base, &wb), ROUSE_PENDING);
	ck_assert_int_eq(rouse_semaphore_available(s), 0);
	/* Small requests behind it wait, even when a permit comes back. */
	ck_assert_int_eq(rouse_semaphore_acquire_init(&small, s, 1), 0);
	ck_assert_int_eq(cw_poll(&small.base, &ws), ROUSE_PENDING);
	ck_assert_int_eq(rouse_semaphore_release(s, 1), 0);
	ck_assert_int_eq(cw_wakes(&wb), 1);
	ck_assert_int_eq(cw_wakes(&ws), 0);
	ck_assert_int_eq(rouse_semaphore_try_acquire(s, 1), -EAGAIN);
	ck_assert_int_eq(cw_poll(&big.base, &wb), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&big.base), 0);
	/* Then the small one, and the rest is free again. */
	ck_assert_int_eq(rouse_semaphore_release(s, 2), 0);
	ck_assert_int_eq(cw_wakes(&ws), 1);
	ck_assert_int_eq(cw_poll(&small.base, &ws), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&small.base), 0);
	ck_assert_int_eq(rouse_semaphore_available(s), 1);
	ck_assert_int_eq(rouse_semaphore_release(s, 2), 0);
	ck_assert_int_eq(rouse_semaphore_available(s), 3);
	ck_assert_int_eq(rouse_semaphore_free(s), 0);
	cw_done(&wb);
	cw_done(&ws);
}
END_TEST

START_TEST(test_sem_cancel)
{
	struct rouse_semaphore *s = sem_make(0);
	struct rouse_semaphore_acquire a, b, c;
	struct cw wa, wb, wc;

	cw_init(&wa);
	cw_init(&wb);
	cw_init(&wc);
	ck_assert_int_eq(rouse_semaphore_acquire_init(&a, s, 2), 0);
	ck_assert_int_eq(rouse_semaphore_acquire_init(&b, s, 1), 0);
	ck_assert_int_eq(rouse_semaphore_acquire_init(&c, s, 1), 0);
	ck_assert_int_eq(cw_poll(&a.base, &wa), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&b.base, &wb), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&c.base, &wc), ROUSE_PENDING);
	/* a holds 1 of its 2; dropping it passes that 1 on to b. */
	ck_assert_int_eq(rouse_semaphore_release(s, 1), 0);
	ck_assert_int_eq(cw_wakes(&wa), 0);
	ck_assert_int_eq(rouse_semaphore_free(s), -EBUSY);
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	ck_assert_int_eq(atomic_load(&wa.c.live), 1);
	ck_assert_int_eq(cw_wakes(&wb), 1);
	ck_assert_int_eq(cw_wakes(&wc), 0);
	/* b was granted and is dropped unseen: its permit goes to c. */
	ck_assert_int_eq(rouse_future_drop(&b.base), 0);
	ck_assert_int_eq(cw_wakes(&wc), 1);
	ck_assert_int_eq(rouse_semaphore_available(s), 0);
	/* c granted, dropped unseen, nobody behind: the permit is free. */
	ck_assert_int_eq(rouse_future_drop(&c.base), 0);
	ck_assert_int_eq(rouse_semaphore_available(s), 1);
	/* A queued head that leaves lets the one behind it through. */
	ck_assert_int_eq(rouse_semaphore_acquire_init(&a, s, 5), 0);
	ck_assert_int_eq(rouse_semaphore_acquire_init(&b, s, 1), 0);
	ck_assert_int_eq(cw_poll(&a.base, &wa), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&b.base, &wb), ROUSE_PENDING);
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	ck_assert_int_eq(cw_wakes(&wb), 2);
	ck_assert_int_eq(cw_poll(&b.base, &wb), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&b.base), 0);
	ck_assert_int_eq(rouse_semaphore_available(s), 0);
	/* Dropping a completed acquire does not give its permits back. */
	ck_assert_int_eq(rouse_semaphore_free(s), 0);
	cw_done(&wa);
	cw_done(&wb);
	cw_done(&wc);
}
END_TEST

START_TEST(test_sem_many_waiters)
{
	/* More waiters than one wake batch holds: all granted, in order. */
	enum { N = 50 };
	struct rouse_semaphore *s = sem_make(0);
	struct rouse_semaphore_acquire a[N];
	struct cw w[N];
	int i;

	for (i = 0; i < N; i++) {
		cw_init(&w[i]);
		ck_assert_int_eq(rouse_semaphore_acquire_init(&a[i], s, 1), 0);
		ck_assert_int_eq(cw_poll(&a[i].base, &w[i]), ROUSE_PENDING);
	}
	ck_assert_int_eq(rouse_semaphore_release(s, N - 1), 0);
	for (i = 0; i < N; i++)
		ck_assert_int_eq(cw_wakes(&w[i]), i < N - 1 ? 1 : 0);
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(cw_poll(&a[i].base, &w[i]),
				 i < N - 1 ? ROUSE_READY : ROUSE_PENDING);
		ck_assert_int_eq(rouse_future_drop(&a[i].base), 0);
		cw_done(&w[i]);
	}
	ck_assert_int_eq(rouse_semaphore_available(s), 0);
	ck_assert_int_eq(rouse_semaphore_free(s), 0);
}
END_TEST

START_TEST(test_sem_einval)
{
	struct rouse_semaphore *s = sem_make(1);
	struct rouse_semaphore_acquire a;

	ck_assert_int_eq(rouse_semaphore_new(1, NULL), -EINVAL);
	ck_assert_int_eq(rouse_semaphore_new((size_t)LONG_MAX + 1, &s),
			 -EINVAL);
	ck_assert_int_eq(rouse_semaphore_free(NULL), -EINVAL);
	ck_assert_int_eq(rouse_semaphore_try_acquire(NULL, 1), -EINVAL);
	ck_assert_int_eq(rouse_semaphore_try_acquire(s, 0), -EINVAL);
	ck_assert_int_eq(rouse_semaphore_release(NULL, 1), -EINVAL);
	ck_assert_int_eq(rouse_semaphore_available(NULL), -EINVAL);
	ck_assert_int_eq(rouse_semaphore_acquire_init(NULL, s, 1), -EINVAL);
	ck_assert_int_eq(rouse_semaphore_acquire_init(&a, NULL, 1), -EINVAL);
	ck_assert_int_eq(rouse_semaphore_acquire_init(&a, s, 0), -EINVAL);
	ck_assert_int_eq(rouse_semaphore_free(s), 0);
}
END_TEST

/*
 * 4 threads take 1 or 2 of 3 permits, some held across a yield, some
 * pending acquires cancelled and redone.  A permit lost to a cancel
 * shows in the final count (or hangs the test).
 */
#define SEM_PERMITS 3
#define SEM_ITERS 20000

struct sem_worker {
	struct rouse_future base;
	struct rouse_semaphore *s;
	struct test_barrier *start;
	atomic_int *in_use;
	atomic_int *peak;
	struct rouse_semaphore_acquire acq;
	int i;
	int state;		/* 0 idle, 1 acquiring, 2 held over a yield */
	size_t n;
	bool cancelled;		/* this iteration dropped a pending acquire */
};

static void sem_worker_release(struct sem_worker *w)
{
	atomic_fetch_sub(w->in_use, (int)w->n);
	ck_assert_int_eq(rouse_semaphore_release(w->s, w->n), 0);
	w->i++;
	w->state = 0;
}

static enum rouse_poll sem_worker_poll(struct rouse_future *f,
				       struct rouse_context *cx)
{
	struct sem_worker *w = (struct sem_worker *)f;
	int now, peak;

	while (w->i < SEM_ITERS) {
		if (w->state == 2) {
			sem_worker_release(w);
			continue;
		}
		if (w->state == 0) {
			w->n = 1 + (size_t)((w->i + (w->i >> 3)) & 1);
			ck_assert_int_eq(rouse_semaphore_acquire_init(&w->acq,
								      w->s,
								      w->n),
					 0);
			w->state = 1;
		}
		if (rouse_future_poll(&w->acq.base, cx) == ROUSE_PENDING) {
			if (w->i % 5 != 2 || w->cancelled)
				return ROUSE_PENDING;
			/* Cancelled with part or all of its permits. */
			ck_assert_int_eq(rouse_future_drop(&w->acq.base), 0);
			w->cancelled = true;
			w->state = 0;
			return yield_now(cx);
		}
		ck_assert_int_eq(rouse_future_drop(&w->acq.base), 0);
		w->cancelled = false;
		now = atomic_fetch_add(w->in_use, (int)w->n) + (int)w->n;
		ck_assert_int_le(now, SEM_PERMITS);
		peak = atomic_load(w->peak);
		while (now > peak && !atomic_compare_exchange_weak(w->peak,
								   &peak, now))
			;
		if (w->i % 4 == 0) {
			w->state = 2;
			return yield_now(cx);
		}
		sem_worker_release(w);
	}
	return ROUSE_READY;
}

static void sem_worker_drop(struct rouse_future *f)
{
	struct sem_worker *w = (struct sem_worker *)f;

	if (w->state == 1)
		rouse_future_drop(&w->acq.base);
}

static const struct rouse_future_vtable sem_worker_vtable = {
	sem_worker_poll, sem_worker_drop,
};

static void *sem_thread(void *arg)
{
	struct sem_worker *w = arg;

	test_barrier_wait(w->start);
	ck_assert_int_eq(rouse_block_on(&w->base), 0);
	ck_assert_int_eq(rouse_future_drop(&w->base), 0);
	return NULL;
}

START_TEST(test_sem_contention)
{
	struct rouse_semaphore *s = sem_make(SEM_PERMITS);
	struct sem_worker w[THREADS];
	struct test_barrier start;
	atomic_int in_use = 0, peak = 0;
	int i;

	test_barrier_init(&start, THREADS);
	for (i = 0; i < THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].base.vtable = &sem_worker_vtable;
		w[i].s = s;
		w[i].start = &start;
		w[i].in_use = &in_use;
		w[i].peak = &peak;
	}
	run_threads(sem_thread, w, sizeof(w[0]), THREADS);
	ck_assert_int_eq(atomic_load(&in_use), 0);
	ck_assert_int_ge(atomic_load(&peak), 2);
	ck_assert_int_eq(rouse_semaphore_available(s), SEM_PERMITS);
	ck_assert_int_eq(rouse_semaphore_free(s), 0);
	test_barrier_destroy(&start);
}
END_TEST

/* ==== notify =========================================================== */

static struct rouse_notify *notify_make(void)
{
	struct rouse_notify *n = NULL;

	ck_assert_int_eq(rouse_notify_new(&n), 0);
	ck_assert_ptr_nonnull(n);
	return n;
}

START_TEST(test_notify_permit)
{
	struct rouse_notify *n = notify_make();
	struct rouse_notify_wait a, b;
	struct cw x;

	cw_init(&x);
	/* Nobody waits: one permit is kept, however many notify_one. */
	ck_assert_int_eq(rouse_notify_one(n), 0);
	ck_assert_int_eq(rouse_notify_one(n), 0);
	ck_assert_int_eq(rouse_notify_wait_init(&a, n), 0);
	ck_assert_int_eq(cw_poll(&a.base, &x), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	ck_assert_int_eq(rouse_notify_wait_init(&b, n), 0);
	ck_assert_int_eq(cw_poll(&b.base, &x), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&x.c.live), 2);
	ck_assert_int_eq(rouse_notify_free(n), -EBUSY);
	ck_assert_int_eq(rouse_notify_one(n), 0);
	ck_assert_int_eq(cw_wakes(&x), 1);
	ck_assert_int_eq(atomic_load(&x.c.live), 1);
	ck_assert_int_eq(cw_poll(&b.base, &x), ROUSE_READY);
	ck_assert_int_eq(cw_poll(&b.base, &x), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&b.base), 0);
	/* That notification went to the waiter: no permit is left. */
	ck_assert_int_eq(rouse_notify_wait_init(&b, n), 0);
	ck_assert_int_eq(cw_poll(&b.base, &x), ROUSE_PENDING);
	ck_assert_int_eq(rouse_future_drop(&b.base), 0);
	ck_assert_int_eq(rouse_notify_free(n), 0);
	cw_done(&x);
}
END_TEST

START_TEST(test_notify_one_fifo)
{
	struct rouse_notify *n = notify_make();
	struct rouse_notify_wait w[3];
	struct cw c[3];
	int i, j;

	for (i = 0; i < 3; i++) {
		cw_init(&c[i]);
		ck_assert_int_eq(rouse_notify_wait_init(&w[i], n), 0);
		ck_assert_int_eq(cw_poll(&w[i].base, &c[i]), ROUSE_PENDING);
	}
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(rouse_notify_one(n), 0);
		for (j = 0; j < 3; j++)
			ck_assert_int_eq(cw_wakes(&c[j]), j <= i);
		ck_assert_int_eq(cw_poll(&w[i].base, &c[i]), ROUSE_READY);
	}
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(rouse_future_drop(&w[i].base), 0);
		cw_done(&c[i]);
	}
	ck_assert_int_eq(rouse_notify_free(n), 0);
}
END_TEST

START_TEST(test_notify_all)
{
	enum { N = 40 };	/* more than one wake batch */
	struct rouse_notify *n = notify_make();
	struct rouse_notify_wait w[N], early, late;
	struct cw c[N], x;
	int i;

	cw_init(&x);
	for (i = 0; i < N; i++) {
		cw_init(&c[i]);
		ck_assert_int_eq(rouse_notify_wait_init(&w[i], n), 0);
		ck_assert_int_eq(cw_poll(&w[i].base, &c[i]), ROUSE_PENDING);
	}
	/* Initialised before, polled after: notified too (as in tokio). */
	ck_assert_int_eq(rouse_notify_wait_init(&early, n), 0);
	ck_assert_int_eq(rouse_notify_all(n), 0);
	ck_assert_int_eq(rouse_notify_wait_init(&late, n), 0);
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(cw_wakes(&c[i]), 1);
		ck_assert_int_eq(cw_poll(&w[i].base, &c[i]), ROUSE_READY);
		ck_assert_int_eq(rouse_future_drop(&w[i].base), 0);
		cw_done(&c[i]);
	}
	ck_assert_int_eq(cw_poll(&early.base, &x), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&early.base), 0);
	/* It stores nothing: a wait that begins afterwards waits. */
	ck_assert_int_eq(cw_poll(&late.base, &x), ROUSE_PENDING);
	ck_assert_int_eq(rouse_notify_all(n), 0);
	ck_assert_int_eq(cw_wakes(&x), 1);
	ck_assert_int_eq(cw_poll(&late.base, &x), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&late.base), 0);
	ck_assert_int_eq(rouse_notify_all(n), 0);
	ck_assert_int_eq(rouse_notify_wait_init(&late, n), 0);
	ck_assert_int_eq(cw_poll(&late.base, &x), ROUSE_PENDING);
	ck_assert_int_eq(rouse_future_drop(&late.base), 0);
	ck_assert_int_eq(rouse_notify_free(n), 0);
	cw_done(&x);
}
END_TEST

START_TEST(test_notify_cancel)
{
	struct rouse_notify *n = notify_make();
	struct rouse_notify_wait a, b, c;
	struct cw wa, wb, wc;

	cw_init(&wa);
	cw_init(&wb);
	cw_init(&wc);
	ck_assert_int_eq(rouse_notify_wait_init(&a, n), 0);
	ck_assert_int_eq(rouse_notify_wait_init(&b, n), 0);
	ck_assert_int_eq(rouse_notify_wait_init(&c, n), 0);
	ck_assert_int_eq(cw_poll(&a.base, &wa), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&b.base, &wb), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&c.base, &wc), ROUSE_PENDING);
	/* Queued, dropped: out of the queue, clone released. */
	ck_assert_int_eq(rouse_future_drop(&b.base), 0);
	ck_assert_int_eq(atomic_load(&wb.c.live), 1);
	/* Notified by notify_one and dropped unseen: passed on to c. */
	ck_assert_int_eq(rouse_notify_one(n), 0);
	ck_assert_int_eq(cw_wakes(&wa), 1);
	ck_assert_int_eq(cw_wakes(&wc), 0);
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	ck_assert_int_eq(cw_wakes(&wc), 1);
	/* And c, dropped unseen too, leaves it as the permit. */
	ck_assert_int_eq(rouse_future_drop(&c.base), 0);
	ck_assert_int_eq(rouse_notify_wait_init(&a, n), 0);
	ck_assert_int_eq(cw_poll(&a.base, &wa), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	/* A notify_all is for those who waited then: not passed on. */
	ck_assert_int_eq(rouse_notify_wait_init(&a, n), 0);
	ck_assert_int_eq(cw_poll(&a.base, &wa), ROUSE_PENDING);
	ck_assert_int_eq(rouse_notify_all(n), 0);
	ck_assert_int_eq(rouse_notify_wait_init(&b, n), 0);
	ck_assert_int_eq(cw_poll(&b.base, &wb), ROUSE_PENDING);
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	ck_assert_int_eq(cw_wakes(&wb), 0);
	ck_assert_int_eq(rouse_future_drop(&b.base), 0);
	ck_assert_int_eq(rouse_notify_wait_init(&b, n), 0);
	ck_assert_int_eq(cw_poll(&b.base, &wb), ROUSE_PENDING);
	ck_assert_int_eq(rouse_future_drop(&b.base), 0);
	ck_assert_int_eq(rouse_notify_free(n), 0);
	cw_done(&wa);
	cw_done(&wb);
	cw_done(&wc);
}
END_TEST

/* A waker that notifies from inside its wake: no self-deadlock. */
struct inline_notify {
	struct rouse_notify *n;
	struct rouse_notify_wait w;
	struct rouse_waker waker;
	int ready;
};

static void inline_notify_wake(struct call_waker *c, int nth)
{
	struct inline_notify *in = c->arg;

	if (test_poll_with(&in->w.base, &in->waker) == ROUSE_READY)
		in->ready++;
	/* Re-enter: leaves a permit for the next wait. */
	ck_assert_int_eq(rouse_notify_one(in->n), 0);
}

START_TEST(test_notify_wake_reenters)
{
	struct inline_notify in;
	struct rouse_notify_wait next;
	struct call_waker c;

	in.n = notify_make();
	in.ready = 0;
	in.waker = call_waker(&c, inline_notify_wake, &in);
	ck_assert_int_eq(rouse_notify_wait_init(&in.w, in.n), 0);
	ck_assert_int_eq(test_poll_with(&in.w.base, &in.waker), ROUSE_PENDING);
	ck_assert_int_eq(rouse_notify_all(in.n), 0);
	ck_assert_int_eq(in.ready, 1);
	ck_assert_int_eq(rouse_notify_wait_init(&next, in.n), 0);
	ck_assert_int_eq(test_poll_noop(&next.base), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&next.base), 0);
	ck_assert_int_eq(rouse_future_drop(&in.w.base), 0);
	ck_assert_int_eq(rouse_waker_drop(&in.waker), 0);
	ck_assert_int_eq(atomic_load(&c.live), 0);
	ck_assert_int_eq(rouse_notify_free(in.n), 0);
}
END_TEST

START_TEST(test_notify_einval)
{
	struct rouse_notify_wait w;
	struct rouse_notify *n = notify_make();

	ck_assert_int_eq(rouse_notify_new(NULL), -EINVAL);
	ck_assert_int_eq(rouse_notify_free(NULL), -EINVAL);
	ck_assert_int_eq(rouse_notify_one(NULL), -EINVAL);
	ck_assert_int_eq(rouse_notify_all(NULL), -EINVAL);
	ck_assert_int_eq(rouse_notify_wait_init(NULL, n), -EINVAL);
	ck_assert_int_eq(rouse_notify_wait_init(&w, NULL), -EINVAL);
	ck_assert_int_eq(rouse_notify_free(n), 0);
}
END_TEST

/*
 * 2 producers add items and notify_one each; 2 consumers take them, and
 * wait when there are none.  A lost notification hangs a consumer (and
 * the test times out).  The consumer that takes the last item ends the
 * other with notify_all; each wait is initialised before the condition
 * is checked, so a notify_all that comes in between is not missed.
 */
#define NOTIFY_ITEMS 20000

struct notify_shared {
	struct rouse_notify *n;
	struct test_barrier start;
	atomic_int items;	/* produced, not yet taken */
	atomic_int taken;
};

struct notify_consumer {
	struct rouse_future base;
	struct notify_shared *sh;
	struct rouse_notify_wait w;
	bool waiting;
	int mine;
	unsigned int pends;	/* every 4th pending wait is cancelled */
};

static enum rouse_poll notify_consumer_poll(struct rouse_future *f,
					    struct rouse_context *cx)
{
	struct notify_consumer *c = (struct notify_consumer *)f;
	struct notify_shared *sh = c->sh;
	int v;

	for (;;) {
		if (!c->waiting) {
			ck_assert_int_eq(rouse_notify_wait_init(&c->w, sh->n),
					 0);
			c->waiting = true;
		}
		if (atomic_load(&sh->taken) == 2 * NOTIFY_ITEMS)
			return ROUSE_READY;
		v = atomic_load(&sh->items);
		if (v > 0) {
			if (!atomic_compare_exchange_strong(&sh->items, &v,
							    v - 1))
				continue;
			c->mine++;
			if (atomic_fetch_add(&sh->taken, 1) + 1 ==
			    2 * NOTIFY_ITEMS)
				ck_assert_int_eq(rouse_notify_all(sh->n), 0);
			continue;
		}
		if (rouse_future_poll(&c->w.base, cx) == ROUSE_PENDING) {
			if (++c->pends % 4 != 0)
				return ROUSE_PENDING;
			/* A notify_one it got meanwhile must be passed on. */
			ck_assert_int_eq(rouse_future_drop(&c->w.base), 0);
			c->waiting = false;
			return yield_now(cx);
		}
		ck_assert_int_eq(rouse_future_drop(&c->w.base), 0);
		c->waiting = false;
	}
}

static void notify_consumer_drop(struct rouse_future *f)
{
	struct notify_consumer *c = (struct notify_consumer *)f;

	if (c->waiting)
		rouse_future_drop(&c->w.base);
}

static const struct rouse_future_vtable notify_consumer_vtable = {
	notify_consumer_poll, notify_consumer_drop,
};

struct notify_role {
	struct notify_shared *sh;
	bool producer;
	struct notify_consumer c;
};

static void *notify_thread(void *arg)
{
	struct notify_role *r = arg;
	int i;

	test_barrier_wait(&r->sh->start);
	if (r->producer) {
		for (i = 0; i < NOTIFY_ITEMS; i++) {
			atomic_fetch_add(&r->sh->items, 1);
			ck_assert_int_eq(rouse_notify_one(r->sh->n), 0);
		}
		return NULL;
	}
	ck_assert_int_eq(rouse_block_on(&r->c.base), 0);
	ck_assert_int_eq(rouse_future_drop(&r->c.base), 0);
	return NULL;
}

START_TEST(test_notify_contention)
{
	struct notify_shared sh;
	struct notify_role r[THREADS];
	int i;

	sh.n = notify_make();
	test_barrier_init(&sh.start, THREADS);
	atomic_init(&sh.items, 0);
	atomic_init(&sh.taken, 0);
	for (i = 0; i < THREADS; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].sh = &sh;
		r[i].producer = i % 2 == 0;
		r[i].c.base.vtable = &notify_consumer_vtable;
		r[i].c.sh = &sh;
	}
	run_threads(notify_thread, r, sizeof(r[0]), THREADS);
	ck_assert_int_eq(atomic_load(&sh.items), 0);
	ck_assert_int_eq(atomic_load(&sh.taken), 2 * NOTIFY_ITEMS);
	ck_assert_int_eq(r[1].c.mine + r[3].c.mine, 2 * NOTIFY_ITEMS);
	ck_assert_int_eq(rouse_notify_free(sh.n), 0);
	test_barrier_destroy(&sh.start);
}
END_TEST

/* ==== oneshot ========================================================== */

static struct rouse_oneshot *oneshot_make(size_t size)
{
	struct rouse_oneshot *o = NULL;

	ck_assert_int_eq(rouse_oneshot_new(size, &o), 0);
	ck_assert_ptr_nonnull(o);
	return o;
}

START_TEST(test_oneshot_basic)
{
	struct rouse_oneshot *o = oneshot_make(sizeof(long));
	struct rouse_oneshot_recv r;
	long in = 42, out = 0;
	struct cw x;

	cw_init(&x);
	ck_assert_int_eq(rouse_oneshot_try_recv(o, &out), -EAGAIN);
	ck_assert_int_eq(rouse_oneshot_recv_init(&r, o, &out), 0);
	ck_assert_int_eq(cw_poll(&r.base, &x), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&r.base, &x), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&x.c.clones), 1);
	ck_assert_int_eq(rouse_oneshot_free(o), -EBUSY);
	ck_assert_int_eq(rouse_oneshot_send(o, &in), 0);
	in = 7;	/* the value was copied */
	ck_assert_int_eq(cw_wakes(&x), 1);
	ck_assert_int_eq(cw_poll(&r.base, &x), ROUSE_READY);
	ck_assert_int_eq(r.result, 0);
	ck_assert_int_eq(out, 42);
	/* Taken: nothing more comes. */
	ck_assert_int_eq(rouse_oneshot_try_recv(o, &out), -EPIPE);
	ck_assert_int_eq(rouse_future_drop(&r.base), 0);
	ck_assert_int_eq(rouse_oneshot_free(o), 0);

	/* Sent before anyone looks: the first poll takes it. */
	o = oneshot_make(sizeof(long));
	ck_assert_int_eq(rouse_oneshot_send(o, &in), 0);
	ck_assert_int_eq(rouse_oneshot_recv_init(&r, o, &out), 0);
	ck_assert_int_eq(cw_poll(&r.base, &x), ROUSE_READY);
	ck_assert_int_eq(out, 7);
	ck_assert_int_eq(rouse_future_drop(&r.base), 0);
	ck_assert_int_eq(rouse_oneshot_free(o), 0);

	/* try_recv, and a value never received is freed with it. */
	o = oneshot_make(sizeof(long));
	ck_assert_int_eq(rouse_oneshot_send(o, &in), 0);
	ck_assert_int_eq(rouse_oneshot_try_recv(o, &out), 0);
	ck_assert_int_eq(rouse_oneshot_free(o), 0);
	o = oneshot_make(sizeof(long));
	ck_assert_int_eq(rouse_oneshot_send(o, &in), 0);
	ck_assert_int_eq(rouse_oneshot_free(o), 0);
	cw_done(&x);
}
END_TEST

START_TEST(test_oneshot_closed)
{
	struct rouse_oneshot *o = oneshot_make(sizeof(int));
	struct rouse_oneshot_recv r;
	int v = 1, out = 0;
	struct cw x;

	cw_init(&x);
	/* The sender goes without a value: the waiting receive learns. */
	ck_assert_int_eq(rouse_oneshot_recv_init(&r, o, &out), 0);
	ck_assert_int_eq(cw_poll(&r.base, &x), ROUSE_PENDING);
	ck_assert_int_eq(rouse_oneshot_close(o), 0);
	ck_assert_int_eq(cw_wakes(&x), 1);
	ck_assert_int_eq(cw_poll(&r.base, &x), ROUSE_READY);
	ck_assert_int_eq(r.result, -EPIPE);
	/* A second send or close, caught while the receiver lives. */
	ck_assert_int_eq(rouse_oneshot_send(o, &v), -EINVAL);
	ck_assert_int_eq(rouse_oneshot_close(o), -EINVAL);
	ck_assert_int_eq(rouse_future_drop(&r.base), 0);
	ck_assert_int_eq(rouse_oneshot_try_recv(o, &out), -EPIPE);
	ck_assert_int_eq(rouse_oneshot_free(o), 0);

	/* The receiver goes first: the send fails, and frees it. */
	o = oneshot_make(sizeof(int));
	ck_assert_int_eq(rouse_oneshot_free(o), 0);
	ck_assert_int_eq(rouse_oneshot_send(o, &v), -EPIPE);
	o = oneshot_make(sizeof(int));
	ck_assert_int_eq(rouse_oneshot_free(o), 0);
	ck_assert_int_eq(rouse_oneshot_close(o), 0);

	/* Zero-size values: a bare signal. */
	o = oneshot_make(0);
	ck_assert_int_eq(rouse_oneshot_recv_init(&r, o, NULL), 0);
	ck_assert_int_eq(cw_poll(&r.base, &x), ROUSE_PENDING);
	ck_assert_int_eq(rouse_oneshot_send(o, NULL), 0);
	ck_assert_int_eq(cw_poll(&r.base, &x), ROUSE_READY);
	ck_assert_int_eq(r.result, 0);
	ck_assert_int_eq(rouse_future_drop(&r.base), 0);
	ck_assert_int_eq(rouse_oneshot_free(o), 0);
	cw_done(&x);
}
END_TEST

START_TEST(test_oneshot_cancel)
{
	struct rouse_oneshot *o = oneshot_make(sizeof(int));
	struct rouse_oneshot_recv a, b, c;
	int v = 5, oa = 0, ob = 0, oc = 0;
	struct cw wa, wb, wc;

	cw_init(&wa);
	cw_init(&wb);
	cw_init(&wc);
	/* Never polled, and queued: both drops leave nothing behind. */
	ck_assert_int_eq(rouse_oneshot_recv_init(&a, o, &oa), 0);
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	ck_assert_int_eq(rouse_oneshot_recv_init(&a, o, &oa), 0);
	ck_assert_int_eq(cw_poll(&a.base, &wa), ROUSE_PENDING);
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	ck_assert_int_eq(atomic_load(&wa.c.live), 1);
	/* Two wait; both are woken; one dropped unseen takes nothing. */
	ck_assert_int_eq(rouse_oneshot_recv_init(&b, o, &ob), 0);
	ck_assert_int_eq(rouse_oneshot_recv_init(&c, o, &oc), 0);
	ck_assert_int_eq(cw_poll(&b.base, &wb), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&c.base, &wc), ROUSE_PENDING);
	ck_assert_int_eq(rouse_oneshot_send(o, &v), 0);
	ck_assert_int_eq(cw_wakes(&wb), 1);
	ck_assert_int_eq(cw_wakes(&wc), 1);
	ck_assert_int_eq(rouse_future_drop(&b.base), 0);
	ck_assert_int_eq(ob, 0);
	ck_assert_int_eq(rouse_oneshot_free(o), -EBUSY);
	ck_assert_int_eq(cw_poll(&c.base, &wc), ROUSE_READY);
	ck_assert_int_eq(c.result, 0);
	ck_assert_int_eq(oc, 5);
	ck_assert_int_eq(rouse_future_drop(&c.base), 0);
	ck_assert_int_eq(rouse_oneshot_free(o), 0);
	cw_done(&wa);
	cw_done(&wb);
	cw_done(&wc);
}
END_TEST

START_TEST(test_oneshot_many_receives)
{
	enum { N = 40 };	/* more than one wake batch */
	struct rouse_oneshot *o = oneshot_make(sizeof(int));
	struct rouse_oneshot_recv r[N];
	int out[N], v = 3, i;
	struct cw c[N];

	for (i = 0; i < N; i++) {
		cw_init(&c[i]);
		ck_assert_int_eq(rouse_oneshot_recv_init(&r[i], o, &out[i]), 0);
		ck_assert_int_eq(cw_poll(&r[i].base, &c[i]), ROUSE_PENDING);
	}
	ck_assert_int_eq(rouse_oneshot_send(o, &v), 0);
	/* All woken; the first polled takes it, the others learn -EPIPE. */
	for (i = N - 1; i >= 0; i--) {
		ck_assert_int_eq(cw_wakes(&c[i]), 1);
		ck_assert_int_eq(cw_poll(&r[i].base, &c[i]), ROUSE_READY);
		ck_assert_int_eq(r[i].result, i == N - 1 ? 0 : -EPIPE);
		ck_assert_int_eq(rouse_future_drop(&r[i].base), 0);
		cw_done(&c[i]);
	}
	ck_assert_int_eq(out[N - 1], 3);
	ck_assert_int_eq(rouse_oneshot_free(o), 0);
}
END_TEST

START_TEST(test_oneshot_einval)
{
	struct rouse_oneshot *o = oneshot_make(sizeof(int));
	struct rouse_oneshot_recv r;
	int v = 0;

	ck_assert_int_eq(rouse_oneshot_new(4, NULL), -EINVAL);
	ck_assert_int_eq(rouse_oneshot_new(SIZE_MAX, &o), -EINVAL);
	ck_assert_int_eq(rouse_oneshot_send(NULL, &v), -EINVAL);
	ck_assert_int_eq(rouse_oneshot_send(o, NULL), -EINVAL);
	ck_assert_int_eq(rouse_oneshot_close(NULL), -EINVAL);
	ck_assert_int_eq(rouse_oneshot_try_recv(NULL, &v), -EINVAL);
	ck_assert_int_eq(rouse_oneshot_try_recv(o, NULL), -EINVAL);
	ck_assert_int_eq(rouse_oneshot_free(NULL), -EINVAL);
	ck_assert_int_eq(rouse_oneshot_recv_init(NULL, o, &v), -EINVAL);
	ck_assert_int_eq(rouse_oneshot_recv_init(&r, NULL, &v), -EINVAL);
	ck_assert_int_eq(rouse_oneshot_recv_init(&r, o, NULL), -EINVAL);
	ck_assert_int_eq(rouse_oneshot_close(o), 0);
	ck_assert_int_eq(rouse_oneshot_free(o), 0);
}
END_TEST

/*
 * 4 threads in a ring, N rounds: each sends (or, one round in 7, closes)
 * the oneshot of its right neighbour and then waits on its own.
 */
#define ONESHOT_ROUNDS 5000

struct oneshot_ring {
	struct rouse_oneshot **os;	/* [THREADS][ONESHOT_ROUNDS] */
	struct test_barrier start;
};

struct oneshot_member {
	struct oneshot_ring *ring;
	int id;
};

static void *oneshot_thread(void *arg)
{
	struct oneshot_member *me = arg;
	struct rouse_oneshot **os = me->ring->os;
	int next = (me->id + 1) % THREADS, i;

	test_barrier_wait(&me->ring->start);
	for (i = 0; i < ONESHOT_ROUNDS; i++) {
		struct rouse_oneshot *to = os[next * ONESHOT_ROUNDS + i];
		struct rouse_oneshot *mine = os[me->id * ONESHOT_ROUNDS + i];
		struct rouse_oneshot_recv r;
		long v = (long)me->id << 32 | i, out = -1;
		int prev = (me->id + THREADS - 1) % THREADS;

		if (i % 7 == 3)
			ck_assert_int_eq(rouse_oneshot_close(to), 0);
		else
			ck_assert_int_eq(rouse_oneshot_send(to, &v), 0);
		ck_assert_int_eq(rouse_oneshot_recv_init(&r, mine, &out), 0);
		ck_assert_int_eq(rouse_block_on(&r.base), 0);
		if (i % 7 == 3) {
			ck_assert_int_eq(r.result, -EPIPE);
		} else {
			ck_assert_int_eq(r.result, 0);
			ck_assert(out == ((long)prev << 32 | i));
		}
		ck_assert_int_eq(rouse_future_drop(&r.base), 0);
		ck_assert_int_eq(rouse_oneshot_free(mine), 0);
	}
	return NULL;
}

START_TEST(test_oneshot_contention)
{
	struct oneshot_ring ring;
	struct oneshot_member m[THREADS];
	int i;

	ring.os = calloc((size_t)THREADS * ONESHOT_ROUNDS, sizeof(*ring.os));
	ck_assert_ptr_nonnull(ring.os);
	for (i = 0; i < THREADS * ONESHOT_ROUNDS; i++)
		ring.os[i] = oneshot_make(sizeof(long));
	test_barrier_init(&ring.start, THREADS);
	for (i = 0; i < THREADS; i++) {
		m[i].ring = &ring;
		m[i].id = i;
	}
	run_threads(oneshot_thread, m, sizeof(m[0]), THREADS);
	test_barrier_destroy(&ring.start);
	free(ring.os);
}
END_TEST

/* ==== mpsc ============================================================= */

static struct rouse_mpsc *mpsc_make(size_t size, size_t capacity)
{
	struct rouse_mpsc *m = NULL;

	ck_assert_int_eq(rouse_mpsc_new(size, capacity, &m), 0);
	ck_assert_ptr_nonnull(m);
	return m;
}

START_TEST(test_mpsc_try)
{
	struct rouse_mpsc *m = mpsc_make(sizeof(int), 2);
	int v, i;

	ck_assert_int_eq(rouse_mpsc_try_recv(m, &v), -EAGAIN);
	/* Around the ring a few times, in order. */
	for (i = 0; i < 10; i += 2) {
		int a = i, b = i + 1, c = -1;

		ck_assert_int_eq(rouse_mpsc_try_send(m, &a), 0);
		ck_assert_int_eq(rouse_mpsc_try_send(m, &b), 0);
		ck_assert_int_eq(rouse_mpsc_try_send(m, &c), -EAGAIN);
		ck_assert_int_eq(rouse_mpsc_try_recv(m, &v), 0);
		ck_assert_int_eq(v, i);
		ck_assert_int_eq(rouse_mpsc_try_send(m, &c), 0);
		ck_assert_int_eq(rouse_mpsc_try_recv(m, &v), 0);
		ck_assert_int_eq(v, i + 1);
		ck_assert_int_eq(rouse_mpsc_try_recv(m, &v), 0);
		ck_assert_int_eq(v, -1);
	}
	/* The last sender goes: what is queued drains, then -EPIPE. */
	ck_assert_int_eq(rouse_mpsc_sender_clone(m), 0);
	ck_assert_int_eq(rouse_mpsc_try_send(m, &i), 0);
	ck_assert_int_eq(rouse_mpsc_sender_release(m), 0);
	ck_assert_int_eq(rouse_mpsc_try_recv(m, &v), 0);
	ck_assert_int_eq(rouse_mpsc_try_recv(m, &v), -EAGAIN);
	ck_assert_int_eq(rouse_mpsc_try_send(m, &i), 0);
	ck_assert_int_eq(rouse_mpsc_sender_release(m), 0);
	ck_assert_int_eq(rouse_mpsc_sender_clone(m), -EPIPE);
	ck_assert_int_eq(rouse_mpsc_sender_release(m), -EINVAL);
	ck_assert_int_eq(rouse_mpsc_try_recv(m, &v), 0);
	ck_assert_int_eq(v, 10);
	ck_assert_int_eq(rouse_mpsc_try_recv(m, &v), -EPIPE);
	ck_assert_int_eq(rouse_mpsc_free(m), 0);

	/* Receiver first: sends fail, the last sender frees it. */
	m = mpsc_make(sizeof(int), 2);
	ck_assert_int_eq(rouse_mpsc_try_send(m, &i), 0);
	ck_assert_int_eq(rouse_mpsc_free(m), 0);
	ck_assert_int_eq(rouse_mpsc_try_send(m, &i), -EPIPE);
	ck_assert_int_eq(rouse_mpsc_sender_release(m), 0);
}
END_TEST

START_TEST(test_mpsc_unbounded)
{
	enum { N = 1000 };
	struct rouse_mpsc *m = mpsc_make(sizeof(int), 0);
	struct rouse_mpsc_send s;
	int v, i, j, next = 0;
	struct cw x;

	cw_init(&x);
	/* Grows while wrapped around: order is kept across each copy. */
	for (i = 0, j = 0; i < N; i++) {
		ck_assert_int_eq(rouse_mpsc_try_send(m, &i), 0);
		if (i % 3 == 0) {
			ck_assert_int_eq(rouse_mpsc_try_recv(m, &v), 0);
			ck_assert_int_eq(v, next++);
		}
		(void)j;
	}
	/* A send future is ready at once. */
	ck_assert_int_eq(rouse_mpsc_send_init(&s, m, &i), 0);
	ck_assert_int_eq(cw_poll(&s.base, &x), ROUSE_READY);
	ck_assert_int_eq(s.result, 0);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	while (rouse_mpsc_try_recv(m, &v) == 0)
		ck_assert_int_eq(v, next++);
	ck_assert_int_eq(next, N + 1);
	/* Freed with elements queued: they go with it (ASan: no leak). */
	for (i = 0; i < 100; i++)
		ck_assert_int_eq(rouse_mpsc_try_send(m, &i), 0);
	ck_assert_int_eq(rouse_mpsc_free(m), 0);
	ck_assert_int_eq(rouse_mpsc_sender_release(m), 0);

	/* Zero-size elements are counted. */
	m = mpsc_make(0, 0);
	for (i = 0; i < 20; i++)
		ck_assert_int_eq(rouse_mpsc_try_send(m, NULL), 0);
	for (i = 0; i < 20; i++)
		ck_assert_int_eq(rouse_mpsc_try_recv(m, NULL), 0);
	ck_assert_int_eq(rouse_mpsc_try_recv(m, NULL), -EAGAIN);
	ck_assert_int_eq(rouse_mpsc_sender_release(m), 0);
	ck_assert_int_eq(rouse_mpsc_free(m), 0);
	cw_done(&x);
}
END_TEST

START_TEST(test_mpsc_backpressure)
{
	struct rouse_mpsc *m = mpsc_make(sizeof(int), 1);
	struct rouse_mpsc_send s[3];
	struct rouse_mpsc_recv r;
	int val[3] = { 10, 11, 12 }, zero = 0, v = -1, i;
	struct cw c[3], x;

	cw_init(&x);
	ck_assert_int_eq(rouse_mpsc_try_send(m, &zero), 0);
	for (i = 0; i < 3; i++) {
		cw_init(&c[i]);
		ck_assert_int_eq(rouse_mpsc_send_init(&s[i], m, &val[i]), 0);
		ck_assert_int_eq(cw_poll(&s[i].base, &c[i]), ROUSE_PENDING);
	}
	/* Queued sends come first: try_send cannot overtake. */
	ck_assert_int_eq(rouse_mpsc_try_recv(m, &v), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(rouse_mpsc_try_send(m, &zero), -EAGAIN);
	ck_assert_int_eq(cw_wakes(&c[0]), 1);
	ck_assert_int_eq(cw_wakes(&c[1]), 0);
	ck_assert_int_eq(cw_poll(&s[0].base, &c[0]), ROUSE_READY);
	ck_assert_int_eq(s[0].result, 0);
	/* A receive frees a slot: the next send in line gets it. */
	ck_assert_int_eq(rouse_mpsc_recv_init(&r, m, &v), 0);
	ck_assert_int_eq(cw_poll(&r.base, &x), ROUSE_READY);
	ck_assert_int_eq(v, 10);
	ck_assert_int_eq(rouse_future_drop(&r.base), 0);
	ck_assert_int_eq(cw_wakes(&c[1]), 1);
	ck_assert_int_eq(cw_poll(&s[1].base, &c[1]), ROUSE_READY);
	ck_assert_int_eq(rouse_mpsc_try_recv(m, &v), 0);
	ck_assert_int_eq(v, 11);
	ck_assert_int_eq(cw_poll(&s[2].base, &c[2]), ROUSE_READY);
	ck_assert_int_eq(rouse_mpsc_try_recv(m, &v), 0);
	ck_assert_int_eq(v, 12);
	/* An empty channel: the receive waits, a send wakes it. */
	ck_assert_int_eq(rouse_mpsc_recv_init(&r, m, &v), 0);
	ck_assert_int_eq(cw_poll(&r.base, &x), ROUSE_PENDING);
	ck_assert_int_eq(rouse_mpsc_free(m), -EBUSY);
	ck_assert_int_eq(rouse_future_drop(&s[0].base), 0);
	ck_assert_int_eq(rouse_mpsc_send_init(&s[0], m, &val[0]), 0);
	ck_assert_int_eq(cw_poll(&s[0].base, &c[0]), ROUSE_READY);
	ck_assert_int_eq(cw_wakes(&x), 1);
	ck_assert_int_eq(cw_poll(&r.base, &x), ROUSE_READY);
	ck_assert_int_eq(r.result, 0);
	ck_assert_int_eq(v, 10);
	ck_assert_int_eq(rouse_future_drop(&r.base), 0);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(rouse_future_drop(&s[i].base), 0);
		cw_done(&c[i]);
	}
	ck_assert_int_eq(rouse_mpsc_sender_release(m), 0);
	ck_assert_int_eq(rouse_mpsc_free(m), 0);
	cw_done(&x);
}
END_TEST

START_TEST(test_mpsc_cancel_send)
{
	struct rouse_mpsc *m = mpsc_make(sizeof(int), 1);
	struct rouse_mpsc_send a, b, c;
	int va = 1, vb = 2, vc = 3, vx = 9, v;
	struct cw wa, wb, wc;

	cw_init(&wa);
	cw_init(&wb);
	cw_init(&wc);
	ck_assert_int_eq(rouse_mpsc_try_send(m, &vx), 0);
	ck_assert_int_eq(rouse_mpsc_send_init(&a, m, &va), 0);
	ck_assert_int_eq(rouse_mpsc_send_init(&b, m, &vb), 0);
	ck_assert_int_eq(rouse_mpsc_send_init(&c, m, &vc), 0);
	/* Never polled: nothing happens. */
	ck_assert_int_eq(rouse_future_drop(&c.base), 0);
	ck_assert_int_eq(rouse_mpsc_send_init(&c, m, &vc), 0);
	ck_assert_int_eq(cw_poll(&a.base, &wa), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&b.base, &wb), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&c.base, &wc), ROUSE_PENDING);
	/* Queued and dropped: never inserted, clone released. */
	ck_assert_int_eq(rouse_future_drop(&b.base), 0);
	ck_assert_int_eq(atomic_load(&wb.c.live), 1);
	/* a is granted the slot, dropped unseen: the slot goes to c. */
	ck_assert_int_eq(rouse_mpsc_try_recv(m, &v), 0);
	ck_assert_int_eq(v, 9);
	ck_assert_int_eq(cw_wakes(&wa), 1);
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	ck_assert_int_eq(cw_wakes(&wc), 1);
	ck_assert_int_eq(cw_wakes(&wb), 0);
	ck_assert_int_eq(rouse_mpsc_try_recv(m, &v), -EAGAIN);
	ck_assert_int_eq(cw_poll(&c.base, &wc), ROUSE_READY);
	ck_assert_int_eq(rouse_mpsc_try_recv(m, &v), 0);
	ck_assert_int_eq(v, 3);
	ck_assert_int_eq(rouse_future_drop(&c.base), 0);
	/* Granted with nobody behind: the slot is simply free again. */
	ck_assert_int_eq(rouse_mpsc_try_send(m, &vx), 0);
	ck_assert_int_eq(rouse_mpsc_send_init(&a, m, &va), 0);
	ck_assert_int_eq(cw_poll(&a.base, &wa), ROUSE_PENDING);
	ck_assert_int_eq(rouse_mpsc_try_recv(m, &v), 0);
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	ck_assert_int_eq(rouse_mpsc_try_recv(m, &v), -EAGAIN);
	ck_assert_int_eq(rouse_mpsc_try_send(m, &vb), 0);
	ck_assert_int_eq(rouse_mpsc_try_recv(m, &v), 0);
	ck_assert_int_eq(v, 2);
	ck_assert_int_eq(rouse_mpsc_sender_release(m), 0);
	ck_assert_int_eq(rouse_mpsc_free(m), 0);
	cw_done(&wa);
	cw_done(&wb);
	cw_done(&wc);
}
END_TEST

START_TEST(test_mpsc_cancel_recv)
{
	struct rouse_mpsc *m = mpsc_make(sizeof(int), 4);
	struct rouse_mpsc_recv a, b;
	int v = 77, oa = 0, ob = 0;
	struct cw wa, wb;

	cw_init(&wa);
	cw_init(&wb);
	ck_assert_int_eq(rouse_mpsc_recv_init(&a, m, &oa), 0);
	ck_assert_int_eq(rouse_mpsc_recv_init(&b, m, &ob), 0);
	ck_assert_int_eq(cw_poll(&a.base, &wa), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&b.base, &wb), ROUSE_PENDING);
	/* One send wakes one receive; dropped unseen, it wakes the next. */
	ck_assert_int_eq(rouse_mpsc_try_send(m, &v), 0);
	ck_assert_int_eq(cw_wakes(&wa), 1);
	ck_assert_int_eq(cw_wakes(&wb), 0);
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	ck_assert_int_eq(oa, 0);
	ck_assert_int_eq(cw_wakes(&wb), 1);
	ck_assert_int_eq(cw_poll(&b.base, &wb), ROUSE_READY);
	ck_assert_int_eq(b.result, 0);
	ck_assert_int_eq(ob, 77);
	ck_assert_int_eq(rouse_future_drop(&b.base), 0);
	/* Woken, but the element went elsewhere: it waits again. */
	ck_assert_int_eq(rouse_mpsc_recv_init(&a, m, &oa), 0);
	ck_assert_int_eq(cw_poll(&a.base, &wa), ROUSE_PENDING);
	ck_assert_int_eq(rouse_mpsc_try_send(m, &v), 0);
	ck_assert_int_eq(cw_wakes(&wa), 2);
	ck_assert_int_eq(rouse_mpsc_try_recv(m, &ob), 0);
	ck_assert_int_eq(cw_poll(&a.base, &wa), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&wa.c.live), 2);
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	ck_assert_int_eq(atomic_load(&wa.c.live), 1);
	ck_assert_int_eq(rouse_mpsc_sender_release(m), 0);
	ck_assert_int_eq(rouse_mpsc_free(m), 0);
	cw_done(&wa);
	cw_done(&wb);
}
END_TEST

START_TEST(test_mpsc_close)
{
	struct rouse_mpsc *m = mpsc_make(sizeof(int), 1);
	struct rouse_mpsc_send s;
	struct rouse_mpsc_recv r;
	int v = 4, out = 0;
	struct cw ws, wr;

	cw_init(&ws);
	cw_init(&wr);
	/* close: the queued send fails, the queued element stays. */
	ck_assert_int_eq(rouse_mpsc_try_send(m, &v), 0);
	ck_assert_int_eq(rouse_mpsc_send_init(&s, m, &v), 0);
	ck_assert_int_eq(cw_poll(&s.base, &ws), ROUSE_PENDING);
	ck_assert_int_eq(rouse_mpsc_close(m), 0);
	ck_assert_int_eq(cw_wakes(&ws), 1);
	ck_assert_int_eq(cw_poll(&s.base, &ws), ROUSE_READY);
	ck_assert_int_eq(s.result, -EPIPE);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	ck_assert_int_eq(rouse_mpsc_try_send(m, &v), -EPIPE);
	ck_assert_int_eq(rouse_mpsc_close(m), 0);
	ck_assert_int_eq(rouse_mpsc_recv_init(&r, m, &out), 0);
	ck_assert_int_eq(cw_poll(&r.base, &wr), ROUSE_READY);
	ck_assert_int_eq(r.result, 0);
	ck_assert_int_eq(out, 4);
	ck_assert_int_eq(rouse_future_drop(&r.base), 0);
	ck_assert_int_eq(rouse_mpsc_try_recv(m, &out), -EPIPE);
	ck_assert_int_eq(rouse_mpsc_free(m), 0);
	ck_assert_int_eq(rouse_mpsc_sender_release(m), 0);

	/* The last sender goes while a receive waits: it is told. */
	m = mpsc_make(sizeof(int), 0);
	ck_assert_int_eq(rouse_mpsc_recv_init(&r, m, &out), 0);
	ck_assert_int_eq(cw_poll(&r.base, &wr), ROUSE_PENDING);
	ck_assert_int_eq(rouse_mpsc_sender_release(m), 0);
	ck_assert_int_eq(cw_wakes(&wr), 1);
	ck_assert_int_eq(cw_poll(&r.base, &wr), ROUSE_READY);
	ck_assert_int_eq(r.result, -EPIPE);
	ck_assert_int_eq(rouse_future_drop(&r.base), 0);
	ck_assert_int_eq(rouse_mpsc_free(m), 0);

	/* free with a send queued: it fails, the sender frees the rest. */
	m = mpsc_make(sizeof(int), 1);
	ck_assert_int_eq(rouse_mpsc_try_send(m, &v), 0);
	ck_assert_int_eq(rouse_mpsc_send_init(&s, m, &v), 0);
	ck_assert_int_eq(cw_poll(&s.base, &ws), ROUSE_PENDING);
	ck_assert_int_eq(rouse_mpsc_free(m), 0);
	ck_assert_int_eq(cw_wakes(&ws), 2);
	ck_assert_int_eq(cw_poll(&s.base, &ws), ROUSE_READY);
	ck_assert_int_eq(s.result, -EPIPE);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	ck_assert_int_eq(rouse_mpsc_sender_release(m), 0);
	cw_done(&ws);
	cw_done(&wr);
}
END_TEST

START_TEST(test_mpsc_many_waiters)
{
	enum { N = 40 };	/* more than one wake batch */
	struct rouse_mpsc *m = mpsc_make(sizeof(int), 1);
	struct rouse_mpsc_send s[N];
	struct rouse_mpsc_recv r[N];
	int out[N], v = 1, i;
	struct cw cs[N], cr[N];

	/* Receives wait on an empty channel; close wakes every one. */
	for (i = 0; i < N; i++) {
		cw_init(&cr[i]);
		ck_assert_int_eq(rouse_mpsc_recv_init(&r[i], m, &out[i]), 0);
		ck_assert_int_eq(cw_poll(&r[i].base, &cr[i]), ROUSE_PENDING);
	}
	ck_assert_int_eq(rouse_mpsc_close(m), 0);
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(cw_wakes(&cr[i]), 1);
		ck_assert_int_eq(cw_poll(&r[i].base, &cr[i]), ROUSE_READY);
		ck_assert_int_eq(r[i].result, -EPIPE);
		ck_assert_int_eq(rouse_future_drop(&r[i].base), 0);
		cw_done(&cr[i]);
	}
	ck_assert_int_eq(rouse_mpsc_free(m), 0);
	ck_assert_int_eq(rouse_mpsc_sender_release(m), 0);

	/* Sends wait on a full channel; free fails every one. */
	m = mpsc_make(sizeof(int), 1);
	ck_assert_int_eq(rouse_mpsc_try_send(m, &v), 0);
	for (i = 0; i < N; i++) {
		cw_init(&cs[i]);
		ck_assert_int_eq(rouse_mpsc_send_init(&s[i], m, &v), 0);
		ck_assert_int_eq(cw_poll(&s[i].base, &cs[i]), ROUSE_PENDING);
	}
	ck_assert_int_eq(rouse_mpsc_free(m), 0);
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(cw_wakes(&cs[i]), 1);
		ck_assert_int_eq(cw_poll(&s[i].base, &cs[i]), ROUSE_READY);
		ck_assert_int_eq(s[i].result, -EPIPE);
		ck_assert_int_eq(rouse_future_drop(&s[i].base), 0);
		cw_done(&cs[i]);
	}
	ck_assert_int_eq(rouse_mpsc_sender_release(m), 0);
}
END_TEST

/* A receive whose waker receives inline, and sends from there too. */
struct inline_recv {
	struct rouse_mpsc *m;
	struct rouse_mpsc_recv r;
	struct rouse_waker waker;
	int out, got;
};

static void inline_recv_wake(struct call_waker *c, int nth)
{
	struct inline_recv *ir = c->arg;
	int v = 100 + nth;

	if (test_poll_with(&ir->r.base, &ir->waker) != ROUSE_READY)
		return;
	ck_assert_int_eq(ir->r.result, 0);
	ir->got++;
	ck_assert_int_eq(rouse_future_drop(&ir->r.base), 0);
	if (nth >= 3)
		return;
	/* Wait again, and send the element that will wake us. */
	ck_assert_int_eq(rouse_mpsc_recv_init(&ir->r, ir->m, &ir->out), 0);
	ck_assert_int_eq(test_poll_with(&ir->r.base, &ir->waker),
			 ROUSE_PENDING);
	ck_assert_int_eq(rouse_mpsc_try_send(ir->m, &v), 0);
}

START_TEST(test_mpsc_wake_reenters)
{
	struct inline_recv ir;
	struct call_waker c;
	int v = 1;

	ir.m = mpsc_make(sizeof(int), 1);
	ir.got = 0;
	ir.waker = call_waker(&c, inline_recv_wake, &ir);
	ck_assert_int_eq(rouse_mpsc_recv_init(&ir.r, ir.m, &ir.out), 0);
	ck_assert_int_eq(test_poll_with(&ir.r.base, &ir.waker), ROUSE_PENDING);
	ck_assert_int_eq(rouse_mpsc_try_send(ir.m, &v), 0);
	ck_assert_int_eq(ir.got, 4);
	ck_assert_int_eq(ir.out, 102);
	ck_assert_int_eq(rouse_waker_drop(&ir.waker), 0);
	ck_assert_int_eq(atomic_load(&c.live), 0);
	ck_assert_int_eq(rouse_mpsc_sender_release(ir.m), 0);
	ck_assert_int_eq(rouse_mpsc_free(ir.m), 0);
}
END_TEST

START_TEST(test_mpsc_einval)
{
	struct rouse_mpsc *m = mpsc_make(sizeof(int), 2);
	struct rouse_mpsc_send s;
	struct rouse_mpsc_recv r;
	int v = 0;

	ck_assert_int_eq(rouse_mpsc_new(4, 4, NULL), -EINVAL);
	ck_assert_int_eq(rouse_mpsc_new(SIZE_MAX, 2, &m), -EINVAL);
	ck_assert_int_eq(rouse_mpsc_sender_clone(NULL), -EINVAL);
	ck_assert_int_eq(rouse_mpsc_sender_release(NULL), -EINVAL);
	ck_assert_int_eq(rouse_mpsc_try_send(NULL, &v), -EINVAL);
	ck_assert_int_eq(rouse_mpsc_try_send(m, NULL), -EINVAL);
	ck_assert_int_eq(rouse_mpsc_try_recv(NULL, &v), -EINVAL);
	ck_assert_int_eq(rouse_mpsc_try_recv(m, NULL), -EINVAL);
	ck_assert_int_eq(rouse_mpsc_close(NULL), -EINVAL);
	ck_assert_int_eq(rouse_mpsc_free(NULL), -EINVAL);
	ck_assert_int_eq(rouse_mpsc_send_init(NULL, m, &v), -EINVAL);
	ck_assert_int_eq(rouse_mpsc_send_init(&s, NULL, &v), -EINVAL);
	ck_assert_int_eq(rouse_mpsc_send_init(&s, m, NULL), -EINVAL);
	ck_assert_int_eq(rouse_mpsc_recv_init(NULL, m, &v), -EINVAL);
	ck_assert_int_eq(rouse_mpsc_recv_init(&r, NULL, &v), -EINVAL);
	ck_assert_int_eq(rouse_mpsc_recv_init(&r, m, NULL), -EINVAL);
	ck_assert_int_eq(rouse_mpsc_sender_release(m), 0);
	ck_assert_int_eq(rouse_mpsc_free(m), 0);
}
END_TEST

/*
 * 3 sender threads send (id, seq) N times each with send futures, some
 * with try_send; the receiver thread receives with receive futures until
 * -EPIPE.  Some pending sends and receives are cancelled and redone.
 * Every element arrives exactly once, each sender's in order.
 * _i: 0 bounded (capacity 4), 1 unbounded.
 */
#define MPSC_SENDERS (THREADS - 1)
#define MPSC_ITERS 20000

struct mpsc_elem {
	int id;
	int seq;
};

struct mpsc_tx {
	struct rouse_future base;
	struct rouse_mpsc *m;
	struct test_barrier *start;
	struct rouse_mpsc_send send;
	struct mpsc_elem e;
	bool sending;
	unsigned int pends;	/* every 3rd pending send is cancelled */
};

static enum rouse_poll mpsc_tx_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct mpsc_tx *t = (struct mpsc_tx *)f;

	while (t->e.seq < MPSC_ITERS) {
		if (!t->sending) {
			if (t->e.seq % 5 == 0 &&
			    rouse_mpsc_try_send(t->m, &t->e) == 0) {
				t->e.seq++;
				continue;
			}
			test_require_int(rouse_mpsc_send_init(&t->send, t->m,
							      &t->e), ==, 0);
			t->sending = true;
		}
		if (rouse_future_poll(&t->send.base, cx) == ROUSE_PENDING) {
			if (++t->pends % 3 != 0)
				return ROUSE_PENDING;
			/*
			 * Cancel it and send the same element again: had the
			 * dropped send queued it, it would arrive twice.
			 */
			test_require_int(rouse_future_drop(&t->send.base), ==,
					 0);
			t->sending = false;
			return yield_now(cx);
		}
		test_require_int(t->send.result, ==, 0);
		test_require_int(rouse_future_drop(&t->send.base), ==, 0);
		t->sending = false;
		t->e.seq++;
		if (t->e.seq % 64 == 0)
			return yield_now(cx);
	}
	return ROUSE_READY;
}

static void mpsc_tx_drop(struct rouse_future *f)
{
	struct mpsc_tx *t = (struct mpsc_tx *)f;

	if (t->sending)
		rouse_future_drop(&t->send.base);
}

static const struct rouse_future_vtable mpsc_tx_vtable = {
	mpsc_tx_poll, mpsc_tx_drop,
};

struct mpsc_rx {
	struct rouse_future base;
	struct rouse_mpsc *m;
	struct rouse_mpsc_recv recv;
	struct mpsc_elem e;
	bool receiving;
	int next[MPSC_SENDERS];
	long count;
	unsigned int pends;	/* every 3rd pending receive is cancelled */
};

static enum rouse_poll mpsc_rx_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct mpsc_rx *r = (struct mpsc_rx *)f;

	for (;;) {
		if (!r->receiving) {
			test_require_int(rouse_mpsc_recv_init(&r->recv, r->m,
							      &r->e), ==, 0);
			r->receiving = true;
		}
		if (rouse_future_poll(&r->recv.base, cx) == ROUSE_PENDING) {
			if (++r->pends % 3 != 0)
				return ROUSE_PENDING;
			/* An element sent meanwhile stays for the next. */
			test_require_int(rouse_future_drop(&r->recv.base), ==,
					 0);
			r->receiving = false;
			return yield_now(cx);
		}
		test_require_int(rouse_future_drop(&r->recv.base), ==, 0);
		r->receiving = false;
		if (r->recv.result == -EPIPE)
			return ROUSE_READY;
		test_require_int(r->recv.result, ==, 0);
		test_require(r->e.id >= 0 && r->e.id < MPSC_SENDERS);
		test_require_int(r->e.seq, ==, r->next[r->e.id]);
		r->next[r->e.id]++;
		r->count++;
	}
}

static void mpsc_rx_drop(struct rouse_future *f)
{
	struct mpsc_rx *r = (struct mpsc_rx *)f;

	if (r->receiving)
		rouse_future_drop(&r->recv.base);
}

static const struct rouse_future_vtable mpsc_rx_vtable = {
	mpsc_rx_poll, mpsc_rx_drop,
};

struct mpsc_role {
	struct mpsc_tx tx;
	struct mpsc_rx *rx;
};

static void *mpsc_thread(void *arg)
{
	struct mpsc_role *r = arg;

	test_barrier_wait(r->tx.start);
	if (r->rx != NULL) {
		ck_assert_int_eq(rouse_block_on(&r->rx->base), 0);
		ck_assert_int_eq(rouse_future_drop(&r->rx->base), 0);
		return NULL;
	}
	ck_assert_int_eq(rouse_block_on(&r->tx.base), 0);
	ck_assert_int_eq(rouse_future_drop(&r->tx.base), 0);
	ck_assert_int_eq(rouse_mpsc_sender_release(r->tx.m), 0);
	return NULL;
}

START_TEST(test_mpsc_contention)
{
	struct rouse_mpsc *m = mpsc_make(sizeof(struct mpsc_elem),
					 _i == 0 ? 4 : 0);
	struct mpsc_role role[THREADS];
	struct test_barrier start;
	struct mpsc_rx rx;
	int i;

	test_barrier_init(&start, THREADS);
	memset(&rx, 0, sizeof(rx));
	rx.base.vtable = &mpsc_rx_vtable;
	rx.m = m;
	for (i = 0; i < THREADS; i++) {
		memset(&role[i], 0, sizeof(role[i]));
		role[i].tx.base.vtable = &mpsc_tx_vtable;
		role[i].tx.m = m;
		role[i].tx.start = &start;
		role[i].tx.e.id = i;
		/* One sender reference each; the first came with new. */
		if (i > 0 && i < MPSC_SENDERS)
			ck_assert_int_eq(rouse_mpsc_sender_clone(m), 0);
	}
	role[MPSC_SENDERS].rx = &rx;
	run_threads(mpsc_thread, role, sizeof(role[0]), THREADS);
	ck_assert_int_eq(rx.count, (long)MPSC_SENDERS * MPSC_ITERS);
	for (i = 0; i < MPSC_SENDERS; i++)
		ck_assert_int_eq(rx.next[i], MPSC_ITERS);
	ck_assert_int_eq(rouse_mpsc_free(m), 0);
	test_barrier_destroy(&start);
}
END_TEST

/* ==== atomic waker ===================================================== */

START_TEST(test_atomic_waker_basic)
{
	struct rouse_atomic_waker aw;
	struct rouse_waker out;
	struct cw a, b;

	cw_init(&a);
	cw_init(&b);
	ck_assert_int_eq(rouse_atomic_waker_init(&aw), 0);
	ck_assert_int_eq(rouse_atomic_waker_wake(&aw), 0);
	ck_assert_int_eq(rouse_atomic_waker_register(&aw, &a.w), 0);
	ck_assert_int_eq(atomic_load(&a.c.clones), 1);
	/* The same task again: no second clone. */
	ck_assert_int_eq(rouse_atomic_waker_register(&aw, &a.w), 0);
	ck_assert_int_eq(atomic_load(&a.c.clones), 1);
	/* Another task: it replaces the first, whose clone is dropped. */
	ck_assert_int_eq(rouse_atomic_waker_register(&aw, &b.w), 0);
	ck_assert_int_eq(atomic_load(&a.c.live), 1);
	ck_assert_int_eq(atomic_load(&b.c.live), 2);
	ck_assert_int_eq(rouse_atomic_waker_wake(&aw), 1);
	ck_assert_int_eq(atomic_load(&b.c.wakes), 1);
	ck_assert_int_eq(atomic_load(&b.c.live), 1);
	ck_assert_int_eq(rouse_atomic_waker_wake(&aw), 0);
	ck_assert_int_eq(cw_wakes(&a), 0);
	/* take moves it out, unwoken. */
	ck_assert_int_eq(rouse_atomic_waker_register(&aw, &a.w), 0);
	ck_assert_int_eq(rouse_atomic_waker_take(&aw, &out), 1);
	ck_assert(rouse_waker_will_wake(&out, &a.w));
	ck_assert_int_eq(atomic_load(&a.c.live), 2);
	ck_assert_int_eq(rouse_waker_drop(&out), 0);
	ck_assert_int_eq(rouse_atomic_waker_take(&aw, &out), 0);
	ck_assert_ptr_null(out.vtable);
	ck_assert_int_eq(cw_wakes(&a), 0);
	ck_assert_int_eq(atomic_load(&a.c.live), 1);
	/* destroy drops what is left. */
	ck_assert_int_eq(rouse_atomic_waker_register(&aw, &a.w), 0);
	ck_assert_int_eq(rouse_atomic_waker_destroy(&aw), 0);
	ck_assert_int_eq(cw_wakes(&a), 0);
	cw_done(&a);
	cw_done(&b);

	ck_assert_int_eq(rouse_atomic_waker_init(NULL), -EINVAL);
	ck_assert_int_eq(rouse_atomic_waker_register(NULL, &a.w), -EINVAL);
	ck_assert_int_eq(rouse_atomic_waker_register(&aw, NULL), -EINVAL);
	ck_assert_int_eq(rouse_atomic_waker_wake(NULL), -EINVAL);
	ck_assert_int_eq(rouse_atomic_waker_take(NULL, &out), -EINVAL);
	ck_assert_int_eq(rouse_atomic_waker_take(&aw, NULL), -EINVAL);
	ck_assert_int_eq(rouse_atomic_waker_destroy(NULL), -EINVAL);
}
END_TEST

/* A wake that registers again from inside itself. */
struct inline_aw {
	struct rouse_atomic_waker aw;
	struct rouse_waker w;
	int wakes;
};

static void inline_aw_wake(struct call_waker *c, int nth)
{
	struct inline_aw *ia = c->arg;

	ia->wakes++;
	ck_assert_int_eq(rouse_atomic_waker_register(&ia->aw, &ia->w), 0);
}

START_TEST(test_atomic_waker_reenters)
{
	struct inline_aw ia;
	struct call_waker c;

	ia.wakes = 0;
	ia.w = call_waker(&c, inline_aw_wake, &ia);
	ck_assert_int_eq(rouse_atomic_waker_init(&ia.aw), 0);
	ck_assert_int_eq(rouse_atomic_waker_register(&ia.aw, &ia.w), 0);
	ck_assert_int_eq(rouse_atomic_waker_wake(&ia.aw), 1);
	ck_assert_int_eq(ia.wakes, 1);
	/* The register inside the wake took: a second wake finds it. */
	ck_assert_int_eq(rouse_atomic_waker_wake(&ia.aw), 1);
	ck_assert_int_eq(ia.wakes, 2);
	ck_assert_int_eq(rouse_atomic_waker_destroy(&ia.aw), 0);
	ck_assert_int_eq(rouse_waker_drop(&ia.w), 0);
	ck_assert_int_eq(atomic_load(&c.live), 0);
}
END_TEST

/*
 * One thread waits, in rouse_block_on(), for 3 others to each set a bit
 * and wake the slot; every round starts at a barrier so that the wakes
 * race the registers.  A lost wake hangs the waiter.
 */
#define AW_ROUNDS 3000

struct aw_shared {
	struct rouse_atomic_waker aw;
	atomic_uint bits;
	struct test_barrier round;
	atomic_int polls;
};

struct aw_wait {
	struct rouse_future base;
	struct aw_shared *sh;
};

static enum rouse_poll aw_wait_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct aw_shared *sh = ((struct aw_wait *)f)->sh;

	atomic_fetch_add(&sh->polls, 1);
	/* Register first, then look: a wake after the look finds us. */
	ck_assert_int_eq(rouse_atomic_waker_register(&sh->aw, cx->waker), 0);
	if (atomic_load(&sh->bits) == 7)
		return ROUSE_READY;
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable aw_wait_vtable = {
	aw_wait_poll, NULL,
};

struct aw_role {
	struct aw_shared *sh;
	int id;		/* 0 waits; 1..3 wake */
};

static void *aw_thread(void *arg)
{
	struct aw_role *r = arg;
	struct aw_shared *sh = r->sh;
	int i;

	for (i = 0; i < AW_ROUNDS; i++) {
		test_barrier_wait(&sh->round);
		if (r->id == 0) {
			struct aw_wait w = { { &aw_wait_vtable }, sh };

			ck_assert_int_eq(rouse_block_on(&w.base), 0);
			atomic_store(&sh->bits, 0);
		} else {
			atomic_fetch_or(&sh->bits, 1u << (r->id - 1));
			ck_assert_int_ge(rouse_atomic_waker_wake(&sh->aw), 0);
		}
		/* The round is over for all before bits is reused. */
		test_barrier_wait(&sh->round);
	}
	return NULL;
}

START_TEST(test_atomic_waker_contention)
{
	struct aw_shared sh;
	struct aw_role r[THREADS];
	int i;

	ck_assert_int_eq(rouse_atomic_waker_init(&sh.aw), 0);
	atomic_init(&sh.bits, 0);
	atomic_init(&sh.polls, 0);
	test_barrier_init(&sh.round, THREADS);
	for (i = 0; i < THREADS; i++) {
		r[i].sh = &sh;
		r[i].id = i;
	}
	run_threads(aw_thread, r, sizeof(r[0]), THREADS);
	ck_assert_int_ge(atomic_load(&sh.polls), AW_ROUNDS);
	/* The last clone goes with destroy (ASan: no leaked parker). */
	ck_assert_int_eq(rouse_atomic_waker_destroy(&sh.aw), 0);
	test_barrier_destroy(&sh.round);
}
END_TEST

/* ==== the suite ======================================================== */

static Suite *sync_suite(void)
{
	Suite *s = suite_create("sync");
	TCase *tc;

	tc = tcase_create("mutex");
	tcase_add_test(tc, test_mutex_basic);
	tcase_add_test(tc, test_mutex_fifo);
	tcase_add_test(tc, test_mutex_cancel);
	tcase_add_test(tc, test_mutex_wake_reenters);
	tcase_add_test(tc, test_mutex_einval);
	suite_add_tcase(s, tc);

	tc = tcase_create("semaphore");
	tcase_add_test(tc, test_sem_basic);
	tcase_add_test(tc, test_sem_fifo);
	tcase_add_test(tc, test_sem_cancel);
	tcase_add_test(tc, test_sem_many_waiters);
	tcase_add_test(tc, test_sem_einval);
	suite_add_tcase(s, tc);

	tc = tcase_create("notify");
	tcase_add_test(tc, test_notify_permit);
	tcase_add_test(tc, test_notify_one_fifo);
	tcase_add_test(tc, test_notify_all);
	tcase_add_test(tc, test_notify_cancel);
	tcase_add_test(tc, test_notify_wake_reenters);
	tcase_add_test(tc, test_notify_einval);
	suite_add_tcase(s, tc);

	tc = tcase_create("oneshot");
	tcase_add_test(tc, test_oneshot_basic);
	tcase_add_test(tc, test_oneshot_closed);
	tcase_add_test(tc, test_oneshot_cancel);
	tcase_add_test(tc, test_oneshot_many_receives);
	tcase_add_test(tc, test_oneshot_einval);
	suite_add_tcase(s, tc);

	tc = tcase_create("mpsc");
	tcase_add_test(tc, test_mpsc_try);
	tcase_add_test(tc, test_mpsc_unbounded);
	tcase_add_test(tc, test_mpsc_backpressure);
	tcase_add_test(tc, test_mpsc_cancel_send);
	tcase_add_test(tc, test_mpsc_cancel_recv);
	tcase_add_test(tc, test_mpsc_close);
	tcase_add_test(tc, test_mpsc_many_waiters);
	tcase_add_test(tc, test_mpsc_wake_reenters);
	tcase_add_test(tc, test_mpsc_einval);
	suite_add_tcase(s, tc);

	tc = tcase_create("atomic_waker");
	tcase_add_test(tc, test_atomic_waker_basic);
	tcase_add_test(tc, test_atomic_waker_reenters);
	suite_add_tcase(s, tc);

	tc = tcase_create("contention");
	tcase_add_test(tc, test_mutex_contention);
	tcase_add_test(tc, test_sem_contention);
	tcase_add_test(tc, test_notify_contention);
	tcase_add_test(tc, test_oneshot_contention);
	tcase_add_loop_test(tc, test_mpsc_contention, 0, 2);
	tcase_add_test(tc, test_atomic_waker_contention);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return test_run_suite(sync_suite());
}
