// SPDX-License-Identifier: MIT
/*
 * tests/check_alloc.c - the allocator hook: every function that allocates
 * fails cleanly, with -ENOMEM, its output untouched and nothing leaked,
 * whichever of its allocations fails.
 *
 * The pattern of each failure loop: fail allocation n (n = 0, 1, 2, ...),
 * call the function, check the failure or clean up the success, and check
 * that the blocks alive are back to what they were; stop once a call ran
 * without meeting the failure, which proves every allocation of that call
 * was tried.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rouse/alloc.h>
#include <rouse/blocking.h>
#include <rouse/executor.h>
#include <rouse/reactor.h>
#include <rouse/sync.h>

#include "testutil.h"

/* No function here makes anywhere near this many allocations. */
#define LOOP_MAX 64

/* ---- a counting allocator that fails on demand --------------------- */

/*
 * It wraps the C library's, so blocks may move between it and the
 * default allocator freely; each test still installs it before making
 * anything and restores the default after freeing everything.
 */
struct fail_alloc {
	atomic_long live;	/* blocks allocated here and not yet freed */
	atomic_long calls;	/* malloc and realloc calls since armed */
	atomic_long fail_at;	/* the call (from 0) that fails; -1: none */
	atomic_long failed;	/* calls failed on purpose since armed */
	atomic_long misuse;	/* calls that break struct rouse_allocator's
				   promises: size 0, NULL pointers */
};

static struct fail_alloc fa;

/* Count a call; true when it is the one to fail. */
static bool fa_should_fail(struct fail_alloc *f)
{
	long n = atomic_fetch_add(&f->calls, 1);

	if (n != atomic_load(&f->fail_at))
		return false;
	atomic_fetch_add(&f->failed, 1);
	return true;
}

static void *fa_malloc(void *data, size_t size)
{
	struct fail_alloc *f = data;
	void *p;

	if (size == 0)
		atomic_fetch_add(&f->misuse, 1);
	if (fa_should_fail(f))
		return NULL;
	p = malloc(size);
	if (p != NULL)
		atomic_fetch_add(&f->live, 1);
	return p;
}

static void *fa_realloc(void *data, void *ptr, size_t size)
{
	struct fail_alloc *f = data;

	if (ptr == NULL || size == 0)
		atomic_fetch_add(&f->misuse, 1);
	if (fa_should_fail(f))
		return NULL;
	return realloc(ptr, size);
}

static void fa_free(void *data, void *ptr)
{
	struct fail_alloc *f = data;

	if (ptr == NULL)
		atomic_fetch_add(&f->misuse, 1);
	atomic_fetch_sub(&f->live, 1);
	free(ptr);
}

/* The same, under another name: a second allocator on the same heap. */
static void *fa_malloc_b(void *data, size_t size)
{
	return fa_malloc(data, size);
}

static const struct rouse_allocator fa_allocator = {
	.malloc = fa_malloc,
	.realloc = fa_realloc,
	.free = fa_free,
	.data = &fa,
};

/* Fail nothing. */
static void fa_disarm(void)
{
	atomic_store(&fa.fail_at, -1);
}

/* Fail call n from now on (counting from 0); -1: none, only count. */
static void fa_arm(long n)
{
	atomic_store(&fa.calls, 0);
	atomic_store(&fa.failed, 0);
	atomic_store(&fa.fail_at, n);
}

/* Make fa the allocator of both libraries. */
static void fa_install(void)
{
	atomic_init(&fa.live, 0);
	atomic_init(&fa.calls, 0);
	atomic_init(&fa.failed, 0);
	atomic_init(&fa.misuse, 0);
	fa_disarm();
	ck_assert_int_eq(rouse_executor_set_allocator(&fa_allocator), 0);
	ck_assert_int_eq(rouse_reactor_set_allocator(&fa_allocator), 0);
}

/* Give both libraries the C library's allocator back. */
static void fa_remove(void)
{
	ck_assert_int_eq(rouse_executor_set_allocator(NULL), 0);
	ck_assert_int_eq(rouse_reactor_set_allocator(NULL), 0);
	ck_assert_int_eq(atomic_load(&fa.misuse), 0);
}

static long fa_live(void)
{
	return atomic_load(&fa.live);
}

/*
 * After the call of a loop step returned err: disarm, and tell whether
 * the loop is over (the call succeeded without meeting the failure).  A
 * failed call must have failed for the allocation that we failed.
 */
