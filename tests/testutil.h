/* SPDX-License-Identifier: MIT */
/*
 * tests/testutil.h - helpers shared by the Check suites: counting open fds
 * and threads, a counting waker, a start barrier, spinning on atomics.
 *
 * Everything here is static inline, so a suite that uses none of it pays
 * nothing and gets no unused-function warning.
 */
#ifndef ROUSE_TESTUTIL_H
#define ROUSE_TESTUTIL_H

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <rouse/future.h>

/* Timeout of the stress cases: generous, since CI runs them under TSan. */
#define TEST_STRESS_TIMEOUT 120

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

static inline void test_barrier_init(struct test_barrier *b, unsigned int n)
{
	ck_assert_int_eq(pthread_barrier_init(&b->b, NULL, n), 0);
}

static inline void test_barrier_wait(struct test_barrier *b)
{
	int r = pthread_barrier_wait(&b->b);

	ck_assert(r == 0 || r == PTHREAD_BARRIER_SERIAL_THREAD);
}

static inline void test_barrier_destroy(struct test_barrier *b)
{
	ck_assert_int_eq(pthread_barrier_destroy(&b->b), 0);
}

/* ---- threads ------------------------------------------------------- */

static inline pthread_t test_thread_start(void *(*fn)(void *), void *arg)
{
	pthread_t t;

	ck_assert_int_eq(pthread_create(&t, NULL, fn, arg), 0);
	return t;
}

static inline void test_thread_join(pthread_t t)
{
	ck_assert_int_eq(pthread_join(t, NULL), 0);
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

static inline void counting_waker_wake_fn(void *data)
{
	struct counting_waker *c = (struct counting_waker *)data;

	atomic_store(&c->last_tid, test_gettid());
	atomic_fetch_add(&c->wakes, 1);
	atomic_fetch_sub(&c->live, 1);
}

static inline void counting_waker_wake_by_ref_fn(void *data)
{
	struct counting_waker *c = (struct counting_waker *)data;

	atomic_store(&c->last_tid, test_gettid());
	atomic_fetch_add(&c->wake_by_refs, 1);
}

static inline void counting_waker_drop_fn(void *data)
{
	struct counting_waker *c = (struct counting_waker *)data;

	atomic_fetch_add(&c->drops, 1);
	atomic_fetch_sub(&c->live, 1);
}

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

#endif /* ROUSE_TESTUTIL_H */
