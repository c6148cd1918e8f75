// SPDX-License-Identifier: MIT
/*
 * tests/check_sync2.c - the primitives of issue 13 in sync.h: the
 * read-write lock, the barrier, the watch and broadcast channels and
 * cancellation tokens, by hand with counting wakers (order, every waiter
 * woken once, drops in every state, re-entry from a wake), then under
 * contention from plain threads in rouse_block_on() together with tasks
 * on a current-thread or a multi-thread executor; tokens also cancelled
 * from real signal handlers.
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <rouse/alloc.h>
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

/* ---- running workers on threads and on executors --------------------- */

/*
 * How a contention test runs its workers, the _i of its loop: all on
 * plain threads, each in rouse_block_on(); or the even ones as tasks of a
 * current-thread executor that the test's thread runs, or of a
 * multi-thread executor with 3 workers, while the odd ones still run on
 * plain threads, so that tasks and threads meet on the same object.
 */
enum run_mode {
	RUN_THREADS,
	RUN_CURRENT,
	RUN_MULTI,
	RUN_MODES,
};

#define MAX_WORKERS 8

struct worker_thread {
	struct rouse_future *f;
	struct test_barrier *start;
};

static void *worker_thread(void *arg)
{
	struct worker_thread *wt = arg;

	test_barrier_wait(wt->start);
	test_require_int(rouse_block_on(wt->f), ==, 0);
	return NULL;
}

/*
 * Run the n futures at futs (size bytes apart), never polled, to
 * completion as mode says.  A future run as a task is moved into it:
 * out[i] is then the task's copy, which stays readable until
 * run_workers_done(); for the others it is the future itself.
 */
struct run {
	struct rouse_executor *ex;
	struct rouse_join_handle h[MAX_WORKERS];
	bool task[MAX_WORKERS];
	int n;
};

static void run_workers(struct run *ru, enum run_mode mode, void *futs,
			size_t size, int n, struct rouse_future **out)
{
	struct worker_thread wt[MAX_WORKERS];
	pthread_t t[MAX_WORKERS];
	struct rouse_executor_config cfg;
	struct test_barrier start;
	int i, threads = 0;

	ck_assert_int_le(n, MAX_WORKERS);
	memset(ru, 0, sizeof(*ru));
	ru->n = n;
	if (mode != RUN_THREADS) {
		ck_assert_int_eq(rouse_executor_config_init(&cfg), 0);
		cfg.kind = mode == RUN_CURRENT ? ROUSE_EXECUTOR_CURRENT_THREAD :
						 ROUSE_EXECUTOR_MULTI_THREAD;
		cfg.workers = 3;
		ck_assert_int_eq(rouse_executor_new(&cfg, &ru->ex), 0);
	}
	for (i = 0; i < n; i++) {
		struct rouse_future *f = (void *)((char *)futs + i * size);

		ru->task[i] = mode != RUN_THREADS && i % 2 == 0;
		if (ru->task[i]) {
			ck_assert_int_eq(rouse_spawn(ru->ex, f, size,
						     &ru->h[i]), 0);
		} else {
			out[i] = f;
			threads++;
		}
	}
	test_barrier_init(&start, (unsigned int)threads + 1);
	for (i = 0; i < n; i++) {
		if (ru->task[i])
			continue;
		wt[i].f = out[i];
		wt[i].start = &start;
		t[i] = test_thread_start(worker_thread, &wt[i]);
	}
	test_barrier_wait(&start);
	for (i = 0; i < n; i++) {
		if (!ru->task[i])
			continue;
		/* A current-thread executor runs all its tasks in here. */
		ck_assert_int_eq(rouse_executor_block_on(ru->ex,
							 &ru->h[i].base), 0);
		ck_assert_int_eq(ru->h[i].result, 0);
		out[i] = ru->h[i].output;
	}
	for (i = 0; i < n; i++)
		if (!ru->task[i])
			test_thread_join(t[i]);
	test_barrier_destroy(&start);
}

/* Drop what run_workers() left: the futures on threads, the handles. */
static void run_workers_done(struct run *ru, struct rouse_future **out)
{
	int i;

	for (i = 0; i < ru->n; i++) {
		if (ru->task[i])
			ck_assert_int_eq(rouse_future_drop(&ru->h[i].base), 0);
		else
			ck_assert_int_eq(rouse_future_drop(out[i]), 0);
	}
	if (ru->ex != NULL)
		ck_assert_int_eq(rouse_executor_free(ru->ex), 0);
}

/* ==== rwlock =========================================================== */

static struct rouse_rwlock *rwlock_make(void)
{
	struct rouse_rwlock *l = NULL;

	ck_assert_int_eq(rouse_rwlock_new(&l), 0);
	ck_assert_ptr_nonnull(l);
	return l;
}

START_TEST(test_rwlock_basic)
{
	struct rouse_rwlock *l = rwlock_make();
	struct rouse_rwlock_read r;
	struct rouse_rwlock_write w;
	struct cw x;

	cw_init(&x);
	ck_assert_int_eq(rouse_rwlock_read_unlock(l), -EPERM);
	ck_assert_int_eq(rouse_rwlock_write_unlock(l), -EPERM);
	/* Many readers at once, and no writer meanwhile. */
	ck_assert_int_eq(rouse_rwlock_try_read(l), 0);
	ck_assert_int_eq(rouse_rwlock_try_read(l), 0);
	ck_assert_int_eq(rouse_rwlock_try_write(l), -EBUSY);
	ck_assert_int_eq(rouse_rwlock_write_unlock(l), -EPERM);
	ck_assert_int_eq(rouse_rwlock_read_init(&r, l), 0);
	ck_assert_int_eq(cw_poll(&r.base, &x), ROUSE_READY);
	ck_assert_int_eq(atomic_load(&x.c.clones), 0);
	ck_assert_int_eq(rouse_future_drop(&r.base), 0);
	ck_assert_int_eq(rouse_rwlock_read_unlock(l), 0);
	ck_assert_int_eq(rouse_rwlock_read_unlock(l), 0);
	ck_assert_int_eq(rouse_rwlock_read_unlock(l), 0);
	ck_assert_int_eq(rouse_rwlock_read_unlock(l), -EPERM);
	/* One writer, and nobody else meanwhile. */
	ck_assert_int_eq(rouse_rwlock_write_init(&w, l), 0);
	ck_assert_int_eq(cw_poll(&w.base, &x), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	ck_assert_int_eq(rouse_rwlock_try_write(l), -EBUSY);
	ck_assert_int_eq(rouse_rwlock_try_read(l), -EBUSY);
	ck_assert_int_eq(rouse_rwlock_read_unlock(l), -EPERM);
	/* A completed future's drop did not unlock. */
	ck_assert_int_eq(rouse_rwlock_write_unlock(l), 0);
	ck_assert_int_eq(rouse_rwlock_write_unlock(l), -EPERM);
	ck_assert_int_eq(rouse_rwlock_try_write(l), 0);
	/* Held or not, it may be freed; a future never polled is dropped. */
	ck_assert_int_eq(rouse_rwlock_read_init(&r, l), 0);
	ck_assert_int_eq(rouse_future_drop(&r.base), 0);
	ck_assert_int_eq(rouse_rwlock_free(l), 0);
	cw_done(&x);
}
END_TEST

START_TEST(test_rwlock_fifo)
{
	struct rouse_rwlock *l = rwlock_make();
	struct rouse_rwlock_write w;
	struct rouse_rwlock_read r;
	struct cw ww, wr;

	cw_init(&ww);
	cw_init(&wr);
	ck_assert_int_eq(rouse_rwlock_try_read(l), 0);
	ck_assert_int_eq(rouse_rwlock_try_read(l), 0);
	ck_assert_int_eq(rouse_rwlock_write_init(&w, l), 0);
	ck_assert_int_eq(cw_poll(&w.base, &ww), ROUSE_PENDING);
	/* A writer waits: a later reader queues behind it, readers or no. */
	ck_assert_int_eq(rouse_rwlock_try_read(l), -EBUSY);
	ck_assert_int_eq(rouse_rwlock_read_init(&r, l), 0);
	ck_assert_int_eq(cw_poll(&r.base, &wr), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&r.base, &wr), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&wr.c.clones), 1);
	ck_assert_int_eq(rouse_rwlock_read_unlock(l), 0);
	ck_assert_int_eq(cw_wakes(&ww), 0);
	/* The last reader out hands it to the writer, and only to it. */
	ck_assert_int_eq(rouse_rwlock_read_unlock(l), 0);
	ck_assert_int_eq(cw_wakes(&ww), 1);
	ck_assert_int_eq(cw_wakes(&wr), 0);
	ck_assert_int_eq(rouse_rwlock_try_write(l), -EBUSY);
	ck_assert_int_eq(rouse_rwlock_free(l), -EBUSY);
	ck_assert_int_eq(cw_poll(&r.base, &wr), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&w.base, &ww), ROUSE_READY);
	ck_assert_int_eq(cw_poll(&w.base, &ww), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	ck_assert_int_eq(rouse_rwlock_write_unlock(l), 0);
	ck_assert_int_eq(cw_wakes(&wr), 1);
	ck_assert_int_eq(atomic_load(&wr.c.live), 1);
	ck_assert_int_eq(cw_poll(&r.base, &wr), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&r.base), 0);
	/* The reader holds it; another reader joins, a writer may not. */
	ck_assert_int_eq(rouse_rwlock_try_read(l), 0);
	ck_assert_int_eq(rouse_rwlock_try_write(l), -EBUSY);
	ck_assert_int_eq(rouse_rwlock_read_unlock(l), 0);
	ck_assert_int_eq(rouse_rwlock_read_unlock(l), 0);
	ck_assert_int_eq(rouse_rwlock_try_write(l), 0);
	ck_assert_int_eq(rouse_rwlock_write_unlock(l), 0);
	ck_assert_int_eq(rouse_rwlock_free(l), 0);
	cw_done(&ww);
	cw_done(&wr);
}
END_TEST

START_TEST(test_rwlock_many_readers)
{
	/* More readers than one wake batch, between two writers. */
	enum { N = 40, M = 3 };
	struct rouse_rwlock *l = rwlock_make();
	struct rouse_rwlock_read r[N], late[M];
	struct rouse_rwlock_write w;
	struct cw cr[N], cl[M], cww;
	int i;

	ck_assert_int_eq(rouse_rwlock_try_write(l), 0);
	for (i = 0; i < N; i++) {
		cw_init(&cr[i]);
		ck_assert_int_eq(rouse_rwlock_read_init(&r[i], l), 0);
		ck_assert_int_eq(cw_poll(&r[i].base, &cr[i]), ROUSE_PENDING);
	}
	cw_init(&cww);
	ck_assert_int_eq(rouse_rwlock_write_init(&w, l), 0);
	ck_assert_int_eq(cw_poll(&w.base, &cww), ROUSE_PENDING);
	for (i = 0; i < M; i++) {
		cw_init(&cl[i]);
		ck_assert_int_eq(rouse_rwlock_read_init(&late[i], l), 0);
		ck_assert_int_eq(cw_poll(&late[i].base, &cl[i]), ROUSE_PENDING);
	}
	/* The run of readers at the head, up to the writer, all at once. */
	ck_assert_int_eq(rouse_rwlock_write_unlock(l), 0);
	for (i = 0; i < N; i++)
		ck_assert_int_eq(cw_wakes(&cr[i]), 1);
	ck_assert_int_eq(cw_wakes(&cww), 0);
	for (i = 0; i < M; i++)
		ck_assert_int_eq(cw_wakes(&cl[i]), 0);
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(cw_poll(&r[i].base, &cr[i]), ROUSE_READY);
		ck_assert_int_eq(rouse_future_drop(&r[i].base), 0);
		cw_done(&cr[i]);
	}
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(cw_wakes(&cww), 0);
		ck_assert_int_eq(rouse_rwlock_read_unlock(l), 0);
	}
	ck_assert_int_eq(cw_wakes(&cww), 1);
	ck_assert_int_eq(cw_poll(&w.base, &cww), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	ck_assert_int_eq(rouse_rwlock_write_unlock(l), 0);
	for (i = 0; i < M; i++) {
		ck_assert_int_eq(cw_wakes(&cl[i]), 1);
		ck_assert_int_eq(cw_poll(&late[i].base, &cl[i]), ROUSE_READY);
		ck_assert_int_eq(rouse_future_drop(&late[i].base), 0);
		ck_assert_int_eq(rouse_rwlock_read_unlock(l), 0);
		cw_done(&cl[i]);
	}
	ck_assert_int_eq(rouse_rwlock_try_write(l), 0);
	ck_assert_int_eq(rouse_rwlock_free(l), 0);
	cw_done(&cww);
}
END_TEST

START_TEST(test_rwlock_cancel)
{
	struct rouse_rwlock *l = rwlock_make();
	struct rouse_rwlock_write w, w2;
	struct rouse_rwlock_read r, r2;
	struct cw ww, ww2, wr, wr2;

	cw_init(&ww);
	cw_init(&ww2);
	cw_init(&wr);
	cw_init(&wr2);
	/* A queued writer dropped lets the readers behind it through. */
	ck_assert_int_eq(rouse_rwlock_try_read(l), 0);
	ck_assert_int_eq(rouse_rwlock_write_init(&w, l), 0);
	ck_assert_int_eq(cw_poll(&w.base, &ww), ROUSE_PENDING);
	ck_assert_int_eq(rouse_rwlock_read_init(&r, l), 0);
	ck_assert_int_eq(cw_poll(&r.base, &wr), ROUSE_PENDING);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	ck_assert_int_eq(atomic_load(&ww.c.live), 1);
	ck_assert_int_eq(cw_wakes(&ww), 0);
	ck_assert_int_eq(cw_wakes(&wr), 1);
	ck_assert_int_eq(cw_poll(&r.base, &wr), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&r.base), 0);
	ck_assert_int_eq(rouse_rwlock_read_unlock(l), 0);
	ck_assert_int_eq(rouse_rwlock_read_unlock(l), 0);
	ck_assert_int_eq(rouse_rwlock_read_unlock(l), -EPERM);

	/* A writer granted and dropped unseen hands it on, to readers. */
	ck_assert_int_eq(rouse_rwlock_try_read(l), 0);
	ck_assert_int_eq(rouse_rwlock_write_init(&w, l), 0);
	ck_assert_int_eq(cw_poll(&w.base, &ww), ROUSE_PENDING);
	ck_assert_int_eq(rouse_rwlock_read_init(&r, l), 0);
	ck_assert_int_eq(cw_poll(&r.base, &wr), ROUSE_PENDING);
	ck_assert_int_eq(rouse_rwlock_read_init(&r2, l), 0);
	ck_assert_int_eq(cw_poll(&r2.base, &wr2), ROUSE_PENDING);
	ck_assert_int_eq(rouse_rwlock_read_unlock(l), 0);
	ck_assert_int_eq(cw_wakes(&ww), 1);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	ck_assert_int_eq(cw_wakes(&wr), 2);
	ck_assert_int_eq(cw_wakes(&wr2), 1);

	/* A reader granted and dropped unseen gives its read back. */
	ck_assert_int_eq(rouse_rwlock_write_init(&w2, l), 0);
	ck_assert_int_eq(cw_poll(&w2.base, &ww2), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&r.base, &wr), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&r.base), 0);
	ck_assert_int_eq(rouse_future_drop(&r2.base), 0);
	ck_assert_int_eq(cw_wakes(&ww2), 0);
	ck_assert_int_eq(rouse_rwlock_read_unlock(l), 0);
	ck_assert_int_eq(cw_wakes(&ww2), 1);
	/* And a writer granted, dropped unseen with nobody behind: free. */
	ck_assert_int_eq(rouse_rwlock_free(l), -EBUSY);
	ck_assert_int_eq(rouse_future_drop(&w2.base), 0);
	ck_assert_int_eq(rouse_rwlock_try_write(l), 0);
	ck_assert_int_eq(rouse_rwlock_write_unlock(l), 0);
	ck_assert_int_eq(rouse_rwlock_free(l), 0);
	cw_done(&ww);
	cw_done(&ww2);
	cw_done(&wr);
	cw_done(&wr2);
}
END_TEST