static bool fa_step(int err)
{
	fa_disarm();
	if (err == 0)
		return atomic_load(&fa.failed) == 0;
	ck_assert_int_eq(err, -ENOMEM);
	ck_assert_int_eq(atomic_load(&fa.failed), 1);
	return false;
}

/* A sentinel for out-parameters: a pointer nobody would store. */
#define SENTINEL ((void *)(uintptr_t)0x5a5a5a5a)

/* ---- futures to run ------------------------------------------------ */

/* Ready at its first poll, with 42; counts its polls. */
struct ready_fut {
	struct rouse_future base;
	atomic_int *polls;
	int out;
};

static enum rouse_poll ready_poll(struct rouse_future *f,
				  struct rouse_context *cx)
{
	struct ready_fut *r = (struct ready_fut *)f;

	(void)cx;
	atomic_fetch_add(r->polls, 1);
	r->out = 42;
	return ROUSE_READY;
}

static const struct rouse_future_vtable ready_vt = { ready_poll, NULL };

static void ready_init(struct ready_fut *r, atomic_int *polls)
{
	r->base.vtable = &ready_vt;
	r->polls = polls;
	r->out = 0;
}

/* ---- the hook itself ----------------------------------------------- */

START_TEST(test_set_invalid)
{
	struct rouse_allocator a = fa_allocator;
	struct rouse_mutex *m;

	fa_install();
	a.malloc = NULL;
	ck_assert_int_eq(rouse_executor_set_allocator(&a), -EINVAL);
	ck_assert_int_eq(rouse_reactor_set_allocator(&a), -EINVAL);
	a = fa_allocator;
	a.realloc = NULL;
	ck_assert_int_eq(rouse_executor_set_allocator(&a), -EINVAL);
	ck_assert_int_eq(rouse_reactor_set_allocator(&a), -EINVAL);
	a = fa_allocator;
	a.free = NULL;
	ck_assert_int_eq(rouse_executor_set_allocator(&a), -EINVAL);
	ck_assert_int_eq(rouse_reactor_set_allocator(&a), -EINVAL);
	/* The allocator in place stays. */
	fa_arm(-1);
	ck_assert_int_eq(rouse_mutex_new(&m), 0);
	ck_assert_int_eq(atomic_load(&fa.calls), 1);
	ck_assert_int_eq(rouse_mutex_free(m), 0);
	ck_assert_int_eq(fa_live(), 0);
	fa_remove();
	/* data may be anything, NULL included. */
	a = fa_allocator;
	a.data = NULL;
	ck_assert_int_eq(rouse_executor_set_allocator(&a), 0);
	ck_assert_int_eq(rouse_reactor_set_allocator(&a), 0);
	ck_assert_int_eq(rouse_executor_set_allocator(NULL), 0);
	ck_assert_int_eq(rouse_reactor_set_allocator(NULL), 0);
}
END_TEST

/* Each library has its own hook; the struct is copied. */
START_TEST(test_per_library)
{
	struct rouse_allocator a = fa_allocator;
	struct rouse_reactor *r;
	struct rouse_mutex *m;

	fa_install();
	ck_assert_int_eq(rouse_reactor_set_allocator(NULL), 0);
	/* The caller's struct may go: the library keeps a copy. */
	ck_assert_int_eq(rouse_executor_set_allocator(&a), 0);
	memset(&a, 0, sizeof(a));

	fa_arm(-1);
	ck_assert_int_eq(rouse_mutex_new(&m), 0);
	ck_assert_int_eq(atomic_load(&fa.calls), 1);
	ck_assert_int_eq(fa_live(), 1);
	ck_assert_int_eq(rouse_reactor_new(&r, 0), 0);
	ck_assert_int_eq(atomic_load(&fa.calls), 1);
	rouse_reactor_free(r);
	ck_assert_int_eq(rouse_mutex_free(m), 0);
	ck_assert_int_eq(fa_live(), 0);

	/* The other way round. */
	ck_assert_int_eq(rouse_executor_set_allocator(NULL), 0);
	ck_assert_int_eq(rouse_reactor_set_allocator(&fa_allocator), 0);
	fa_arm(-1);
	ck_assert_int_eq(rouse_mutex_new(&m), 0);
	ck_assert_int_eq(atomic_load(&fa.calls), 0);
	ck_assert_int_eq(rouse_reactor_new(&r, 0), 0);
	ck_assert_int_eq(atomic_load(&fa.calls), 2);
	ck_assert_int_eq(fa_live(), 2);
	rouse_reactor_free(r);
	ck_assert_int_eq(rouse_mutex_free(m), 0);
	ck_assert_int_eq(fa_live(), 0);
	fa_remove();
}
END_TEST

