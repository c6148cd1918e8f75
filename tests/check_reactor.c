// SPDX-License-Identifier: MIT
/* tests/check_reactor.c - the reactor object: fds, modes, clock, freeing. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rouse/executor.h>
#include <rouse/net.h>
#include <rouse/reactor.h>

#include "testutil.h"

/* A pointer no allocation returns: *out must not be touched on failure. */
#define SENTINEL ((struct rouse_reactor *)(void *)0x5e47)

/* Whether two fd sets are the same. */
static bool fdset_eq(const struct test_fdset *a, const struct test_fdset *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/* The fds that epfd watches, from /proc/self/fdinfo; returns the count. */
static int epoll_watched(int epfd, int *out, int max)
{
	char path[64], line[512];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
	f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		int fd;
		unsigned int events;

		if (sscanf(line, "tfd: %d events: %x", &fd, &events) != 2)
			continue;
		ck_assert_msg(events & EPOLLIN, "fd %d watched for %#x", fd,
			      events);
		if (n < max)
			out[n] = fd;
		n++;
	}
	fclose(f);
	return n;
}

/* ---- create and free ----------------------------------------------- */

START_TEST(test_new_free)
{
	struct test_fdset before, during, after;
	struct rouse_reactor *r = SENTINEL;
	int fds[4], watched[4];
	int epfd = -1, tfd = -1, efd = -1;
	int i;

	test_fdset_take(&before);
	ck_assert_int_eq(rouse_reactor_new(&r, 0), 0);
	ck_assert_ptr_nonnull(r);
	ck_assert_ptr_ne(r, SENTINEL);
	test_fdset_take(&during);
	/* Exactly three new fds: an epoll, a timerfd and an eventfd. */
	ck_assert_int_eq(test_fdset_new(&before, &during, fds, 4), 3);
	for (i = 0; i < 3; i++) {
		char link[128];
		int fdflags = fcntl(fds[i], F_GETFD);
		int flflags = fcntl(fds[i], F_GETFL);

		/* All close-on-exec, so no exec'd program inherits them. */
		ck_assert_msg(fdflags >= 0 && (fdflags & FD_CLOEXEC),
			      "fd %d is not close-on-exec", fds[i]);
		ck_assert_int_ge(flflags, 0);
		test_fd_link(fds[i], link, sizeof(link));
		if (strcmp(link, "anon_inode:[eventpoll]") == 0) {
			ck_assert_int_eq(epfd, -1);
			epfd = fds[i];
		} else if (strcmp(link, "anon_inode:[timerfd]") == 0) {
			ck_assert_int_eq(tfd, -1);
			tfd = fds[i];
			ck_assert(flflags & O_NONBLOCK);
		} else if (strcmp(link, "anon_inode:[eventfd]") == 0) {
			ck_assert_int_eq(efd, -1);
			efd = fds[i];
			ck_assert(flflags & O_NONBLOCK);
		} else {
			ck_abort_msg("unexpected fd %d: %s", fds[i], link);
		}
	}
	ck_assert(epfd >= 0 && tfd >= 0 && efd >= 0);
	/* The timer runs on the monotonic clock. */
	{
		char v[32];

		ck_assert(test_fdinfo(tfd, "clockid", v, sizeof(v)));
		ck_assert_int_eq(atoi(v), CLOCK_MONOTONIC);
	}
	/* The timerfd and the eventfd are in the epoll set, and only they. */
	ck_assert_int_eq(epoll_watched(epfd, watched, 4), 2);
	ck_assert((watched[0] == tfd && watched[1] == efd) ||
		  (watched[0] == efd && watched[1] == tfd));

	rouse_reactor_free(r);
	test_fdset_take(&after);
	ck_assert(fdset_eq(&before, &after));
}
END_TEST

START_TEST(test_free_null)
{
	int n0 = test_count_fds();

	rouse_reactor_free(NULL);
	rouse_reactor_free(NULL);
	ck_assert_int_eq(test_count_fds(), n0);
}
END_TEST

START_TEST(test_einval)
{
	static const unsigned int bad_flags[] = {
		2, 3, 0x80000000u, ~0u,
	};
	struct test_fdset before, after;
	struct rouse_reactor *r;
	size_t i;

	test_fdset_take(&before);
	ck_assert_int_eq(rouse_reactor_new(NULL, 0), -EINVAL);
	/* A lock-free reactor cannot have a thread of its own. */
	ck_assert_int_eq(rouse_reactor_new(&r, ROUSE_REACTOR_LOCAL), 0);
	ck_assert_int_eq(rouse_reactor_start(r), -EINVAL);
	rouse_reactor_free(r);
	for (i = 0; i < sizeof(bad_flags) / sizeof(bad_flags[0]); i++) {
		r = SENTINEL;
		ck_assert_int_eq(rouse_reactor_new(&r, bad_flags[i]), -EINVAL);
		ck_assert_ptr_eq(r, SENTINEL);
		ck_assert_int_eq(rouse_reactor_new(NULL, bad_flags[i]),
				 -EINVAL);
	}
	test_fdset_take(&after);
	ck_assert(fdset_eq(&before, &after));
}
END_TEST

/* ---- many reactors ------------------------------------------------- */

#define SEQUENTIAL 5000
#define AT_ONCE 100

START_TEST(test_many_sequential)
{
	struct test_fdset before, after;
	int i;

	test_fdset_take(&before);
	for (i = 0; i < SEQUENTIAL; i++)
		rouse_reactor_free(test_reactor_make());
	test_fdset_take(&after);
	ck_assert(fdset_eq(&before, &after));
}
END_TEST

START_TEST(test_many_at_once)
{
	struct rouse_reactor *r[AT_ONCE];
	int n0 = test_count_fds();
	int i;

	for (i = 0; i < AT_ONCE; i++) {
		ck_assert_int_eq(rouse_reactor_new(&r[i], 0), 0);
		if (i > 0)
			ck_assert_ptr_ne(r[i], r[i - 1]);
	}
	ck_assert_int_eq(test_count_fds(), n0 + 3 * AT_ONCE);
	/* Freed in another order than made. */
	for (i = 0; i < AT_ONCE; i += 2)
		rouse_reactor_free(r[i]);
	for (i = 1; i < AT_ONCE; i += 2)
		rouse_reactor_free(r[i]);
	ck_assert_int_eq(test_count_fds(), n0);
}
END_TEST

