// SPDX-License-Identifier: MIT
/*
 * tests/check_fork.c - what a child of fork(2) may do with rouse: make new
 * executors and join their tasks whatever the parent's threads held at
 * the fork (no join lock), get -ECHILD from every call on an inherited
 * executor, reactor or blocking pool, make an inherited reactor its own
 * with rouse_reactor_fork(), and leave the parent's reactor working.
 *
 * The children report through their exit status: CHILD_CHECK prints the
 * failed condition and exits 1.  No Check macro runs in a child.
 */
#include <signal.h>
#include <sys/wait.h>

#include <rouse/blocking.h>
#include <rouse/net.h>

#include "testutil.h"

#define CHILD_CHECK(cond)                                                  \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "%s:%d: child: %s\n", __FILE__,    \
				__LINE__, #cond);                          \
			_exit(1);                                          \
		}                                                          \
	} while (0)

/* A hang in a child is a failure: SIGALRM ends it. */
#define CHILD_ALARM_S 60

/* Wait for pid, which must exit 0. */
static void wait_child_ok(pid_t pid)
{
	int status;

	ck_assert_int_ge(pid, 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		ck_abort_msg("child killed by signal %d%s", WTERMSIG(status),
			     WTERMSIG(status) == SIGALRM ? " (it hung)" : "");
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}

/* ---- futures ------------------------------------------------------- */

static enum rouse_poll ready_poll(struct rouse_future *f,
				  struct rouse_context *cx)
{
	return ROUSE_READY;
}

static const struct rouse_future_vtable ready_vt = { ready_poll, NULL };

static enum rouse_poll pending_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable pending_vt = { pending_poll, NULL };

/* In a child: a new current-thread executor runs and joins n tasks. */
static void child_joins_new_tasks(int n)
{
	struct rouse_executor *ex;
	int i;

	CHILD_CHECK(rouse_executor_new(NULL, &ex) == 0);
	for (i = 0; i < n; i++) {
		struct rouse_future f = { &ready_vt };
		struct rouse_join_handle h;

		CHILD_CHECK(rouse_spawn(ex, &f, sizeof(f), &h) == 0);
		CHILD_CHECK(rouse_executor_block_on(ex, &h.base) == 0);
		CHILD_CHECK(h.result == 0);
		rouse_future_drop(&h.base);
	}
	CHILD_CHECK(rouse_executor_free(ex) == 0);
}

/* ---- a parent thread is inside a join poll at the fork -------------- */

/*
 * A waker whose clone blocks until released: a thread that polls a join
 * handle with it stays inside the join poll, where the join waker was
 * once stored under a process-wide lock.
 */
static atomic_int in_clone, release_clone;
static const struct rouse_waker_vtable slow_vt;

static struct rouse_waker slow_clone(void *data)
{
	struct rouse_waker w = { data, &slow_vt };

	atomic_store(&in_clone, 1);
	test_spin_until_eq(&release_clone, 1);
	return w;
}

static void slow_nothing(void *data)
{
}

static const struct rouse_waker_vtable slow_vt = {
	slow_clone, slow_nothing, slow_nothing, slow_nothing,
};

static void *slow_joiner(void *arg)
{
	struct rouse_waker w = { NULL, &slow_vt };

	ck_assert_int_eq(test_poll_with(arg, &w), ROUSE_PENDING);
	return NULL;
}

START_TEST(fork_during_join_poll)
{
	struct rouse_executor *ex;
	struct rouse_future p = { &pending_vt };
	struct rouse_join_handle h;
	pthread_t t;
	pid_t pid;

	atomic_store(&in_clone, 0);
	atomic_store(&release_clone, 0);
	ck_assert_int_eq(rouse_executor_new(NULL, &ex), 0);
	ck_assert_int_eq(rouse_spawn(ex, &p, sizeof(p), &h), 0);
	t = test_thread_start(slow_joiner, &h.base);
	test_spin_until_eq(&in_clone, 1);
	/* The joiner is in the middle of storing its waker: fork now. */
	pid = fork();
	if (pid == 0) {
		alarm(CHILD_ALARM_S);
		/* Enough tasks to cover any striping of tasks by address. */
		child_joins_new_tasks(512);
		_exit(0);
	}
	wait_child_ok(pid);
	atomic_store(&release_clone, 1);
	test_thread_join(t);
	ck_assert_int_eq(rouse_join_handle_abort(&h), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &h.base), 0);
	ck_assert_int_eq(h.result, -ECANCELED);
	rouse_future_drop(&h.base);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/* ---- a fork storm while workers join ---------------------------------- */

/* A task that spawns a sub-task and joins it, again and again. */
struct joiner {
	struct rouse_future base;
	atomic_int *stop;
	struct rouse_join_handle h;
	bool waiting;
};

static enum rouse_poll joiner_poll(struct rouse_future *f,
				   struct rouse_context *cx)
{
	struct joiner *j = (struct joiner *)f;

	for (;;) {
		if (!j->waiting) {
			struct rouse_future sub = { &ready_vt };

			if (atomic_load(j->stop))
				return ROUSE_READY;
			ck_assert_int_eq(rouse_spawn(NULL, &sub, sizeof(sub),
						     &j->h), 0);
			j->waiting = true;
		}
		if (rouse_future_poll(&j->h.base, cx) == ROUSE_PENDING)
			return ROUSE_PENDING;
		ck_assert_int_eq(j->h.result, 0);
		rouse_future_drop(&j->h.base);
		j->waiting = false;
	}
}

static const struct rouse_future_vtable joiner_vt = { joiner_poll, NULL };

/*
 * Under a sanitizer each fork copies a far larger process, slowly (500
 * took nearly two minutes under ASan, past the suite's timeout on a busy
 * machine): the plain build forks the full 500.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define STORM_CHILDREN 100
#else
#define STORM_CHILDREN 500
#endif
#define STORM_JOINERS 4

START_TEST(fork_storm_while_joining)
{
	struct rouse_executor_config cfg;
	struct rouse_executor *ex;
	struct rouse_join_handle h[STORM_JOINERS];
	atomic_int stop = 0;
	int i;

	ck_assert_int_eq(rouse_executor_config_init(&cfg), 0);
	cfg.kind = ROUSE_EXECUTOR_MULTI_THREAD;
	cfg.workers = 2;
	ck_assert_int_eq(rouse_executor_new(&cfg, &ex), 0);
	for (i = 0; i < STORM_JOINERS; i++) {
		struct joiner j = { .base = { &joiner_vt }, .stop = &stop };

		ck_assert_int_eq(rouse_spawn(ex, &j.base, sizeof(j), &h[i]),
				 0);
	}
	for (i = 0; i < STORM_CHILDREN; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			alarm(CHILD_ALARM_S);
			child_joins_new_tasks(4);
			_exit(0);
		}
		wait_child_ok(pid);
	}
	atomic_store(&stop, 1);
	for (i = 0; i < STORM_JOINERS; i++) {
		ck_assert_int_eq(rouse_executor_block_on(ex, &h[i].base), 0);
		ck_assert_int_eq(h[i].result, 0);
		rouse_future_drop(&h[i].base);
	}
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/* ---- inherited executors and pools ---------------------------------- */

/* _i: a current-thread executor, or a multi-thread one. */
START_TEST(inherited_executor_refuses)
{
	struct rouse_executor_config cfg;
	struct rouse_executor *ex;
	struct rouse_blocking_pool *pool, *def, *def2;
	struct rouse_future p = { &pending_vt };
	struct rouse_join_handle h, done;
	struct rouse_blocking_pool_stats st;
	pid_t pid;

	ck_assert_int_eq(rouse_executor_config_init(&cfg), 0);
	cfg.kind = _i == 0 ? ROUSE_EXECUTOR_CURRENT_THREAD
			   : ROUSE_EXECUTOR_MULTI_THREAD;
	cfg.workers = 2;
	ck_assert_int_eq(rouse_executor_new(&cfg, &ex), 0);
	ck_assert_int_eq(rouse_spawn(ex, &p, sizeof(p), &h), 0);
	{
		struct rouse_future r = { &ready_vt };

		ck_assert_int_eq(rouse_spawn(ex, &r, sizeof(r), &done), 0);
		ck_assert_int_eq(rouse_executor_block_on(ex, &done.base), 0);
	}
	ck_assert_int_eq(rouse_blocking_pool_new(NULL, &pool), 0);
	ck_assert_int_eq(rouse_blocking_pool_default(&def), 0);
	pid = fork();
	if (pid == 0) {
		struct rouse_future r = { &ready_vt };
		struct rouse_join_handle h2;

		alarm(CHILD_ALARM_S);
		CHILD_CHECK(rouse_spawn(ex, &r, sizeof(r), &h2) == -ECHILD);
		CHILD_CHECK(rouse_executor_block_on(ex, &r) == -ECHILD);
		/* The parent's pending task never finishes here. */
		CHILD_CHECK(test_poll_noop(&h.base) == ROUSE_READY);
		CHILD_CHECK(h.result == -ECHILD && h.output == NULL);
		CHILD_CHECK(rouse_join_handle_abort(&h) == -ECHILD);
		/* A task that finished before the fork: its output is here. */
		CHILD_CHECK(done.result == 0 && done.output != NULL);
		CHILD_CHECK(rouse_executor_free(ex) == -ECHILD);
		CHILD_CHECK(rouse_blocking_pool_get_stats(pool, &st) ==
			    -ECHILD);
		CHILD_CHECK(rouse_blocking_pool_free(pool) == -ECHILD);
		/* The default pool is the child's own, and works. */
		CHILD_CHECK(rouse_blocking_pool_default(&def2) == 0);
		CHILD_CHECK(def2 != def);
		CHILD_CHECK(rouse_blocking_pool_get_stats(def2, &st) == 0);
		/* New objects work. */
		child_joins_new_tasks(8);
		_exit(0);
	}
	wait_child_ok(pid);
	/* The parent's objects are untouched. */
	ck_assert_int_eq(rouse_join_handle_abort(&h), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &h.base), 0);
	ck_assert_int_eq(h.result, -ECANCELED);
	rouse_future_drop(&h.base);
	rouse_future_drop(&done.base);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
	ck_assert_int_eq(rouse_blocking_pool_free(pool), 0);
}
END_TEST

