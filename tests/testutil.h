/* SPDX-License-Identifier: MIT */
/*
 * tests/testutil.h - helpers shared by the Check suites: running a suite,
 * an executor per loop index, a failing allocator, cheap assertions for hot loops, counting open fds and threads, a
 * counting and a calling waker, polling by hand, a reactor with a waker to
 * test with, the ways to run a reactor, two futures run together, a start
 * barrier, spinning on atomics, sockets.
 *
 * Everything here is a macro or static inline, so a suite that uses none
 * of it pays nothing and gets no unused-function warning.
 */
#ifndef ROUSE_TESTUTIL_H
#define ROUSE_TESTUTIL_H

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <rouse/executor.h>
#include <rouse/future.h>
#include <rouse/reactor.h>

/* Timeout of the stress cases: generous, since CI runs them under TSan. */
#define TEST_STRESS_TIMEOUT 120

/* Run suite s as CK_ENV says; returns the exit status for main(). */
static inline int test_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* ---- executors -------------------------------------------------------- */

/*
 * The executor of a loop test's index i: 0 a current-thread executor, 1 a
 * multi-thread one with two workers.
 */
static inline struct rouse_executor *test_executor_make(int i)
{
	struct rouse_executor_config cfg;
	struct rouse_executor *ex;

	ck_assert_int_eq(rouse_executor_config_init(&cfg), 0);
	cfg.kind = i == 0 ? ROUSE_EXECUTOR_CURRENT_THREAD
			  : ROUSE_EXECUTOR_MULTI_THREAD;
	cfg.workers = 2;
	ck_assert_int_eq(rouse_executor_new(&cfg, &ex), 0);
	return ex;
}

/* ---- an allocator that fails on demand ----------------------------- */

/*
 * For rouse_executor_set_allocator() and rouse_reactor_set_allocator():
 * it wraps the C library's, fails the fail_at-th call of malloc or
 * realloc (counting from 0; -1: none), and counts the blocks it handed
 * out that are not freed yet, and the calls that break struct
 * rouse_allocator's promises.  data is the struct test_fail_alloc.
 */
struct test_fail_alloc {
	atomic_long live;	/* blocks allocated here and not yet freed */
	atomic_long calls;	/* malloc and realloc calls since armed */
	atomic_long fail_at;	/* the call (from 0) that fails; -1: none */
	atomic_long failed;	/* calls failed on purpose since armed */
	atomic_long misuse;	/* calls that break struct rouse_allocator's
				   promises: size 0, NULL pointers */
};

/* Count a call; true when it is the one to fail. */
static inline bool test_fa_should_fail(struct test_fail_alloc *f)
{
	long n = atomic_fetch_add(&f->calls, 1);

	if (n != atomic_load(&f->fail_at))
		return false;
	atomic_fetch_add(&f->failed, 1);
	return true;
}

static inline void *test_fa_malloc(void *data, size_t size)
{
	struct test_fail_alloc *f = data;
	void *p;

	if (size == 0)
		atomic_fetch_add(&f->misuse, 1);
	if (test_fa_should_fail(f))
		return NULL;
	p = malloc(size);
	if (p != NULL)
		atomic_fetch_add(&f->live, 1);
	return p;
}

static inline void *test_fa_realloc(void *data, void *ptr, size_t size)
{
	struct test_fail_alloc *f = data;

	if (ptr == NULL || size == 0)
		atomic_fetch_add(&f->misuse, 1);
	if (test_fa_should_fail(f))
		return NULL;
	return realloc(ptr, size);
}

static inline void test_fa_free(void *data, void *ptr)
{
	struct test_fail_alloc *f = data;

	if (ptr == NULL)
		atomic_fetch_add(&f->misuse, 1);
	atomic_fetch_sub(&f->live, 1);
	free(ptr);
}

/* ---- assertions for hot loops -------------------------------------- */

/*
 * A ck_assert() that passes is not free: Check records where the test got
 * to with a write(2) to the file its parent reads, so an assertion in a
 * loop of a million costs a million system calls, and far more time under
 * TSan or valgrind than the code it checks.  These fail the same way when
 * the condition is false and cost a comparison when it holds.
 */