#define THREADS 4
#define PER_THREAD 1000

static void *new_free_thread(void *arg)
{
	struct test_barrier *b = arg;
	int i;

	test_barrier_wait(b);
	for (i = 0; i < PER_THREAD; i++)
		rouse_reactor_free(test_reactor_make());
	return NULL;
}

START_TEST(test_many_threads)
{
	struct test_fdset before, after;
	struct test_barrier b;
	pthread_t t[THREADS];
	int i;

	test_fdset_take(&before);
	test_barrier_init(&b, THREADS);
	for (i = 0; i < THREADS; i++)
		t[i] = test_thread_start(new_free_thread, &b);
	for (i = 0; i < THREADS; i++)
		test_thread_join(t[i]);
	test_barrier_destroy(&b);
	test_fdset_take(&after);
	ck_assert(fdset_eq(&before, &after));
}
END_TEST

/* ---- out of descriptors -------------------------------------------- */

/*
 * Runs in a child of its own, so that the lowered limit and the filler
 * fds die with it.  Plain checks: each failure exits with its own code
 * after saying why on stderr.
 */
#define CHILD_FAIL(code, ...)                                              \
	do {                                                               \
		fprintf(stderr, "emfile child: " __VA_ARGS__);             \
		fputc('\n', stderr);                                       \
		_exit(code);                                               \
	} while (0)

static void set_nofile(struct rlimit *rl, rlim_t soft)
{
	rl->rlim_cur = soft;
	if (setrlimit(RLIMIT_NOFILE, rl) != 0)
		CHILD_FAIL(2, "setrlimit(%lu): %s", (unsigned long)soft,
			   strerror(errno));
}

static void emfile_child(void)
{
	struct rlimit rl;
	struct test_fdset open_fds;
	struct rouse_reactor *r;
	int highest = -1, fd, filler, free_slots;
	rlim_t base;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		CHILD_FAIL(2, "getrlimit: %s", strerror(errno));
	filler = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (filler < 0)
		CHILD_FAIL(2, "open /dev/null: %s", strerror(errno));
	test_fdset_take(&open_fds);
	for (fd = 0; fd < TEST_MAX_FDS; fd++)
		if (open_fds.open[fd])
			highest = fd;
	/* No new fd may get a number above the highest open one... */
	base = (rlim_t)highest + 1;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < base + 3)
		CHILD_FAIL(77, "hard RLIMIT_NOFILE too low");
	set_nofile(&rl, base);
	/* ...and every hole below it is plugged: no fd is left. */
	while (fcntl(filler, F_DUPFD_CLOEXEC, 0) >= 0)
		;
	if (errno != EMFILE)
		CHILD_FAIL(3, "dup: %s", strerror(errno));

	/* One, two, three free numbers: three are needed. */
	for (free_slots = 0; free_slots <= 3; free_slots++) {
		int err;

		set_nofile(&rl, base + (rlim_t)free_slots);
		r = SENTINEL;
		err = rouse_reactor_new(&r, 0);
		if (free_slots < 3) {
			if (err != -EMFILE)
				CHILD_FAIL(4, "%d free fds: got %d, not "
					   "-EMFILE", free_slots, err);
			if (r != SENTINEL)
				CHILD_FAIL(5, "*out written on failure");
		} else {
			if (err != 0)
				CHILD_FAIL(6, "3 free fds: got %d", err);
			for (fd = (int)base; fd < (int)base + 3; fd++)
				if (!test_fd_is_open(fd))
					CHILD_FAIL(7, "fd %d not used", fd);
			rouse_reactor_free(r);
		}
		/* Whatever it opened, it closed. */
		for (fd = (int)base; fd < (int)base + free_slots; fd++)
			if (test_fd_is_open(fd))
				CHILD_FAIL(8, "%d free fds: fd %d leaked",
					   free_slots, fd);
		/* And it closed nothing of ours. */
		for (fd = 0; fd < (int)base; fd++)
			if (!test_fd_is_open(fd))
				CHILD_FAIL(9, "fd %d was closed", fd);
	}
	_exit(0);
}

START_TEST(test_emfile)
{
	int status;
	pid_t pid;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		emfile_child();
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child died: status %#x", status);
	if (WEXITSTATUS(status) == 77)
		return;	/* cannot lower the limit here: nothing to test */
	ck_assert_msg(WEXITSTATUS(status) == 0, "child failed with %d",
		      WEXITSTATUS(status));
}
END_TEST

/* ---- threaded mode ------------------------------------------------- */

START_TEST(test_threaded_start_stop)
{
	struct rouse_reactor *r;
	struct rouse_parker p;
	int threads0 = test_count_threads_settled();
	int fds0 = test_count_fds();
	int i;

	r = test_reactor_make();
	/* Stopping a reactor that never started has nothing to stop. */
	ck_assert_int_eq(rouse_reactor_stop(r), -ESRCH);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(rouse_reactor_start(r), 0);
		ck_assert_int_eq(test_count_threads(), threads0 + 1);
		/* Its thread drives it: nobody else may. */
		ck_assert_int_eq(rouse_reactor_start(r), -EBUSY);
		ck_assert_int_eq(rouse_reactor_turn(r, 0), -EBUSY);
		ck_assert_int_eq(rouse_reactor_turn(r, -1), -EBUSY);
		ck_assert_int_eq(rouse_reactor_parker(r, &p), 0);
		ck_assert_int_eq(rouse_parker_park(&p, 0), -EBUSY);
		ck_assert_int_eq(rouse_reactor_stop(r), 0);
		ck_assert_int_eq(test_wait_threads(threads0), threads0);
		ck_assert_int_eq(rouse_reactor_stop(r), -ESRCH);
		/* Stopped, it can be driven again. */
		ck_assert_int_eq(rouse_reactor_turn(r, 0), 0);
	}
	rouse_reactor_free(r);
	ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