/* A waker that polls its write inline, and unlocks from inside too. */
struct inline_write {
	struct rouse_rwlock_write w;
	struct rouse_rwlock *l;
	struct rouse_waker waker;
	int ready;
};

static void inline_write_wake(struct call_waker *c, int nth)
{
	struct inline_write *iw = c->arg;

	if (test_poll_with(&iw->w.base, &iw->waker) == ROUSE_READY) {
		iw->ready++;
		ck_assert_int_eq(rouse_rwlock_write_unlock(iw->l), 0);
	}
}

START_TEST(test_rwlock_wake_reenters)
{
	struct rouse_rwlock *l = rwlock_make();
	struct inline_write iw[2];
	struct call_waker c[2];
	int i;

	ck_assert_int_eq(rouse_rwlock_try_read(l), 0);
	for (i = 0; i < 2; i++) {
		iw[i].l = l;
		iw[i].ready = 0;
		iw[i].waker = call_waker(&c[i], inline_write_wake, &iw[i]);
		ck_assert_int_eq(rouse_rwlock_write_init(&iw[i].w, l), 0);
		ck_assert_int_eq(test_poll_with(&iw[i].w.base, &iw[i].waker),
				 ROUSE_PENDING);
	}
	/* One unlock runs both writers, each inside the wake before. */
	ck_assert_int_eq(rouse_rwlock_read_unlock(l), 0);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(iw[i].ready, 1);
		ck_assert_int_eq(rouse_future_drop(&iw[i].w.base), 0);
		ck_assert_int_eq(rouse_waker_drop(&iw[i].waker), 0);
		ck_assert_int_eq(atomic_load(&c[i].live), 0);
	}
	ck_assert_int_eq(rouse_rwlock_try_write(l), 0);
	ck_assert_int_eq(rouse_rwlock_free(l), 0);
}
END_TEST

START_TEST(test_rwlock_einval)
{
	struct rouse_rwlock *l = (struct rouse_rwlock *)(void *)0x11;
	struct rouse_rwlock_read r;
	struct rouse_rwlock_write w;

	ck_assert_int_eq(rouse_rwlock_new(NULL), -EINVAL);
	ck_assert_int_eq(rouse_rwlock_free(NULL), -EINVAL);
	ck_assert_int_eq(rouse_rwlock_try_read(NULL), -EINVAL);
	ck_assert_int_eq(rouse_rwlock_try_write(NULL), -EINVAL);
	ck_assert_int_eq(rouse_rwlock_read_unlock(NULL), -EINVAL);
	ck_assert_int_eq(rouse_rwlock_write_unlock(NULL), -EINVAL);
	ck_assert_int_eq(rouse_rwlock_read_init(NULL, l), -EINVAL);
	ck_assert_int_eq(rouse_rwlock_read_init(&r, NULL), -EINVAL);
	ck_assert_int_eq(rouse_rwlock_write_init(NULL, l), -EINVAL);
	ck_assert_int_eq(rouse_rwlock_write_init(&w, NULL), -EINVAL);
}
END_TEST

/*
 * Workers take the lock N times each, one time in 4 for writing, some
 * held across a yield, some pending ones cancelled and redone.  Writers
 * find nobody inside; readers find no writer; the count of writes comes
 * out exact.  A grant lost to a cancel hangs the test.
 */
#define RW_WORKERS 6
#define RW_ITERS 4000

struct rw_shared {
	struct rouse_rwlock *l;
	atomic_int readers;	/* inside for reading now */
	atomic_int writers;	/* inside for writing now: 0 or 1 */
	atomic_int peak_readers;
	long writes;		/* guarded by the lock */
};

struct rw_worker {
	struct rouse_future base;
	struct rw_shared *sh;
	int id;
	int i;
	int state;		/* 0 idle, 1 locking, 2 held over a yield */
	bool cancelled;		/* this iteration dropped a pending lock */
	struct rouse_rwlock_read rd;
	struct rouse_rwlock_write wr;
	long my_writes;
};

static bool rw_writes(const struct rw_worker *w)
{
	return (w->i + w->id) % 4 == 0;
}

static void rw_enter(struct rw_worker *w)
{
	struct rw_shared *sh = w->sh;
	int now, peak;

	if (rw_writes(w)) {
		test_require_int(atomic_fetch_add(&sh->writers, 1), ==, 0);
		test_require_int(atomic_load(&sh->readers), ==, 0);
		sh->writes++;
		w->my_writes++;
		return;
	}
	now = atomic_fetch_add(&sh->readers, 1) + 1;
	test_require_int(atomic_load(&sh->writers), ==, 0);
	peak = atomic_load(&sh->peak_readers);
	while (now > peak &&
	       !atomic_compare_exchange_weak(&sh->peak_readers, &peak, now))
		;
}

static void rw_leave(struct rw_worker *w)
{
	struct rw_shared *sh = w->sh;

	if (rw_writes(w)) {
		test_require_int(atomic_fetch_sub(&sh->writers, 1), ==, 1);
		test_require_int(rouse_rwlock_write_unlock(sh->l), ==, 0);
	} else {
		atomic_fetch_sub(&sh->readers, 1);
		test_require_int(rouse_rwlock_read_unlock(sh->l), ==, 0);
	}
	w->i++;
	w->state = 0;
}

static struct rouse_future *rw_lock_future(struct rw_worker *w)
{
	return rw_writes(w) ? &w->wr.base : &w->rd.base;
}

static enum rouse_poll rw_worker_poll(struct rouse_future *f,
				      struct rouse_context *cx)
{
	struct rw_worker *w = (struct rw_worker *)f;

	while (w->i < RW_ITERS) {
		if (w->state == 2) {
			rw_leave(w);
			continue;
		}
		if (w->state == 0) {
			if (rw_writes(w))
				test_require_int(rouse_rwlock_write_init(
					&w->wr, w->sh->l), ==, 0);
			else
				test_require_int(rouse_rwlock_read_init(
					&w->rd, w->sh->l), ==, 0);
			w->state = 1;
		}
		if (rouse_future_poll(rw_lock_future(w), cx) ==
		    ROUSE_PENDING) {
			if (w->i % 5 != 1 || w->cancelled)
				return ROUSE_PENDING;
			/* Granted meanwhile or not, it must pass it on. */
			test_require_int(rouse_future_drop(rw_lock_future(w)),
					 ==, 0);
			w->cancelled = true;
			w->state = 0;
			return yield_now(cx);
		}
		test_require_int(rouse_future_drop(rw_lock_future(w)), ==, 0);
		w->cancelled = false;
		rw_enter(w);
		if (w->i % 3 == 0) {
			/* Held across a yield, so that others queue. */
			w->state = 2;
			return yield_now(cx);
		}
		rw_leave(w);
	}
	return ROUSE_READY;
}

static void rw_worker_drop(struct rouse_future *f)
{
	struct rw_worker *w = (struct rw_worker *)f;

	if (w->state == 1)
		rouse_future_drop(rw_lock_future(w));
}

static const struct rouse_future_vtable rw_worker_vtable = {
	rw_worker_poll, rw_worker_drop,
};

START_TEST(test_rwlock_contention)
{
	struct rw_worker w[RW_WORKERS];
	struct rouse_future *out[RW_WORKERS];
	struct rw_shared sh;
	struct run ru;
	long writes = 0;
	int i;

	sh.l = rwlock_make();
	atomic_init(&sh.readers, 0);
	atomic_init(&sh.writers, 0);
	atomic_init(&sh.peak_readers, 0);
	sh.writes = 0;
	for (i = 0; i < RW_WORKERS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].base.vtable = &rw_worker_vtable;
		w[i].sh = &sh;
		w[i].id = i;
	}
	run_workers(&ru, (enum run_mode)_i, w, sizeof(w[0]), RW_WORKERS, out);
	for (i = 0; i < RW_WORKERS; i++)
		writes += ((struct rw_worker *)out[i])->my_writes;
	run_workers_done(&ru, out);
	ck_assert_int_eq(sh.writes, writes);
	ck_assert_int_eq(writes, RW_WORKERS * RW_ITERS / 4);
	ck_assert_int_eq(atomic_load(&sh.readers), 0);
	ck_assert_int_eq(atomic_load(&sh.writers), 0);
	ck_assert_int_eq(rouse_rwlock_try_write(sh.l), 0);
	ck_assert_int_eq(rouse_rwlock_free(sh.l), 0);
}
END_TEST

/* ==== barrier ========================================================== */

static struct rouse_barrier *barrier_make(size_t parties)
{
	struct rouse_barrier *b = NULL;

	ck_assert_int_eq(rouse_barrier_new(parties, &b), 0);
	ck_assert_ptr_nonnull(b);
	return b;
}

START_TEST(test_barrier_basic)
{
	struct rouse_barrier *b = barrier_make(3);
	struct rouse_barrier_wait w[3];
	struct cw c[3];
	int round, i;

	for (i = 0; i < 3; i++)
		cw_init(&c[i]);
	/* Twice: the barrier is used again once it released. */
	for (round = 0; round < 2; round++) {
		for (i = 0; i < 3; i++)
			ck_assert_int_eq(rouse_barrier_wait_init(&w[i], b), 0);
		/* Initialised is not arrived: only a poll arrives. */
		ck_assert_int_eq(cw_poll(&w[0].base, &c[0]), ROUSE_PENDING);
		ck_assert_int_eq(cw_poll(&w[1].base, &c[1]), ROUSE_PENDING);
		ck_assert_int_eq(cw_poll(&w[0].base, &c[0]), ROUSE_PENDING);
		ck_assert_int_eq(atomic_load(&c[0].c.clones), round + 1);
		ck_assert_int_eq(rouse_barrier_free(b), -EBUSY);
		ck_assert_int_eq(cw_wakes(&c[0]), round);
		/* The last to arrive goes on at once, as the leader. */
		ck_assert_int_eq(cw_poll(&w[2].base, &c[2]), ROUSE_READY);
		ck_assert_int_eq(w[2].leader, 1);
		ck_assert_int_eq(atomic_load(&c[2].c.clones), 0);
		ck_assert_int_eq(cw_wakes(&c[0]), round + 1);
		ck_assert_int_eq(cw_wakes(&c[1]), round + 1);
		ck_assert_int_eq(cw_wakes(&c[2]), 0);
		for (i = 0; i < 2; i++) {
			ck_assert_int_eq(cw_poll(&w[i].base, &c[i]),
					 ROUSE_READY);
			ck_assert_int_eq(cw_poll(&w[i].base, &c[i]),
					 ROUSE_READY);
			ck_assert_int_eq(w[i].leader, 0);
		}
		for (i = 0; i < 3; i++)
			ck_assert_int_eq(rouse_future_drop(&w[i].base), 0);
	}
	ck_assert_int_eq(rouse_barrier_free(b), 0);

	/* One party: every wait is ready at once, and leads. */
	b = barrier_make(1);
	for (round = 0; round < 3; round++) {
		ck_assert_int_eq(rouse_barrier_wait_init(&w[0], b), 0);
		ck_assert_int_eq(cw_poll(&w[0].base, &c[0]), ROUSE_READY);
		ck_assert_int_eq(w[0].leader, 1);
		ck_assert_int_eq(rouse_future_drop(&w[0].base), 0);
	}
	ck_assert_int_eq(rouse_barrier_free(b), 0);
	for (i = 0; i < 3; i++)
		cw_done(&c[i]);
}
END_TEST

START_TEST(test_barrier_cancel)
{
	struct rouse_barrier *b = barrier_make(3);
	struct rouse_barrier_wait a, x, y, z;
	struct cw ca, cx, cy, cz;

	cw_init(&ca);
	cw_init(&cx);
	cw_init(&cy);
	cw_init(&cz);
	/* Dropped before the release: its arrival is taken back. */
	ck_assert_int_eq(rouse_barrier_wait_init(&a, b), 0);
	ck_assert_int_eq(rouse_barrier_wait_init(&x, b), 0);
	ck_assert_int_eq(rouse_barrier_wait_init(&y, b), 0);
	ck_assert_int_eq(cw_poll(&a.base, &ca), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&x.base, &cx), ROUSE_PENDING);
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	ck_assert_int_eq(atomic_load(&ca.c.live), 1);
	ck_assert_int_eq(cw_wakes(&ca), 0);
	/* So this third poll is the second arrival, and waits. */
	ck_assert_int_eq(cw_poll(&y.base, &cy), ROUSE_PENDING);
	ck_assert_int_eq(cw_wakes(&cx), 0);
	ck_assert_int_eq(rouse_barrier_wait_init(&z, b), 0);
	ck_assert_int_eq(cw_poll(&z.base, &cz), ROUSE_READY);
	ck_assert_int_eq(z.leader, 1);
	ck_assert_int_eq(rouse_future_drop(&z.base), 0);
	ck_assert_int_eq(cw_wakes(&cx), 1);
	ck_assert_int_eq(cw_wakes(&cy), 1);
	/* Dropped after the release, unseen: nothing to undo. */
	ck_assert_int_eq(rouse_future_drop(&x.base), 0);
	ck_assert_int_eq(cw_poll(&y.base, &cy), ROUSE_READY);
	ck_assert_int_eq(y.leader, 0);
	ck_assert_int_eq(rouse_future_drop(&y.base), 0);
	/* The next generation starts from 0: x's drop did not count. */
	ck_assert_int_eq(rouse_barrier_wait_init(&x, b), 0);
	ck_assert_int_eq(rouse_barrier_wait_init(&y, b), 0);
	ck_assert_int_eq(cw_poll(&x.base, &cx), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&y.base, &cy), ROUSE_PENDING);
	ck_assert_int_eq(rouse_future_drop(&x.base), 0);
	ck_assert_int_eq(rouse_future_drop(&y.base), 0);
	/* Nothing left queued: it is free, and a lone wait waits. */
	ck_assert_int_eq(rouse_barrier_wait_init(&a, b), 0);
	ck_assert_int_eq(cw_poll(&a.base, &ca), ROUSE_PENDING);
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	ck_assert_int_eq(rouse_barrier_free(b), 0);
	ck_assert_int_eq(cw_wakes(&cx), 1);
	ck_assert_int_eq(cw_wakes(&cy), 1);
	cw_done(&ca);
	cw_done(&cx);
	cw_done(&cy);
	cw_done(&cz);
}
END_TEST