#define test_require(expr) \
	do { \
		if (!(expr)) \
			ck_abort_msg("Assertion '%s' failed", #expr); \
	} while (0)

/* test_require(x op y) on integers, which shows both values. */
#define test_require_int(x, op, y) \
	do { \
		intmax_t test_x_ = (x), test_y_ = (y); \
		if (!(test_x_ op test_y_)) \
			ck_abort_msg("Assertion '%s' failed: %jd, %jd", \
				     #x " " #op " " #y, test_x_, test_y_); \
	} while (0)

/* ---- randomness and time ------------------------------------------- */

/* splitmix64: a fixed-seed generator on *state, so a failure reproduces. */
static inline uint64_t test_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* CLOCK_MONOTONIC in nanoseconds. */
static inline int64_t test_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- counting processes' resources --------------------------------- */

/* Number of entries in the directory path, other than its own dirfd. */
static inline int test_count_dir(const char *path, bool skip_dirfd)
{
	struct dirent *e;
	DIR *d;
	int n = 0;

	d = opendir(path);
	ck_assert_msg(d != NULL, "opendir(%s): %s", path, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (skip_dirfd && atoi(e->d_name) == dirfd(d))
			continue;
		n++;
	}
	closedir(d);
	return n;
}

/* Open file descriptors of this process. */
static inline int test_count_fds(void)
{
	return test_count_dir("/proc/self/fd", true);
}

/*
 * Whether fd is open in this process, without opening anything (so it
 * works when no descriptor is left).
 */
static inline bool test_fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0 || errno != EBADF;
}

/* Threads of this process. */
static inline int test_count_threads(void)
{
	return test_count_dir("/proc/self/task", false);
}

/*
 * Wait until this process has exactly n threads.  pthread_join() returns
 * once the thread has cleared its tid, which the kernel does a little
 * before the task leaves /proc/self/task; so a joined thread may still be
 * listed for a moment.  This waits for that moment to end (the tcase
 * timeout bounds the wait, so a real leak fails the test) and returns the
 * count it settled on.
 */
static inline int test_wait_threads(int n)
{
	int now;

	while ((now = test_count_threads()) != n && now > n)
		sched_yield();
	return now;
}

/* The kernel's id of the calling thread. */
static inline pid_t test_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* Wait until thread tid of this process has left /proc/self/task. */
static inline void test_wait_reaped(pid_t tid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/task/%d", (int)tid);
	while (access(path, F_OK) == 0)
		sched_yield();
}

/* A thread that stores its tid in *(pid_t *)arg and ends. */
static inline void *test_tid_thread(void *arg)
{
	*(pid_t *)arg = test_gettid();
	return NULL;
}

/*
 * The thread count to compare against later: taken after one thread was
 * started, joined and reaped, so that a helper thread that the runtime
 * starts with the first pthread_create() (TSan has one) is in it.
 */
static inline int test_count_threads_settled(void)
{
	pthread_t t;
	pid_t tid = 0;

	ck_assert_int_eq(pthread_create(&t, NULL, test_tid_thread, &tid), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	test_wait_reaped(tid);
	return test_count_threads();
}

/* ---- sets of open fds ---------------------------------------------- */

#define TEST_MAX_FDS 4096

/* Which fds below TEST_MAX_FDS are open, as /proc/self/fd lists them. */
struct test_fdset {
	bool open[TEST_MAX_FDS];
};

/* Fill *s with the fds open now. */
static inline void test_fdset_take(struct test_fdset *s)
{
	struct dirent *e;
	DIR *d;

	memset(s, 0, sizeof(*s));
	d = opendir("/proc/self/fd");
	ck_assert_msg(d != NULL, "opendir(/proc/self/fd): %s",
		      strerror(errno));
	while ((e = readdir(d)) != NULL) {
		int fd;

		if (e->d_name[0] == '.')
			continue;
		fd = atoi(e->d_name);
		if (fd == dirfd(d) || fd < 0 || fd >= TEST_MAX_FDS)
			continue;
		s->open[fd] = true;
	}
	closedir(d);
}

/*
 * Store in out (at most max) the fds open in after but not in before;
 * return how many there are.
 */
static inline int test_fdset_new(const struct test_fdset *before,
				 const struct test_fdset *after, int *out,
				 int max)
{
	int fd, n = 0;

	for (fd = 0; fd < TEST_MAX_FDS; fd++) {
		if (after->open[fd] && !before->open[fd]) {
			if (n < max)
				out[n] = fd;
			n++;
		}
	}
	return n;
}

/* The target of /proc/self/fd/FD, e.g. "anon_inode:[eventfd]". */
static inline void test_fd_link(int fd, char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, buf, len - 1);
	ck_assert_msg(n >= 0, "readlink(%s): %s", path, strerror(errno));
	buf[n] = '\0';
}

/*
 * Copy into buf the value of the line "key:" of /proc/self/fdinfo/FD,
 * leading blanks removed.  Returns false when there is no such line.
 */
static inline bool test_fdinfo(int fd, const char *key, char *buf,
			       size_t len)
{
	char path[64], line[512];
	size_t klen = strlen(key), n;
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	ck_assert_msg(f != NULL, "fopen(%s): %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		char *v;

		if (strncmp(line, key, klen) != 0 || line[klen] != ':')
			continue;
		v = line + klen + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		n = strcspn(v, "\n");
		if (n >= len)
			n = len - 1;
		memcpy(buf, v, n);
		buf[n] = '\0';
		found = true;
		break;
	}
	fclose(f);
	return found;
}

/* ---- spinning ------------------------------------------------------ */

/* Wait until *a == v; yields so that it also progresses on one core. */
static inline void test_spin_until_eq(atomic_int *a, int v)
{
	while (atomic_load(a) != v)
		sched_yield();
}

/* Wait until *a >= v. */
static inline void test_spin_until_ge(atomic_int *a, int v)
{
	while (atomic_load(a) < v)
		sched_yield();
}

/* ---- a start barrier ----------------------------------------------- */

/*
 * n threads meet here before they start, so that a stress test's threads
 * really overlap instead of running one after the other.
 */
struct test_barrier {
	pthread_barrier_t b;
};

/* A barrier for n threads. */
static inline void test_barrier_init(struct test_barrier *b, unsigned int n)
{
	ck_assert_int_eq(pthread_barrier_init(&b->b, NULL, n), 0);
}

/* Wait until all n threads are here. */
static inline void test_barrier_wait(struct test_barrier *b)
{
	int r = pthread_barrier_wait(&b->b);

	ck_assert(r == 0 || r == PTHREAD_BARRIER_SERIAL_THREAD);
}

/* Destroy a barrier that no thread waits at. */
static inline void test_barrier_destroy(struct test_barrier *b)
{
	ck_assert_int_eq(pthread_barrier_destroy(&b->b), 0);
}

/* ---- threads ------------------------------------------------------- */

/* Start a thread running fn(arg). */
static inline pthread_t test_thread_start(void *(*fn)(void *), void *arg)
{
	pthread_t t;

	ck_assert_int_eq(pthread_create(&t, NULL, fn, arg), 0);
	return t;
}

/* Join t, whose result is not wanted. */
static inline void test_thread_join(pthread_t t)
{
	ck_assert_int_eq(pthread_join(t, NULL), 0);
}

/*
 * Whether the kernel has pidfd_open(2), which rouse_process_spawn()
 * needs: a kernel before 5.3 lacks it, and a valgrind that does not know
 * the call (3.19, make check-valgrind) says ENOSYS for it.
 */
static inline bool test_have_pidfd(void)
{
	int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);

	if (fd < 0)
		return errno != ENOSYS;
	close(fd);
	return true;
}