/* ---- inherited reactors --------------------------------------------- */

/* In a child: every call on the inherited reactor r says -ECHILD. */
static void child_reactor_refuses(struct rouse_reactor *r,
				  struct rouse_io *io,
				  struct rouse_event *ev,
				  struct rouse_sleep *pending)
{
	struct rouse_parker pk;
	struct rouse_sleep s;
	struct rouse_interval iv;
	struct rouse_io *io2;
	struct rouse_event *ev2;
	struct rouse_io_rw rd;
	struct rouse_event_wait ew;
	struct rouse_future never = { &pending_vt };
	char buf[4];

	CHILD_CHECK(rouse_reactor_turn(r, 0) == -ECHILD);
	CHILD_CHECK(rouse_reactor_now(r) == -ECHILD);
	CHILD_CHECK(rouse_reactor_fd(r) == -ECHILD);
	CHILD_CHECK(rouse_reactor_start(r) == -ECHILD);
	CHILD_CHECK(rouse_reactor_stop(r) == -ECHILD);
	CHILD_CHECK(rouse_reactor_clock_pause(r) == -ECHILD);
	CHILD_CHECK(rouse_reactor_clock_resume(r) == -ECHILD);
	CHILD_CHECK(rouse_reactor_clock_advance(r, 1) == -ECHILD);
	CHILD_CHECK(rouse_sleep_init(&s, r, 1) == -ECHILD);
	CHILD_CHECK(rouse_sleep_until_init(&s, r, 1) == -ECHILD);
	CHILD_CHECK(rouse_interval_init(&iv, r, 1) == -ECHILD);
	CHILD_CHECK(rouse_io_register(r, 0, &io2) == -ECHILD);
	CHILD_CHECK(rouse_event_new(r, &ev2) == -ECHILD);
	CHILD_CHECK(rouse_event_notify(ev) == -ECHILD);
	CHILD_CHECK(rouse_io_clear(io, ROUSE_IO_READABLE) == -ECHILD);
	CHILD_CHECK(rouse_io_deregister(io) == -ECHILD);
	/* Futures made before the fork answer -ECHILD when polled. */
	CHILD_CHECK(test_poll_noop(&pending->base) == ROUSE_READY);
	CHILD_CHECK(pending->result == -ECHILD);
	CHILD_CHECK(rouse_io_read_init(&rd, io, buf, sizeof(buf)) == 0);
	CHILD_CHECK(test_poll_noop(&rd.op.base) == ROUSE_READY);
	CHILD_CHECK(rd.result == -ECHILD);
	rouse_future_drop(&rd.op.base);
	CHILD_CHECK(rouse_event_wait_init(&ew, ev) == 0);
	CHILD_CHECK(test_poll_noop(&ew.op.base) == ROUSE_READY);
	CHILD_CHECK(ew.result == -ECHILD);
	rouse_future_drop(&ew.op.base);
	/* Parking on it fails rather than waiting on the parent's epoll. */
	CHILD_CHECK(rouse_reactor_parker(r, &pk) == 0);
	CHILD_CHECK(rouse_block_on_with(&never, &pk) == -ECHILD);
}

