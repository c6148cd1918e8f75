// SPDX-License-Identifier: MIT
/*
 * tests/check_alloc.c - the allocator hook: every function that allocates
 * fails cleanly, with -ENOMEM, its output untouched and nothing leaked,
 * whichever of its allocations fails.  The executor, the blocking pool,
 * the sync objects and the reactor; then the service layer: streams,
 * TCP, UDP and Unix sockets (the accepts and connects allocate in their
 * polls), signal listeners, child processes (no child left behind, not
 * even a zombie) and name lookups.  The futures of the service layer
 * that are meant to allocate nothing are run with every allocation
 * failing, and must ask for none.
 *
 * The pattern of each failure loop: fail allocation n (n = 0, 1, 2, ...),
 * call the function, check the failure or clean up the success, and check
 * that the blocks alive are back to what they were; stop once a call ran
 * without meeting the failure, which proves every allocation of that call
 * was tried.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rouse/alloc.h>
#include <rouse/blocking.h>
#include <rouse/dns.h>
#include <rouse/executor.h>
#include <rouse/net.h>
#include <rouse/process.h>
#include <rouse/reactor.h>
#include <rouse/signal.h>
#include <rouse/sync.h>

#include "testutil.h"

/* No function here makes anywhere near this many allocations. */
#define LOOP_MAX 64

/* ---- a counting allocator that fails on demand --------------------- */

/*
 * test_fail_alloc (testutil.h) wraps the C library's, so blocks may move
 * between it and the default allocator freely; each test still installs
 * it before making anything and restores the default after freeing
 * everything.
 */
static struct test_fail_alloc fa;

/* The same, under another name: a second allocator on the same heap. */
static void *fa_malloc_b(void *data, size_t size)
{
	return test_fa_malloc(data, size);
}

static const struct rouse_allocator fa_allocator = {
	.malloc = test_fa_malloc,
	.realloc = test_fa_realloc,
	.free = test_fa_free,
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

/*
 * The executor's memory lives exactly as long as its last reference: the
 * program's, and one per finished task whose memory a join handle keeps.
 * The executor's own threads count theirs apart and free folds them in
 * (sched.h): a handle dropped inside a task (on a worker), one dropped
 * after free (on this thread), and free itself must between them free
 * the memory once, at the last of them.
 */
struct handle_dropper {
	struct rouse_future base;
	struct rouse_join_handle h;	/* moved in; dropped at the poll */
};

static enum rouse_poll handle_dropper_poll(struct rouse_future *f,
					   struct rouse_context *cx)
{
	struct handle_dropper *d = (struct handle_dropper *)f;

	(void)cx;
	ck_assert_ptr_nonnull(rouse_executor_current());
	rouse_future_drop(&d->h.base);
	return ROUSE_READY;
}

static const struct rouse_future_vtable handle_dropper_vt = {
	handle_dropper_poll, NULL
};

static void memory_follows_last_reference(enum rouse_executor_kind kind)
{
	struct rouse_executor_config cfg;
	struct rouse_executor *ex;
	struct rouse_join_handle ha, hb, hd;
	struct handle_dropper d;
	struct ready_fut fa_fut, fb_fut;
	atomic_int polls;

	test_warm_thread_parker();
	ck_assert_int_eq(rouse_executor_config_init(&cfg), 0);
	cfg.kind = kind;
	cfg.workers = 2;
	fa_install();
	ck_assert_int_eq(rouse_executor_new(&cfg, &ex), 0);
	atomic_init(&polls, 0);
	ready_init(&fa_fut, &polls);
	ready_init(&fb_fut, &polls);
	ck_assert_int_eq(rouse_spawn(ex, &fa_fut.base, sizeof(fa_fut), &ha), 0);
	ck_assert_int_eq(rouse_spawn(ex, &fb_fut.base, sizeof(fb_fut), &hb), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &ha.base), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &hb.base), 0);
	ck_assert_int_eq(ha.result, 0);
	ck_assert_int_eq(hb.result, 0);
	/* hb goes inside a task: on one of the executor's threads. */
	d.base.vtable = &handle_dropper_vt;
	d.h = hb;
	ck_assert_int_eq(rouse_spawn(ex, &d.base, sizeof(d), &hd), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &hd.base), 0);
	ck_assert_int_eq(hd.result, 0);
	ck_assert_int_eq(rouse_future_drop(&hd.base), 0);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
	/* ha keeps task a's block, and that keeps the executor's. */
	ck_assert_int_gt(fa_live(), 1);
	ck_assert_int_eq(((struct ready_fut *)ha.output)->out, 42);
	ck_assert_int_eq(rouse_future_drop(&ha.base), 0);
	ck_assert_int_eq(fa_live(), 0);
	ck_assert_int_eq(atomic_load(&polls), 2);
	fa_remove();
}

START_TEST(test_memory_follows_last_reference)
{
	memory_follows_last_reference(_i == 0 ? ROUSE_EXECUTOR_CURRENT_THREAD
					      : ROUSE_EXECUTOR_MULTI_THREAD);
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

/* ---- the service layer: helpers ------------------------------------ */

/*
 * Whether this process has no child, running or a zombie.  Check runs
 * each test in a child of its own (or in a runner that has none), so a
 * child found here is one that a call left behind.
 */
static bool no_children(void)
{
	siginfo_t si;

	return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 &&
	       errno == ECHILD;
}

/*
 * Fail every allocation until fa_forbid_end(), which checks that none
 * was asked for: around the calls that are meant to allocate nothing.
 */
static void fa_forbid(void)
{
	fa_arm(0);
}

static void fa_forbid_end(void)
{
	fa_disarm();
	ck_assert_int_eq(atomic_load(&fa.calls), 0);
}

/* Run f to completion on r, which the calling thread drives. */
static void drive(struct rouse_reactor *r, struct rouse_future *f)
{
	struct rouse_parker p;

	ck_assert_int_eq(rouse_reactor_parker(r, &p), 0);
	ck_assert_int_eq(rouse_block_on_with(f, &p), 0);
}

/*
 * A reactor whose tables already have room (a source was registered and
 * taken out again), so that a registration allocates its source alone
 * and a failed call must give back, at once, every block it took.  The
 * tables of a fresh reactor start empty and its first registration
 * grows them; a failure may leave them grown, since the reactor keeps
 * them, so there only freeing the reactor gives the count back.
 */
static struct rouse_reactor *reactor_warm(void)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_io *io;
	int sv[2];

	test_pair_make(sv);
	ck_assert_int_eq(rouse_io_register(r, sv[0], &io), 0);
	ck_assert_int_eq(rouse_io_deregister(io), 0);
	close(sv[0]);
	close(sv[1]);
	return r;
}