/* ---- sockets ------------------------------------------------------- */

/* Whether this kernel has IPv6 with a loopback address (::1 binds). */
static inline bool test_have_ipv6(void)
{
	struct sockaddr_in6 sin6;
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr = in6addr_loopback;
	ok = bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
	close(fd);
	return ok;
}

/* A connected AF_UNIX stream pair, nonblocking and close-on-exec. */
static inline void test_pair_make(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
					    SOCK_CLOEXEC, 0, sv), 0);
}

/* ---- a counting waker ---------------------------------------------- */

/*
 * A waker whose data is this struct: it counts each operation and the
 * references alive (created by counting_waker(), plus clones, minus wakes
 * and drops).  last_tid is the thread of the latest wake or wake_by_ref.
 */
struct counting_waker {
	atomic_int clones;
	atomic_int wakes;
	atomic_int wake_by_refs;
	atomic_int drops;
	atomic_int live;
	atomic_int last_tid;
};

static inline const struct rouse_waker_vtable *counting_waker_vtable(void);

/* The vtable's clone: counted, one reference more. */
static inline struct rouse_waker counting_waker_clone_fn(void *data)
{
	struct counting_waker *c = (struct counting_waker *)data;
	struct rouse_waker w;

	atomic_fetch_add(&c->clones, 1);
	atomic_fetch_add(&c->live, 1);
	w.data = c;
	w.vtable = counting_waker_vtable();
	return w;
}