/* A read into a buffer of its own. */
struct child_read {
	struct rouse_io_rw rd;
	char buf[16];
};

/*
 * _i: a driven reactor, or one on its own thread.  The parent has a sleep
 * armed on the timerfd, a registered socket and an event when it forks.
 * The child finds every call refused, makes the reactor its own, and
 * then sleeps (arming its own timerfd), reads the socket through the
 * re-registered source, and waits for the event.  The parent's sleep
 * must still fire on time afterwards.
 */
START_TEST(child_makes_reactor_its_own)
{
	struct test_runner ru;
	struct rouse_io *io;
	struct rouse_event *ev;
	struct rouse_sleep parent_sleep, child_pending;
	int64_t start;
	int sv[2];
	pid_t pid;

	test_runner_init(&ru, _i == 0 ? TEST_MODE_DRIVEN : TEST_MODE_THREADED);
	test_pair_make(sv);
	ck_assert_int_eq(rouse_io_register(ru.r, sv[0], &io), 0);
	ck_assert_int_eq(rouse_event_new(ru.r, &ev), 0);
	start = rouse_reactor_now(ru.r);
	/* Armed before the fork: the timerfd points at it. */
	ck_assert_int_eq(rouse_sleep_init(&parent_sleep, ru.r, 50000000), 0);
	ck_assert_int_eq(test_poll_noop(&parent_sleep.base), ROUSE_PENDING);
	ck_assert_int_eq(rouse_sleep_init(&child_pending, ru.r, 3600000000000),
			 0);
	ck_assert_int_eq(test_poll_noop(&child_pending.base), ROUSE_PENDING);
	pid = fork();
	if (pid == 0) {
		struct rouse_sleep s;
		struct rouse_event_wait ew;
		struct child_read cr;
		struct rouse_parker pk;
		int64_t t0;

		alarm(CHILD_ALARM_S);
		child_reactor_refuses(ru.r, io, ev, &child_pending);
		CHILD_CHECK(rouse_reactor_fork(ru.r) == 0);
		CHILD_CHECK(rouse_reactor_fork(ru.r) == 0);	/* no-op */
		CHILD_CHECK(rouse_reactor_parker(ru.r, &pk) == 0);
		/* A short sleep arms the child's own timerfd. */
		t0 = rouse_reactor_now(ru.r);
		CHILD_CHECK(t0 >= 0);
		CHILD_CHECK(rouse_sleep_init(&s, ru.r, 1000000) == 0);
		CHILD_CHECK((_i == 0 ? rouse_block_on_with(&s.base, &pk)
				     : rouse_block_on(&s.base)) == 0);
		CHILD_CHECK(s.result == 0);
		CHILD_CHECK(rouse_reactor_now(ru.r) - t0 >= 1000000);
		rouse_future_drop(&s.base);
		/* The socket registered by the parent reads here. */
		CHILD_CHECK(rouse_io_read_init(&cr.rd, io, cr.buf,
					       sizeof(cr.buf)) == 0);
		CHILD_CHECK(write(sv[1], "kid", 3) == 3);
		CHILD_CHECK((_i == 0 ? rouse_block_on_with(&cr.rd.op.base, &pk)
				     : rouse_block_on(&cr.rd.op.base)) == 0);
		CHILD_CHECK(cr.rd.result == 3);
		CHILD_CHECK(memcmp(cr.buf, "kid", 3) == 0);
		rouse_future_drop(&cr.rd.op.base);
		/* The event is the child's own now. */
		CHILD_CHECK(rouse_event_notify(ev) == 0);
		CHILD_CHECK(rouse_event_wait_init(&ew, ev) == 0);
		CHILD_CHECK((_i == 0 ? rouse_block_on_with(&ew.op.base, &pk)
				     : rouse_block_on(&ew.op.base)) == 0);
		CHILD_CHECK(ew.result == 0 && ew.count == 1);
		rouse_future_drop(&ew.op.base);
		rouse_future_drop(&child_pending.base);
		rouse_event_free(ev);
		CHILD_CHECK(rouse_io_deregister(io) == 0);
		rouse_reactor_free(ru.r);
		_exit(0);
	}
	wait_child_ok(pid);
	/* The parent's sleep fires: its timerfd was not touched. */
	ck_assert_int_eq(test_runner_block_on(&ru, &parent_sleep.base), 0);
	ck_assert_int_eq(parent_sleep.result, 0);
	ck_assert_int_ge(rouse_reactor_now(ru.r) - start, 50000000);
	rouse_future_drop(&parent_sleep.base);
	rouse_future_drop(&child_pending.base);
	/* Nor was its event: no notification came from the child. */
	{
		struct rouse_event_wait ew;

		ck_assert_int_eq(rouse_event_wait_init(&ew, ev), 0);
		ck_assert_int_eq(test_poll_noop(&ew.op.base), ROUSE_PENDING);
		rouse_future_drop(&ew.op.base);
	}
	rouse_event_free(ev);
	ck_assert_int_eq(rouse_io_deregister(io), 0);
	close(sv[0]);
	close(sv[1]);
	test_runner_free(&ru);
}
END_TEST