START_TEST(test_threaded_free_running)
{
	struct rouse_reactor *r;
	int threads0 = test_count_threads_settled();
	int fds0 = test_count_fds();

	r = test_reactor_make();
	ck_assert_int_eq(rouse_reactor_start(r), 0);
	ck_assert_int_eq(test_count_threads(), threads0 + 1);
	/* Freeing a running reactor stops and joins its thread. */
	rouse_reactor_free(r);
	ck_assert_int_eq(test_wait_threads(threads0), threads0);
	ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

#define SLEEP_NS 2000000

struct sleeper {
	struct rouse_reactor *r;
	int err;
	int result;
	int64_t elapsed;
	pid_t tid;
};

static void *sleeper_thread(void *arg)
{
	struct sleeper *sl = arg;
	struct rouse_sleep s;
	int64_t t0;

	sl->tid = test_gettid();
	t0 = rouse_reactor_now(sl->r);
	ck_assert_int_eq(rouse_sleep_init(&s, sl->r, SLEEP_NS), 0);
	sl->err = rouse_block_on(&s.base);
	sl->elapsed = rouse_reactor_now(sl->r) - t0;
	sl->result = s.result;
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	return NULL;
}

START_TEST(test_threaded_sleep_other_thread)
{
	struct sleeper sl[3];
	pthread_t t[3];
	struct rouse_reactor *r;
	int fds0 = test_count_fds();
	int i;

	r = test_reactor_make();
	ck_assert_int_eq(rouse_reactor_start(r), 0);
	/* Three threads sleep at once; the reactor's thread wakes each. */
	for (i = 0; i < 3; i++) {
		sl[i] = (struct sleeper){ .r = r, .err = 1, .result = 1 };
		t[i] = test_thread_start(sleeper_thread, &sl[i]);
	}
	for (i = 0; i < 3; i++) {
		test_thread_join(t[i]);
		ck_assert_int_eq(sl[i].err, 0);
		ck_assert_int_eq(sl[i].result, 0);
		ck_assert_int_ge(sl[i].elapsed, SLEEP_NS);
		ck_assert_int_ne(sl[i].tid, test_gettid());
	}
	ck_assert_int_eq(rouse_reactor_stop(r), 0);
	rouse_reactor_free(r);
	ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

START_TEST(test_threaded_parker_busy)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_parker p;
	struct rouse_sleep s;

	/* The parker of a running reactor cannot park: one poll, -EBUSY. */
	ck_assert_int_eq(rouse_reactor_start(r), 0);
	ck_assert_int_eq(rouse_reactor_parker(r, &p), 0);
	ck_assert_int_eq(rouse_sleep_init(&s, r, INT64_C(3600000000000)), 0);
	ck_assert_int_eq(rouse_block_on_with(&s.base, &p), -EBUSY);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	ck_assert_int_eq(rouse_reactor_stop(r), 0);
	rouse_reactor_free(r);
}
END_TEST

/* What a call_waker's wake does here: try to stop the reactor it is in. */
struct stopper {
	struct rouse_reactor *r;
	atomic_int err;
	atomic_int tid;
};

/* A call_waker's callback: the wake tries to stop st->r. */
static void stopper_fn(struct call_waker *c, int nth)
{
	struct stopper *st = c->arg;

	atomic_store(&st->tid, test_gettid());
	atomic_store(&st->err, rouse_reactor_stop(st->r));
}

START_TEST(test_threaded_stop_from_own_thread)
{
	struct stopper st = { .err = 1, .tid = 0 };
	struct call_waker sc;
	struct rouse_waker w = call_waker(&sc, stopper_fn, &st);
	struct rouse_sleep s;
	int threads0 = test_count_threads_settled();

	st.r = test_reactor_make();
	ck_assert_int_eq(rouse_reactor_start(st.r), 0);
	ck_assert_int_eq(rouse_sleep_init(&s, st.r, SLEEP_NS), 0);
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_PENDING);
	/* The wake runs on the reactor's thread, which cannot join itself. */
	test_spin_until_ge(&st.tid, 1);
	while (atomic_load(&st.err) == 1)
		sched_yield();
	ck_assert_int_eq(atomic_load(&st.err), -EDEADLK);
	ck_assert_int_ne(atomic_load(&st.tid), test_gettid());
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	/* Still running, and stopped from here. */
	ck_assert_int_eq(rouse_reactor_turn(st.r, 0), -EBUSY);
	ck_assert_int_eq(rouse_reactor_stop(st.r), 0);
	ck_assert_int_eq(test_wait_threads(threads0), threads0);
	rouse_reactor_free(st.r);
	ck_assert_int_eq(rouse_waker_drop(&w), 0);
	ck_assert_int_eq(atomic_load(&sc.live), 0);
}
END_TEST

/* ---- driven mode --------------------------------------------------- */

START_TEST(test_driven_turn_idle)
{
	struct rouse_reactor *r = test_reactor_make();
	int i;

	/* Nothing registered, nothing due, nothing woken: 0 at once. */
	for (i = 0; i < 100; i++)
		ck_assert_int_eq(rouse_reactor_turn(r, 0), 0);
	rouse_reactor_free(r);
}
END_TEST