/* Read exactly len bytes from a blocking descriptor. */
static void fd_read_all(int fd, void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = read(fd, (char *)buf + done, len - done);
		ck_assert_msg(n > 0, "read: %zd (%s)", n, strerror(errno));
		done += (size_t)n;
	}
}

/*
 * The peer of a connection that the library accepted or made and then
 * closed, having failed to make a stream of it: it sees the end.
 */
static void fd_sees_end(int fd)
{
	char c;

	ck_assert_int_eq(recv(fd, &c, 1, 0), 0);
}

/* Read exactly len bytes from stream s, driving r. */
static void stream_read_all(struct rouse_reactor *r, struct rouse_stream *s,
			    void *buf, size_t len)
{
	struct rouse_stream_rw f;

	ck_assert_int_eq(rouse_stream_read_exact_init(&f, s, buf, len), 0);
	drive(r, &f.base);
	ck_assert_int_eq(f.result, (ssize_t)len);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
}

/* Write all of text to stream s, driving r. */
static void stream_write_text(struct rouse_reactor *r, struct rouse_stream *s,
			      const char *text)
{
	struct rouse_stream_rw f;
	size_t len = strlen(text);

	ck_assert_int_eq(rouse_stream_write_all_init(&f, s, text, len), 0);
	drive(r, &f.base);
	ck_assert_int_eq(f.result, (ssize_t)len);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
}

/* The stream is at its end: a read gives 0. */
static void stream_sees_end(struct rouse_reactor *r, struct rouse_stream *s)
{
	struct rouse_stream_rw f;
	char c;

	ck_assert_int_eq(rouse_stream_read_init(&f, s, &c, 1), 0);
	drive(r, &f.base);
	ck_assert_int_eq(f.result, 0);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
}

/*
 * Stream s and the test's blocking descriptor fd are the two ends of a
 * connection: a message goes each way, and the stream allocates nothing.
 */
static void stream_talk(struct rouse_reactor *r, struct rouse_stream *s,
			int fd)
{
	char buf[4];

	fa_forbid();
	stream_write_text(r, s, "ping");
	fd_read_all(fd, buf, 4);
	ck_assert_int_eq(memcmp(buf, "ping", 4), 0);
	ck_assert_int_eq(send(fd, "pong", 4, MSG_NOSIGNAL), 4);
	stream_read_all(r, s, buf, 4);
	ck_assert_int_eq(memcmp(buf, "pong", 4), 0);
	fa_forbid_end();
}

/* The same for two streams, the ends of one connection. */
static void streams_talk(struct rouse_reactor *r, struct rouse_stream *a,
			 struct rouse_stream *b)
{
	char buf[4];

	fa_forbid();
	stream_write_text(r, a, "ping");
	stream_read_all(r, b, buf, 4);
	ck_assert_int_eq(memcmp(buf, "ping", 4), 0);
	stream_write_text(r, b, "pong");
	stream_read_all(r, a, buf, 4);
	ck_assert_int_eq(memcmp(buf, "pong", 4), 0);
	fa_forbid_end();
}

/* Receive one datagram on d, driving r; it must be text. */
static void dgram_recv_text(struct rouse_reactor *r, struct rouse_dgram *d,
			    const char *text)
{
	struct rouse_dgram_rw f;
	char buf[32];

	ck_assert_int_eq(rouse_dgram_recv_from_init(&f, d, buf, sizeof(buf)),
			 0);
	drive(r, &f.base);
	ck_assert_int_eq(f.result, (ssize_t)strlen(text));
	ck_assert_int_eq(f.truncated, 0);
	ck_assert_int_eq(memcmp(buf, text, strlen(text)), 0);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
}

/* Send text from d to to (NULL: d's peer), driving r. */
static void dgram_send_text(struct rouse_reactor *r, struct rouse_dgram *d,
			    const struct rouse_addr *to, const char *text)
{
	struct rouse_dgram_rw f;
	size_t len = strlen(text);

	ck_assert_int_eq(rouse_dgram_send_to_init(&f, d, text, len, to), 0);
	drive(r, &f.base);
	ck_assert_int_eq(f.result, (ssize_t)len);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
}

/* A datagram from a to to (NULL: a's peer), received on b; no allocation. */
static void dgrams_talk(struct rouse_reactor *r, struct rouse_dgram *a,
			const struct rouse_addr *to, struct rouse_dgram *b)
{
	fa_forbid();
	dgram_send_text(r, a, to, "ping");
	dgram_recv_text(r, b, "ping");
	fa_forbid_end();
}

/* An abstract Unix name that no other call of this process used. */
static struct rouse_addr unix_name(void)
{
	static int seq;
	struct rouse_addr a;
	char text[64];

	snprintf(text, sizeof(text), "@rouse-check-alloc-%d-%d",
		 (int)getpid(), seq++);
	ck_assert_int_eq(rouse_addr_parse(&a, text), 0);
	return a;
}

/* 127.0.0.1, any port. */
static struct rouse_addr loopback_any(void)
{
	struct rouse_addr a;

	ck_assert_int_eq(rouse_addr_parse(&a, "127.0.0.1:0"), 0);
	return a;
}

/* A blocking stream socket of the test's, connected to a. */
static int plain_connect(const struct rouse_addr *a)
{
	int fd = socket(a->u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, &a->u.sa, a->len), 0);
	return fd;
}

/* A blocking listening socket of the test's at a; its address in *bound. */
static int plain_listen(const struct rouse_addr *a, struct rouse_addr *bound)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = socket(a->u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, &a->u.sa, a->len), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	ck_assert_int_eq(rouse_addr_from_sockaddr(
				 bound, (struct sockaddr *)&ss, len), 0);
	return fd;
}

/* Set through glibc, as the library's restore is (see check_signal.c). */
static void disposition_default(int signo)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(signo, &sa, NULL), 0);
}

/* Whether signo's disposition is still *was (handler, flags, mask). */
static bool disposition_is(int signo, const struct sigaction *was)
{
	struct sigaction now;
	int i;

	ck_assert_int_eq(sigaction(signo, NULL, &now), 0);
	if (now.sa_flags != was->sa_flags || now.sa_handler != was->sa_handler)
		return false;
	for (i = 1; i < NSIG; i++)
		if (sigismember(&now.sa_mask, i) !=
		    sigismember(&was->sa_mask, i))
			return false;
	return true;
}

/* ---- the service layer: every call that allocates ------------------ */