/* The vtable's wake: counted, and it uses up its reference. */
static inline void counting_waker_wake_fn(void *data)
{
	struct counting_waker *c = (struct counting_waker *)data;

	atomic_store(&c->last_tid, test_gettid());
	atomic_fetch_add(&c->wakes, 1);
	atomic_fetch_sub(&c->live, 1);
}

/* The vtable's wake_by_ref: counted. */
static inline void counting_waker_wake_by_ref_fn(void *data)
{
	struct counting_waker *c = (struct counting_waker *)data;

	atomic_store(&c->last_tid, test_gettid());
	atomic_fetch_add(&c->wake_by_refs, 1);
}

/* The vtable's drop: counted, one reference less. */
static inline void counting_waker_drop_fn(void *data)
{
	struct counting_waker *c = (struct counting_waker *)data;

	atomic_fetch_add(&c->drops, 1);
	atomic_fetch_sub(&c->live, 1);
}

/* The vtable of every counting_waker. */
static inline const struct rouse_waker_vtable *counting_waker_vtable(void)
{
	static const struct rouse_waker_vtable vt = {
		.clone = counting_waker_clone_fn,
		.wake = counting_waker_wake_fn,
		.wake_by_ref = counting_waker_wake_by_ref_fn,
		.drop = counting_waker_drop_fn,
	};

	return &vt;
}

/* Reset *c and return the first reference to it (live becomes 1). */
static inline struct rouse_waker counting_waker(struct counting_waker *c)
{
	struct rouse_waker w;

	atomic_init(&c->clones, 0);
	atomic_init(&c->wakes, 0);
	atomic_init(&c->wake_by_refs, 0);
	atomic_init(&c->drops, 0);
	atomic_init(&c->live, 1);
	atomic_init(&c->last_tid, 0);
	w.data = c;
	w.vtable = counting_waker_vtable();
	return w;
}

/* Total wakes of either kind. */
static inline int counting_waker_total_wakes(struct counting_waker *c)
{
	return atomic_load(&c->wakes) + atomic_load(&c->wake_by_refs);
}

/*
 * Drop w, the last reference to c: none may be left.  A reactor on a
 * thread of its own may still be waking a clone that it took out of a
 * source under its lock (it wakes, and so drops, it just after the
 * lock): wait for that one.  A clone leaked for good hangs the test until
 * its timeout; one dropped twice fails at once.
 */
static inline void counting_waker_drop_last(struct rouse_waker *w,
					    struct counting_waker *c)
{
	ck_assert_int_eq(rouse_waker_drop(w), 0);
	while (atomic_load(&c->live) > 0)
		sched_yield();
	ck_assert_int_eq(atomic_load(&c->live), 0);
}

/* ---- a calling waker ----------------------------------------------- */

/*
 * A waker whose data is this struct: each wake of either kind is counted,
 * then calls fn (if not NULL) with the number of wakes before it; live
 * counts the references alive, as for counting_waker.
 */
struct call_waker;

/* What a call_waker calls at a wake: nth is the number of wakes before. */
typedef void call_waker_fn(struct call_waker *c, int nth);

struct call_waker {
	call_waker_fn *fn;
	void *arg;	/* for fn */
	atomic_int wakes;
	atomic_int live;
};

static inline const struct rouse_waker_vtable *call_waker_vtable(void);

/* The vtable's clone: one reference more. */
static inline struct rouse_waker call_waker_clone_fn(void *data)
{
	struct call_waker *c = (struct call_waker *)data;
	struct rouse_waker w;

	atomic_fetch_add(&c->live, 1);
	w.data = c;
	w.vtable = call_waker_vtable();
	return w;
}

/* The vtable's wake_by_ref: count the wake, then call fn. */
static inline void call_waker_wake_by_ref_fn(void *data)
{
	struct call_waker *c = (struct call_waker *)data;
	int nth = atomic_fetch_add(&c->wakes, 1);

	if (c->fn != NULL)
		c->fn(c, nth);
}