START_TEST(test_driven_parker_sleep)
{
	struct rouse_reactor *r;
	struct rouse_parker p;
	struct rouse_sleep s;
	int64_t t0, m0;
	int fds0 = test_count_fds();
	int i;

	r = test_reactor_make();
	ck_assert_int_eq(rouse_reactor_parker(r, &p), 0);
	for (i = 0; i < 5; i++) {
		m0 = test_mono_ns();
		t0 = rouse_reactor_now(r);
		ck_assert_int_eq(rouse_sleep_init(&s, r, SLEEP_NS), 0);
		s.result = 1;
		/* Each park is a turn of this reactor on this thread. */
		ck_assert_int_eq(rouse_block_on_with(&s.base, &p), 0);
		ck_assert_int_eq(s.result, 0);
		ck_assert_int_ge(rouse_reactor_now(r) - t0, SLEEP_NS);
		ck_assert_int_ge(test_mono_ns() - m0, SLEEP_NS);
		ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	}
	rouse_reactor_free(r);
	ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

START_TEST(test_driven_waker_outlives_reactor)
{
	struct rouse_reactor *r;
	struct rouse_parker p;
	struct rouse_waker w, w2;
	int fds0 = test_count_fds();

	r = test_reactor_make();
	ck_assert_int_eq(rouse_reactor_parker(r, &p), 0);
	ck_assert_int_eq(rouse_parker_waker(&p, &w), 0);
	ck_assert_int_eq(rouse_waker_clone(&w, &w2), 0);
	ck_assert(rouse_waker_will_wake(&w, &w2));
	/* Woken while the reactor lives: the next turn does not block. */
	ck_assert_int_eq(rouse_waker_wake_by_ref(&w), 0);
	ck_assert_int_eq(rouse_reactor_turn(r, -1), 0);
	rouse_reactor_free(r);
	/* The wakers still work, and the last one releases everything. */
	ck_assert_int_eq(rouse_waker_wake_by_ref(&w2), 0);
	ck_assert_int_eq(rouse_waker_wake(&w), 0);
	ck_assert_int_eq(rouse_waker_wake_by_ref(&w2), 0);
	ck_assert_int_eq(rouse_waker_drop(&w2), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

START_TEST(test_driven_fd_readable)
{
	struct rouse_reactor *r;
	struct counting_waker cw;
	struct rouse_waker w;
	struct rouse_sleep s;
	struct pollfd pfd;
	int64_t t0;
	int fds0 = test_count_fds();
	int turns = 0, n;

	r = test_reactor_make();
	pfd.fd = rouse_reactor_fd(r);
	pfd.events = POLLIN;
	ck_assert_int_ge(pfd.fd, 0);
	/* Nothing pending yet: the fd is not readable. */
	ck_assert_int_eq(poll(&pfd, 1, 0), 0);

	w = counting_waker(&cw);
	t0 = rouse_reactor_now(r);
	ck_assert_int_eq(rouse_sleep_init(&s, r, SLEEP_NS), 0);
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_PENDING);
	/*
	 * Another loop (here: poll(2)) waits on the reactor's fd, and turns
	 * the reactor without blocking whenever it is readable.  The timer
	 * set may ask for an early wake-up on its way to the deadline, so
	 * this can take more than one round; each round blocks in poll(2).
	 */
	while (atomic_load(&cw.wakes) == 0) {
		do
			n = poll(&pfd, 1, -1);
		while (n < 0 && errno == EINTR);
		ck_assert_int_eq(n, 1);
		ck_assert(pfd.revents & POLLIN);
		n = rouse_reactor_turn(r, 0);
		ck_assert_int_ge(n, 0);
		turns++;
	}
	ck_assert_int_ge(rouse_reactor_now(r) - t0, SLEEP_NS);
	ck_assert_int_eq(atomic_load(&cw.wakes), 1);
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_READY);
	test_sleep_done(&s);
	counting_waker_drop_last(&w, &cw);
	/* All done: the fd is quiet again. */
	ck_assert_int_eq(rouse_reactor_turn(r, 0), 0);
	ck_assert_int_eq(poll(&pfd, 1, 0), 0);
	rouse_reactor_free(r);
	ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

struct busy {
	struct rouse_reactor *r;
	atomic_int result;
};

static void *busy_thread(void *arg)
{
	struct busy *b = arg;
	int n;

	/* The main thread's probes may hold the reactor for a moment. */
	while ((n = rouse_reactor_turn(b->r, -1)) == -EBUSY)
		sched_yield();
	atomic_store(&b->result, n);
	return NULL;
}

START_TEST(test_driven_one_driver)
{
	struct busy b = { .result = 1 };
	struct rouse_parker p;
	pthread_t t;
	int n;

	b.r = test_reactor_make();
	ck_assert_int_eq(rouse_reactor_parker(b.r, &p), 0);
	t = test_thread_start(busy_thread, &b);
	/* Wait until the other thread is inside its (blocking) turn. */
	while ((n = rouse_reactor_turn(b.r, 0)) == 0)
		sched_yield();
	ck_assert_int_eq(n, -EBUSY);
	ck_assert_int_eq(rouse_reactor_start(b.r), -EBUSY);
	ck_assert_int_eq(atomic_load(&b.result), 1);
	/* An unpark ends the blocked turn. */
	ck_assert_int_eq(rouse_parker_unpark(&p), 0);
	test_thread_join(t);
	ck_assert_int_eq(atomic_load(&b.result), 0);
	ck_assert_int_eq(rouse_reactor_turn(b.r, 0), 0);
	rouse_reactor_free(b.r);
}
END_TEST

/* ---- the default reactor ------------------------------------------- */

START_TEST(test_default)
{
	struct rouse_reactor *r1 = NULL, *r2 = NULL;
	struct rouse_sleep s;
	int64_t t0;
	int threads0 = test_count_threads_settled();

	ck_assert_int_eq(rouse_reactor_default(&r1), 0);
	ck_assert_ptr_nonnull(r1);
	ck_assert_int_eq(rouse_reactor_default(&r2), 0);
	ck_assert_ptr_eq(r1, r2);
	/* It runs on a thread of its own... */
	ck_assert_int_eq(test_count_threads(), threads0 + 1);
	ck_assert_int_eq(rouse_reactor_turn(r1, 0), -EBUSY);
	ck_assert_int_eq(rouse_reactor_start(r1), -EBUSY);
	/* ...and works. */
	t0 = rouse_reactor_now(r1);
	ck_assert_int_eq(rouse_sleep_init(&s, r1, SLEEP_NS), 0);
	s.result = 1;
	ck_assert_int_eq(rouse_block_on(&s.base), 0);
	ck_assert_int_eq(s.result, 0);
	ck_assert_int_ge(rouse_reactor_now(r1) - t0, SLEEP_NS);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	ck_assert_int_eq(rouse_reactor_default(&r2), 0);
	ck_assert_ptr_eq(r1, r2);
}
END_TEST

/*
 * In a child of its own (so that no earlier test made the default
 * reactor): the first call fails for want of descriptors, and a call
 * after some were freed succeeds.  No Check macro in the child.
 */
static int default_after_emfile(void)
{
	struct rouse_reactor *r = NULL;
	int fds[64], n = 0, err;

	/* Use up every descriptor the limit allows. */
	for (;;) {
		int fd = dup(0);

		if (fd < 0)
			break;
		if (n < 64)
			fds[n++] = fd;
	}
	if (errno != EMFILE)
		return 10;
	err = rouse_reactor_default(&r);
	if (err != -EMFILE || r != NULL)
		return 11;
	err = rouse_reactor_default(&r);
	if (err != -EMFILE)
		return 12;	/* still none free: the same error, again */
	while (n > 0)
		close(fds[--n]);
	err = rouse_reactor_default(&r);
	if (err != 0 || r == NULL)
		return 13;
	return 0;
}

START_TEST(test_default_retries)
{
	struct rlimit lim = { 0, 0 };
	int status;
	pid_t pid;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* Room for the open descriptors and a few dozen more. */
		ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &lim), 0);
		lim.rlim_cur = 256;
		if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
			_exit(9);
		_exit(default_after_emfile());
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

static void *default_thread(void *arg)
{
	struct rouse_reactor **out = arg;

	ck_assert_int_eq(rouse_reactor_default(out), 0);
	return NULL;
}

START_TEST(test_default_threads)
{
	struct rouse_reactor *r[4];
	pthread_t t[4];
	int i;

	/* Created once, whichever thread asks first. */
	for (i = 0; i < 4; i++)
		t[i] = test_thread_start(default_thread, &r[i]);
	for (i = 0; i < 4; i++)
		test_thread_join(t[i]);
	for (i = 1; i < 4; i++)
		ck_assert_ptr_eq(r[i], r[0]);
}
END_TEST

/* ---- freeing with operations pending ------------------------------- */

START_TEST(test_free_pending)
{
	struct counting_waker cs, cr, ce;
	struct rouse_waker ws, wr, we;
	struct rouse_reactor *r;
	struct rouse_sleep s;
	struct rouse_io *io;
	struct rouse_io_rw rd;
	struct rouse_event *ev;
	struct rouse_event_wait wait;
	char buf[16];
	int sv[2];
	int fds0;

	fds0 = test_count_fds_warm();
	r = test_reactor_make();
	test_pair_make(sv);
	ck_assert_int_eq(rouse_io_register(r, sv[0], &io), 0);
	ck_assert_int_eq(rouse_event_new(r, &ev), 0);

	ws = counting_waker(&cs);
	wr = counting_waker(&cr);
	we = counting_waker(&ce);
	ck_assert_int_eq(rouse_sleep_init(&s, r, INT64_C(3600000000000)), 0);
	ck_assert_int_eq(rouse_io_read_init(&rd, io, buf, sizeof(buf)), 0);
	ck_assert_int_eq(rouse_event_wait_init(&wait, ev), 0);
	ck_assert_int_eq(test_poll_with(&s.base, &ws), ROUSE_PENDING);
	ck_assert_int_eq(test_poll_with(&rd.op.base, &wr), ROUSE_PENDING);
	ck_assert_int_eq(test_poll_with(&wait.op.base, &we), ROUSE_PENDING);
	/* Each holds one clone of its waker. */
	ck_assert_int_eq(atomic_load(&cs.live), 2);
	ck_assert_int_eq(atomic_load(&cr.live), 2);
	ck_assert_int_eq(atomic_load(&ce.live), 2);

	/* This frees io and ev too; they are not to be used again. */
	rouse_reactor_free(r);

	/* Every waiter was woken exactly once, and nothing else. */
	ck_assert_int_eq(atomic_load(&cs.wakes), 1);
	ck_assert_int_eq(atomic_load(&cr.wakes), 1);
	ck_assert_int_eq(atomic_load(&ce.wakes), 1);
	ck_assert_int_eq(atomic_load(&cs.drops), 0);
	ck_assert_int_eq(atomic_load(&cr.drops), 0);
	ck_assert_int_eq(atomic_load(&ce.drops), 0);
	ck_assert_int_eq(counting_waker_total_wakes(&cs), 1);
	ck_assert_int_eq(atomic_load(&cs.live), 1);
	ck_assert_int_eq(atomic_load(&cr.live), 1);
	ck_assert_int_eq(atomic_load(&ce.live), 1);

	/* Polled now, each is ready with -ECANCELED, and stays so. */
	s.result = rd.result = wait.result = 1;
	ck_assert_int_eq(test_poll_with(&s.base, &ws), ROUSE_READY);
	ck_assert_int_eq(s.result, -ECANCELED);
	ck_assert_int_eq(test_poll_with(&rd.op.base, &wr), ROUSE_READY);
	ck_assert_int_eq(rd.result, -ECANCELED);
	ck_assert_int_eq(test_poll_with(&wait.op.base, &we), ROUSE_READY);
	ck_assert_int_eq(wait.result, -ECANCELED);
	ck_assert_int_eq(test_poll_noop(&s.base), ROUSE_READY);
	ck_assert_int_eq(test_poll_noop(&rd.op.base), ROUSE_READY);
	ck_assert_int_eq(test_poll_noop(&wait.op.base), ROUSE_READY);
	/* Polling took no new reference. */
	ck_assert_int_eq(atomic_load(&cs.live), 1);
	ck_assert_int_eq(atomic_load(&cr.live), 1);
	ck_assert_int_eq(atomic_load(&ce.live), 1);

	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	ck_assert_int_eq(rouse_future_drop(&rd.op.base), 0);
	ck_assert_int_eq(rouse_future_drop(&wait.op.base), 0);
	counting_waker_drop_last(&ws, &cs);
	counting_waker_drop_last(&wr, &cr);
	counting_waker_drop_last(&we, &ce);
	ck_assert_int_eq(counting_waker_total_wakes(&cr), 1);
	ck_assert_int_eq(counting_waker_total_wakes(&ce), 1);

	close(sv[0]);
	close(sv[1]);
	ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

/*
 * A TCP connect pending when its reactor is freed: the reactor frees the
 * connect's registration, so the future's poll and drop must only close
 * the socket.  (They deregistered the freed source; a use after free
 * here shows under ASan.)
 */
START_TEST(test_free_pending_tcp_connect)
{
	struct rouse_reactor *r;
	struct rouse_tcp_connect c[2];
	struct rouse_addr a;
	socklen_t len = sizeof(a.u);
	int lfd, cfd, i, fds0;

	fds0 = test_count_fds_warm();
	/* A listener whose queue one connection fills: SYNs are dropped. */
	ck_assert_int_eq(rouse_addr_parse(&a, "127.0.0.1:0"), 0);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_ge(cfd, 0);
	ck_assert_int_eq(bind(lfd, &a.u.sa, a.len), 0);
	ck_assert_int_eq(listen(lfd, 0), 0);
	ck_assert_int_eq(getsockname(lfd, &a.u.sa, &len), 0);
	ck_assert_int_eq(connect(cfd, &a.u.sa, len), 0);
	r = test_reactor_make();
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(rouse_tcp_connect_init(&c[i], r, &a), 0);
		ck_assert_int_eq(test_poll_noop(&c[i].base), ROUSE_PENDING);
	}
	rouse_reactor_free(r);
	/* One is polled (it says so), the other only dropped. */
	ck_assert_int_eq(test_poll_noop(&c[0].base), ROUSE_READY);
	ck_assert_int_eq(c[0].result, -ECANCELED);
	ck_assert_ptr_null(c[0].stream);
	ck_assert_int_eq(rouse_future_drop(&c[0].base), 0);
	ck_assert_int_eq(rouse_future_drop(&c[1].base), 0);
	close(cfd);
	close(lfd);
	ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

struct blocked_sleep {
	struct rouse_reactor *r;
	struct rouse_sleep s;
	struct test_watched w;	/* watches s */
	int err;
};

static void *blocked_sleep_thread(void *arg)
{
	struct blocked_sleep *b = arg;

	b->err = rouse_block_on(&b->w.base);
	return NULL;
}

START_TEST(test_free_wakes_blocked_thread)
{
	struct blocked_sleep b = { .err = 1 };
	int threads0 = test_count_threads_settled();
	pthread_t t;

	b.r = test_reactor_make();
	ck_assert_int_eq(rouse_reactor_start(b.r), 0);
	ck_assert_int_eq(rouse_sleep_init(&b.s, b.r, INT64_C(3600000000000)),
			 0);
	test_watched_init(&b.w, &b.s.base);
	t = test_thread_start(blocked_sleep_thread, &b);
	/* Once the sleep is registered, free the (running) reactor. */
	test_spin_until_ge(&b.w.polls, 1);
	rouse_reactor_free(b.r);
	/* The blocked thread was woken, and its sleep was cancelled. */
	test_thread_join(t);
	ck_assert_int_eq(b.err, 0);
	ck_assert_int_eq(b.s.result, -ECANCELED);
	ck_assert_int_eq(rouse_future_drop(&b.s.base), 0);
	ck_assert_int_eq(test_wait_threads(threads0), threads0);
}
END_TEST

/*
 * Timers with nothing in the reactor when it goes (one that fired and was
 * not dropped yet, ones never polled) may be dropped after the free, and
 * a fired one polled again (rouse_sleep_init(3)): none of it may touch
 * the freed reactor.  (A use after free here shows under TSan.)
 */
START_TEST(test_free_then_drop_completed)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_interval iv;
	struct rouse_parker p;
	struct rouse_sleep s, idle;

	ck_assert_int_eq(rouse_reactor_parker(r, &p), 0);
	ck_assert_int_eq(rouse_sleep_init(&s, r, 1000), 0);
	ck_assert_int_eq(rouse_sleep_init(&idle, r, 1000), 0);
	ck_assert_int_eq(rouse_interval_init(&iv, r, 1000), 0);
	ck_assert_int_eq(rouse_block_on_with(&s.base, &p), 0);
	ck_assert_int_eq(s.result, 0);
	rouse_reactor_free(r);
	s.result = 1;
	ck_assert_int_eq(test_poll_noop(&s.base), ROUSE_READY);
	test_sleep_done(&s);
	ck_assert_int_eq(rouse_future_drop(&idle.base), 0);
	ck_assert_int_eq(rouse_future_drop(&iv.sleep.base), 0);
}
END_TEST

/*
 * An interval that waits for a tick when the reactor goes answers
 * -ECANCELED, at the next poll and at every later one.
 */
START_TEST(test_free_interval_waiting)
{
	struct rouse_reactor *r = test_reactor_make();
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct rouse_interval iv;
	int i;

	ck_assert_int_eq(rouse_reactor_clock_pause(r), 0);
	ck_assert_int_eq(rouse_interval_init(&iv, r, 1000), 0);
	ck_assert_int_eq(test_poll_with(&iv.sleep.base, &w), ROUSE_PENDING);
	ck_assert_int_ge(rouse_reactor_clock_advance(r, 1000), 0);
	ck_assert_int_eq(test_poll_with(&iv.sleep.base, &w), ROUSE_READY);
	ck_assert_int_eq(iv.result, 0);
	ck_assert_uint_eq(iv.ticks, 1);
	ck_assert_int_eq(test_poll_with(&iv.sleep.base, &w), ROUSE_PENDING);
	rouse_reactor_free(r);
	ck_assert_int_eq(atomic_load(&cw.wakes), 2);
	for (i = 0; i < 3; i++) {
		iv.result = 1;
		ck_assert_int_eq(test_poll_with(&iv.sleep.base, &w),
				 ROUSE_READY);
		ck_assert_int_eq(iv.result, -ECANCELED);
	}
	ck_assert_int_eq(rouse_future_drop(&iv.sleep.base), 0);
	counting_waker_drop_last(&w, &cw);
}
END_TEST

/*
 * The same right after a tick, before the interval was polled again: it
 * arms its next tick as it reports one (reactor/sleep.c), so the reactor
 * still reaches it.  (A use after free here shows under ASan or TSan.)
 */
START_TEST(test_free_interval_after_tick)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_interval iv;
	struct rouse_parker p;
	int i;

	ck_assert_int_eq(rouse_reactor_parker(r, &p), 0);
	ck_assert_int_eq(rouse_interval_init(&iv, r, 1000), 0);
	ck_assert_int_eq(rouse_block_on_with(&iv.sleep.base, &p), 0);
	ck_assert_int_eq(iv.result, 0);
	ck_assert_uint_ge(iv.ticks, 1);
	rouse_reactor_free(r);
	for (i = 0; i < 3; i++) {
		iv.result = 1;
		ck_assert_int_eq(test_poll_noop(&iv.sleep.base), ROUSE_READY);
		ck_assert_int_eq(iv.result, -ECANCELED);
	}
	ck_assert_int_eq(rouse_future_drop(&iv.sleep.base), 0);
}
END_TEST