/*
 * Swapping allocators while other threads allocate: every allocation
 * goes through one hook or the other, whole.  Both hooks wrap malloc and
 * share one count, as the page asks of hooks that are swapped live.
 */
#define SWAP_THREADS 3
#define SWAP_ITERS 2000

struct swap_arg {
	struct test_barrier *start;
	int errors;
};

static void *swap_thread(void *arg)
{
	struct swap_arg *sa = arg;
	struct rouse_mutex *m;
	int i;

	test_barrier_wait(sa->start);
	for (i = 0; i < SWAP_ITERS; i++) {
		if (rouse_mutex_new(&m) != 0 || rouse_mutex_free(m) != 0)
			sa->errors++;
	}
	return NULL;
}

START_TEST(test_swap_live)
{
	struct rouse_allocator b = fa_allocator;
	struct swap_arg sa[SWAP_THREADS];
	struct test_barrier start;
	pthread_t t[SWAP_THREADS];
	int i;

	/* A second hook on the same heap and count. */
	b.malloc = fa_malloc_b;
	fa_install();
	fa_arm(-1);
	test_barrier_init(&start, SWAP_THREADS + 1);
	for (i = 0; i < SWAP_THREADS; i++) {
		sa[i].start = &start;
		sa[i].errors = 0;
		t[i] = test_thread_start(swap_thread, &sa[i]);
	}
	test_barrier_wait(&start);
	for (i = 0; i < 1000; i++) {
		ck_assert_int_eq(rouse_executor_set_allocator(
					 i % 2 ? &b : &fa_allocator), 0);
		sched_yield();
	}
	for (i = 0; i < SWAP_THREADS; i++) {
		test_thread_join(t[i]);
		ck_assert_int_eq(sa[i].errors, 0);
	}
	test_barrier_destroy(&start);
	/* Not one allocation went around the hooks, none leaked. */
	ck_assert_int_eq(atomic_load(&fa.calls), SWAP_THREADS * SWAP_ITERS);
	ck_assert_int_eq(fa_live(), 0);
	fa_remove();
}
END_TEST

/* ---- the executor -------------------------------------------------- */

/* Returns the number of allocations that rouse_executor_new() made. */
static int executor_new_loop(const struct rouse_executor_config *cfg)
{
	struct rouse_executor *ex;
	int n, err, threads0 = test_count_threads_settled();

	fa_install();
	for (n = 0;; n++) {
		ck_assert_int_lt(n, LOOP_MAX);
		ex = SENTINEL;
		fa_arm(n);
		err = rouse_executor_new(cfg, &ex);
		if (fa_step(err)) {
			ck_assert_int_eq(rouse_executor_free(ex), 0);
			break;
		}
		if (err == 0) {
			ck_assert_int_eq(rouse_executor_free(ex), 0);
		} else {
			/* Documented: *out is NULL on error. */
			ck_assert_ptr_null(ex);
		}
		ck_assert_int_eq(fa_live(), 0);
		ck_assert_int_eq(test_wait_threads(threads0), threads0);
	}
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(fa_live(), 0);
	ck_assert_int_eq(test_wait_threads(threads0), threads0);
	fa_remove();
	return n;
}

START_TEST(test_executor_new_current)
{
	struct rouse_executor_config cfg;

	ck_assert_int_eq(rouse_executor_config_init(&cfg), 0);
	/* The executor and its table of one worker. */
	ck_assert_int_ge(executor_new_loop(&cfg), 2);
}
END_TEST

/* Its workers' parkers are allocated on the workers' threads. */
START_TEST(test_executor_new_multi)
{
	struct rouse_executor_config cfg;

	ck_assert_int_eq(rouse_executor_config_init(&cfg), 0);
	cfg.kind = ROUSE_EXECUTOR_MULTI_THREAD;
	cfg.workers = 2;
	/* The executor, workers, idle stack, two parkers, at least. */
	ck_assert_int_ge(executor_new_loop(&cfg), 5);
}
END_TEST