/*
 * More parties than one wake batch.  Each released wait, from inside its
 * wake, is polled ready and arrives again for the next generation, so
 * that arrivals of generation 2 queue while generation 1 is still being
 * released in batches; the last arrival of generation 2 releases them.
 */
#define BARRIER_N 41

struct bar_party {
	struct rouse_barrier *b;
	struct rouse_barrier_wait w;
	struct rouse_waker waker;
	int gen;		/* generations it got through */
	int leads;
};

static void bar_party_wake(struct call_waker *c, int nth)
{
	struct bar_party *p = c->arg;

	ck_assert_int_eq(test_poll_with(&p->w.base, &p->waker), ROUSE_READY);
	p->leads += p->w.leader;
	p->gen++;
	ck_assert_int_eq(rouse_future_drop(&p->w.base), 0);
	if (p->gen == 2)
		return;
	ck_assert_int_eq(rouse_barrier_wait_init(&p->w, p->b), 0);
	ck_assert_int_eq(test_poll_with(&p->w.base, &p->waker),
			 ROUSE_PENDING);
}

START_TEST(test_barrier_many)
{
	struct rouse_barrier *b = barrier_make(BARRIER_N);
	struct bar_party p[BARRIER_N - 1];
	struct call_waker c[BARRIER_N - 1];
	struct rouse_barrier_wait last;
	int i;

	for (i = 0; i < BARRIER_N - 1; i++) {
		p[i].b = b;
		p[i].gen = 0;
		p[i].leads = 0;
		p[i].waker = call_waker(&c[i], bar_party_wake, &p[i]);
		ck_assert_int_eq(rouse_barrier_wait_init(&p[i].w, b), 0);
		ck_assert_int_eq(test_poll_with(&p[i].w.base, &p[i].waker),
				 ROUSE_PENDING);
	}
	/* Generation 1: released, and 40 arrive again meanwhile. */
	ck_assert_int_eq(rouse_barrier_wait_init(&last, b), 0);
	ck_assert_int_eq(test_poll_noop(&last.base), ROUSE_READY);
	ck_assert_int_eq(last.leader, 1);
	ck_assert_int_eq(rouse_future_drop(&last.base), 0);
	for (i = 0; i < BARRIER_N - 1; i++) {
		ck_assert_int_eq(p[i].gen, 1);
		ck_assert_int_eq(atomic_load(&c[i].wakes), 1);
	}
	/* Generation 2, with the same last party. */
	ck_assert_int_eq(rouse_barrier_wait_init(&last, b), 0);
	ck_assert_int_eq(test_poll_noop(&last.base), ROUSE_READY);
	ck_assert_int_eq(last.leader, 1);
	ck_assert_int_eq(rouse_future_drop(&last.base), 0);
	for (i = 0; i < BARRIER_N - 1; i++) {
		ck_assert_int_eq(p[i].gen, 2);
		ck_assert_int_eq(p[i].leads, 0);
		ck_assert_int_eq(atomic_load(&c[i].wakes), 2);
		ck_assert_int_eq(rouse_waker_drop(&p[i].waker), 0);
		ck_assert_int_eq(atomic_load(&c[i].live), 0);
	}
	ck_assert_int_eq(rouse_barrier_free(b), 0);
}
END_TEST

START_TEST(test_barrier_einval)
{
	struct rouse_barrier *b = (struct rouse_barrier *)(void *)0x11;
	struct rouse_barrier_wait w;

	ck_assert_int_eq(rouse_barrier_new(2, NULL), -EINVAL);
	ck_assert_int_eq(rouse_barrier_new(0, &b), -EINVAL);
	ck_assert_int_eq(rouse_barrier_free(NULL), -EINVAL);
	ck_assert_int_eq(rouse_barrier_wait_init(NULL, b), -EINVAL);
	ck_assert_int_eq(rouse_barrier_wait_init(&w, NULL), -EINVAL);
}
END_TEST

/*
 * A drop that races the release, on two threads, many rounds: a waits,
 * then is dropped on its thread while b arrives on the other.  Either
 * the drop came first (a's arrival is taken back, b waits, and a fresh
 * wait of a's releases it) or the release did (b leads at once); the
 * barrier is consistent either way, so the next round works.
 */
#define BARRIER_RACES 3000

struct bar_race {
	struct rouse_barrier *b;
	struct test_barrier round;
	struct rouse_barrier_wait a;
	atomic_int b_pending;	/* b's poll said pending this round */
};

static void *bar_race_b(void *arg)
{
	struct bar_race *r = arg;
	struct rouse_barrier_wait w;
	int i;

	for (i = 0; i < BARRIER_RACES; i++) {
		test_barrier_wait(&r->round);
		test_require_int(rouse_barrier_wait_init(&w, r->b), ==, 0);
		if (test_poll_noop(&w.base) == ROUSE_READY) {
			test_require_int(w.leader, ==, 1);
			test_require_int(rouse_future_drop(&w.base), ==, 0);
			test_barrier_wait(&r->round);
			test_barrier_wait(&r->round);
			continue;
		}
		atomic_store(&r->b_pending, 1);
		test_barrier_wait(&r->round);
		/* a arrives again on the other thread and releases us. */
		test_require_int(rouse_block_on(&w.base), ==, 0);
		test_require_int(w.leader, ==, 0);
		test_require_int(rouse_future_drop(&w.base), ==, 0);
		test_barrier_wait(&r->round);
	}
	return NULL;
}

START_TEST(test_barrier_drop_race)
{
	struct bar_race r;
	struct cw x;
	pthread_t t;
	int i;

	cw_init(&x);
	r.b = barrier_make(2);
	test_barrier_init(&r.round, 2);
	t = test_thread_start(bar_race_b, &r);
	for (i = 0; i < BARRIER_RACES; i++) {
		atomic_store(&r.b_pending, 0);
		ck_assert_int_eq(rouse_barrier_wait_init(&r.a, r.b), 0);
		test_require_int(cw_poll(&r.a.base, &x), ==, ROUSE_PENDING);
		test_barrier_wait(&r.round);
		test_require_int(rouse_future_drop(&r.a.base), ==, 0);
		test_barrier_wait(&r.round);
		if (atomic_load(&r.b_pending)) {
			struct rouse_barrier_wait again;

			test_require_int(rouse_barrier_wait_init(&again, r.b),
					 ==, 0);
			test_require_int(test_poll_noop(&again.base), ==,
					 ROUSE_READY);
			test_require_int(again.leader, ==, 1);
			test_require_int(rouse_future_drop(&again.base), ==, 0);
		}
		test_barrier_wait(&r.round);
		/* Its clone was dropped or woken: never both, never kept. */
		test_require_int(atomic_load(&x.c.live), ==, 1);
	}
	test_thread_join(t);
	ck_assert_int_eq(cw_wakes(&x) + atomic_load(&x.c.drops),
			 atomic_load(&x.c.clones));
	ck_assert_int_eq(rouse_barrier_free(r.b), 0);
	test_barrier_destroy(&r.round);
	cw_done(&x);
}
END_TEST

/*
 * Workers go through the barrier N times each; the count of arrivals per
 * round shows that nobody got through before every party had arrived,
 * and each generation has exactly one leader.
 */
#define BAR_WORKERS 6
#define BAR_ROUNDS 2000

struct bar_shared {
	struct rouse_barrier *b;
	atomic_int arrived[BAR_ROUNDS];
	atomic_int leaders[BAR_ROUNDS];
};

struct bar_worker {
	struct rouse_future base;
	struct bar_shared *sh;
	struct rouse_barrier_wait w;
	int round;
	bool waiting;
};

static enum rouse_poll bar_worker_poll(struct rouse_future *f,
				       struct rouse_context *cx)
{
	struct bar_worker *w = (struct bar_worker *)f;
	struct bar_shared *sh = w->sh;

	while (w->round < BAR_ROUNDS) {
		if (!w->waiting) {
			atomic_fetch_add(&sh->arrived[w->round], 1);
			test_require_int(rouse_barrier_wait_init(&w->w, sh->b),
					 ==, 0);
			w->waiting = true;
		}
		if (rouse_future_poll(&w->w.base, cx) == ROUSE_PENDING)
			return ROUSE_PENDING;
		test_require_int(atomic_load(&sh->arrived[w->round]), ==,
				 BAR_WORKERS);
		atomic_fetch_add(&sh->leaders[w->round], w->w.leader);
		test_require_int(rouse_future_drop(&w->w.base), ==, 0);
		w->waiting = false;
		w->round++;
		if (w->round % 16 == 0)
			return yield_now(cx);
	}
	return ROUSE_READY;
}

static void bar_worker_drop(struct rouse_future *f)
{
	struct bar_worker *w = (struct bar_worker *)f;

	if (w->waiting)
		rouse_future_drop(&w->w.base);
}

static const struct rouse_future_vtable bar_worker_vtable = {
	bar_worker_poll, bar_worker_drop,
};

START_TEST(test_barrier_contention)
{
	struct bar_worker w[BAR_WORKERS];
	struct rouse_future *out[BAR_WORKERS];
	struct bar_shared *sh;
	struct run ru;
	int i;

	sh = calloc(1, sizeof(*sh));
	ck_assert_ptr_nonnull(sh);
	sh->b = barrier_make(BAR_WORKERS);
	for (i = 0; i < BAR_WORKERS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].base.vtable = &bar_worker_vtable;
		w[i].sh = sh;
	}
	run_workers(&ru, (enum run_mode)_i, w, sizeof(w[0]), BAR_WORKERS,
		    out);
	for (i = 0; i < BAR_WORKERS; i++)
		ck_assert_int_eq(((struct bar_worker *)out[i])->round,
				 BAR_ROUNDS);
	run_workers_done(&ru, out);
	for (i = 0; i < BAR_ROUNDS; i++)
		ck_assert_int_eq(atomic_load(&sh->leaders[i]), 1);
	ck_assert_int_eq(rouse_barrier_free(sh->b), 0);
	free(sh);
}
END_TEST

/* ==== watch ============================================================ */

static struct rouse_watch *watch_make(int initial)
{
	struct rouse_watch *w = NULL;

	ck_assert_int_eq(rouse_watch_new(sizeof(int), &initial, &w), 0);
	ck_assert_ptr_nonnull(w);
	return w;
}

START_TEST(test_watch_basic)
{
	struct rouse_watch *w = watch_make(10);
	struct rouse_watch_receiver rx;
	struct rouse_watch_changed c;
	int v = 0, out = -1;
	struct cw x;

	cw_init(&x);
	ck_assert_int_eq(rouse_watch_subscribe(w, &rx), 0);
	/* A new receiver has seen the current value. */
	ck_assert_int_eq(rouse_watch_has_changed(&rx), 0);
	ck_assert_int_eq(rouse_watch_read(&rx, &out), 0);
	ck_assert_int_eq(out, 10);
	ck_assert_int_eq(rouse_watch_changed_init(&c, &rx, &out), 0);
	ck_assert_int_eq(cw_poll(&c.base, &x), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&c.base, &x), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&x.c.clones), 1);
	ck_assert_int_eq(rouse_watch_unsubscribe(&rx), -EBUSY);
	v = 11;
	ck_assert_int_eq(rouse_watch_send(w, &v), 0);
	v = 0;	/* the value was copied */
	ck_assert_int_eq(cw_wakes(&x), 1);
	ck_assert_int_eq(rouse_watch_has_changed(&rx), 1);
	ck_assert_int_eq(cw_poll(&c.base, &x), ROUSE_READY);
	ck_assert_int_eq(c.result, 0);
	ck_assert_int_eq(c.version, 1);
	ck_assert_int_eq(out, 11);
	ck_assert_int_eq(rouse_future_drop(&c.base), 0);
	ck_assert_int_eq(rouse_watch_has_changed(&rx), 0);
	/* Sends faster than the receiver looks merge into the latest. */
	v = 12;
	ck_assert_int_eq(rouse_watch_send(w, &v), 0);
	v = 13;
	ck_assert_int_eq(rouse_watch_send(w, &v), 0);
	ck_assert_int_eq(rouse_watch_changed_init(&c, &rx, &out), 0);
	ck_assert_int_eq(cw_poll(&c.base, &x), ROUSE_READY);
	ck_assert_int_eq(atomic_load(&x.c.clones), 1);
	ck_assert_int_eq(out, 13);
	ck_assert_int_eq(c.version, 3);
	ck_assert_int_eq(rouse_future_drop(&c.base), 0);
	/* read marks it seen, and says whether it was news. */
	v = 14;
	ck_assert_int_eq(rouse_watch_send(w, &v), 0);
	ck_assert_int_eq(rouse_watch_read(&rx, &out), 1);
	ck_assert_int_eq(out, 14);
	ck_assert_int_eq(rouse_watch_read(&rx, &out), 0);
	ck_assert_int_eq(rouse_watch_has_changed(&rx), 0);
	/* Without out, a change is only marked seen. */
	ck_assert_int_eq(rouse_watch_send(w, &v), 0);
	ck_assert_int_eq(rouse_watch_changed_init(&c, &rx, NULL), 0);
	ck_assert_int_eq(cw_poll(&c.base, &x), ROUSE_READY);
	ck_assert_int_eq(c.result, 0);
	ck_assert_int_eq(rouse_future_drop(&c.base), 0);
	ck_assert_int_eq(rouse_watch_read(&rx, NULL), 0);
	/* A dropped changed future took nothing. */
	ck_assert_int_eq(rouse_watch_changed_init(&c, &rx, &out), 0);
	ck_assert_int_eq(cw_poll(&c.base, &x), ROUSE_PENDING);
	ck_assert_int_eq(rouse_future_drop(&c.base), 0);
	ck_assert_int_eq(atomic_load(&x.c.live), 1);
	ck_assert_int_eq(rouse_watch_close(w), 0);
	ck_assert_int_eq(rouse_watch_unsubscribe(&rx), 0);
	ck_assert_int_eq(rouse_watch_unsubscribe(&rx), -EINVAL);
	cw_done(&x);
}
END_TEST