/* ---- the test clock ------------------------------------------------ */

#define MS INT64_C(1000000)

/* A waker that appends its index to a log when woken. */
struct order_log {
	atomic_int n;
	int idx[64];
};

struct order_waker {
	struct call_waker cw;
	struct order_log *log;
	int idx;
};

/* A call_waker's callback: o's index appended to o's log. */
static void order_fn(struct call_waker *c, int nth)
{
	struct order_waker *o = c->arg;
	int i = atomic_fetch_add(&o->log->n, 1);

	ck_assert_int_lt(i, 64);
	o->log->idx[i] = o->idx;
}

/* Set *o up to log idx into log; return its first reference. */
static struct rouse_waker order_waker(struct order_waker *o,
				      struct order_log *log, int idx)
{
	o->log = log;
	o->idx = idx;
	return call_waker(&o->cw, order_fn, o);
}

START_TEST(test_clock_pause_advance)
{
	/* Deadlines (ms after the pause), polled in this order. */
	static const int64_t at[] = { 30, 10, 20, 10, 40 };
	/* The order in which they must fire: by deadline, then FIFO. */
	static const int expect[] = { 1, 3, 2, 0, 4 };
	struct order_log log = { .n = 0 };
	struct order_waker ow[5];
	struct rouse_waker w[5];
	struct rouse_sleep s[5];
	struct rouse_reactor *r;
	int64_t t0;
	int i;

	r = test_reactor_make();
	ck_assert_int_eq(rouse_reactor_clock_pause(r), 0);
	/* Pausing twice is harmless. */
	ck_assert_int_eq(rouse_reactor_clock_pause(r), 0);
	t0 = rouse_reactor_now(r);
	ck_assert_int_ge(t0, 0);
	/* The clock stands still: no real time passes on it. */
	for (i = 0; i < 1000; i++)
		ck_assert_int_eq(rouse_reactor_now(r), t0);
	for (i = 0; i < 5; i++) {
		w[i] = order_waker(&ow[i], &log, i);
		ck_assert_int_eq(rouse_sleep_until_init(&s[i], r,
							t0 + at[i] * MS), 0);
		ck_assert_int_eq(test_poll_with(&s[i].base, &w[i]),
				 ROUSE_PENDING);
	}
	/* Turns fire nothing while the clock stands. */
	ck_assert_int_eq(rouse_reactor_turn(r, 0), 0);
	ck_assert_int_eq(rouse_reactor_clock_advance(r, 0), 0);
	ck_assert_int_eq(atomic_load(&log.n), 0);

	/* 10 ms - 1 ns: still nothing. */
	ck_assert_int_eq(rouse_reactor_clock_advance(r, 10 * MS - 1), 0);
	ck_assert_int_eq(rouse_reactor_now(r), t0 + 10 * MS - 1);
	ck_assert_int_eq(atomic_load(&log.n), 0);
	/* 10 ms exactly: the two due at 10, first polled first. */
	ck_assert_int_ge(rouse_reactor_clock_advance(r, 1), 0);
	ck_assert_int_eq(atomic_load(&log.n), 2);
	ck_assert_int_eq(test_poll_with(&s[1].base, &w[1]), ROUSE_READY);
	ck_assert_int_eq(test_poll_with(&s[3].base, &w[3]), ROUSE_READY);
	ck_assert_int_eq(test_poll_with(&s[0].base, &w[0]), ROUSE_PENDING);
	/* To 25 ms: the one at 20. */
	ck_assert_int_ge(rouse_reactor_clock_advance(r, 15 * MS), 0);
	ck_assert_int_eq(atomic_load(&log.n), 3);
	/* A long step fires the rest, still in deadline order. */
	ck_assert_int_ge(rouse_reactor_clock_advance(r, 1000 * MS), 0);
	ck_assert_int_eq(atomic_load(&log.n), 5);
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(log.idx[i], expect[i]);
		ck_assert_int_eq(atomic_load(&ow[i].cw.wakes), 1);
		ck_assert_int_eq(test_poll_with(&s[i].base, &w[i]),
				 ROUSE_READY);
		test_sleep_done(&s[i]);
		ck_assert_int_eq(rouse_waker_drop(&w[i]), 0);
		ck_assert_int_eq(atomic_load(&ow[i].cw.live), 0);
	}
	ck_assert_int_eq(rouse_reactor_now(r), t0 + 1025 * MS);
	rouse_reactor_free(r);
}
END_TEST