static void spawn_loop(enum rouse_executor_kind kind, bool detached)
{
	struct rouse_executor_config cfg;
	struct rouse_executor *ex;
	struct rouse_join_handle h, untouched;
	struct ready_fut f;
	atomic_int polls;
	long live0;
	int n, err;

	/* The thread's parker is made before counting starts. */
	test_warm_thread_parker();
	ck_assert_int_eq(rouse_executor_config_init(&cfg), 0);
	cfg.kind = kind;
	cfg.workers = 1;
	/* Workers' parkers come from fa too: they are freed under it. */
	fa_install();
	ck_assert_int_eq(rouse_executor_new(&cfg, &ex), 0);
	live0 = fa_live();
	for (n = 0;; n++) {
		ck_assert_int_lt(n, LOOP_MAX);
		atomic_init(&polls, 0);
		ready_init(&f, &polls);
		memset(&h, 0xa5, sizeof(h));
		untouched = h;
		fa_arm(n);
		err = rouse_spawn(ex, &f.base, sizeof(f), detached ? NULL : &h);
		if (!fa_step(err) && err < 0) {
			ck_assert_int_eq(memcmp(&h, &untouched, sizeof(h)), 0);
			ck_assert_int_eq(fa_live(), live0);
			ck_assert_int_eq(atomic_load(&polls), 0);
			continue;
		}
		ck_assert_int_eq(err, 0);
		if (!detached) {
			ck_assert_int_eq(rouse_executor_block_on(ex, &h.base),
					 0);
			ck_assert_int_eq(h.result, 0);
			ck_assert_int_eq(
				((struct ready_fut *)h.output)->out, 42);
			ck_assert_int_eq(rouse_future_drop(&h.base), 0);
			ck_assert_int_eq(atomic_load(&polls), 1);
		}
		break;
	}
	ck_assert_int_gt(n, 0);
	/* Freeing runs or drops a detached task; either way it is freed. */
	ck_assert_int_eq(rouse_executor_free(ex), 0);
	ck_assert_int_eq(fa_live(), 0);
	fa_remove();
}

START_TEST(test_spawn)
{
	spawn_loop(ROUSE_EXECUTOR_CURRENT_THREAD, false);
}
END_TEST

START_TEST(test_spawn_detached)
{
	spawn_loop(ROUSE_EXECUTOR_CURRENT_THREAD, true);
}
END_TEST

START_TEST(test_spawn_multi)
{
	spawn_loop(ROUSE_EXECUTOR_MULTI_THREAD, false);
}
END_TEST

/* A fresh thread: its parker is one more allocation to fail. */
enum fresh_op {
	FRESH_THREAD_PARKER,
	FRESH_BLOCK_ON,
	FRESH_EXECUTOR_BLOCK_ON,
};

struct fresh_arg {
	enum fresh_op op;
	struct rouse_executor *ex;
	atomic_int polls;
	int err;
	bool untouched;		/* FRESH_THREAD_PARKER: *out kept */
};

static void *fresh_thread(void *arg)
{
	struct fresh_arg *a = arg;
	struct rouse_parker p = { SENTINEL, NULL };
	struct ready_fut f;

	ready_init(&f, &a->polls);
	switch (a->op) {
	case FRESH_THREAD_PARKER:
		a->err = rouse_thread_parker(&p);
		a->untouched = p.data == SENTINEL && p.vtable == NULL;
		break;
	case FRESH_BLOCK_ON:
		a->err = rouse_block_on(&f.base);
		break;
	case FRESH_EXECUTOR_BLOCK_ON:
		a->err = rouse_executor_block_on(a->ex, &f.base);
		break;
	}
	return NULL;
}

/* Returns the number of allocations of the call. */
static int fresh_loop(enum fresh_op op, struct rouse_executor *ex)
{
	struct fresh_arg a;
	long live0 = fa_live();
	int n;

	for (n = 0;; n++) {
		ck_assert_int_lt(n, LOOP_MAX);
		a.op = op;
		a.ex = ex;
		atomic_init(&a.polls, 0);
		a.err = 1;
		a.untouched = false;
		fa_arm(n);
		/* The thread's exit frees its parker before the join ends. */
		test_thread_join(test_thread_start(fresh_thread, &a));
		ck_assert_int_eq(fa_live(), live0);
		if (fa_step(a.err))
			break;
		ck_assert_int_eq(a.err, -ENOMEM);
		ck_assert_int_eq(atomic_load(&a.polls), 0);
		if (op == FRESH_THREAD_PARKER)
			ck_assert(a.untouched);
	}
	ck_assert_int_gt(n, 0);
	if (op != FRESH_THREAD_PARKER)
		ck_assert_int_eq(atomic_load(&a.polls), 1);
	return n;
}

START_TEST(test_thread_parker)
{
	fa_install();
	ck_assert_int_eq(fresh_loop(FRESH_THREAD_PARKER, NULL), 1);
	fa_remove();
}
END_TEST

START_TEST(test_block_on)
{
	fa_install();
	/* The thread's parker: its waker and the poll allocate nothing. */
	ck_assert_int_eq(fresh_loop(FRESH_BLOCK_ON, NULL), 1);
	fa_remove();
}
END_TEST