/* The vtable's drop: one reference less. */
static inline void call_waker_drop_fn(void *data)
{
	atomic_fetch_sub(&((struct call_waker *)data)->live, 1);
}

/* The vtable's wake: a wake_by_ref that uses up its reference. */
static inline void call_waker_wake_fn(void *data)
{
	call_waker_wake_by_ref_fn(data);
	call_waker_drop_fn(data);
}

/* The vtable of every call_waker. */
static inline const struct rouse_waker_vtable *call_waker_vtable(void)
{
	static const struct rouse_waker_vtable vt = {
		.clone = call_waker_clone_fn,
		.wake = call_waker_wake_fn,
		.wake_by_ref = call_waker_wake_by_ref_fn,
		.drop = call_waker_drop_fn,
	};

	return &vt;
}

/* Set *c up to call fn with arg; return the first reference (live 1). */
static inline struct rouse_waker call_waker(struct call_waker *c,
					    call_waker_fn *fn, void *arg)
{
	struct rouse_waker w;

	c->fn = fn;
	c->arg = arg;
	atomic_init(&c->wakes, 0);
	atomic_init(&c->live, 1);
	w.data = c;
	w.vtable = call_waker_vtable();
	return w;
}

/* ---- polling by hand ----------------------------------------------- */

/* Poll f once with *w; returns what the poll said. */
static inline int test_poll_with(struct rouse_future *f,
				 struct rouse_waker *w)
{
	struct rouse_context cx = { .waker = w };

	return rouse_future_poll(f, &cx);
}

/* Poll f once with the noop waker; returns what the poll said. */
static inline int test_poll_noop(struct rouse_future *f)
{
	struct rouse_waker w = rouse_waker_noop();

	return test_poll_with(f, &w);
}

/*
 * A future that polls inner, then counts the polls that returned: a
 * handshake with the thread that blocks on it.
 */
struct test_watched {
	struct rouse_future base;
	struct rouse_future *inner;
	atomic_int polls;
};

/* The poll of a test_watched: inner's answer, counted once it returns. */
static inline enum rouse_poll test_watched_poll(struct rouse_future *f,
						struct rouse_context *cx)
{
	struct test_watched *w = (struct test_watched *)f;
	enum rouse_poll p = w->inner->vtable->poll(w->inner, cx);

	atomic_fetch_add(&w->polls, 1);
	return p;
}

/* Make w watch inner, no poll counted yet. */
static inline void test_watched_init(struct test_watched *w,
				     struct rouse_future *inner)
{
	static const struct rouse_future_vtable vt = {
		test_watched_poll, NULL,
	};

	w->base.vtable = &vt;
	w->inner = inner;
	atomic_init(&w->polls, 0);
}

/* ---- the executor -------------------------------------------------- */

/*
 * Create the calling thread's eventfd parker now, so that an fd count
 * taken afterwards does not see it appear in the first rouse_block_on().
 */
static inline void test_warm_thread_parker(void)
{
	struct rouse_parker p;

	ck_assert_int_eq(rouse_thread_parker(&p), 0);
}

/* Open fds, this thread's parker made first (see above). */
static inline int test_count_fds_warm(void)
{
	test_warm_thread_parker();
	return test_count_fds();
}

/* The executor's counters; no Check macro: forked children call it too. */
static inline struct rouse_executor_stats test_executor_stats(void)
{
	struct rouse_executor_stats s;

	if (rouse_executor_get_stats(&s) != 0)
		abort();
	return s;
}

/*
 * Wait until the process-wide park counter reaches n.  The parker counts a
 * park after its EMPTY -> PARKED exchange, so once this returns the parked
 * thread is (or is about to be) blocked in read(): a wake now has to write
 * the eventfd.  No Check macro either.
 */
static inline void test_wait_parks(uint64_t n)
{
	while (test_executor_stats().parks < n)
		sched_yield();
}

/* ---- reactors ------------------------------------------------------ */

/* A new reactor, flags 0. */
static inline struct rouse_reactor *test_reactor_make(void)
{
	struct rouse_reactor *r = NULL;

	ck_assert_int_eq(rouse_reactor_new(&r, 0), 0);
	ck_assert_ptr_nonnull(r);
	return r;
}