/*
 * A stream's readv and writev, whose system calls stream.c makes itself,
 * refuse an inherited reactor before they touch the fd: the bytes the
 * parent's peer sent stay for the parent.
 */
START_TEST(child_stream_vec_refuses)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_stream *s;
	char buf[8];
	int sv[2];
	pid_t pid;

	test_pair_make(sv);
	ck_assert_int_eq(rouse_stream_open(r, sv[0], &s), 0);
	ck_assert_int_eq(write(sv[1], "data", 4), 4);
	pid = fork();
	if (pid == 0) {
		struct iovec iov = { buf, sizeof(buf) };
		struct rouse_stream_rwv v;

		alarm(CHILD_ALARM_S);
		CHILD_CHECK(rouse_stream_readv_init(&v, s, &iov, 1) == 0);
		CHILD_CHECK(test_poll_noop(&v.base) == ROUSE_READY);
		CHILD_CHECK(v.result == -ECHILD && v.done == 0);
		rouse_future_drop(&v.base);
		iov.iov_len = 1;
		CHILD_CHECK(rouse_stream_writev_init(&v, s, &iov, 1) == 0);
		CHILD_CHECK(test_poll_noop(&v.base) == ROUSE_READY);
		CHILD_CHECK(v.result == -ECHILD && v.done == 0);
		rouse_future_drop(&v.base);
		CHILD_CHECK(rouse_stream_close(s) == -ECHILD);
		_exit(0);
	}
	wait_child_ok(pid);
	/* Nothing was read, nor written, by the child. */
	ck_assert_int_eq(read(sv[0], buf, sizeof(buf)), 4);
	ck_assert_int_eq(recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT), -1);
	ck_assert_int_eq(rouse_stream_close(s), 0);
	close(sv[1]);
	rouse_reactor_free(r);
}
END_TEST