START_TEST(test_clock_errors)
{
	struct rouse_reactor *r = test_reactor_make();

	/* Advancing a running clock is refused. */
	ck_assert_int_eq(rouse_reactor_clock_advance(r, 0), -EPERM);
	ck_assert_int_eq(rouse_reactor_clock_advance(r, MS), -EPERM);
	ck_assert_int_eq(rouse_reactor_clock_advance(r, -1), -EINVAL);
	/* Resuming a running clock is harmless. */
	ck_assert_int_eq(rouse_reactor_clock_resume(r), 0);
	ck_assert_int_eq(rouse_reactor_clock_pause(r), 0);
	ck_assert_int_eq(rouse_reactor_clock_advance(r, -1), -EINVAL);
	ck_assert_int_eq(rouse_reactor_clock_advance(r, INT64_MIN), -EINVAL);
	ck_assert_int_eq(rouse_reactor_clock_resume(r), 0);
	ck_assert_int_eq(rouse_reactor_clock_advance(r, 0), -EPERM);
	rouse_reactor_free(r);
}
END_TEST

START_TEST(test_clock_resume_monotonic)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_sleep s;
	struct rouse_parker p;
	int64_t paused, a, b;
	int i;

	for (i = 0; i < 3; i++) {
		a = rouse_reactor_now(r);
		ck_assert_int_eq(rouse_reactor_clock_pause(r), 0);
		paused = rouse_reactor_now(r);
		ck_assert_int_ge(paused, a);
		/* An hour passes on the paused clock... */
		ck_assert_int_ge(rouse_reactor_clock_advance(r,
				 INT64_C(3600000000000)), 0);
		paused = rouse_reactor_now(r);
		ck_assert_int_eq(rouse_reactor_clock_resume(r), 0);
		/* ...and the resumed clock goes on from there. */
		b = rouse_reactor_now(r);
		ck_assert_int_ge(b, paused);
		ck_assert_int_ge(rouse_reactor_now(r), b);
	}
	/* Timers work on the resumed clock. */
	ck_assert_int_eq(rouse_reactor_parker(r, &p), 0);
	a = rouse_reactor_now(r);
	ck_assert_int_eq(rouse_sleep_init(&s, r, SLEEP_NS), 0);
	ck_assert_int_eq(rouse_block_on_with(&s.base, &p), 0);
	ck_assert_int_eq(s.result, 0);
	ck_assert_int_ge(rouse_reactor_now(r) - a, SLEEP_NS);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	rouse_reactor_free(r);
}
END_TEST