/*
 * Each constructor of <rouse/net.h>, <rouse/signal.h> and
 * <rouse/process.h>, and each future that allocates in its poll (the
 * accepts and connects make their stream there), goes through the same
 * step, with allocation n failing at step n:
 *
 *   prepare   what the call needs, its peers included (allocating freely);
 *   call      the call, the failure armed: 0 or -errno;
 *   failed    after -ENOMEM: the outputs untouched, a peer told the end;
 *   use       after success: the object works, and what it is used for
 *             (its transfers, a signal's wait, a child's wait) allocates
 *             nothing.
 *
 * After a failure the step checks that no descriptor, no child and (on a
 * warm reactor) no block is left; then it prepares again and makes the
 * same call with allocations allowed, which must succeed on the same
 * reactor: the failure disturbed nothing.  Each step ends with the
 * reactor freed and every count back where the test started.
 */
struct step {
	struct rouse_reactor *r;
	int fd[6];			/* the test's descriptors, or -1 */
	int srv;			/* a listening socket of the test's */
	struct rouse_addr addr;		/* where srv or a listener is */
	struct rouse_stream *s[2];
	struct rouse_dgram *d[2];
	struct rouse_tcp_listener *tl;
	struct rouse_unix_listener *ul;
	struct rouse_signal *sig;
	struct rouse_process *p;
	bool in_poll;			/* the call got as far as a poll */
	bool have_disposition;
	struct sigaction disposition;	/* SIGUSR1's before the step */
};

struct svc_call {
	const char *name;
	void (*prepare)(struct step *st);
	int (*call)(struct step *st);
	void (*failed)(struct step *st);
	void (*use)(struct step *st);
	/*
	 * The allocations of the call on a warm reactor.  A fresh one adds
	 * the four tables of its first registration, when the call makes
	 * it (and not the prepare).
	 */
	int allocs;
	bool first_registration;
};

/* Keep fd among the step's descriptors, which its end closes. */
static int step_keep(struct step *st, int fd)
{
	size_t i;

	for (i = 0; i < sizeof(st->fd) / sizeof(st->fd[0]); i++) {
		if (st->fd[i] < 0) {
			st->fd[i] = fd;
			return fd;
		}
	}
	ck_abort_msg("step: no room for another descriptor");
	return -1;
}

/* The newest descriptor the step keeps. */
static int step_last(const struct step *st)
{
	size_t i = sizeof(st->fd) / sizeof(st->fd[0]);

	while (i-- > 0)
		if (st->fd[i] >= 0)
			return st->fd[i];
	ck_abort_msg("step: no descriptor");
	return -1;
}

static void step_init(struct step *st, bool warm)
{
	size_t i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < sizeof(st->fd) / sizeof(st->fd[0]); i++)
		st->fd[i] = -1;
	st->srv = -1;
	st->r = warm ? reactor_warm() : test_reactor_make();
}

/* Free what the step made, the reactor last. */
static void step_end(struct step *st)
{
	size_t i;

	for (i = 0; i < 2; i++) {
		if (st->s[i] != NULL)
			ck_assert_int_eq(rouse_stream_close(st->s[i]), 0);
		if (st->d[i] != NULL)
			ck_assert_int_eq(rouse_dgram_close(st->d[i]), 0);
	}
	if (st->tl != NULL)
		ck_assert_int_eq(rouse_tcp_listener_close(st->tl), 0);
	if (st->ul != NULL)
		ck_assert_int_eq(rouse_unix_listener_close(st->ul), 0);
	if (st->sig != NULL)
		ck_assert_int_eq(rouse_signal_free(st->sig), 0);
	if (st->p != NULL)
		ck_assert_int_eq(rouse_process_free(st->p), 0);
	for (i = 0; i < sizeof(st->fd) / sizeof(st->fd[0]); i++)
		if (st->fd[i] >= 0)
			close(st->fd[i]);
	if (st->srv >= 0)
		close(st->srv);
	rouse_reactor_free(st->r);
	if (st->have_disposition)
		ck_assert(disposition_is(SIGUSR1, &st->disposition));
}

static void nothing(struct step *st)
{
}

/* -- rouse_stream_open(): a blocking socket, adopted -- */

static void stream_open_prepare(struct step *st)
{
	int sv[2];

	if (st->fd[0] >= 0)
		return;		/* after a failure: the same one */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sv), 0);
	step_keep(st, sv[0]);
	step_keep(st, sv[1]);
}

static int stream_open_call(struct step *st)
{
	struct rouse_stream *s = SENTINEL;
	int err = rouse_stream_open(st->r, st->fd[0], &s);

	if (err == 0) {
		st->s[0] = s;
		st->fd[0] = -1;		/* the stream's now */
	} else {
		ck_assert_ptr_eq(s, SENTINEL);
	}
	return err;
}

/* The descriptor is still the caller's, open. */
static void adopt_failed(struct step *st)
{
	ck_assert(test_fd_is_open(st->fd[0]));
}

static void stream_open_use(struct step *st)
{
	stream_talk(st->r, st->s[0], st->fd[1]);
}

/* -- rouse_dgram_open() -- */

static void dgram_open_prepare(struct step *st)
{
	int sv[2];

	if (st->fd[0] >= 0)
		return;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0,
				    sv), 0);
	step_keep(st, sv[0]);
	step_keep(st, sv[1]);
}

static int dgram_open_call(struct step *st)
{
	struct rouse_dgram *d = SENTINEL;
	int err = rouse_dgram_open(st->r, st->fd[0], &d);

	if (err == 0) {
		st->d[0] = d;
		st->fd[0] = -1;
	} else {
		ck_assert_ptr_eq(d, SENTINEL);
	}
	return err;
}

static void dgram_open_use(struct step *st)
{
	char buf[4];

	fa_forbid();
	dgram_send_text(st->r, st->d[0], NULL, "ping");
	ck_assert_int_eq(recv(st->fd[1], buf, sizeof(buf), 0), 4);
	ck_assert_int_eq(memcmp(buf, "ping", 4), 0);
	ck_assert_int_eq(send(st->fd[1], "pong", 4, 0), 4);
	dgram_recv_text(st->r, st->d[0], "pong");
	fa_forbid_end();
}

/* -- listeners: rouse_tcp_listen(), rouse_unix_listen() -- */

static int tcp_listen_call(struct step *st)
{
	struct rouse_tcp_listener *l = SENTINEL;
	struct rouse_addr any = loopback_any();
	int err = rouse_tcp_listen(st->r, &any, 0, 0, &l);

	if (err == 0)
		st->tl = l;
	else
		ck_assert_ptr_eq(l, SENTINEL);
	return err;
}