START_TEST(test_watch_close)
{
	struct rouse_watch *w = watch_make(0);
	struct rouse_watch_receiver rx, late;
	struct rouse_watch_changed c;
	int v = 1, out = -1;
	struct cw x;

	cw_init(&x);
	ck_assert_int_eq(rouse_watch_subscribe(w, &rx), 0);
	ck_assert_int_eq(rouse_watch_changed_init(&c, &rx, &out), 0);
	ck_assert_int_eq(cw_poll(&c.base, &x), ROUSE_PENDING);
	ck_assert_int_eq(rouse_watch_close(w), 0);
	ck_assert_int_eq(cw_wakes(&x), 1);
	ck_assert_int_eq(cw_poll(&c.base, &x), ROUSE_READY);
	ck_assert_int_eq(c.result, -EPIPE);
	ck_assert_int_eq(out, -1);
	ck_assert_int_eq(rouse_future_drop(&c.base), 0);
	ck_assert_int_eq(rouse_watch_has_changed(&rx), -EPIPE);
	/* The receiver keeps the object: reading, subscribing still work. */
	ck_assert_int_eq(rouse_watch_read(&rx, &out), 0);
	ck_assert_int_eq(out, 0);
	ck_assert_int_eq(rouse_watch_subscribe(w, &late), 0);
	ck_assert_int_eq(rouse_watch_has_changed(&late), -EPIPE);
	ck_assert_int_eq(rouse_watch_send(w, &v), -EPIPE);
	ck_assert_int_eq(rouse_watch_close(w), -EINVAL);
	ck_assert_int_eq(rouse_watch_unsubscribe(&late), 0);
	ck_assert_int_eq(rouse_watch_unsubscribe(&rx), 0);

	/* A value sent before the close is still news; then the end. */
	w = watch_make(0);
	ck_assert_int_eq(rouse_watch_subscribe(w, &rx), 0);
	ck_assert_int_eq(rouse_watch_send(w, &v), 0);
	ck_assert_int_eq(rouse_watch_close(w), 0);
	ck_assert_int_eq(rouse_watch_has_changed(&rx), 1);
	ck_assert_int_eq(rouse_watch_changed_init(&c, &rx, &out), 0);
	ck_assert_int_eq(cw_poll(&c.base, &x), ROUSE_READY);
	ck_assert_int_eq(c.result, 0);
	ck_assert_int_eq(out, 1);
	ck_assert_int_eq(rouse_future_drop(&c.base), 0);
	ck_assert_int_eq(rouse_watch_changed_init(&c, &rx, &out), 0);
	ck_assert_int_eq(cw_poll(&c.base, &x), ROUSE_READY);
	ck_assert_int_eq(c.result, -EPIPE);
	ck_assert_int_eq(rouse_future_drop(&c.base), 0);
	ck_assert_int_eq(rouse_watch_unsubscribe(&rx), 0);

	/* Receivers may go first; the sender's close frees it then. */
	w = watch_make(0);
	ck_assert_int_eq(rouse_watch_subscribe(w, &rx), 0);
	ck_assert_int_eq(rouse_watch_unsubscribe(&rx), 0);
	ck_assert_int_eq(rouse_watch_send(w, &v), 0);
	ck_assert_int_eq(rouse_watch_close(w), 0);

	/* Zero-size values: bare change notices. */
	ck_assert_int_eq(rouse_watch_new(0, NULL, &w), 0);
	ck_assert_int_eq(rouse_watch_subscribe(w, &rx), 0);
	ck_assert_int_eq(rouse_watch_changed_init(&c, &rx, NULL), 0);
	ck_assert_int_eq(cw_poll(&c.base, &x), ROUSE_PENDING);
	ck_assert_int_eq(rouse_watch_send(w, NULL), 0);
	ck_assert_int_eq(cw_poll(&c.base, &x), ROUSE_READY);
	ck_assert_int_eq(c.result, 0);
	ck_assert_int_eq(c.version, 1);
	ck_assert_int_eq(rouse_future_drop(&c.base), 0);
	ck_assert_int_eq(rouse_watch_close(w), 0);
	ck_assert_int_eq(rouse_watch_unsubscribe(&rx), 0);
	cw_done(&x);
}
END_TEST

START_TEST(test_watch_many)
{
	enum { N = 40 };	/* more than one wake batch */
	struct rouse_watch *w = watch_make(0);
	struct rouse_watch_receiver rx[N];
	struct rouse_watch_changed c[N];
	int out[N], v = 5, i;
	struct cw x[N];

	for (i = 0; i < N; i++) {
		cw_init(&x[i]);
		out[i] = -1;
		ck_assert_int_eq(rouse_watch_subscribe(w, &rx[i]), 0);
		ck_assert_int_eq(rouse_watch_changed_init(&c[i], &rx[i],
							  &out[i]), 0);
		ck_assert_int_eq(cw_poll(&c[i].base, &x[i]), ROUSE_PENDING);
	}
	/* Dropped while queued: never woken. */
	ck_assert_int_eq(rouse_future_drop(&c[0].base), 0);
	ck_assert_int_eq(rouse_watch_send(w, &v), 0);
	ck_assert_int_eq(cw_wakes(&x[0]), 0);
	ck_assert_int_eq(atomic_load(&x[0].c.live), 1);
	/* Dropped after its wake, unseen: the news stays for rx[1]. */
	ck_assert_int_eq(rouse_future_drop(&c[1].base), 0);
	ck_assert_int_eq(rouse_watch_has_changed(&rx[1]), 1);
	ck_assert_int_eq(rouse_watch_has_changed(&rx[0]), 1);
	v = 6;
	ck_assert_int_eq(rouse_watch_send(w, &v), 0);
	for (i = 1; i < N; i++) {
		/* One wake for the first send; the second found no waiter. */
		ck_assert_int_eq(cw_wakes(&x[i]), 1);
		if (i > 1) {
			ck_assert_int_eq(cw_poll(&c[i].base, &x[i]),
					 ROUSE_READY);
			ck_assert_int_eq(out[i], 6);
			ck_assert_int_eq(rouse_future_drop(&c[i].base), 0);
		}
	}
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(rouse_watch_unsubscribe(&rx[i]), 0);
		cw_done(&x[i]);
	}
	ck_assert_int_eq(rouse_watch_close(w), 0);
}
END_TEST

/* A waker that polls inline and waits again at once: the send ends. */
struct inline_watch {
	struct rouse_watch_receiver rx;
	struct rouse_watch_changed c;
	struct rouse_waker waker;
	int out, ready;
};

static void inline_watch_wake(struct call_waker *c, int nth)
{
	struct inline_watch *iw = c->arg;

	if (test_poll_with(&iw->c.base, &iw->waker) != ROUSE_READY)
		return;
	iw->ready++;
	if (iw->c.result == -EPIPE)
		return;		/* the end: left for the test to see */
	ck_assert_int_eq(rouse_future_drop(&iw->c.base), 0);
	ck_assert_int_eq(rouse_watch_changed_init(&iw->c, &iw->rx, &iw->out),
			 0);
	ck_assert_int_eq(test_poll_with(&iw->c.base, &iw->waker),
			 ROUSE_PENDING);
}

START_TEST(test_watch_wake_reenters)
{
	struct rouse_watch *w = watch_make(0);
	struct inline_watch iw;
	struct call_waker c;
	int v;

	iw.ready = 0;
	iw.waker = call_waker(&c, inline_watch_wake, &iw);
	ck_assert_int_eq(rouse_watch_subscribe(w, &iw.rx), 0);
	ck_assert_int_eq(rouse_watch_changed_init(&iw.c, &iw.rx, &iw.out), 0);
	ck_assert_int_eq(test_poll_with(&iw.c.base, &iw.waker), ROUSE_PENDING);
	for (v = 1; v <= 3; v++) {
		ck_assert_int_eq(rouse_watch_send(w, &v), 0);
		ck_assert_int_eq(iw.ready, v);
		ck_assert_int_eq(iw.out, v);
	}
	ck_assert_int_eq(rouse_watch_close(w), 0);
	/* The close woke it: -EPIPE, and no new wait. */
	ck_assert_int_eq(iw.ready, 4);
	ck_assert_int_eq(iw.c.result, -EPIPE);
	ck_assert_int_eq(rouse_future_drop(&iw.c.base), 0);
	ck_assert_int_eq(rouse_watch_unsubscribe(&iw.rx), 0);
	ck_assert_int_eq(rouse_waker_drop(&iw.waker), 0);
	ck_assert_int_eq(atomic_load(&c.live), 0);
}
END_TEST

START_TEST(test_watch_einval)
{
	struct rouse_watch *w = watch_make(0);
	struct rouse_watch_receiver rx = { NULL, 0, 0 };
	struct rouse_watch_changed c;
	int v = 0;

	ck_assert_int_eq(rouse_watch_new(4, &v, NULL), -EINVAL);
	ck_assert_int_eq(rouse_watch_new(4, NULL, &w), -EINVAL);
	ck_assert_int_eq(rouse_watch_new(SIZE_MAX, &v, &w), -EINVAL);
	ck_assert_int_eq(rouse_watch_send(NULL, &v), -EINVAL);
	ck_assert_int_eq(rouse_watch_send(w, NULL), -EINVAL);
	ck_assert_int_eq(rouse_watch_close(NULL), -EINVAL);
	ck_assert_int_eq(rouse_watch_subscribe(NULL, &rx), -EINVAL);
	ck_assert_int_eq(rouse_watch_subscribe(w, NULL), -EINVAL);
	ck_assert_int_eq(rouse_watch_unsubscribe(NULL), -EINVAL);
	ck_assert_int_eq(rouse_watch_unsubscribe(&rx), -EINVAL);
	ck_assert_int_eq(rouse_watch_read(NULL, &v), -EINVAL);
	ck_assert_int_eq(rouse_watch_read(&rx, &v), -EINVAL);
	ck_assert_int_eq(rouse_watch_has_changed(NULL), -EINVAL);
	ck_assert_int_eq(rouse_watch_has_changed(&rx), -EINVAL);
	ck_assert_int_eq(rouse_watch_changed_init(NULL, &rx, &v), -EINVAL);
	ck_assert_int_eq(rouse_watch_changed_init(&c, NULL, &v), -EINVAL);
	ck_assert_int_eq(rouse_watch_changed_init(&c, &rx, &v), -EINVAL);
	ck_assert_int_eq(rouse_watch_close(w), 0);
}
END_TEST

/*
 * One thread sends 1..N, yielding now and then; the workers follow with
 * changed futures (some pending ones cancelled and redone) until -EPIPE.
 * Each sees a strictly rising sequence of versions and values that ends
 * with N: none goes back, the last is never missed.
 */
#define WATCH_WORKERS 5
#define WATCH_SENDS 20000

struct watch_worker {
	struct rouse_future base;
	struct rouse_watch_receiver *rx;
	struct rouse_watch_changed c;
	int v;			/* the value the change copied */
	bool waiting;
	unsigned int pends;	/* every 3rd pending change is cancelled */
	int last;		/* the last value seen */
	uint64_t last_version;
	int changes;
};

static enum rouse_poll watch_worker_poll(struct rouse_future *f,
					 struct rouse_context *cx)
{
	struct watch_worker *w = (struct watch_worker *)f;

	for (;;) {
		if (!w->waiting) {
			test_require_int(rouse_watch_changed_init(&w->c, w->rx,
								  &w->v),
					 ==, 0);
			w->waiting = true;
		}
		if (rouse_future_poll(&w->c.base, cx) == ROUSE_PENDING) {
			if (++w->pends % 3 != 0)
				return ROUSE_PENDING;
			test_require_int(rouse_future_drop(&w->c.base), ==, 0);
			w->waiting = false;
			return yield_now(cx);
		}
		test_require_int(rouse_future_drop(&w->c.base), ==, 0);
		w->waiting = false;
		if (w->c.result == -EPIPE)
			return ROUSE_READY;
		test_require_int(w->c.result, ==, 0);
		test_require(w->c.version > w->last_version);
		test_require(w->v > w->last);
		/* Value and version were taken together. */
		test_require_int(w->v, ==, (int)w->c.version);
		w->last = w->v;
		w->last_version = w->c.version;
		w->changes++;
	}
}

static void watch_worker_drop(struct rouse_future *f)
{
	struct watch_worker *w = (struct watch_worker *)f;

	if (w->waiting)
		rouse_future_drop(&w->c.base);
}

static const struct rouse_future_vtable watch_worker_vtable = {
	watch_worker_poll, watch_worker_drop,
};

static void *watch_sender(void *arg)
{
	struct rouse_watch *w = arg;
	int v;

	for (v = 1; v <= WATCH_SENDS; v++) {
		test_require_int(rouse_watch_send(w, &v), ==, 0);
		if (v % 128 == 0)
			sched_yield();
	}
	test_require_int(rouse_watch_close(w), ==, 0);
	return NULL;
}

START_TEST(test_watch_contention)
{
	struct rouse_watch_receiver rx[WATCH_WORKERS];
	struct watch_worker w[WATCH_WORKERS];
	struct rouse_future *out[WATCH_WORKERS];
	struct rouse_watch *wa = watch_make(0);
	struct run ru;
	pthread_t t;
	int i;

	for (i = 0; i < WATCH_WORKERS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].base.vtable = &watch_worker_vtable;
		ck_assert_int_eq(rouse_watch_subscribe(wa, &rx[i]), 0);
		w[i].rx = &rx[i];
	}
	t = test_thread_start(watch_sender, wa);
	run_workers(&ru, (enum run_mode)_i, w, sizeof(w[0]), WATCH_WORKERS,
		    out);
	test_thread_join(t);
	for (i = 0; i < WATCH_WORKERS; i++) {
		struct watch_worker *o = (struct watch_worker *)out[i];

		ck_assert_int_eq(o->last, WATCH_SENDS);
		ck_assert_int_ge(o->changes, 1);
	}
	run_workers_done(&ru, out);
	for (i = 0; i < WATCH_WORKERS; i++)
		ck_assert_int_eq(rouse_watch_unsubscribe(&rx[i]), 0);
}
END_TEST

/* ==== broadcast ======================================================== */

static struct rouse_broadcast *bc_make(size_t size, size_t capacity)
{
	struct rouse_broadcast *b = NULL;

	ck_assert_int_eq(rouse_broadcast_new(size, capacity, &b), 0);
	ck_assert_ptr_nonnull(b);
	return b;
}