START_TEST(test_clock_threaded)
{
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_sleep s;

	/* The paused clock works the same with the reactor on its thread. */
	ck_assert_int_eq(rouse_reactor_start(r), 0);
	ck_assert_int_eq(rouse_reactor_clock_pause(r), 0);
	ck_assert_int_eq(rouse_sleep_init(&s, r, 5 * MS), 0);
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(rouse_reactor_clock_advance(r, 5 * MS - 1), 0);
	ck_assert_int_eq(counting_waker_total_wakes(&cw), 0);
	ck_assert_int_ge(rouse_reactor_clock_advance(r, 1), 0);
	/* advance fires on the calling thread: woken when it returns. */
	ck_assert_int_eq(atomic_load(&cw.wakes), 1);
	ck_assert_int_eq(atomic_load(&cw.last_tid), test_gettid());
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	ck_assert_int_eq(rouse_waker_drop(&w), 0);
	rouse_reactor_free(r);
	ck_assert_int_eq(atomic_load(&cw.live), 0);
}
END_TEST

/* ---- NULL arguments ------------------------------------------------ */

START_TEST(test_einval_null)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_parker p = { .data = SENTINEL, .vtable = NULL };
	int fds0 = test_count_fds();

	ck_assert_int_eq(rouse_reactor_default(NULL), -EINVAL);
	ck_assert_int_eq(rouse_reactor_fd(NULL), -EINVAL);
	ck_assert_int_eq(rouse_reactor_turn(NULL, 0), -EINVAL);
	ck_assert_int_eq(rouse_reactor_turn(NULL, -1), -EINVAL);
	ck_assert_int_eq(rouse_reactor_parker(NULL, &p), -EINVAL);
	ck_assert_ptr_eq(p.data, SENTINEL);
	ck_assert_int_eq(rouse_reactor_parker(r, NULL), -EINVAL);
	ck_assert_int_eq(rouse_reactor_parker(NULL, NULL), -EINVAL);
	ck_assert_int_eq(rouse_reactor_start(NULL), -EINVAL);
	ck_assert_int_eq(rouse_reactor_stop(NULL), -EINVAL);
	ck_assert_int_eq(rouse_reactor_now(NULL), -EINVAL);
	ck_assert_int_eq(rouse_reactor_clock_pause(NULL), -EINVAL);
	ck_assert_int_eq(rouse_reactor_clock_resume(NULL), -EINVAL);
	ck_assert_int_eq(rouse_reactor_clock_advance(NULL, 0), -EINVAL);
	ck_assert_int_eq(rouse_reactor_clock_advance(NULL, -1), -EINVAL);
	ck_assert_int_eq(rouse_reactor_set_log_level((enum rouse_log_level)-1),
			 -EINVAL);
	ck_assert_int_eq(rouse_reactor_set_log_level(
			 (enum rouse_log_level)(ROUSE_LOG_TRACE + 1)), -EINVAL);
	/* None of it touched the reactor or opened anything. */
	ck_assert_int_eq(test_count_fds(), fds0);
	ck_assert_int_eq(rouse_reactor_turn(r, 0), 0);
	rouse_reactor_free(r);
}
END_TEST