/*
 * _i == 0, current-thread: the parker, then the root waker; _i == 1,
 * multi-thread: the parker.  The executor must still be free to go.
 */
START_TEST(test_executor_block_on)
{
	struct rouse_executor_config cfg;
	struct rouse_executor *ex;

	ck_assert_int_eq(rouse_executor_config_init(&cfg), 0);
	if (_i == 1) {
		cfg.kind = ROUSE_EXECUTOR_MULTI_THREAD;
		cfg.workers = 1;
	}
	/* Its worker's parker comes from fa: it is freed under it. */
	fa_install();
	ck_assert_int_eq(rouse_executor_new(&cfg, &ex), 0);
	ck_assert_int_ge(fresh_loop(FRESH_EXECUTOR_BLOCK_ON, ex),
			 _i == 0 ? 2 : 1);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
	ck_assert_int_eq(fa_live(), 0);
	fa_remove();
}
END_TEST

/* ---- the blocking pool --------------------------------------------- */

START_TEST(test_blocking_pool_new)
{
	struct rouse_blocking_pool *pool;
	int n, err;

	fa_install();
	for (n = 0;; n++) {
		ck_assert_int_lt(n, LOOP_MAX);
		pool = SENTINEL;
		fa_arm(n);
		err = rouse_blocking_pool_new(NULL, &pool);
		if (fa_step(err)) {
			ck_assert_int_eq(rouse_blocking_pool_free(pool), 0);
			break;
		}
		if (err == 0)
			ck_assert_int_eq(rouse_blocking_pool_free(pool), 0);
		else
			ck_assert_ptr_eq(pool, SENTINEL);
		ck_assert_int_eq(fa_live(), 0);
	}
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(fa_live(), 0);
	fa_remove();
}
END_TEST

static atomic_int blocking_calls;

static void *blocking_fn(void *arg)
{
	atomic_fetch_add(&blocking_calls, 1);
	return arg;
}

START_TEST(test_spawn_blocking)
{
	struct rouse_blocking_pool *pool;
	struct rouse_blocking b, untouched;
	int n, err, threads0 = test_count_threads_settled();

	test_warm_thread_parker();
	fa_install();
	for (n = 0;; n++) {
		ck_assert_int_lt(n, LOOP_MAX);
		/* A pool per step: it holds what its threads release. */
		ck_assert_int_eq(rouse_blocking_pool_new(NULL, &pool), 0);
		atomic_store(&blocking_calls, 0);
		memset(&b, 0xa5, sizeof(b));
		untouched = b;
		fa_arm(n);
		err = rouse_spawn_blocking(pool, blocking_fn, &b, &b);
		if (fa_step(err)) {
			ck_assert_int_eq(rouse_block_on(&b.base), 0);
			ck_assert_int_eq(b.result, 0);
			ck_assert_ptr_eq(b.value, &b);
			ck_assert_int_eq(rouse_future_drop(&b.base), 0);
			ck_assert_int_eq(atomic_load(&blocking_calls), 1);
			ck_assert_int_eq(rouse_blocking_pool_free(pool), 0);
			break;
		}
		ck_assert_int_eq(memcmp(&b, &untouched, sizeof(b)), 0);
		ck_assert_int_eq(rouse_blocking_pool_free(pool), 0);
		ck_assert_int_eq(atomic_load(&blocking_calls), 0);
		ck_assert_int_eq(fa_live(), 0);
	}
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(fa_live(), 0);
	ck_assert_int_eq(test_wait_threads(threads0), threads0);
	fa_remove();
}
END_TEST

/*
 * With a NULL pool the job goes to the process's default pool, made at
 * the first such call: that call allocates the pool, then the job.  The
 * pool stays (it is the process's), so one block may stay alive.
 */