/* Accept one connection on st->tl or st->ul into st->s[0]: 0 or -errno. */
static int listener_accept(struct step *st)
{
	int err;

	st->in_poll = true;
	if (st->tl != NULL) {
		struct rouse_tcp_accept f;

		ck_assert_int_eq(rouse_tcp_accept_init(&f, st->tl), 0);
		drive(st->r, &f.base);
		err = f.result;
		if (err == 0)
			st->s[0] = f.stream;
		else
			ck_assert_ptr_null(f.stream);
		ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	} else {
		struct rouse_unix_accept f;

		ck_assert_int_eq(rouse_unix_accept_init(&f, st->ul), 0);
		drive(st->r, &f.base);
		err = f.result;
		if (err == 0)
			st->s[0] = f.stream;
		else
			ck_assert_ptr_null(f.stream);
		ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	}
	return err;
}

/* A client of the test's connects, the listener accepts it, they talk. */
static void listener_use(struct step *st)
{
	if (st->tl != NULL)
		ck_assert_int_eq(rouse_tcp_listener_addr(st->tl, &st->addr), 0);
	else
		ck_assert_int_eq(rouse_unix_listener_addr(st->ul, &st->addr),
				 0);
	step_keep(st, plain_connect(&st->addr));
	ck_assert_int_eq(listener_accept(st), 0);
	stream_talk(st->r, st->s[0], step_last(st));
}

static void unix_listen_prepare(struct step *st)
{
	/* After a failure, the same name: the failed call let go of it. */
	if (st->addr.len == 0)
		st->addr = unix_name();
}

static int unix_listen_call(struct step *st)
{
	struct rouse_unix_listener *l = SENTINEL;
	int err = rouse_unix_listen(st->r, &st->addr, 0, &l);

	if (err == 0)
		st->ul = l;
	else
		ck_assert_ptr_eq(l, SENTINEL);
	return err;
}

/* -- the accepts: the stream is made in the poll -- */

/* A listener (once), and a client of the test's waiting to be accepted. */
static void tcp_accept_prepare(struct step *st)
{
	if (st->tl == NULL) {
		struct rouse_addr any = loopback_any();

		ck_assert_int_eq(rouse_tcp_listen(st->r, &any, 0, 0, &st->tl),
				 0);
		ck_assert_int_eq(rouse_tcp_listener_addr(st->tl, &st->addr),
				 0);
	}
	step_keep(st, plain_connect(&st->addr));
}

static void unix_accept_prepare(struct step *st)
{
	if (st->ul == NULL) {
		st->addr = unix_name();
		ck_assert_int_eq(rouse_unix_listen(st->r, &st->addr, 0,
						   &st->ul), 0);
	}
	step_keep(st, plain_connect(&st->addr));
}

/* The connection was accepted and closed: its client sees the end. */
static void accept_failed(struct step *st)
{
	fd_sees_end(step_last(st));
}

static void accept_use(struct step *st)
{
	stream_talk(st->r, st->s[0], step_last(st));
}

/* -- the connects: a socket at init, the stream in the poll -- */

static void tcp_connect_prepare(struct step *st)
{
	struct rouse_addr any = loopback_any();

	if (st->srv < 0)
		st->srv = plain_listen(&any, &st->addr);
}

static void unix_connect_prepare(struct step *st)
{
	struct rouse_addr name;

	if (st->srv < 0) {
		name = unix_name();
		st->srv = plain_listen(&name, &st->addr);
	}
}

static int tcp_connect_call(struct step *st)
{
	struct rouse_tcp_connect f;
	int err;

	st->in_poll = false;
	err = rouse_tcp_connect_init(&f, st->r, &st->addr);
	if (err < 0)
		return err;
	st->in_poll = true;
	drive(st->r, &f.base);
	err = f.result;
	if (err == 0)
		st->s[0] = f.stream;
	else
		ck_assert_ptr_null(f.stream);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	return err;
}

static int unix_connect_call(struct step *st)
{
	struct rouse_unix_connect f;
	int err;

	st->in_poll = false;
	err = rouse_unix_connect_init(&f, st->r, &st->addr);
	if (err < 0)
		return err;
	st->in_poll = true;
	drive(st->r, &f.base);
	err = f.result;
	if (err == 0)
		st->s[0] = f.stream;
	else
		ck_assert_ptr_null(f.stream);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	return err;
}

/*
 * A failure in the poll comes after the connection was made: the
 * server's end of it sees the socket closed.  One at init came before.
 */