START_TEST(test_broadcast_order)
{
	struct rouse_broadcast *b = bc_make(sizeof(int), 4);
	struct rouse_broadcast_receiver r1, r2;
	struct rouse_broadcast_recv f;
	uint64_t missed = 7;
	int v, out = -1;
	struct cw x;

	cw_init(&x);
	/* Nobody listens: the value is for nobody. */
	v = 0;
	ck_assert_int_eq(rouse_broadcast_send(b, &v), 0);
	ck_assert_int_eq(rouse_broadcast_subscribe(b, &r1), 0);
	ck_assert_int_eq(rouse_broadcast_try_recv(&r1, &out, &missed),
			 -EAGAIN);
	ck_assert_int_eq(missed, 0);
	for (v = 1; v <= 2; v++)
		ck_assert_int_eq(rouse_broadcast_send(b, &v), 1);
	ck_assert_int_eq(rouse_broadcast_subscribe(b, &r2), 0);
	v = 3;
	ck_assert_int_eq(rouse_broadcast_send(b, &v), 2);
	/* Each sees every value sent after it subscribed, in order. */
	for (v = 1; v <= 3; v++) {
		ck_assert_int_eq(rouse_broadcast_try_recv(&r1, &out, NULL), 0);
		ck_assert_int_eq(out, v);
	}
	ck_assert_int_eq(rouse_broadcast_try_recv(&r1, &out, NULL), -EAGAIN);
	ck_assert_int_eq(rouse_broadcast_recv_init(&f, &r2, &out), 0);
	ck_assert_int_eq(cw_poll(&f.base, &x), ROUSE_READY);
	ck_assert_int_eq(f.result, 0);
	ck_assert_int_eq(out, 3);
	ck_assert_int_eq(atomic_load(&x.c.clones), 0);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	/* Waiting, then woken by the next send. */
	ck_assert_int_eq(rouse_broadcast_recv_init(&f, &r2, &out), 0);
	ck_assert_int_eq(cw_poll(&f.base, &x), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&f.base, &x), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&x.c.clones), 1);
	ck_assert_int_eq(rouse_broadcast_unsubscribe(&r2), -EBUSY);
	v = 4;
	ck_assert_int_eq(rouse_broadcast_send(b, &v), 2);
	v = 0;	/* copied */
	ck_assert_int_eq(cw_wakes(&x), 1);
	ck_assert_int_eq(cw_poll(&f.base, &x), ROUSE_READY);
	ck_assert_int_eq(f.result, 0);
	ck_assert_int_eq(out, 4);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	ck_assert_int_eq(rouse_broadcast_try_recv(&r1, &out, NULL), 0);
	ck_assert_int_eq(out, 4);
	ck_assert_int_eq(rouse_broadcast_unsubscribe(&r1), 0);
	ck_assert_int_eq(rouse_broadcast_unsubscribe(&r1), -EINVAL);
	v = 5;
	ck_assert_int_eq(rouse_broadcast_send(b, &v), 1);
	ck_assert_int_eq(rouse_broadcast_unsubscribe(&r2), 0);
	ck_assert_int_eq(rouse_broadcast_sender_release(b), 0);
	cw_done(&x);
}
END_TEST

START_TEST(test_broadcast_lag)
{
	struct rouse_broadcast *b = bc_make(sizeof(int), 4);
	struct rouse_broadcast_receiver rx, slow;
	struct rouse_broadcast_recv f;
	uint64_t missed = 0;
	int v, out = -1;
	struct cw x;

	cw_init(&x);
	ck_assert_int_eq(rouse_broadcast_subscribe(b, &rx), 0);
	ck_assert_int_eq(rouse_broadcast_subscribe(b, &slow), 0);
	/* Senders never wait: 10 values through 4 slots. */
	for (v = 0; v < 10; v++)
		ck_assert_int_eq(rouse_broadcast_send(b, &v), 2);
	ck_assert_int_eq(rouse_broadcast_try_recv(&rx, &out, &missed),
			 -EOVERFLOW);
	ck_assert_int_eq(missed, 6);
	/* Then on from the oldest value kept. */
	for (v = 6; v < 10; v++) {
		ck_assert_int_eq(rouse_broadcast_try_recv(&rx, &out, &missed),
				 0);
		ck_assert_int_eq(out, v);
		ck_assert_int_eq(missed, 0);
	}
	ck_assert_int_eq(rouse_broadcast_try_recv(&rx, &out, NULL), -EAGAIN);
	/* The future reports it the same way, and loses nothing more. */
	ck_assert_int_eq(rouse_broadcast_try_recv(&slow, &out, NULL),
			 -EOVERFLOW);
	ck_assert_int_eq(rouse_broadcast_try_recv(&slow, &out, NULL), 0);
	ck_assert_int_eq(out, 6);
	for (v = 10; v < 15; v++)
		ck_assert_int_eq(rouse_broadcast_send(b, &v), 2);
	ck_assert_int_eq(rouse_broadcast_recv_init(&f, &slow, &out), 0);
	ck_assert_int_eq(cw_poll(&f.base, &x), ROUSE_READY);
	ck_assert_int_eq(f.result, -EOVERFLOW);
	ck_assert_int_eq(f.missed, 4);	/* 7, 8, 9 and 10 */
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	ck_assert_int_eq(rouse_broadcast_recv_init(&f, &slow, &out), 0);
	ck_assert_int_eq(cw_poll(&f.base, &x), ROUSE_READY);
	ck_assert_int_eq(f.result, 0);
	ck_assert_int_eq(out, 11);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	/* 5 behind with 4 slots: 1 missed. */
	ck_assert_int_eq(rouse_broadcast_try_recv(&rx, &out, &missed),
			 -EOVERFLOW);
	ck_assert_int_eq(missed, 1);
	for (v = 11; v < 15; v++) {
		ck_assert_int_eq(rouse_broadcast_try_recv(&rx, &out, NULL), 0);
		ck_assert_int_eq(out, v);
	}
	/* Exactly capacity behind is not lagging. */
	for (v = 15; v < 19; v++)
		ck_assert_int_eq(rouse_broadcast_send(b, &v), 2);
	for (v = 15; v < 19; v++) {
		ck_assert_int_eq(rouse_broadcast_try_recv(&rx, &out, &missed),
				 0);
		ck_assert_int_eq(out, v);
	}
	ck_assert_int_eq(rouse_broadcast_unsubscribe(&rx), 0);
	ck_assert_int_eq(rouse_broadcast_unsubscribe(&slow), 0);
	ck_assert_int_eq(rouse_broadcast_sender_release(b), 0);
	cw_done(&x);
}
END_TEST

START_TEST(test_broadcast_close)
{
	struct rouse_broadcast *b = bc_make(sizeof(int), 2);
	struct rouse_broadcast_receiver rx, idle;
	struct rouse_broadcast_recv f;
	int v = 1, out = -1;
	struct cw x;

	cw_init(&x);
	ck_assert_int_eq(rouse_broadcast_subscribe(b, &rx), 0);
	ck_assert_int_eq(rouse_broadcast_subscribe(b, &idle), 0);
	ck_assert_int_eq(rouse_broadcast_sender_clone(b), 0);
	ck_assert_int_eq(rouse_broadcast_recv_init(&f, &idle, &out), 0);
	ck_assert_int_eq(cw_poll(&f.base, &x), ROUSE_PENDING);
	ck_assert_int_eq(rouse_broadcast_send(b, &v), 2);
	ck_assert_int_eq(cw_wakes(&x), 1);
	ck_assert_int_eq(cw_poll(&f.base, &x), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	ck_assert_int_eq(rouse_broadcast_recv_init(&f, &idle, &out), 0);
	ck_assert_int_eq(cw_poll(&f.base, &x), ROUSE_PENDING);
	/* One of two senders goes: nothing ends. */
	ck_assert_int_eq(rouse_broadcast_sender_release(b), 0);
	ck_assert_int_eq(cw_wakes(&x), 1);
	v = 2;
	ck_assert_int_eq(rouse_broadcast_send(b, &v), 2);
	ck_assert_int_eq(cw_wakes(&x), 2);
	ck_assert_int_eq(cw_poll(&f.base, &x), ROUSE_READY);
	ck_assert_int_eq(out, 2);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	ck_assert_int_eq(rouse_broadcast_recv_init(&f, &idle, &out), 0);
	ck_assert_int_eq(cw_poll(&f.base, &x), ROUSE_PENDING);
	/* The last one: a waiting receive learns the end... */
	ck_assert_int_eq(rouse_broadcast_sender_release(b), 0);
	ck_assert_int_eq(cw_wakes(&x), 3);
	ck_assert_int_eq(cw_poll(&f.base, &x), ROUSE_READY);
	ck_assert_int_eq(f.result, -EPIPE);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	/* ...and one with values left drains them first. */
	ck_assert_int_eq(rouse_broadcast_try_recv(&rx, &out, NULL), 0);
	ck_assert_int_eq(out, 1);
	ck_assert_int_eq(rouse_broadcast_try_recv(&rx, &out, NULL), 0);
	ck_assert_int_eq(out, 2);
	ck_assert_int_eq(rouse_broadcast_try_recv(&rx, &out, NULL), -EPIPE);
	ck_assert_int_eq(rouse_broadcast_try_recv(&rx, &out, NULL), -EPIPE);
	/* Ended for good. */
	ck_assert_int_eq(rouse_broadcast_send(b, &v), -EPIPE);
	ck_assert_int_eq(rouse_broadcast_sender_clone(b), -EPIPE);
	ck_assert_int_eq(rouse_broadcast_sender_release(b), -EINVAL);
	ck_assert_int_eq(rouse_broadcast_unsubscribe(&rx), 0);
	ck_assert_int_eq(rouse_broadcast_unsubscribe(&idle), 0);

	/* Zero-size values: ticks; and the receivers go first. */
	b = bc_make(0, 3);
	ck_assert_int_eq(rouse_broadcast_subscribe(b, &rx), 0);
	ck_assert_int_eq(rouse_broadcast_send(b, NULL), 1);
	ck_assert_int_eq(rouse_broadcast_recv_init(&f, &rx, NULL), 0);
	ck_assert_int_eq(cw_poll(&f.base, &x), ROUSE_READY);
	ck_assert_int_eq(f.result, 0);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	ck_assert_int_eq(rouse_broadcast_try_recv(&rx, NULL, NULL), -EAGAIN);
	ck_assert_int_eq(rouse_broadcast_unsubscribe(&rx), 0);
	ck_assert_int_eq(rouse_broadcast_send(b, NULL), 0);
	ck_assert_int_eq(rouse_broadcast_sender_release(b), 0);
	cw_done(&x);
}
END_TEST

START_TEST(test_broadcast_many)
{
	enum { N = 40 };	/* more than one wake batch */
	struct rouse_broadcast *b = bc_make(sizeof(int), 8);
	struct rouse_broadcast_receiver rx[N];
	struct rouse_broadcast_recv f[N];
	int out[N], v = 9, i;
	struct cw x[N];

	for (i = 0; i < N; i++) {
		cw_init(&x[i]);
		out[i] = -1;
		ck_assert_int_eq(rouse_broadcast_subscribe(b, &rx[i]), 0);
		ck_assert_int_eq(rouse_broadcast_recv_init(&f[i], &rx[i],
							   &out[i]), 0);
		ck_assert_int_eq(cw_poll(&f[i].base, &x[i]), ROUSE_PENDING);
	}
	/* Dropped while queued: never woken. */
	ck_assert_int_eq(rouse_future_drop(&f[0].base), 0);
	ck_assert_int_eq(rouse_broadcast_send(b, &v), N);
	v = 10;
	ck_assert_int_eq(rouse_broadcast_send(b, &v), N);
	ck_assert_int_eq(cw_wakes(&x[0]), 0);
	ck_assert_int_eq(atomic_load(&x[0].c.live), 1);
	/* Dropped after its wake, unseen: the value stays for rx[1]. */
	ck_assert_int_eq(rouse_future_drop(&f[1].base), 0);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(rouse_broadcast_try_recv(&rx[i], &out[i],
							  NULL), 0);
		ck_assert_int_eq(out[i], 9);
	}
	for (i = 1; i < N; i++) {
		/* Woken once: the second send found no waiter. */
		ck_assert_int_eq(cw_wakes(&x[i]), 1);
		if (i > 1) {
			ck_assert_int_eq(cw_poll(&f[i].base, &x[i]),
					 ROUSE_READY);
			ck_assert_int_eq(out[i], 9);
			ck_assert_int_eq(rouse_future_drop(&f[i].base), 0);
		}
		ck_assert_int_eq(rouse_broadcast_try_recv(&rx[i], &out[i],
							  NULL), 0);
		ck_assert_int_eq(out[i], 10);
	}
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(rouse_broadcast_unsubscribe(&rx[i]), 0);
		cw_done(&x[i]);
	}
	ck_assert_int_eq(rouse_broadcast_sender_release(b), 0);
}
END_TEST

/* A waker that receives inline and waits again: each send ends. */
struct inline_bc {
	struct rouse_broadcast *b;
	struct rouse_broadcast_receiver rx;
	struct rouse_broadcast_recv f;
	struct rouse_waker waker;
	int out, got;
};

static void inline_bc_wake(struct call_waker *c, int nth)
{
	struct inline_bc *ib = c->arg;

	while (test_poll_with(&ib->f.base, &ib->waker) == ROUSE_READY) {
		if (ib->f.result == -EPIPE)
			return;		/* left for the test to see */
		ck_assert_int_eq(ib->f.result, 0);
		ib->got++;
		ck_assert_int_eq(rouse_future_drop(&ib->f.base), 0);
		ck_assert_int_eq(rouse_broadcast_recv_init(&ib->f, &ib->rx,
							   &ib->out), 0);
	}
}

START_TEST(test_broadcast_wake_reenters)
{
	struct inline_bc ib;
	struct call_waker c;
	int v;

	ib.b = bc_make(sizeof(int), 2);
	ib.got = 0;
	ib.waker = call_waker(&c, inline_bc_wake, &ib);
	ck_assert_int_eq(rouse_broadcast_subscribe(ib.b, &ib.rx), 0);
	ck_assert_int_eq(rouse_broadcast_recv_init(&ib.f, &ib.rx, &ib.out), 0);
	ck_assert_int_eq(test_poll_with(&ib.f.base, &ib.waker), ROUSE_PENDING);
	for (v = 1; v <= 3; v++) {
		ck_assert_int_eq(rouse_broadcast_send(ib.b, &v), 1);
		ck_assert_int_eq(ib.got, v);
		ck_assert_int_eq(ib.out, v);
	}
	ck_assert_int_eq(rouse_broadcast_sender_release(ib.b), 0);
	ck_assert_int_eq(ib.f.result, -EPIPE);
	ck_assert_int_eq(atomic_load(&c.wakes), 4);
	ck_assert_int_eq(rouse_future_drop(&ib.f.base), 0);
	ck_assert_int_eq(rouse_broadcast_unsubscribe(&ib.rx), 0);
	ck_assert_int_eq(rouse_waker_drop(&ib.waker), 0);
	ck_assert_int_eq(atomic_load(&c.live), 0);
}
END_TEST