START_TEST(fork_bad_input)
{
	struct rouse_reactor *r = test_reactor_make();

	ck_assert_int_eq(rouse_reactor_fork(NULL), -EINVAL);
	/* Not inherited: nothing to do. */
	ck_assert_int_eq(rouse_reactor_fork(r), 0);
	ck_assert_int_eq(rouse_reactor_turn(r, 0), 0);
	rouse_reactor_free(r);
}
END_TEST

static Suite *fork_suite(void)
{
	Suite *s = suite_create("fork");
	TCase *tc = tcase_create("fork");

	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	tcase_add_test(tc, fork_during_join_poll);
	/*
	 * GCC 12's AddressSanitizer allocator takes no lock around fork():
	 * a parent thread inside malloc at the fork (a worker spawning, the
	 * reactor's thread) leaves the allocator locked in the child, whose
	 * first malloc then hangs.  The plain and TSan builds run the storm.
	 */
#if !defined(__SANITIZE_ADDRESS__)
	tcase_add_test(tc, fork_storm_while_joining);
#endif
	tcase_add_loop_test(tc, inherited_executor_refuses, 0, 2);
	/*
	 * The threaded case's child starts a thread after forking a
	 * threaded parent.  ThreadSanitizer's registry still holds the
	 * parent's reactor thread under the id the new one reuses ("dup
	 * thread with used id"), and AddressSanitizer's allocator may be
	 * left locked as above: limits of the tools with fork, not races.
	 */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	tcase_add_loop_test(tc, child_makes_reactor_its_own, 0, 1);
#else
	tcase_add_loop_test(tc, child_makes_reactor_its_own, 0, 2);
#endif
	tcase_add_test(tc, child_stream_vec_refuses);
	tcase_add_test(tc, fork_bad_input);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(fork_suite());
}