static Suite *reactor_suite(void)
{
	Suite *s = suite_create("reactor");
	TCase *tc;

	tc = tcase_create("new_free");
	tcase_add_test(tc, test_new_free);
	tcase_add_test(tc, test_free_null);
	suite_add_tcase(s, tc);

	tc = tcase_create("einval");
	tcase_add_test(tc, test_einval);
	suite_add_tcase(s, tc);

	tc = tcase_create("many");
	tcase_add_test(tc, test_many_sequential);
	tcase_add_test(tc, test_many_at_once);
	tcase_add_test(tc, test_many_threads);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = tcase_create("emfile");
	tcase_add_test(tc, test_emfile);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("threaded");
	tcase_add_test(tc, test_threaded_start_stop);
	tcase_add_test(tc, test_threaded_free_running);
	tcase_add_test(tc, test_threaded_sleep_other_thread);
	tcase_add_test(tc, test_threaded_stop_from_own_thread);
	tcase_add_test(tc, test_threaded_parker_busy);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("driven");
	tcase_add_test(tc, test_driven_turn_idle);
	tcase_add_test(tc, test_driven_parker_sleep);
	tcase_add_test(tc, test_driven_waker_outlives_reactor);
	tcase_add_test(tc, test_driven_fd_readable);
	tcase_add_test(tc, test_driven_one_driver);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("default");
	tcase_add_test(tc, test_default);
	tcase_add_test(tc, test_default_threads);
	tcase_add_test(tc, test_default_retries);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("free_pending");
	tcase_add_test(tc, test_free_pending);
	tcase_add_test(tc, test_free_pending_tcp_connect);
	tcase_add_test(tc, test_free_wakes_blocked_thread);
	tcase_add_test(tc, test_free_then_drop_completed);
	tcase_add_test(tc, test_free_interval_waiting);
	tcase_add_test(tc, test_free_interval_after_tick);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("test_clock");
	tcase_add_test(tc, test_clock_pause_advance);
	tcase_add_test(tc, test_clock_errors);
	tcase_add_test(tc, test_clock_resume_monotonic);
	tcase_add_test(tc, test_clock_threaded);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("einval_null");
	tcase_add_test(tc, test_einval_null);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return test_run_suite(reactor_suite());
}