static void connect_failed(struct step *st)
{
	int fd;

	if (!st->in_poll)
		return;
	fd = accept4(st->srv, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	fd_sees_end(fd);
	close(fd);
}

static void connect_use(struct step *st)
{
	int fd = accept4(st->srv, NULL, NULL, SOCK_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	stream_talk(st->r, st->s[0], step_keep(st, fd));
}

/* -- socket pairs -- */

static int unix_stream_pair_call(struct step *st)
{
	struct rouse_stream *s[2] = { SENTINEL, SENTINEL };
	int err = rouse_unix_stream_pair(st->r, s);

	if (err == 0) {
		st->s[0] = s[0];
		st->s[1] = s[1];
	} else {
		ck_assert_ptr_eq(s[0], SENTINEL);
		ck_assert_ptr_eq(s[1], SENTINEL);
	}
	return err;
}

static void unix_stream_pair_use(struct step *st)
{
	streams_talk(st->r, st->s[0], st->s[1]);
}

static int unix_dgram_pair_call(struct step *st)
{
	struct rouse_dgram *d[2] = { SENTINEL, SENTINEL };
	int err = rouse_unix_dgram_pair(st->r, d);

	if (err == 0) {
		st->d[0] = d[0];
		st->d[1] = d[1];
	} else {
		ck_assert_ptr_eq(d[0], SENTINEL);
		ck_assert_ptr_eq(d[1], SENTINEL);
	}
	return err;
}

static void unix_dgram_pair_use(struct step *st)
{
	dgrams_talk(st->r, st->d[0], NULL, st->d[1]);
	dgrams_talk(st->r, st->d[1], NULL, st->d[0]);
}

/* -- bound datagram sockets: UDP, Unix -- */

static int udp_bind_call(struct step *st)
{
	struct rouse_dgram *d = SENTINEL;
	struct rouse_addr any = loopback_any();
	int err = rouse_udp_bind(st->r, &any, 0, &d);

	if (err == 0)
		st->d[0] = d;
	else
		ck_assert_ptr_eq(d, SENTINEL);
	return err;
}

static int unix_dgram_bind_call(struct step *st)
{
	struct rouse_dgram *d = SENTINEL;
	int err = rouse_unix_dgram_bind(st->r, &st->addr, &d);

	if (err == 0)
		st->d[0] = d;
	else
		ck_assert_ptr_eq(d, SENTINEL);
	return err;
}

/* A bound datagram socket sends to itself. */
static void bound_dgram_use(struct step *st)
{
	struct rouse_addr self;

	ck_assert_int_eq(rouse_dgram_local_addr(st->d[0], &self), 0);
	dgrams_talk(st->r, st->d[0], &self, st->d[0]);
}

/* -- rouse_signal_new() -- */

static void signal_prepare(struct step *st)
{
	if (st->have_disposition)
		return;
	disposition_default(SIGUSR1);
	ck_assert_int_eq(sigaction(SIGUSR1, NULL, &st->disposition), 0);
	st->have_disposition = true;
}

static int signal_new_call(struct step *st)
{
	struct rouse_signal *s = SENTINEL;
	int err = rouse_signal_new(st->r, SIGUSR1, &s);

	if (err == 0)
		st->sig = s;
	else
		ck_assert_ptr_eq(s, SENTINEL);
	return err;
}

/* No handler was left installed. */
static void signal_failed(struct step *st)
{
	ck_assert(disposition_is(SIGUSR1, &st->disposition));
}

/* A delivery reaches the wait, which allocates nothing. */
static void signal_use(struct step *st)
{
	struct rouse_signal_wait w;

	fa_forbid();
	ck_assert_int_eq(raise(SIGUSR1), 0);
	ck_assert_int_eq(rouse_signal_wait_init(&w, st->sig), 0);
	drive(st->r, &w.base);
	ck_assert_int_eq(w.result, 0);
	ck_assert_int_eq(w.count, 1);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	ck_assert_int_eq(rouse_signal_free(st->sig), 0);
	st->sig = NULL;
	fa_forbid_end();
}

/* -- rouse_process_spawn(): cat, its three standard streams pipes -- */

static int spawn_call(struct step *st)
{
	static char *argv[] = { "/bin/cat", NULL };
	struct rouse_process_config c;
	struct rouse_process *p = SENTINEL;
	int err;

	ck_assert_int_eq(rouse_process_config_init(&c), 0);
	c.path = argv[0];
	c.argv = argv;
	c.stdio[0] = c.stdio[1] = c.stdio[2] = ROUSE_STDIO_PIPE;
	/* A child of a failed step must not outlive it. */
	c.flags = ROUSE_PROCESS_KILL_ON_DROP;
	err = rouse_process_spawn(st->r, &c, &p);
	if (err == 0)
		st->p = p;
	else
		ck_assert_ptr_eq(p, SENTINEL);
	return err;
}

/*
 * cat echoes what it is given and ends at the end of its input; its
 * streams, its wait and its free allocate nothing.
 */
static void spawn_use(struct step *st)
{
	struct rouse_process_wait w;
	struct rouse_stream *in;
	char buf[5];

	fa_forbid();
	ck_assert_int_eq(rouse_process_take_stdio(st->p, 0, &in), 0);
	stream_write_text(st->r, in, "hello");
	ck_assert_int_eq(rouse_stream_close(in), 0);
	stream_read_all(st->r, rouse_process_stdio(st->p, 1), buf, 5);
	ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
	stream_sees_end(st->r, rouse_process_stdio(st->p, 1));
	ck_assert_int_eq(rouse_process_wait_init(&w, st->p), 0);
	drive(st->r, &w.base);
	ck_assert_int_eq(w.result, 0);
	ck_assert_int_eq(w.exit_code, 0);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	ck_assert_int_eq(rouse_process_free(st->p), 0);
	st->p = NULL;
	fa_forbid_end();
	ck_assert(no_children());
}

static const struct svc_call svc_calls[] = {
	/* The source; the stream. */
	{ "rouse_stream_open", stream_open_prepare, stream_open_call,
	  adopt_failed, stream_open_use, 2, true },
	{ "rouse_dgram_open", dgram_open_prepare, dgram_open_call,
	  adopt_failed, dgram_open_use, 2, true },
	/* The listener; its source. */
	{ "rouse_tcp_listen", nothing, tcp_listen_call, nothing,
	  listener_use, 2, true },
	/* The accepted connection's source, and its stream. */
	{ "rouse_tcp_accept_init", tcp_accept_prepare, listener_accept,
	  accept_failed, accept_use, 2, false },
	/* The socket's source at init; the stream in the poll. */
	{ "rouse_tcp_connect_init", tcp_connect_prepare, tcp_connect_call,
	  connect_failed, connect_use, 2, true },
	{ "rouse_udp_bind", nothing, udp_bind_call, nothing,
	  bound_dgram_use, 2, true },
	{ "rouse_unix_listen", unix_listen_prepare, unix_listen_call,
	  nothing, listener_use, 2, true },
	{ "rouse_unix_accept_init", unix_accept_prepare, listener_accept,
	  accept_failed, accept_use, 2, false },
	{ "rouse_unix_connect_init", unix_connect_prepare, unix_connect_call,
	  connect_failed, connect_use, 2, true },
	/* Two sources, two streams. */
	{ "rouse_unix_stream_pair", nothing, unix_stream_pair_call, nothing,
	  unix_stream_pair_use, 4, true },
	{ "rouse_unix_dgram_pair", nothing, unix_dgram_pair_call, nothing,
	  unix_dgram_pair_use, 4, true },
	{ "rouse_unix_dgram_bind", unix_listen_prepare, unix_dgram_bind_call,
	  nothing, bound_dgram_use, 2, true },
	/* The listener; its event and the event's source. */
	{ "rouse_signal_new", signal_prepare, signal_new_call, signal_failed,
	  signal_use, 2, true },
	/* The process; a source and a stream per pipe; the pidfd's source. */
	{ "rouse_process_spawn", nothing, spawn_call, nothing, spawn_use, 8,
	  true },
};

#define SVC_CALLS ((int)(sizeof(svc_calls) / sizeof(svc_calls[0])))

/* _i / 2 is the call; _i % 2 the reactor of each step: 0 fresh, 1 warm. */
START_TEST(test_svc)
{
	const struct svc_call *c = &svc_calls[_i / 2];
	bool warm = _i % 2 == 1;
	struct step st;
	int n, err, fds_start, fds0, want;
	long live0;
	bool done;

	if (c->call == spawn_call && !test_have_pidfd())
		return;
	fds_start = test_count_fds();
	fa_install();
	for (n = 0;; n++) {
		ck_assert_msg(n < LOOP_MAX, "%s: no end", c->name);
		step_init(&st, warm);
		c->prepare(&st);
		fds0 = test_count_fds();
		live0 = fa_live();
		fa_arm(n);
		err = c->call(&st);
		done = fa_step(err);
		/* No failure is swallowed: it comes out as the call's. */
		if (err == 0)
			ck_assert_msg(atomic_load(&fa.failed) == 0,
				      "%s: allocation %d failed, yet 0",
				      c->name, n);
		if (err < 0) {
			ck_assert_msg(test_count_fds() == fds0,
				      "%s: allocation %d failed: fds %d, "
				      "were %d", c->name, n, test_count_fds(),
				      fds0);
			if (warm)
				ck_assert_msg(fa_live() == live0,
					      "%s: allocation %d failed: "
					      "blocks %ld, were %ld", c->name,
					      n, fa_live(), live0);
			ck_assert_msg(no_children(), "%s: a child is left",
				      c->name);
			c->failed(&st);
			/* Undisturbed: the same call now succeeds. */
			c->prepare(&st);
			ck_assert_msg(c->call(&st) == 0,
				      "%s: fails after allocation %d failed",
				      c->name, n);
		}
		c->use(&st);
		step_end(&st);
		ck_assert_int_eq(fa_live(), 0);
		ck_assert_int_eq(test_count_fds(), fds_start);
		ck_assert(no_children());
		if (done)
			break;
	}
	want = c->allocs + (!warm && c->first_registration ? 4 : 0);
	ck_assert_msg(n >= want, "%s: %d allocations, at least %d expected",
		      c->name, n, want);
	fa_remove();
}
END_TEST

/* ---- the service layer: futures that allocate nothing -------------- */

/*
 * What the streams, datagram sockets, buffered readers and copies do once
 * made takes no memory of the library's: every allocation fails here, and
 * none is asked for.  (Were one added, it would need a failure loop.)
 */
START_TEST(test_stream_futures)
{
	struct rouse_stream *s[2];
	struct rouse_stream_rwv v;
	struct rouse_reactor *r;
	char a[3], b[4];
	struct iovec out[2] = { { "abc", 3 }, { "defg", 4 } };
	struct iovec in[2] = { { a, sizeof(a) }, { b, sizeof(b) } };
	int fds0 = test_count_fds();

	fa_install();
	r = reactor_warm();
	ck_assert_int_eq(rouse_unix_stream_pair(r, s), 0);
	streams_talk(r, s[0], s[1]);
	fa_forbid();
	ck_assert_int_eq(rouse_stream_writev_init(&v, s[0], out, 2), 0);
	drive(r, &v.base);
	ck_assert_int_eq(v.result, 7);
	ck_assert_int_eq(rouse_future_drop(&v.base), 0);
	ck_assert_int_eq(rouse_stream_readv_init(&v, s[1], in, 2), 0);
	drive(r, &v.base);
	ck_assert_int_eq(v.result, 7);
	ck_assert_int_eq(rouse_future_drop(&v.base), 0);
	ck_assert_int_eq(memcmp(a, "abc", 3), 0);
	ck_assert_int_eq(memcmp(b, "defg", 4), 0);
	ck_assert_int_eq(rouse_stream_shutdown(s[0], SHUT_WR), 0);
	stream_sees_end(r, s[1]);
	fa_forbid_end();
	ck_assert_int_eq(rouse_stream_close(s[0]), 0);
	ck_assert_int_eq(rouse_stream_close(s[1]), 0);
	rouse_reactor_free(r);
	ck_assert_int_eq(fa_live(), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
	fa_remove();
}
END_TEST

/* Run a buffered reader's operation f to completion: its result. */
static ssize_t bufreader_run(struct rouse_reactor *r,
			     struct rouse_bufreader_op *f)
{
	ssize_t result;

	drive(r, &f->base);
	result = f->result;
	ck_assert_int_eq(rouse_future_drop(&f->base), 0);
	return result;
}

START_TEST(test_bufreader)
{
	struct rouse_stream *s[2];
	struct rouse_bufreader b;
	struct rouse_bufreader_op f;
	struct rouse_reactor *r;
	char buf[64], out[8];
	int fds0 = test_count_fds();

	fa_install();
	r = reactor_warm();
	ck_assert_int_eq(rouse_unix_stream_pair(r, s), 0);
	fa_forbid();
	stream_write_text(r, s[0], "one\ntwo\r\nthree;rest");
	ck_assert_int_eq(rouse_stream_shutdown(s[0], SHUT_WR), 0);
	ck_assert_int_eq(rouse_bufreader_init(&b, s[1], buf, sizeof(buf)), 0);
	ck_assert_int_eq(rouse_bufreader_read_line_init(&f, &b, sizeof(buf)),
			 0);
	ck_assert_int_eq(bufreader_run(r, &f), 4);
	ck_assert_int_eq(f.len, 3);
	ck_assert_int_eq(memcmp(f.data, "one", 3), 0);
	ck_assert_int_eq(rouse_bufreader_read_line_init(&f, &b, sizeof(buf)),
			 0);
	ck_assert_int_eq(bufreader_run(r, &f), 5);
	ck_assert_int_eq(f.len, 3);
	ck_assert_int_eq(memcmp(f.data, "two", 3), 0);
	ck_assert_int_eq(rouse_bufreader_read_until_init(&f, &b, ';',
							 sizeof(buf)), 0);
	ck_assert_int_eq(bufreader_run(r, &f), 6);
	ck_assert_int_eq(memcmp(f.data, "three;", 6), 0);
	ck_assert_int_eq(rouse_bufreader_read_init(&f, &b, out, sizeof(out)),
			 0);
	ck_assert_int_eq(bufreader_run(r, &f), 4);
	ck_assert_int_eq(memcmp(out, "rest", 4), 0);
	ck_assert_int_eq(rouse_bufreader_read_line_init(&f, &b, sizeof(buf)),
			 0);
	ck_assert_int_eq(bufreader_run(r, &f), 0);
	fa_forbid_end();
	ck_assert_int_eq(rouse_stream_close(s[0]), 0);
	ck_assert_int_eq(rouse_stream_close(s[1]), 0);
	rouse_reactor_free(r);
	ck_assert_int_eq(fa_live(), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
	fa_remove();
}
END_TEST

/* sendfile, splice (whose pipe is a descriptor, not a block), and both ways. */
START_TEST(test_copies)
{
	struct rouse_stream *a[2], *b[2];
	struct rouse_sendfile sf;
	struct rouse_splice sp;
	struct rouse_copy_bidi bi;
	struct rouse_reactor *r;
	char buf[9];
	int file, fds0 = test_count_fds();
	FILE *tmp;

	tmp = tmpfile();
	ck_assert_ptr_nonnull(tmp);
	file = fileno(tmp);
	ck_assert_int_eq(pwrite(file, "file-data", 9, 0), 9);
	fa_install();
	r = reactor_warm();
	ck_assert_int_eq(rouse_unix_stream_pair(r, a), 0);
	ck_assert_int_eq(rouse_unix_stream_pair(r, b), 0);
	fa_forbid();
	/* The file to a[0], read on a[1]. */
	ck_assert_int_eq(rouse_sendfile_init(&sf, a[0], file, 0, 0), 0);
	drive(r, &sf.base);
	ck_assert_int_eq(sf.result, 9);
	ck_assert_int_eq(rouse_future_drop(&sf.base), 0);
	stream_read_all(r, a[1], buf, 9);
	ck_assert_int_eq(memcmp(buf, "file-data", 9), 0);
	/* a[0] to its end, through a[1] and b[0], to b[1]. */
	stream_write_text(r, a[0], "spliced");
	ck_assert_int_eq(rouse_stream_shutdown(a[0], SHUT_WR), 0);
	ck_assert_int_eq(rouse_splice_init(&sp, b[0], a[1], 0), 0);
	drive(r, &sp.base);
	ck_assert_int_eq(sp.result, 7);
	ck_assert_int_eq(rouse_future_drop(&sp.base), 0);
	stream_read_all(r, b[1], buf, 7);
	ck_assert_int_eq(memcmp(buf, "spliced", 7), 0);
	fa_forbid_end();
	ck_assert_int_eq(rouse_stream_close(a[0]), 0);
	ck_assert_int_eq(rouse_stream_close(a[1]), 0);
	ck_assert_int_eq(rouse_unix_stream_pair(r, a), 0);
	/* Both ways between a[1] and b[0], each ended by a half-close. */
	fa_forbid();
	stream_write_text(r, a[0], "to-b");
	stream_write_text(r, b[1], "to-a");
	ck_assert_int_eq(rouse_stream_shutdown(a[0], SHUT_WR), 0);
	ck_assert_int_eq(rouse_stream_shutdown(b[1], SHUT_WR), 0);
	ck_assert_int_eq(rouse_copy_bidirectional_init(&bi, a[1], b[0]), 0);
	drive(r, &bi.base);
	ck_assert_int_eq(bi.result, 0);
	ck_assert_int_eq(bi.a_to_b, 4);
	ck_assert_int_eq(bi.b_to_a, 4);
	ck_assert_int_eq(rouse_future_drop(&bi.base), 0);
	stream_read_all(r, b[1], buf, 4);
	ck_assert_int_eq(memcmp(buf, "to-b", 4), 0);
	stream_sees_end(r, b[1]);
	stream_read_all(r, a[0], buf, 4);
	ck_assert_int_eq(memcmp(buf, "to-a", 4), 0);
	stream_sees_end(r, a[0]);
	fa_forbid_end();
	ck_assert_int_eq(rouse_stream_close(a[0]), 0);
	ck_assert_int_eq(rouse_stream_close(a[1]), 0);
	ck_assert_int_eq(rouse_stream_close(b[0]), 0);
	ck_assert_int_eq(rouse_stream_close(b[1]), 0);
	rouse_reactor_free(r);
	ck_assert_int_eq(fa_live(), 0);
	fa_remove();
	fclose(tmp);
	ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

/* Descriptors (and credentials) over a Unix stream and datagram socket. */
START_TEST(test_unix_msg)
{
	struct rouse_stream *s[2];
	struct rouse_dgram *d[2];
	struct rouse_unix_msg f;
	struct rouse_reactor *r;
	int pp[2], fds[4], fds0 = test_count_fds();
	char c;

	ck_assert_int_eq(pipe2(pp, O_CLOEXEC), 0);
	fa_install();
	r = reactor_warm();
	ck_assert_int_eq(rouse_unix_stream_pair(r, s), 0);
	ck_assert_int_eq(rouse_unix_dgram_pair(r, d), 0);
	ck_assert_int_eq(rouse_unix_set_passcred(rouse_dgram_fd(d[1]), 1), 0);
	fa_forbid();
	ck_assert_int_eq(rouse_unix_sendmsg_init(&f, s[0], "x", 1, pp, 2, 0),
			 0);
	drive(r, &f.base);
	ck_assert_int_eq(f.result, 1);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	ck_assert_int_eq(rouse_unix_recvmsg_init(&f, s[1], &c, 1, fds, 4), 0);
	drive(r, &f.base);
	ck_assert_int_eq(f.result, 1);
	ck_assert_int_eq(f.nfds, 2);
	ck_assert_int_eq(f.ctrunc, 0);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	close(fds[0]);
	close(fds[1]);
	ck_assert_int_eq(rouse_unix_dgram_sendmsg_init(&f, d[0], NULL, "y", 1,
						       pp, 1, 1), 0);
	drive(r, &f.base);
	ck_assert_int_eq(f.result, 1);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	ck_assert_int_eq(rouse_unix_dgram_recvmsg_init(&f, d[1], &c, 1, fds,
						       4), 0);
	drive(r, &f.base);
	ck_assert_int_eq(f.result, 1);
	ck_assert_int_eq(f.nfds, 1);
	ck_assert_int_eq(f.has_cred, 1);
	ck_assert_int_eq(f.cred.pid, getpid());
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	close(fds[0]);
	fa_forbid_end();
	ck_assert_int_eq(rouse_stream_close(s[0]), 0);
	ck_assert_int_eq(rouse_stream_close(s[1]), 0);
	ck_assert_int_eq(rouse_dgram_close(d[0]), 0);
	ck_assert_int_eq(rouse_dgram_close(d[1]), 0);
	rouse_reactor_free(r);
	ck_assert_int_eq(fa_live(), 0);
	fa_remove();
	close(pp[0]);
	close(pp[1]);
	ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

/* UDP: connect, send and receive, the mmsg batches, disconnect. */
START_TEST(test_udp_futures)
{
	struct rouse_addr any = loopback_any(), to_b;
	struct rouse_dgram *a, *b;
	struct rouse_dgram_mmsg m;
	struct rouse_reactor *r;
	struct mmsghdr msgs[2];
	struct iovec iov[2];
	char out[2][2] = { "m0", "m1" }, in[2][8];
	int i, got, fds0 = test_count_fds();

	fa_install();
	r = reactor_warm();
	ck_assert_int_eq(rouse_udp_bind(r, &any, 0, &a), 0);
	ck_assert_int_eq(rouse_udp_bind(r, &any, 0, &b), 0);
	ck_assert_int_eq(rouse_dgram_local_addr(b, &to_b), 0);
	fa_forbid();
	ck_assert_int_eq(rouse_dgram_connect(a, &to_b), 0);
	dgram_send_text(r, a, NULL, "ping");
	dgram_recv_text(r, b, "ping");
	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < 2; i++) {
		iov[i].iov_base = out[i];
		iov[i].iov_len = 2;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	ck_assert_int_eq(rouse_dgram_sendmmsg_init(&m, a, msgs, 2), 0);
	drive(r, &m.base);
	ck_assert_int_eq(m.result, 2);
	ck_assert_int_eq(rouse_future_drop(&m.base), 0);
	/* A batch takes what has come: one datagram or both. */
	for (got = 0; got < 2; got += m.result) {
		memset(msgs, 0, sizeof(msgs));
		for (i = 0; i < 2 - got; i++) {
			iov[i].iov_base = in[got + i];
			iov[i].iov_len = sizeof(in[0]);
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		ck_assert_int_eq(rouse_dgram_recvmmsg_init(
					 &m, b, msgs, (unsigned int)(2 - got)),
				 0);
		drive(r, &m.base);
		ck_assert_int_ge(m.result, 1);
		ck_assert_int_eq(rouse_future_drop(&m.base), 0);
	}
	ck_assert_int_eq(memcmp(in[0], "m0", 2), 0);
	ck_assert_int_eq(memcmp(in[1], "m1", 2), 0);
	ck_assert_int_eq(rouse_dgram_connect(a, NULL), 0);
	fa_forbid_end();
	ck_assert_int_eq(rouse_dgram_close(a), 0);
	ck_assert_int_eq(rouse_dgram_close(b), 0);
	rouse_reactor_free(r);
	ck_assert_int_eq(fa_live(), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
	fa_remove();
}
END_TEST

/* ---- the service layer: what outlives a call ------------------------ */

/*
 * A child still running when its process is freed (no KILL_ON_DROP) is
 * an orphan that its reactor reaps; when that reactor is freed first, the
 * orphan moves to the default reactor, one allocation.  Failing it must
 * not leave a zombie: the free waits for the child instead.  The child
 * is cat, blocked on a pipe of the test's until the test closes it; the
 * default reactor is made (and its tables grown) before counting, since
 * it is the process's for good.
 */
START_TEST(test_process_orphan)
{
	static char *argv[] = { "/bin/cat", NULL };
	struct rouse_process_config c;
	struct rouse_reactor *r, *d;
	struct rouse_process *p;
	struct rouse_io *io;
	int in[2], n, fds0;
	bool done;

	if (!test_have_pidfd())
		return;
	ck_assert_int_eq(rouse_reactor_default(&d), 0);
	test_pair_make(in);
	ck_assert_int_eq(rouse_io_register(d, in[0], &io), 0);
	ck_assert_int_eq(rouse_io_deregister(io), 0);
	close(in[0]);
	close(in[1]);
	fds0 = test_count_fds();
	ck_assert_int_eq(rouse_process_config_init(&c), 0);
	c.path = argv[0];
	c.argv = argv;
	c.stdio[1] = ROUSE_STDIO_NULL;
	fa_install();
	for (n = 0;; n++) {
		ck_assert_int_lt(n, LOOP_MAX);
		ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
		c.stdio[0] = in[0];
		r = test_reactor_make();
		ck_assert_int_eq(rouse_process_spawn(r, &c, &p), 0);
		close(in[0]);
		/* It runs: freeing it makes an orphan, and takes no memory. */
		fa_forbid();
		ck_assert_int_eq(rouse_process_free(p), 0);
		fa_forbid_end();
		close(in[1]);	/* now cat ends, and nobody reaps it yet */
		fa_arm(n);
		rouse_reactor_free(r);
		fa_disarm();
		done = atomic_load(&fa.failed) == 0;
		/* Failed: reaped already.  Else the default reactor's thread
		   reaps it, then frees what it held. */
		if (!done)
			ck_assert(no_children());
		while (!no_children() || fa_live() != 0)
			sched_yield();
		ck_assert_int_eq(test_count_fds(), fds0);
		if (done)
			break;
	}
	/* The registration with the default reactor. */
	ck_assert_int_ge(n, 1);
	fa_remove();
}
END_TEST

/*
 * A name lookup: the request, and at the process's first lookup the
 * resolver (which stays, as the process's).  The request goes with
 * whichever of the future and the resolver thread lets go of it last,
 * so the count is waited for.
 */
START_TEST(test_dns_lookup)
{
	struct addrinfo hints;
	struct rouse_dns_lookup f, untouched;
	struct rouse_reactor *r;
	struct sockaddr_in *sin;
	long live0, kept;
	int n, err;

	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	fa_install();
	r = reactor_warm();
	live0 = fa_live();
	for (n = 0;; n++) {
		ck_assert_int_lt(n, LOOP_MAX);
		memset(&f, 0xa5, sizeof(f));
		untouched = f;
		fa_arm(n);
		err = rouse_dns_lookup_init(&f, r, "127.0.0.1", "8080",
					    &hints);
		if (fa_step(err))
			break;
		ck_assert_int_eq(memcmp(&f, &untouched, sizeof(f)), 0);
		ck_assert_int_le(fa_live(), live0 + 1);
	}
	ck_assert_int_ge(n, 1);
	/* The request is alive, and the resolver if this test made it. */
	kept = fa_live() - live0 - 1;
	ck_assert_int_le(kept, 1);
	fa_forbid();
	drive(r, &f.base);
	ck_assert_int_eq(f.result, 0);
	ck_assert_ptr_nonnull(f.addrs);
	ck_assert_int_eq(f.addrs->ai_family, AF_INET);
	sin = (struct sockaddr_in *)(void *)f.addrs->ai_addr;
	ck_assert_int_eq(ntohs(sin->sin_port), 8080);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	rouse_dns_free(f.addrs);
	fa_forbid_end();
	rouse_reactor_free(r);
	while (fa_live() != kept)
		sched_yield();
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
	tcase_add_loop_test(tc, test_memory_follows_last_reference, 0, 2);
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

	tc = tcase_create("service");
	tcase_add_loop_test(tc, test_svc, 0, 2 * SVC_CALLS);
	tcase_add_test(tc, test_process_orphan);
	tcase_add_test(tc, test_dns_lookup);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = tcase_create("service-no-alloc");
	tcase_add_test(tc, test_stream_futures);
	tcase_add_test(tc, test_bufreader);
	tcase_add_test(tc, test_copies);
	tcase_add_test(tc, test_unix_msg);
	tcase_add_test(tc, test_udp_futures);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(alloc_suite());
}