START_TEST(test_broadcast_einval)
{
	struct rouse_broadcast *b = bc_make(sizeof(int), 2);
	struct rouse_broadcast_receiver rx = { NULL, 0, 0 }, ok;
	struct rouse_broadcast_recv f;
	int v = 0;

	ck_assert_int_eq(rouse_broadcast_new(4, 4, NULL), -EINVAL);
	ck_assert_int_eq(rouse_broadcast_new(4, 0, &b), -EINVAL);
	ck_assert_int_eq(rouse_broadcast_new(SIZE_MAX, 2, &b), -EINVAL);
	ck_assert_int_eq(rouse_broadcast_sender_clone(NULL), -EINVAL);
	ck_assert_int_eq(rouse_broadcast_sender_release(NULL), -EINVAL);
	ck_assert_int_eq(rouse_broadcast_send(NULL, &v), -EINVAL);
	ck_assert_int_eq(rouse_broadcast_send(b, NULL), -EINVAL);
	ck_assert_int_eq(rouse_broadcast_subscribe(NULL, &rx), -EINVAL);
	ck_assert_int_eq(rouse_broadcast_subscribe(b, NULL), -EINVAL);
	ck_assert_int_eq(rouse_broadcast_unsubscribe(NULL), -EINVAL);
	ck_assert_int_eq(rouse_broadcast_unsubscribe(&rx), -EINVAL);
	ck_assert_int_eq(rouse_broadcast_try_recv(NULL, &v, NULL), -EINVAL);
	ck_assert_int_eq(rouse_broadcast_try_recv(&rx, &v, NULL), -EINVAL);
	ck_assert_int_eq(rouse_broadcast_recv_init(NULL, &rx, &v), -EINVAL);
	ck_assert_int_eq(rouse_broadcast_recv_init(&f, NULL, &v), -EINVAL);
	ck_assert_int_eq(rouse_broadcast_recv_init(&f, &rx, &v), -EINVAL);
	ck_assert_int_eq(rouse_broadcast_subscribe(b, &ok), 0);
	ck_assert_int_eq(rouse_broadcast_try_recv(&ok, NULL, NULL), -EINVAL);
	ck_assert_int_eq(rouse_broadcast_recv_init(&f, &ok, NULL), -EINVAL);
	ck_assert_int_eq(rouse_broadcast_unsubscribe(&ok), 0);
	ck_assert_int_eq(rouse_broadcast_sender_release(b), 0);
}
END_TEST

/*
 * 2 sender threads each send (id, seq) N times, never waiting; the
 * workers receive until -EPIPE, some pending receives cancelled and
 * redone.  The ring is small, so receivers fall behind: each sees each
 * sender's values in rising order, and what it received plus what it was
 * told it missed is exactly what was sent.
 */
#define BC_WORKERS 5
#define BC_SENDERS 2
#define BC_SENDS 20000
#define BC_CAPACITY 16

struct bc_elem {
	int id;
	int seq;
};

struct bc_worker {
	struct rouse_future base;
	struct rouse_broadcast_receiver *rx;
	struct rouse_broadcast_recv f;
	struct bc_elem e;
	bool receiving;
	unsigned int pends;	/* every 3rd pending receive is cancelled */
	int next[BC_SENDERS];	/* the lowest seq it may see next */
	long got;
	uint64_t missed;
};

static enum rouse_poll bc_worker_poll(struct rouse_future *f,
				      struct rouse_context *cx)
{
	struct bc_worker *w = (struct bc_worker *)f;

	for (;;) {
		if (!w->receiving) {
			test_require_int(rouse_broadcast_recv_init(&w->f, w->rx,
								   &w->e),
					 ==, 0);
			w->receiving = true;
		}
		if (rouse_future_poll(&w->f.base, cx) == ROUSE_PENDING) {
			if (++w->pends % 3 != 0)
				return ROUSE_PENDING;
			test_require_int(rouse_future_drop(&w->f.base), ==, 0);
			w->receiving = false;
			return yield_now(cx);
		}
		test_require_int(rouse_future_drop(&w->f.base), ==, 0);
		w->receiving = false;
		if (w->f.result == -EPIPE)
			return ROUSE_READY;
		if (w->f.result == -EOVERFLOW) {
			test_require(w->f.missed > 0);
			w->missed += w->f.missed;
			continue;
		}
		test_require_int(w->f.result, ==, 0);
		test_require(w->e.id >= 0 && w->e.id < BC_SENDERS);
		test_require_int(w->e.seq, >=, w->next[w->e.id]);
		w->next[w->e.id] = w->e.seq + 1;
		w->got++;
		if (w->got % 256 == 0)
			return yield_now(cx);
	}
}

static void bc_worker_drop(struct rouse_future *f)
{
	struct bc_worker *w = (struct bc_worker *)f;

	if (w->receiving)
		rouse_future_drop(&w->f.base);
}

static const struct rouse_future_vtable bc_worker_vtable = {
	bc_worker_poll, bc_worker_drop,
};

struct bc_sender {
	struct rouse_broadcast *b;
	int id;
};

static void *bc_sender_thread(void *arg)
{
	struct bc_sender *s = arg;
	struct bc_elem e = { s->id, 0 };

	for (e.seq = 0; e.seq < BC_SENDS; e.seq++) {
		test_require_int(rouse_broadcast_send(s->b, &e), ==,
				 BC_WORKERS);
		if (e.seq % 64 == 0)
			sched_yield();
	}
	test_require_int(rouse_broadcast_sender_release(s->b), ==, 0);
	return NULL;
}

START_TEST(test_broadcast_contention)
{
	struct rouse_broadcast_receiver rx[BC_WORKERS];
	struct bc_worker w[BC_WORKERS];
	struct rouse_future *out[BC_WORKERS];
	struct bc_sender s[BC_SENDERS];
	pthread_t t[BC_SENDERS];
	struct rouse_broadcast *b;
	struct run ru;
	int i;

	b = bc_make(sizeof(struct bc_elem), BC_CAPACITY);
	for (i = 0; i < BC_WORKERS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].base.vtable = &bc_worker_vtable;
		ck_assert_int_eq(rouse_broadcast_subscribe(b, &rx[i]), 0);
		w[i].rx = &rx[i];
	}
	/* One sender reference each; the first came with new. */
	ck_assert_int_eq(rouse_broadcast_sender_clone(b), 0);
	for (i = 0; i < BC_SENDERS; i++) {
		s[i].b = b;
		s[i].id = i;
		t[i] = test_thread_start(bc_sender_thread, &s[i]);
	}
	run_workers(&ru, (enum run_mode)_i, w, sizeof(w[0]), BC_WORKERS, out);
	for (i = 0; i < BC_SENDERS; i++)
		test_thread_join(t[i]);
	for (i = 0; i < BC_WORKERS; i++) {
		struct bc_worker *o = (struct bc_worker *)out[i];

		ck_assert_int_eq(o->got + (long)o->missed,
				 (long)BC_SENDERS * BC_SENDS);
	}
	run_workers_done(&ru, out);
	for (i = 0; i < BC_WORKERS; i++)
		ck_assert_int_eq(rouse_broadcast_unsubscribe(&rx[i]), 0);
}
END_TEST

/* ==== cancellation tokens ============================================== */

static struct rouse_cancel_token *token_make(void)
{
	struct rouse_cancel_token *t = NULL;

	ck_assert_int_eq(rouse_cancel_token_new(&t), 0);
	ck_assert_ptr_nonnull(t);
	return t;
}

static struct rouse_cancel_token *token_child(struct rouse_cancel_token *p)
{
	struct rouse_cancel_token *t = NULL;

	ck_assert_int_eq(rouse_cancel_token_child(p, &t), 0);
	ck_assert_ptr_nonnull(t);
	return t;
}

/*
 * Wait until x was woken n times: the library's wake-up thread does it.
 * The counting waker counts a wake before it gives up its reference, so
 * wait for the reference count to agree too.
 */
static void cw_wait_wakes(struct cw *x, int n)
{
	struct counting_waker *c = &x->c;

	while (cw_wakes(x) < n ||
	       atomic_load(&c->live) != 1 + atomic_load(&c->clones) -
					 atomic_load(&c->wakes) -
					 atomic_load(&c->drops))
		sched_yield();
}

/*
 * Wait until the wake-up thread has woken the waits of every token
 * cancelled before this call.  It takes the cancelled tokens oldest
 * first, on one thread, so once the wait of a token cancelled here has
 * been woken, it is done with the earlier ones: a count of wakes checked
 * after this is final.
 */
static void cancel_flush(void)
{
	struct rouse_cancel_token_wait w;
	struct rouse_cancel_token *t;
	struct cw x;

	cw_init(&x);
	test_require_int(rouse_cancel_token_new(&t), ==, 0);
	test_require_int(rouse_cancel_token_wait_init(&w, t), ==, 0);
	test_require_int(cw_poll(&w.base, &x), ==, ROUSE_PENDING);
	test_require_int(rouse_cancel_token_cancel(t), ==, 0);
	cw_wait_wakes(&x, 1);
	test_require_int(cw_poll(&w.base, &x), ==, ROUSE_READY);
	test_require_int(rouse_future_drop(&w.base), ==, 0);
	test_require_int(rouse_cancel_token_free(t), ==, 0);
	test_require_int(rouse_waker_drop(&x.w), ==, 0);
	test_require_int(atomic_load(&x.c.live), ==, 0);
}

START_TEST(test_cancel_basic)
{
	struct rouse_cancel_token *t = token_make();
	struct rouse_cancel_token_wait w, late, never;
	struct cw x;

	cw_init(&x);
	ck_assert_int_eq(rouse_cancel_token_is_cancelled(t), 0);
	ck_assert_int_eq(rouse_cancel_token_wait_init(&never, t), 0);
	ck_assert_int_eq(rouse_cancel_token_wait_init(&w, t), 0);
	ck_assert_int_eq(cw_poll(&w.base, &x), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&w.base, &x), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&x.c.clones), 1);
	ck_assert_int_eq(rouse_cancel_token_cancel(t), 0);
	/* Seen at once; the wake follows from the wake-up thread. */
	ck_assert_int_eq(rouse_cancel_token_is_cancelled(t), 1);
	cw_wait_wakes(&x, 1);
	ck_assert_int_eq(atomic_load(&x.c.live), 1);
	ck_assert_int_eq(cw_poll(&w.base, &x), ROUSE_READY);
	ck_assert_int_eq(cw_poll(&w.base, &x), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	/* Again: nothing more happens. */
	ck_assert_int_eq(rouse_cancel_token_cancel(t), 0);
	cancel_flush();
	ck_assert_int_eq(cw_wakes(&x), 1);
	/* Waits that begin now are ready at their first poll, no clone. */
	ck_assert_int_eq(rouse_cancel_token_wait_init(&late, t), 0);
	ck_assert_int_eq(cw_poll(&late.base, &x), ROUSE_READY);
	ck_assert_int_eq(atomic_load(&x.c.clones), 1);
	ck_assert_int_eq(rouse_future_drop(&late.base), 0);
	ck_assert_int_eq(rouse_future_drop(&never.base), 0);
	/* References: two more, three frees. */
	ck_assert_int_eq(rouse_cancel_token_clone(t), 0);
	ck_assert_int_eq(rouse_cancel_token_clone(t), 0);
	ck_assert_int_eq(rouse_cancel_token_free(t), 0);
	ck_assert_int_eq(rouse_cancel_token_free(t), 0);
	ck_assert_int_eq(rouse_cancel_token_is_cancelled(t), 1);
	ck_assert_int_eq(rouse_cancel_token_free(t), 0);
	cw_done(&x);
}
END_TEST

START_TEST(test_cancel_tree)
{
	struct rouse_cancel_token *root = token_make();
	struct rouse_cancel_token *a = token_child(root);
	struct rouse_cancel_token *b = token_child(root);
	struct rouse_cancel_token *a1 = token_child(a);
	struct rouse_cancel_token *late;
	struct rouse_cancel_token_wait w[4], wl;
	struct rouse_cancel_token *tok[4] = { root, a, b, a1 };
	struct cw x[4], xl;
	int i;

	cw_init(&xl);
	for (i = 0; i < 4; i++) {
		cw_init(&x[i]);
		ck_assert_int_eq(rouse_cancel_token_wait_init(&w[i], tok[i]),
				 0);
		ck_assert_int_eq(cw_poll(&w[i].base, &x[i]), ROUSE_PENDING);
	}
	/* a: itself and its descendants, never its parent or sibling. */
	ck_assert_int_eq(rouse_cancel_token_cancel(a), 0);
	ck_assert_int_eq(rouse_cancel_token_is_cancelled(a), 1);
	ck_assert_int_eq(rouse_cancel_token_is_cancelled(a1), 1);
	ck_assert_int_eq(rouse_cancel_token_is_cancelled(root), 0);
	ck_assert_int_eq(rouse_cancel_token_is_cancelled(b), 0);
	cancel_flush();
	ck_assert_int_eq(cw_wakes(&x[0]), 0);
	ck_assert_int_eq(cw_wakes(&x[1]), 1);
	ck_assert_int_eq(cw_wakes(&x[2]), 0);
	ck_assert_int_eq(cw_wakes(&x[3]), 1);
	ck_assert_int_eq(cw_poll(&w[0].base, &x[0]), ROUSE_PENDING);
	ck_assert_int_eq(cw_poll(&w[3].base, &x[3]), ROUSE_READY);
	/* A child of a cancelled token is born cancelled. */
	late = token_child(a1);
	ck_assert_int_eq(rouse_cancel_token_is_cancelled(late), 1);
	ck_assert_int_eq(rouse_cancel_token_wait_init(&wl, late), 0);
	ck_assert_int_eq(cw_poll(&wl.base, &xl), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&wl.base), 0);
	ck_assert_int_eq(rouse_cancel_token_free(late), 0);
	/* A parent's reference may go first: the children keep it. */
	ck_assert_int_eq(rouse_cancel_token_clone(root), 0);
	ck_assert_int_eq(rouse_cancel_token_free(root), 0);
	ck_assert_int_eq(rouse_cancel_token_free(a), 0);
	ck_assert_int_eq(rouse_cancel_token_is_cancelled(a1), 1);
	ck_assert_int_eq(rouse_cancel_token_cancel(root), 0);
	ck_assert_int_eq(rouse_cancel_token_is_cancelled(b), 1);
	cancel_flush();
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(cw_wakes(&x[i]), 1);
		ck_assert_int_eq(cw_poll(&w[i].base, &x[i]), ROUSE_READY);
		ck_assert_int_eq(rouse_future_drop(&w[i].base), 0);
		cw_done(&x[i]);
	}
	ck_assert_int_eq(rouse_cancel_token_free(root), 0);
	ck_assert_int_eq(rouse_cancel_token_free(b), 0);
	ck_assert_int_eq(rouse_cancel_token_free(a1), 0);
	cw_done(&xl);
}
END_TEST