START_TEST(test_spawn_blocking_default)
{
	struct rouse_blocking_pool *pool;
	struct rouse_blocking b, untouched;
	int n, err;

	test_warm_thread_parker();
	fa_install();
	for (n = 0;; n++) {
		ck_assert_int_lt(n, LOOP_MAX);
		atomic_store(&blocking_calls, 0);
		memset(&b, 0xa5, sizeof(b));
		untouched = b;
		fa_arm(n);
		err = rouse_spawn_blocking(NULL, blocking_fn, &b, &b);
		if (fa_step(err))
			break;
		ck_assert_int_eq(memcmp(&b, &untouched, sizeof(b)), 0);
		ck_assert_int_eq(atomic_load(&blocking_calls), 0);
		ck_assert_int_le(fa_live(), 1);
		if (fa_live() == 1) {
			/* That block is the default pool: no allocation now. */
			fa_arm(0);
			ck_assert_int_eq(rouse_blocking_pool_default(&pool), 0);
			fa_disarm();
			ck_assert_int_eq(atomic_load(&fa.calls), 0);
		}
	}
	/* The pool, then the job. */
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(rouse_block_on(&b.base), 0);
	ck_assert_int_eq(b.result, 0);
	ck_assert_ptr_eq(b.value, &b);
	ck_assert_int_eq(rouse_future_drop(&b.base), 0);
	ck_assert_int_eq(atomic_load(&blocking_calls), 1);
	/*
	 * The pool's thread lets go of the job just after the wake; a job
	 * that is never freed makes the tcase time out.
	 */
	while (fa_live() != 1)
		sched_yield();
	fa_remove();
}
END_TEST

/* ---- synchronisation ----------------------------------------------- */

enum sync_kind {
	SYNC_ONESHOT,
	SYNC_MPSC_BOUNDED,
	SYNC_MPSC_UNBOUNDED,
	SYNC_MUTEX,
	SYNC_SEMAPHORE,
	SYNC_NOTIFY,
	SYNC_KINDS,
};

/*
 * Make one object of kind k.  *out receives what the constructor left in
 * its out-parameter, which starts as the sentinel: on failure, it must
 * still be that.
 */
static int sync_new(enum sync_kind k, void **out)
{
	struct rouse_semaphore *s = SENTINEL;
	struct rouse_oneshot *o = SENTINEL;
	struct rouse_mpsc *m = SENTINEL;
	struct rouse_mutex *x = SENTINEL;
	struct rouse_notify *n = SENTINEL;
	int err;

	switch (k) {
	case SYNC_ONESHOT:
		err = rouse_oneshot_new(sizeof(int), &o);
		*out = o;
		return err;
	case SYNC_MPSC_BOUNDED:
	case SYNC_MPSC_UNBOUNDED:
		err = rouse_mpsc_new(sizeof(int),
				     k == SYNC_MPSC_BOUNDED ? 4 : 0, &m);
		*out = m;
		return err;
	case SYNC_MUTEX:
		err = rouse_mutex_new(&x);
		*out = x;
		return err;
	case SYNC_SEMAPHORE:
		err = rouse_semaphore_new(3, &s);
		*out = s;
		return err;
	case SYNC_NOTIFY:
		err = rouse_notify_new(&n);
		*out = n;
		return err;
	default:
		return -EINVAL;
	}
}

static void sync_free(enum sync_kind k, void *p)
{
	switch (k) {
	case SYNC_ONESHOT:
		ck_assert_int_eq(rouse_oneshot_close(p), 0);
		ck_assert_int_eq(rouse_oneshot_free(p), 0);
		break;
	case SYNC_MPSC_BOUNDED:
	case SYNC_MPSC_UNBOUNDED:
		ck_assert_int_eq(rouse_mpsc_sender_release(p), 0);
		ck_assert_int_eq(rouse_mpsc_free(p), 0);
		break;
	case SYNC_MUTEX:
		ck_assert_int_eq(rouse_mutex_free(p), 0);
		break;
	case SYNC_SEMAPHORE:
		ck_assert_int_eq(rouse_semaphore_free(p), 0);
		break;
	case SYNC_NOTIFY:
		ck_assert_int_eq(rouse_notify_free(p), 0);
		break;
	default:
		ck_abort();
	}
}

/* Each constructor of sync.h, as the _i of a loop test. */
START_TEST(test_sync_new)
{
	void *obj;
	int n, err;

	fa_install();
	for (n = 0;; n++) {
		ck_assert_int_lt(n, LOOP_MAX);
		obj = SENTINEL;
		fa_arm(n);
		err = sync_new((enum sync_kind)_i, &obj);
		if (fa_step(err)) {
			sync_free((enum sync_kind)_i, obj);
			break;
		}
		if (err == 0)
			sync_free((enum sync_kind)_i, obj);
		else
			ck_assert_ptr_eq(obj, SENTINEL);
		ck_assert_int_eq(fa_live(), 0);
	}
	/* A bounded channel allocates its buffer too. */
	ck_assert_int_ge(n, _i == SYNC_MPSC_BOUNDED ? 2 : 1);
	ck_assert_int_eq(fa_live(), 0);
	fa_remove();
}
END_TEST

#define MPSC_VALUES 40

