// SPDX-License-Identifier: MIT
/* tests/check_reactor.c - the reactor object: its fds, creation and freeing. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

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
		1, 2, 0x80000000u, ~0u,
	};
	struct test_fdset before, after;
	struct rouse_reactor *r;
	size_t i;

	test_fdset_take(&before);
	ck_assert_int_eq(rouse_reactor_new(NULL, 0), -EINVAL);
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
	for (i = 0; i < SEQUENTIAL; i++) {
		struct rouse_reactor *r = NULL;

		ck_assert_int_eq(rouse_reactor_new(&r, 0), 0);
		rouse_reactor_free(r);
	}
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
	for (i = 0; i < PER_THREAD; i++) {
		struct rouse_reactor *r = NULL;

		ck_assert_int_eq(rouse_reactor_new(&r, 0), 0);
		rouse_reactor_free(r);
	}
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

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(reactor_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