/*
 * More waits than one wake batch, on a root and on a grandchild, some
 * dropped while queued; two threads cancel the root and the grandchild
 * at the same moment.  Every wait still queued is woken exactly once.
 */
#define TOK_N 40

struct tok_canceller {
	struct rouse_cancel_token *t;
	struct test_barrier *start;
};

static void *tok_cancel_thread(void *arg)
{
	struct tok_canceller *c = arg;

	test_barrier_wait(c->start);
	test_require_int(rouse_cancel_token_cancel(c->t), ==, 0);
	return NULL;
}

START_TEST(test_cancel_many)
{
	struct rouse_cancel_token *root = token_make();
	struct rouse_cancel_token *mid = token_child(root);
	struct rouse_cancel_token *leaf = token_child(mid);
	struct rouse_cancel_token_wait w[2 * TOK_N];
	struct tok_canceller c[2];
	struct test_barrier start;
	struct cw x[2 * TOK_N];
	pthread_t t[2];
	int i;

	for (i = 0; i < 2 * TOK_N; i++) {
		cw_init(&x[i]);
		ck_assert_int_eq(rouse_cancel_token_wait_init(&w[i],
				 i < TOK_N ? root : leaf), 0);
		ck_assert_int_eq(cw_poll(&w[i].base, &x[i]), ROUSE_PENDING);
	}
	/* Only the waits hold the leaf now. */
	ck_assert_int_eq(rouse_cancel_token_free(leaf), 0);
	for (i = 0; i < 2 * TOK_N; i += 7)
		ck_assert_int_eq(rouse_future_drop(&w[i].base), 0);
	test_barrier_init(&start, 2);
	c[0].t = root;
	c[1].t = leaf;
	for (i = 0; i < 2; i++) {
		c[i].start = &start;
		t[i] = test_thread_start(tok_cancel_thread, &c[i]);
	}
	for (i = 0; i < 2; i++)
		test_thread_join(t[i]);
	cancel_flush();
	for (i = 0; i < 2 * TOK_N; i++) {
		ck_assert_int_eq(cw_wakes(&x[i]), i % 7 == 0 ? 0 : 1);
		ck_assert_int_eq(atomic_load(&x[i].c.live), 1);
		if (i % 7 != 0) {
			ck_assert_int_eq(cw_poll(&w[i].base, &x[i]),
					 ROUSE_READY);
			ck_assert_int_eq(rouse_future_drop(&w[i].base), 0);
		}
		cw_done(&x[i]);
	}
	ck_assert_int_eq(rouse_cancel_token_free(mid), 0);
	ck_assert_int_eq(rouse_cancel_token_free(root), 0);
	test_barrier_destroy(&start);
}
END_TEST

/*
 * Wakes that poll their wait inline, on the wake-up thread, and drop it;
 * the waits hold the only references to their token, so the last drop
 * frees it, from inside a wake, while the walk over the tree is between
 * two batches.  (ASan sees a use after free if the walk loses its
 * place.)  One wake also makes a child of the cancelled token.
 */
struct inline_tok {
	struct rouse_cancel_token_wait w;
	struct rouse_waker waker;
	atomic_int ready;
	bool make_child;
};

static void inline_tok_wake(struct call_waker *c, int nth)
{
	struct inline_tok *it = c->arg;
	struct rouse_cancel_token *child;

	test_require_int(test_poll_with(&it->w.base, &it->waker), ==,
			 ROUSE_READY);
	if (it->make_child) {
		test_require_int(rouse_cancel_token_child(it->w.token, &child),
				 ==, 0);
		test_require_int(rouse_cancel_token_is_cancelled(child), ==, 1);
		test_require_int(rouse_cancel_token_free(child), ==, 0);
	}
	test_require_int(rouse_future_drop(&it->w.base), ==, 0);
	atomic_store(&it->ready, 1);
}

START_TEST(test_cancel_wake_reenters)
{
	struct rouse_cancel_token *root = token_make();
	struct rouse_cancel_token *kids[2];
	struct inline_tok it[2 * TOK_N];
	struct call_waker c[2 * TOK_N];
	int i;

	for (i = 0; i < 2; i++)
		kids[i] = token_child(root);
	for (i = 0; i < 2 * TOK_N; i++) {
		atomic_init(&it[i].ready, 0);
		it[i].make_child = i == TOK_N + 3;
		it[i].waker = call_waker(&c[i], inline_tok_wake, &it[i]);
		ck_assert_int_eq(rouse_cancel_token_wait_init(&it[i].w,
							      kids[i % 2]), 0);
		ck_assert_int_eq(test_poll_with(&it[i].w.base, &it[i].waker),
				 ROUSE_PENDING);
	}
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(rouse_cancel_token_free(kids[i]), 0);
	ck_assert_int_eq(rouse_cancel_token_cancel(root), 0);
	ck_assert_int_eq(rouse_cancel_token_free(root), 0);
	cancel_flush();
	for (i = 0; i < 2 * TOK_N; i++) {
		ck_assert_int_eq(atomic_load(&it[i].ready), 1);
		ck_assert_int_eq(atomic_load(&c[i].wakes), 1);
		ck_assert_int_eq(rouse_waker_drop(&it[i].waker), 0);
		ck_assert_int_eq(atomic_load(&c[i].live), 0);
	}
}
END_TEST

START_TEST(test_cancel_einval)
{
	struct rouse_cancel_token *t = token_make();
	struct rouse_cancel_token_wait w;

	ck_assert_int_eq(rouse_cancel_token_new(NULL), -EINVAL);
	ck_assert_int_eq(rouse_cancel_token_child(NULL, &t), -EINVAL);
	ck_assert_int_eq(rouse_cancel_token_child(t, NULL), -EINVAL);
	ck_assert_int_eq(rouse_cancel_token_clone(NULL), -EINVAL);
	ck_assert_int_eq(rouse_cancel_token_free(NULL), -EINVAL);
	ck_assert_int_eq(rouse_cancel_token_cancel(NULL), -EINVAL);
	ck_assert_int_eq(rouse_cancel_token_is_cancelled(NULL), -EINVAL);
	ck_assert_int_eq(rouse_cancel_token_wait_init(NULL, t), -EINVAL);
	ck_assert_int_eq(rouse_cancel_token_wait_init(&w, NULL), -EINVAL);
	ck_assert_int_eq(rouse_cancel_token_free(t), 0);
}
END_TEST

/*
 * A wait is dropped on one thread while the token is cancelled on
 * another, many rounds.  Its clone is either dropped by the drop (still
 * queued) or woken by the wake-up thread (already handed out), never
 * both and never neither.
 */
#define TOK_RACES 2000

struct tok_race {
	struct rouse_cancel_token *t;
	struct test_barrier round;
};

static void *tok_race_thread(void *arg)
{
	struct tok_race *r = arg;
	int i;

	for (i = 0; i < TOK_RACES; i++) {
		test_barrier_wait(&r->round);
		test_require_int(rouse_cancel_token_cancel(r->t), ==, 0);
		test_barrier_wait(&r->round);
	}
	return NULL;
}

START_TEST(test_cancel_drop_race)
{
	struct rouse_cancel_token_wait w;
	struct tok_race r;
	struct cw x;
	pthread_t t;
	int i;

	cw_init(&x);
	test_barrier_init(&r.round, 2);
	t = test_thread_start(tok_race_thread, &r);
	for (i = 0; i < TOK_RACES; i++) {
		r.t = token_make();
		ck_assert_int_eq(rouse_cancel_token_wait_init(&w, r.t), 0);
		test_require_int(cw_poll(&w.base, &x), ==, ROUSE_PENDING);
		test_barrier_wait(&r.round);
		test_require_int(rouse_future_drop(&w.base), ==, 0);
		test_barrier_wait(&r.round);
		test_require_int(rouse_cancel_token_free(r.t), ==, 0);
		if (i % 64 == 63 || i == TOK_RACES - 1) {
			cancel_flush();
			test_require_int(atomic_load(&x.c.live), ==, 1);
		}
	}
	test_thread_join(t);
	ck_assert_int_eq(cw_wakes(&x) + atomic_load(&x.c.drops),
			 atomic_load(&x.c.clones));
	ck_assert_int_eq(atomic_load(&x.c.clones), TOK_RACES);
	test_barrier_destroy(&r.round);
	cw_done(&x);
}
END_TEST

/* ---- tokens under executors, and from signal handlers --------------- */

/*
 * A future that makes a child of root at its first poll and waits for
 * it; it counts itself in *pending once its wait is pending, and on
 * completion records whether the child was cancelled.
 */
struct tok_waiter {
	struct rouse_future base;
	struct rouse_cancel_token *root;
	atomic_int *pending;
	struct rouse_cancel_token *child;
	struct rouse_cancel_token_wait w;
	bool counted;
	int seen;		/* is_cancelled() of the child when ready */
};

static enum rouse_poll tok_waiter_poll(struct rouse_future *f,
				       struct rouse_context *cx)
{
	struct tok_waiter *t = (struct tok_waiter *)f;

	if (t->child == NULL) {
		test_require_int(rouse_cancel_token_child(t->root, &t->child),
				 ==, 0);
		test_require_int(rouse_cancel_token_wait_init(&t->w, t->child),
				 ==, 0);
	}
	if (rouse_future_poll(&t->w.base, cx) == ROUSE_PENDING) {
		if (!t->counted)
			atomic_fetch_add(t->pending, 1);
		t->counted = true;
		return ROUSE_PENDING;
	}
	t->seen = rouse_cancel_token_is_cancelled(t->child);
	return ROUSE_READY;
}

static void tok_waiter_drop(struct rouse_future *f)
{
	struct tok_waiter *t = (struct tok_waiter *)f;

	if (t->child == NULL)
		return;
	rouse_future_drop(&t->w.base);
	rouse_cancel_token_free(t->child);
}

static const struct rouse_future_vtable tok_waiter_vtable = {
	tok_waiter_poll, tok_waiter_drop,
};

static void tok_waiter_init(struct tok_waiter *t,
			    struct rouse_cancel_token *root,
			    atomic_int *pending)
{
	memset(t, 0, sizeof(*t));
	t->base.vtable = &tok_waiter_vtable;
	t->root = root;
	t->pending = pending;
}

/*
 * Worker 0 waits, yielding, until every other worker's wait is pending,
 * and then cancels the root from inside its poll (on a task or a
 * thread); the others, tasks and threads, wait on children of the root.
 */
#define TOK_WORKERS 7

struct tok_worker {
	struct rouse_future base;
	struct tok_waiter tw;
	bool canceller;
	bool cancelled;
};

static enum rouse_poll tok_worker_poll(struct rouse_future *f,
				       struct rouse_context *cx)
{
	struct tok_worker *w = (struct tok_worker *)f;

	if (w->canceller && !w->cancelled) {
		if (atomic_load(w->tw.pending) < TOK_WORKERS - 1)
			return yield_now(cx);
		test_require_int(rouse_cancel_token_cancel(w->tw.root), ==, 0);
		w->cancelled = true;
	}
	return tok_waiter_poll(&w->tw.base, cx);
}

static void tok_worker_drop(struct rouse_future *f)
{
	struct tok_worker *w = (struct tok_worker *)f;

	tok_waiter_drop(&w->tw.base);
}

static const struct rouse_future_vtable tok_worker_vtable = {
	tok_worker_poll, tok_worker_drop,
};

#define TOK_EXEC_ROUNDS 50

START_TEST(test_cancel_workers)
{
	struct tok_worker w[TOK_WORKERS];
	struct rouse_future *out[TOK_WORKERS];
	struct rouse_cancel_token *root;
	atomic_int pending;
	struct run ru;
	int round, i;

	for (round = 0; round < TOK_EXEC_ROUNDS; round++) {
		root = token_make();
		atomic_init(&pending, 0);
		for (i = 0; i < TOK_WORKERS; i++) {
			memset(&w[i], 0, sizeof(w[i]));
			w[i].base.vtable = &tok_worker_vtable;
			tok_waiter_init(&w[i].tw, root, &pending);
			/* A task in the executor modes, else a thread. */
			w[i].canceller = i == 2 * (round % 3);
		}
		run_workers(&ru, (enum run_mode)_i, w, sizeof(w[0]),
			    TOK_WORKERS, out);
		for (i = 0; i < TOK_WORKERS; i++)
			ck_assert_int_eq(((struct tok_worker *)out[i])->tw.seen,
					 1);
		run_workers_done(&ru, out);
		ck_assert_int_eq(rouse_cancel_token_free(root), 0);
	}
}
END_TEST

/* The token a SIGUSR1 cancels; set while the handler is installed. */
static struct rouse_cancel_token *sig_token;
static atomic_int sig_handled;
static volatile sig_atomic_t sig_bad;

static void on_sigusr1(int signo)
{
	struct rouse_cancel_token *t;
	int saved = errno;

	(void)signo;
	t = __atomic_load_n(&sig_token, __ATOMIC_ACQUIRE);
	if (t != NULL && (rouse_cancel_token_cancel(t) != 0 ||
			  rouse_cancel_token_is_cancelled(t) != 1))
		sig_bad = 1;
	atomic_fetch_add(&sig_handled, 1);
	errno = saved;
}

static struct sigaction sig_install(bool restart)
{
	struct sigaction sa, old;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = restart ? SA_RESTART : 0;
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
	return old;
}

/*
 * How test_cancel_from_signal delivers its SIGUSR1: raise() inside a
 * task's poll, on the thread of a current-thread executor; or
 * pthread_kill() from a helper thread to that thread while it is parked
 * in the executor, the handler installed without or with SA_RESTART.
 */
enum {
	SIG_RAISE,
	SIG_KILL,
	SIG_KILL_RESTART,
	SIG_MODES,
};

#define SIG_ROUNDS 20
#define SIG_THREADS 2
#define SIG_CUR_TASKS 2
#define SIG_MULTI_TASKS 2
/* Every waiter of a round: those above and the lead's own. */
#define SIG_WAITERS (SIG_THREADS + SIG_CUR_TASKS + SIG_MULTI_TASKS + 1)

/* The root future of the current-thread executor, on the test thread. */
struct sig_lead {
	struct rouse_future base;
	struct tok_waiter tw;
	bool raise;
	bool raised;
};

static enum rouse_poll sig_lead_poll(struct rouse_future *f,
				     struct rouse_context *cx)
{
	struct sig_lead *l = (struct sig_lead *)f;

	if (tok_waiter_poll(&l->tw.base, cx) == ROUSE_READY)
		return ROUSE_READY;
	if (!l->raise || l->raised)
		return ROUSE_PENDING;
	if (atomic_load(l->tw.pending) < SIG_WAITERS)
		return yield_now(cx);
	/* The handler runs in here, in the middle of a task's poll. */
	l->raised = true;
	test_require_int(raise(SIGUSR1), ==, 0);
	return yield_now(cx);
}