/*
 * An unbounded channel grows as it fills: a send that needs to grow and
 * cannot fails with -ENOMEM and queues nothing; the elements already
 * queued are intact.  Sends alternate between try_send and the future.
 */
START_TEST(test_mpsc_grow)
{
	struct rouse_mpsc *m;
	int i, v, err, failures = 0;

	fa_install();
	ck_assert_int_eq(rouse_mpsc_new(sizeof(int), 0, &m), 0);
	for (i = 0; i < MPSC_VALUES; i++) {
		fa_arm(0);
		if (i % 2 == 0) {
			err = rouse_mpsc_try_send(m, &i);
		} else {
			struct rouse_mpsc_send s;

			ck_assert_int_eq(rouse_mpsc_send_init(&s, m, &i), 0);
			ck_assert_int_eq(test_poll_noop(&s.base), ROUSE_READY);
			err = s.result;
			ck_assert_int_eq(rouse_future_drop(&s.base), 0);
		}
		fa_disarm();
		if (err == 0) {
			ck_assert_int_eq(atomic_load(&fa.failed), 0);
			continue;
		}
		ck_assert_int_eq(err, -ENOMEM);
		ck_assert_int_eq(atomic_load(&fa.failed), 1);
		failures++;
		/* Without the failure it grows and takes the element. */
		fa_arm(-1);
		ck_assert_int_eq(rouse_mpsc_try_send(m, &i), 0);
		ck_assert_int_eq(atomic_load(&fa.calls), 1);
	}
	/* It grew from nothing at least twice. */
	ck_assert_int_ge(failures, 2);
	for (i = 0; i < MPSC_VALUES; i++) {
		ck_assert_int_eq(rouse_mpsc_try_recv(m, &v), 0);
		ck_assert_int_eq(v, i);
	}
	ck_assert_int_eq(rouse_mpsc_try_recv(m, &v), -EAGAIN);
	sync_free(SYNC_MPSC_UNBOUNDED, m);
	ck_assert_int_eq(fa_live(), 0);
	fa_remove();
}
END_TEST

/* ---- the reactor --------------------------------------------------- */