/* A reactor turned by hand and a counting waker: a test's usual scene. */
struct test_fixture {
	struct rouse_reactor *r;
	struct counting_waker cw;
	struct rouse_waker w;	/* the first reference to cw */
};

/* Make fx's reactor, and its waker's first reference. */
static inline void test_fixture_init(struct test_fixture *fx)
{
	fx->r = test_reactor_make();
	fx->w = counting_waker(&fx->cw);
}

/* Drop the waker's last reference (none may be left); free the reactor. */
static inline void test_fixture_free(struct test_fixture *fx)
{
	counting_waker_drop_last(&fx->w, &fx->cw);
	rouse_reactor_free(fx->r);
}

/* The sleep s is over: it must have succeeded; drop it. */
static inline void test_sleep_done(struct rouse_sleep *s)
{
	ck_assert_int_eq(s->result, 0);
	ck_assert_int_eq(rouse_future_drop(&s->base), 0);
}

/*
 * The ways to run a reactor, as the _i of a loop test: on its thread;
 * driven by the thread in block_on; driven, made with ROUSE_REACTOR_LOCAL
 * (no lock: only this thread touches it).
 */
enum test_mode {
	TEST_MODE_THREADED,
	TEST_MODE_DRIVEN,
	TEST_MODE_LOCAL,
	TEST_MODES,
};

/* A reactor run one way or the other, and the parker that drives it. */
struct test_runner {
	struct rouse_reactor *r;
	enum test_mode mode;
	struct rouse_parker parker;
};

/* A new reactor in ru: started on its thread, or driven by ru->parker. */
static inline void test_runner_init(struct test_runner *ru,
				    enum test_mode mode)
{
	if (mode == TEST_MODE_LOCAL) {
		ck_assert_int_eq(rouse_reactor_new(&ru->r, ROUSE_REACTOR_LOCAL),
				 0);
	} else {
		ru->r = test_reactor_make();
	}
	ru->mode = mode;
	if (mode == TEST_MODE_THREADED)
		ck_assert_int_eq(rouse_reactor_start(ru->r), 0);
	else
		ck_assert_int_eq(rouse_reactor_parker(ru->r, &ru->parker), 0);
}

/* rouse_block_on(f), or rouse_block_on_with() the reactor's parker. */
static inline int test_runner_block_on(struct test_runner *ru,
				       struct rouse_future *f)
{
	if (ru->mode == TEST_MODE_THREADED)
		return rouse_block_on(f);
	return rouse_block_on_with(f, &ru->parker);
}

/* Stop ru's reactor if it runs on its thread, and free it. */
static inline void test_runner_free(struct test_runner *ru)
{
	if (ru->mode == TEST_MODE_THREADED)
		ck_assert_int_eq(rouse_reactor_stop(ru->r), 0);
	rouse_reactor_free(ru->r);
}

/* ---- two futures at once ------------------------------------------- */

/*
 * Ready once both a and b are: each is polled until it is ready, and
 * not after.  Neither is dropped; that stays the test's to do.
 */
struct test_both {
	struct rouse_future base;
	struct rouse_future *a, *b;
	bool a_done, b_done;
};

/* The poll of a test_both. */
static inline enum rouse_poll test_both_poll(struct rouse_future *f,
					     struct rouse_context *cx)
{
	struct test_both *t = (struct test_both *)f;

	if (!t->a_done)
		t->a_done = rouse_future_poll(t->a, cx) == ROUSE_READY;
	if (!t->b_done)
		t->b_done = rouse_future_poll(t->b, cx) == ROUSE_READY;
	return t->a_done && t->b_done ? ROUSE_READY : ROUSE_PENDING;
}

/* Make t run a and b together, neither ready yet. */
static inline void test_both_init(struct test_both *t,
				  struct rouse_future *a,
				  struct rouse_future *b)
{
	static const struct rouse_future_vtable vt = {
		test_both_poll, NULL,
	};

	t->base.vtable = &vt;
	t->a = a;
	t->b = b;
	t->a_done = false;
	t->b_done = false;
}

/* Run a and b in ru until both are ready. */
static inline void test_run_both(struct test_runner *ru,
				 struct rouse_future *a,
				 struct rouse_future *b)
{
	struct test_both t;

	test_both_init(&t, a, b);
	ck_assert_int_eq(test_runner_block_on(ru, &t.base), 0);
}

#endif /* ROUSE_TESTUTIL_H */