static void sig_lead_drop(struct rouse_future *f)
{
	struct sig_lead *l = (struct sig_lead *)f;

	tok_waiter_drop(&l->tw.base);
}

static const struct rouse_future_vtable sig_lead_vtable = {
	sig_lead_poll, sig_lead_drop,
};

struct sig_killer {
	pthread_t target;
	atomic_int *pending;
};

static void *sig_killer_thread(void *arg)
{
	struct sig_killer *k = arg;

	/* Every wait is pending, the target's own too: it parks soon. */
	while (atomic_load(k->pending) < SIG_WAITERS)
		sched_yield();
	test_require_int(pthread_kill(k->target, SIGUSR1), ==, 0);
	return NULL;
}

static void *sig_waiter_thread(void *arg)
{
	struct tok_waiter *t = arg;

	test_require_int(rouse_block_on(&t->base), ==, 0);
	return NULL;
}

static struct rouse_executor *exec_make(enum rouse_executor_kind kind)
{
	struct rouse_executor_config cfg;
	struct rouse_executor *ex;

	ck_assert_int_eq(rouse_executor_config_init(&cfg), 0);
	cfg.kind = kind;
	cfg.workers = 2;
	ck_assert_int_eq(rouse_executor_new(&cfg, &ex), 0);
	return ex;
}

START_TEST(test_cancel_from_signal)
{
	struct rouse_join_handle hc[SIG_CUR_TASKS], hm[SIG_MULTI_TASKS];
	struct tok_waiter th[SIG_THREADS], task;
	struct rouse_executor *cur, *multi;
	struct rouse_cancel_token *root;
	struct sigaction old;
	struct sig_killer k;
	pthread_t t[SIG_THREADS], killer;
	atomic_int pending;
	struct sig_lead lead;
	int round, i;

	old = sig_install(_i == SIG_KILL_RESTART);
	cur = exec_make(ROUSE_EXECUTOR_CURRENT_THREAD);
	multi = exec_make(ROUSE_EXECUTOR_MULTI_THREAD);
	for (round = 0; round < SIG_ROUNDS; round++) {
		root = token_make();
		atomic_init(&pending, 0);
		__atomic_store_n(&sig_token, root, __ATOMIC_RELEASE);
		for (i = 0; i < SIG_THREADS; i++) {
			tok_waiter_init(&th[i], root, &pending);
			t[i] = test_thread_start(sig_waiter_thread, &th[i]);
		}
		for (i = 0; i < SIG_CUR_TASKS; i++) {
			tok_waiter_init(&task, root, &pending);
			ck_assert_int_eq(rouse_spawn(cur, &task.base,
						     sizeof(task), &hc[i]), 0);
		}
		for (i = 0; i < SIG_MULTI_TASKS; i++) {
			tok_waiter_init(&task, root, &pending);
			ck_assert_int_eq(rouse_spawn(multi, &task.base,
						     sizeof(task), &hm[i]), 0);
		}
		memset(&lead, 0, sizeof(lead));
		lead.base.vtable = &sig_lead_vtable;
		tok_waiter_init(&lead.tw, root, &pending);
		lead.raise = _i == SIG_RAISE;
		if (_i != SIG_RAISE) {
			k.target = pthread_self();
			k.pending = &pending;
			killer = test_thread_start(sig_killer_thread, &k);
		}
		ck_assert_int_eq(rouse_executor_block_on(cur, &lead.base), 0);
		ck_assert_int_eq(atomic_load(&sig_handled), round + 1);
		ck_assert_int_eq(lead.tw.seen, 1);
		if (_i != SIG_RAISE)
			test_thread_join(killer);
		for (i = 0; i < SIG_THREADS; i++) {
			test_thread_join(t[i]);
			ck_assert_int_eq(th[i].seen, 1);
			ck_assert_int_eq(rouse_future_drop(&th[i].base), 0);
		}
		for (i = 0; i < SIG_CUR_TASKS; i++) {
			ck_assert_int_eq(rouse_executor_block_on(cur,
							&hc[i].base), 0);
			ck_assert_int_eq(((struct tok_waiter *)
					  hc[i].output)->seen, 1);
			ck_assert_int_eq(rouse_future_drop(&hc[i].base), 0);
		}
		for (i = 0; i < SIG_MULTI_TASKS; i++) {
			ck_assert_int_eq(rouse_executor_block_on(multi,
							&hm[i].base), 0);
			ck_assert_int_eq(((struct tok_waiter *)
					  hm[i].output)->seen, 1);
			ck_assert_int_eq(rouse_future_drop(&hm[i].base), 0);
		}
		ck_assert_int_eq(rouse_future_drop(&lead.base), 0);
		__atomic_store_n(&sig_token, NULL, __ATOMIC_RELEASE);
		ck_assert_int_eq(rouse_cancel_token_free(root), 0);
	}
	ck_assert_int_eq(sig_bad, 0);
	ck_assert_int_eq(rouse_executor_free(cur), 0);
	ck_assert_int_eq(rouse_executor_free(multi), 0);
	ck_assert_int_eq(sigaction(SIGUSR1, &old, NULL), 0);
}
END_TEST

/*
 * A storm: one thread works on token trees without pause (children made
 * and freed, waits polled and dropped, cancels of its own), while
 * another sends it SIGUSR1 again and again, each time once the last one
 * was handled.  The handler cancels whichever token the worker named,
 * so a cancel lands while the worker holds that very tree's lock, in the
 * middle of a poll, a drop or a free: a cancel that took the lock would
 * deadlock here.  Every wait that went pending is woken exactly once or
 * dropped while still queued.
 */
#define STORM_SIGNALS 3000
#define STORM_WAITS 6

struct storm {
	atomic_int done;	/* the sender has sent them all */
	int rounds;
};

static void *storm_worker(void *arg)
{
	struct storm *st = arg;
	struct rouse_cancel_token *root, *kid[3];
	struct rouse_cancel_token_wait w[STORM_WAITS];
	bool queued[STORM_WAITS];
	struct cw x[STORM_WAITS];
	int r, i;

	for (r = 0; !atomic_load(&st->done) || r < 100; r++) {
		test_require_int(rouse_cancel_token_new(&root), ==, 0);
		test_require_int(rouse_cancel_token_child(root, &kid[0]), ==,
				 0);
		test_require_int(rouse_cancel_token_child(root, &kid[1]), ==,
				 0);
		test_require_int(rouse_cancel_token_child(kid[0], &kid[2]), ==,
				 0);
		/* From here on the handler may cancel this one. */
		__atomic_store_n(&sig_token, kid[r % 3], __ATOMIC_RELEASE);
		for (i = 0; i < STORM_WAITS; i++) {
			cw_init(&x[i]);
			test_require_int(rouse_cancel_token_wait_init(&w[i],
							kid[i % 3]), ==, 0);
			queued[i] = cw_poll(&w[i].base, &x[i]) == ROUSE_PENDING;
		}
		/* Some go while queued, or while being handed out. */
		for (i = 0; i < STORM_WAITS; i += 3) {
			test_require_int(rouse_future_drop(&w[i].base), ==, 0);
			queued[i] = false;
		}
		__atomic_store_n(&sig_token, NULL, __ATOMIC_RELEASE);
		test_require_int(rouse_cancel_token_cancel(root), ==, 0);
		for (i = 0; i < STORM_WAITS; i++) {
			if (i % 3 == 0)
				continue;
			if (queued[i])
				cw_wait_wakes(&x[i], 1);
			test_require_int(cw_poll(&w[i].base, &x[i]), ==,
					 ROUSE_READY);
			test_require_int(rouse_future_drop(&w[i].base), ==, 0);
		}
		for (i = 0; i < 3; i++)
			test_require_int(rouse_cancel_token_free(kid[i]), ==,
					 0);
		test_require_int(rouse_cancel_token_free(root), ==, 0);
		/* A wake handed out before a drop may still be on its way. */
		cancel_flush();
		for (i = 0; i < STORM_WAITS; i++) {
			/* Woken once, or its clone dropped with it. */
			test_require_int(cw_wakes(&x[i]) +
					 atomic_load(&x[i].c.drops), ==,
					 atomic_load(&x[i].c.clones));
			test_require_int(cw_wakes(&x[i]), <=, 1);
			cw_done(&x[i]);
		}
	}
	st->rounds = r;
	return NULL;
}

START_TEST(test_cancel_signal_storm)
{
	struct sigaction old;
	struct storm st;
	pthread_t t;
	int i, n;

	old = sig_install(true);
	atomic_init(&st.done, 0);
	atomic_store(&sig_handled, 0);
	t = test_thread_start(storm_worker, &st);
	for (i = 0; i < STORM_SIGNALS; i++) {
		n = atomic_load(&sig_handled);
		test_require_int(pthread_kill(t, SIGUSR1), ==, 0);
		while (atomic_load(&sig_handled) == n)
			sched_yield();
	}
	atomic_store(&st.done, 1);
	test_thread_join(t);
	ck_assert_int_eq(atomic_load(&sig_handled), STORM_SIGNALS);
	ck_assert_int_eq(sig_bad, 0);
	ck_assert_int_ge(st.rounds, 100);
	ck_assert_int_eq(sigaction(SIGUSR1, &old, NULL), 0);
}
END_TEST

/* ==== allocation failure =============================================== */

/* The failing allocator of testutil.h. */
static struct test_fail_alloc fa;

/* Make one object of kind k and free it again; 0 or its -errno. */
static int sync2_make_free(int k)
{
	struct rouse_cancel_token *t, *c;
	struct rouse_broadcast *b;
	struct rouse_barrier *ba;
	struct rouse_rwlock *l;
	struct rouse_watch *w;
	int v = 0, err;

	switch (k) {
	case 0:
		err = rouse_rwlock_new(&l);
		if (err == 0)
			ck_assert_int_eq(rouse_rwlock_free(l), 0);
		return err;
	case 1:
		err = rouse_barrier_new(2, &ba);
		if (err == 0)
			ck_assert_int_eq(rouse_barrier_free(ba), 0);
		return err;
	case 2:
		err = rouse_watch_new(sizeof(v), &v, &w);
		if (err == 0)
			ck_assert_int_eq(rouse_watch_close(w), 0);
		return err;
	case 3:
		err = rouse_broadcast_new(sizeof(v), 4, &b);
		if (err == 0)
			ck_assert_int_eq(rouse_broadcast_sender_release(b), 0);
		return err;
	default:
		/* A child that cannot be made leaves its parent as it was. */
		err = rouse_cancel_token_new(&t);
		if (err != 0)
			return err;
		err = rouse_cancel_token_child(t, &c);
		if (err == 0)
			ck_assert_int_eq(rouse_cancel_token_free(c), 0);
		ck_assert_int_eq(rouse_cancel_token_free(t), 0);
		return err;
	}
}

START_TEST(test_sync2_enomem)
{
	struct rouse_allocator a = { test_fa_malloc, test_fa_realloc,
				     test_fa_free, &fa };
	int k, at, err;

	for (k = 0; k < 5; k++) {
		for (at = 0;; at++) {
			ck_assert_int_lt(at, 8);
			atomic_store(&fa.live, 0);
			atomic_store(&fa.calls, 0);
			atomic_store(&fa.fail_at, -1);
			ck_assert_int_eq(rouse_executor_set_allocator(&a), 0);
			atomic_store(&fa.calls, 0);
			atomic_store(&fa.fail_at, at);
			err = sync2_make_free(k);
			ck_assert_int_eq(rouse_executor_set_allocator(NULL), 0);
			ck_assert(err == 0 || err == -ENOMEM);
			/* Nothing kept, whichever allocation failed. */
			ck_assert_int_eq(atomic_load(&fa.live), 0);
			if (err == 0)
				break;
		}
		/* Each makes at least one allocation. */
		ck_assert_int_ge(at, 1);
	}
}
END_TEST

/* ==== the suite ======================================================== */

static Suite *sync2_suite(void)
{
	Suite *s = suite_create("sync2");
	TCase *tc;

	tc = tcase_create("rwlock");
	tcase_add_test(tc, test_rwlock_basic);
	tcase_add_test(tc, test_rwlock_fifo);
	tcase_add_test(tc, test_rwlock_many_readers);
	tcase_add_test(tc, test_rwlock_cancel);
	tcase_add_test(tc, test_rwlock_wake_reenters);
	tcase_add_test(tc, test_rwlock_einval);
	suite_add_tcase(s, tc);

	tc = tcase_create("barrier");
	tcase_add_test(tc, test_barrier_basic);
	tcase_add_test(tc, test_barrier_cancel);
	tcase_add_test(tc, test_barrier_many);
	tcase_add_test(tc, test_barrier_einval);
	suite_add_tcase(s, tc);

	tc = tcase_create("watch");
	tcase_add_test(tc, test_watch_basic);
	tcase_add_test(tc, test_watch_close);
	tcase_add_test(tc, test_watch_many);
	tcase_add_test(tc, test_watch_wake_reenters);
	tcase_add_test(tc, test_watch_einval);
	suite_add_tcase(s, tc);

	tc = tcase_create("broadcast");
	tcase_add_test(tc, test_broadcast_order);
	tcase_add_test(tc, test_broadcast_lag);
	tcase_add_test(tc, test_broadcast_close);
	tcase_add_test(tc, test_broadcast_many);
	tcase_add_test(tc, test_broadcast_wake_reenters);
	tcase_add_test(tc, test_broadcast_einval);
	suite_add_tcase(s, tc);

	tc = tcase_create("cancel");
	tcase_add_test(tc, test_cancel_basic);
	tcase_add_test(tc, test_cancel_tree);
	tcase_add_test(tc, test_cancel_many);
	tcase_add_test(tc, test_cancel_wake_reenters);
	tcase_add_test(tc, test_cancel_einval);
	suite_add_tcase(s, tc);

	tc = tcase_create("enomem");
	tcase_add_test(tc, test_sync2_enomem);
	suite_add_tcase(s, tc);

	tc = tcase_create("signal");
	tcase_add_loop_test(tc, test_cancel_from_signal, 0, SIG_MODES);
	tcase_add_test(tc, test_cancel_signal_storm);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = tcase_create("contention");
	tcase_add_loop_test(tc, test_rwlock_contention, 0, RUN_MODES);
	tcase_add_test(tc, test_barrier_drop_race);
	tcase_add_loop_test(tc, test_barrier_contention, 0, RUN_MODES);
	tcase_add_loop_test(tc, test_watch_contention, 0, RUN_MODES);
	tcase_add_loop_test(tc, test_broadcast_contention, 0, RUN_MODES);
	tcase_add_test(tc, test_cancel_drop_race);
	tcase_add_loop_test(tc, test_cancel_workers, 0, RUN_MODES);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return test_run_suite(sync2_suite());
}