START_TEST(test_reactor_new)
{
	struct rouse_reactor *r;
	int n, err, fds0 = test_count_fds();

	fa_install();
	for (n = 0;; n++) {
		ck_assert_int_lt(n, LOOP_MAX);
		r = SENTINEL;
		fa_arm(n);
		err = rouse_reactor_new(&r, _i ? ROUSE_REACTOR_LOCAL : 0);
		if (fa_step(err)) {
			rouse_reactor_free(r);
			break;
		}
		if (err == 0)
			rouse_reactor_free(r);
		else
			ck_assert_ptr_eq(r, SENTINEL);
		ck_assert_int_eq(fa_live(), 0);
		ck_assert_int_eq(test_count_fds(), fds0);
	}
	/* The reactor and its wake handle. */
	ck_assert_int_ge(n, 2);
	ck_assert_int_eq(fa_live(), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
	fa_remove();
}
END_TEST

/* Sources that fill a reactor's first table of slots. */
#define IO_PREFILL 64
/* A descriptor number past the reactor's first table of fds. */
#define IO_HIGH_FD 300

/*
 * The registration of a high fd, which grows the table of fd owners:
 * _i == 0, as the first source of a reactor (its tables start empty);
 * _i == 1, as the first source past the first table of slots.  A failed
 * registration may leave the tables grown (the reactor keeps them), so
 * the count is checked after freeing the reactor; the reactor must still
 * work after the failure.
 */
START_TEST(test_io_register)
{
	struct rouse_reactor *r;
	struct rouse_io *pre[IO_PREFILL], *io;
	int sv[2], fds[IO_PREFILL], n, i, err, npre, fd;

	npre = _i == 0 ? 0 : IO_PREFILL;
	test_pair_make(sv);
	fd = fcntl(sv[1], F_DUPFD_CLOEXEC, IO_HIGH_FD);
	ck_assert_int_ge(fd, IO_HIGH_FD);
	for (i = 0; i < npre; i++) {
		fds[i] = dup(sv[0]);
		ck_assert_int_ge(fds[i], 0);
	}
	fa_install();
	for (n = 0;; n++) {
		bool done;

		ck_assert_int_lt(n, LOOP_MAX);
		ck_assert_int_eq(rouse_reactor_new(&r, 0), 0);
		for (i = 0; i < npre; i++)
			ck_assert_int_eq(rouse_io_register(r, fds[i], &pre[i]),
					 0);
		io = SENTINEL;
		fa_arm(n);
		err = rouse_io_register(r, fd, &io);
		done = fa_step(err);
		if (err < 0) {
			ck_assert_ptr_eq(io, SENTINEL);
			/* The reactor is intact: the same fd registers. */
			ck_assert_int_eq(rouse_io_register(r, fd, &io), 0);
		}
		ck_assert_int_eq(rouse_io_fd(io), fd);
		ck_assert_int_eq(rouse_io_deregister(io), 0);
		for (i = 0; i < npre; i++)
			ck_assert_int_eq(rouse_io_deregister(pre[i]), 0);
		rouse_reactor_free(r);
		ck_assert_int_eq(fa_live(), 0);
		if (done)
			break;
	}
	/* The source, three tables of slots, the table of fd owners. */
	ck_assert_int_ge(n, 5);
	fa_remove();
	for (i = 0; i < npre; i++)
		close(fds[i]);
	close(fd);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_event_new)
{
	struct rouse_reactor *r;
	struct rouse_event *ev;
	int n, err, fds0;

	fa_install();
	fds0 = test_count_fds();
	for (n = 0;; n++) {
		bool done;

		ck_assert_int_lt(n, LOOP_MAX);
		ck_assert_int_eq(rouse_reactor_new(&r, 0), 0);
		ev = SENTINEL;
		fa_arm(n);
		err = rouse_event_new(r, &ev);
		done = fa_step(err);
		if (err == 0) {
			ck_assert_int_eq(rouse_event_notify(ev), 0);
			rouse_event_free(ev);
		} else {
			ck_assert_ptr_eq(ev, SENTINEL);
		}
		rouse_reactor_free(r);
		ck_assert_int_eq(fa_live(), 0);
		ck_assert_int_eq(test_count_fds(), fds0);
		if (done)
			break;
	}
	/* The event and (its first source) three tables of slots. */
	ck_assert_int_ge(n, 4);
	fa_remove();
}
END_TEST

/* Timers live in the caller's struct: sleeping allocates nothing. */
START_TEST(test_sleep_allocates_nothing)
{
	struct test_fixture fx;
	struct rouse_sleep s;

	fa_install();
	test_fixture_init(&fx);
	ck_assert_int_eq(rouse_reactor_clock_pause(fx.r), 0);
	/* Any allocation from here on fails, and is counted. */
	fa_arm(0);
	ck_assert_int_eq(rouse_sleep_init(&s, fx.r, 1000), 0);
	ck_assert_int_eq(test_poll_with(&s.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_ge(rouse_reactor_clock_advance(fx.r, 1000), 0);
	ck_assert_int_ge(rouse_reactor_turn(fx.r, 0), 0);
	ck_assert_int_eq(test_poll_with(&s.base, &fx.w), ROUSE_READY);
	test_sleep_done(&s);
	ck_assert_int_eq(atomic_load(&fa.calls), 0);
	fa_disarm();
	test_fixture_free(&fx);
	ck_assert_int_eq(fa_live(), 0);
	fa_remove();
}
END_TEST

static Suite *alloc_suite(void)
{
	Suite *s = suite_create("alloc");
	TCase *tc;

	tc = tcase_create("hook");
	tcase_add_test(tc, test_set_invalid);
	tcase_add_test(tc, test_per_library);
	tcase_add_test(tc, test_swap_live);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = tcase_create("executor");
	tcase_add_test(tc, test_executor_new_current);
	tcase_add_test(tc, test_executor_new_multi);
	tcase_add_test(tc, test_spawn);
	tcase_add_test(tc, test_spawn_detached);
	tcase_add_test(tc, test_spawn_multi);
	tcase_add_test(tc, test_thread_parker);
	tcase_add_test(tc, test_block_on);
	tcase_add_loop_test(tc, test_executor_block_on, 0, 2);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = tcase_create("blocking");
	tcase_add_test(tc, test_blocking_pool_new);
	tcase_add_test(tc, test_spawn_blocking);
	tcase_add_test(tc, test_spawn_blocking_default);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = tcase_create("sync");
	tcase_add_loop_test(tc, test_sync_new, 0, SYNC_KINDS);
	tcase_add_test(tc, test_mpsc_grow);
	suite_add_tcase(s, tc);

	tc = tcase_create("reactor");
	tcase_add_loop_test(tc, test_reactor_new, 0, 2);
	tcase_add_loop_test(tc, test_io_register, 0, 2);
	tcase_add_test(tc, test_event_new);
	tcase_add_test(tc, test_sleep_allocates_nothing);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(alloc_suite());
}
