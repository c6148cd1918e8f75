// SPDX-License-Identifier: MIT
/* tests/check_event.c - user events: notify from anywhere, coalesce, wait. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rouse/executor.h>
#include <rouse/reactor.h>

#include "testutil.h"

static struct rouse_event *event_make(struct rouse_reactor *r)
{
	struct rouse_event *ev = NULL;

	ck_assert_int_eq(rouse_event_new(r, &ev), 0);
	ck_assert_ptr_nonnull(ev);
	return ev;
}

/* ---- notify from another thread ------------------------------------ */

struct notifier {
	struct rouse_event *ev;
	struct test_watched *w;
	int after;	/* notify once this many polls have returned */
};

static void *notifier_thread(void *arg)
{
	struct notifier *n = arg;

	test_spin_until_ge(&n->w->polls, n->after);
	ck_assert_int_eq(rouse_event_notify(n->ev), 0);
	return NULL;
}

START_TEST(test_notify_other_thread)
{
	struct test_runner ru;
	struct rouse_event *ev;
	int fds0, i;

	fds0 = test_count_fds_warm();
	test_runner_init(&ru, (enum test_mode)_i);
	ev = event_make(ru.r);
	for (i = 0; i < 200; i++) {
		struct rouse_event_wait wait;
		struct test_watched w;
		struct notifier n = { ev, &w, 1 };
		pthread_t t;

		ck_assert_int_eq(rouse_event_wait_init(&wait, ev), 0);
		test_watched_init(&w, &wait.op.base);
		wait.count = 0;
		wait.result = 1;
		/* Notified once the waiter is registered (and then parks). */
		t = test_thread_start(notifier_thread, &n);
		ck_assert_int_eq(test_runner_block_on(&ru, &w.base), 0);
		test_thread_join(t);
		ck_assert_int_eq(wait.result, 0);
		ck_assert_uint_eq(wait.count, 1);
		ck_assert_int_eq(rouse_future_drop(&wait.op.base), 0);
	}
	rouse_event_free(ev);
	test_runner_free(&ru);
	ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

/* ---- coalescing ---------------------------------------------------- */

START_TEST(test_coalesce)
{
	struct test_fixture fx;
	struct rouse_event *ev;
	struct rouse_event_wait wait;
	int i;

	test_fixture_init(&fx);
	ev = event_make(fx.r);
	for (i = 0; i < 1000; i++)
		ck_assert_int_eq(rouse_event_notify(ev), 0);
	/* One poll takes all thousand, without waiting. */
	ck_assert_int_eq(rouse_event_wait_init(&wait, ev), 0);
	ck_assert_int_eq(test_poll_with(&wait.op.base, &fx.w), ROUSE_READY);
	ck_assert_int_eq(wait.result, 0);
	ck_assert_uint_eq(wait.count, 1000);
	ck_assert_int_eq(rouse_future_drop(&wait.op.base), 0);
	ck_assert_int_eq(atomic_load(&fx.cw.live), 1);

	/* Nothing left: the next wait waits, and turns do not wake it. */
	ck_assert_int_ge(rouse_reactor_turn(fx.r, 0), 0);
	ck_assert_int_eq(rouse_event_wait_init(&wait, ev), 0);
	ck_assert_int_eq(test_poll_with(&wait.op.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(rouse_reactor_turn(fx.r, 0), 0);
	ck_assert_int_eq(counting_waker_total_wakes(&fx.cw), 0);
	/* Three notifies while it waits: one wake (at the turn), count 3. */
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(rouse_event_notify(ev), 0);
	ck_assert_int_eq(counting_waker_total_wakes(&fx.cw), 0);
	ck_assert_int_eq(rouse_reactor_turn(fx.r, 0), 1);
	ck_assert_int_eq(atomic_load(&fx.cw.wakes), 1);
	ck_assert_int_eq(test_poll_with(&wait.op.base, &fx.w), ROUSE_READY);
	ck_assert_uint_eq(wait.count, 3);
	ck_assert_int_eq(rouse_future_drop(&wait.op.base), 0);
	ck_assert_int_eq(rouse_reactor_turn(fx.r, 0), 0);
	ck_assert_int_eq(atomic_load(&fx.cw.wakes), 1);

	rouse_event_free(ev);
	test_fixture_free(&fx);
}
END_TEST

START_TEST(test_second_waiter_busy)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_event *ev = event_make(r);
	struct counting_waker c1, c2;
	struct rouse_waker w1 = counting_waker(&c1), w2 = counting_waker(&c2);
	struct rouse_event_wait a, b;

	ck_assert_int_eq(rouse_event_wait_init(&a, ev), 0);
	ck_assert_int_eq(rouse_event_wait_init(&b, ev), 0);
	ck_assert_int_eq(test_poll_with(&a.op.base, &w1), ROUSE_PENDING);
	/* One waiter per event: the second is told so. */
	b.result = 1;
	ck_assert_int_eq(test_poll_with(&b.op.base, &w2), ROUSE_READY);
	ck_assert_int_eq(b.result, -EBUSY);
	ck_assert_int_eq(rouse_future_drop(&b.op.base), 0);
	ck_assert_int_eq(atomic_load(&c2.live), 1);
	/* The first is undisturbed. */
	ck_assert_int_eq(rouse_event_notify(ev), 0);
	ck_assert_int_eq(rouse_reactor_turn(r, 0), 1);
	ck_assert_int_eq(atomic_load(&c1.wakes), 1);
	ck_assert_int_eq(test_poll_with(&a.op.base, &w1), ROUSE_READY);
	ck_assert_int_eq(a.result, 0);
	ck_assert_uint_eq(a.count, 1);
	ck_assert_int_eq(rouse_future_drop(&a.op.base), 0);
	/* Once it is gone another may wait. */
	ck_assert_int_eq(rouse_event_wait_init(&b, ev), 0);
	ck_assert_int_eq(test_poll_with(&b.op.base, &w2), ROUSE_PENDING);
	ck_assert_int_eq(rouse_future_drop(&b.op.base), 0);
	counting_waker_drop_last(&w1, &c1);
	counting_waker_drop_last(&w2, &c2);
	rouse_event_free(ev);
	rouse_reactor_free(r);
}
END_TEST

/* ---- from a signal handler ----------------------------------------- */

static struct rouse_event *sig_event;
static volatile sig_atomic_t sig_err = 1;

static void on_sigusr1(int sig)
{
	int saved = errno;

	(void)sig;
	sig_err = rouse_event_notify(sig_event);
	errno = saved;
}

struct sig_arg {
	pthread_t target;	/* the thread to signal, or self to raise */
	bool use_raise;
	uint64_t parks0;
};

static void *signal_thread(void *arg)
{
	struct sig_arg *a = arg;

	/* Once the waiter has really parked in rouse_block_on()... */
	test_wait_parks(a->parks0 + 1);
	if (a->use_raise)
		ck_assert_int_eq(raise(SIGUSR1), 0);
	else
		ck_assert_int_eq(pthread_kill(a->target, SIGUSR1), 0);
	return NULL;
}

START_TEST(test_notify_from_signal)
{
	struct sigaction sa, old;
	struct rouse_reactor *r;
	struct rouse_event_wait wait;
	struct sig_arg a;
	pthread_t t;
	int fds0, i;

	fds0 = test_count_fds_warm();
	r = test_reactor_make();
	ck_assert_int_eq(rouse_reactor_start(r), 0);
	sig_event = event_make(r);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr1;
	sigemptyset(&sa.sa_mask);
	/* _i: 0 raise() on another thread, 1 the blocked thread, no
	 * SA_RESTART (its read is interrupted), 2 with SA_RESTART. */
	sa.sa_flags = _i == 2 ? SA_RESTART : 0;
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
	for (i = 0; i < 20; i++) {
		a.target = pthread_self();
		a.use_raise = _i == 0;
		a.parks0 = test_executor_stats().parks;
		sig_err = 1;
		ck_assert_int_eq(rouse_event_wait_init(&wait, sig_event), 0);
		wait.result = 1;
		t = test_thread_start(signal_thread, &a);
		ck_assert_int_eq(rouse_block_on(&wait.op.base), 0);
		test_thread_join(t);
		ck_assert_int_eq(sig_err, 0);
		ck_assert_int_eq(wait.result, 0);
		ck_assert_uint_eq(wait.count, 1);
		ck_assert_int_eq(rouse_future_drop(&wait.op.base), 0);
	}
	ck_assert_int_eq(sigaction(SIGUSR1, &old, NULL), 0);
	rouse_event_free(sig_event);
	rouse_reactor_free(r);
	ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

/* ---- none lost ------------------------------------------------------ */

#define NOTIFIERS 4
#define NOTIFIES 250000

struct flood {
	struct rouse_event *ev;
	struct test_barrier *start;
};

static void *flood_thread(void *arg)
{
	struct flood *f = arg;
	int i;

	test_barrier_wait(f->start);
	for (i = 0; i < NOTIFIES; i++)
		test_require_int(rouse_event_notify(f->ev), ==, 0);
	return NULL;
}

START_TEST(test_million_none_lost)
{
	const uint64_t total = (uint64_t)NOTIFIERS * NOTIFIES;
	struct test_barrier start;
	struct flood f;
	struct test_runner ru;
	pthread_t t[NOTIFIERS];
	uint64_t sum = 0, waits = 0;
	int fds0, i;

	fds0 = test_count_fds_warm();
	test_runner_init(&ru, (enum test_mode)_i);
	f.ev = event_make(ru.r);
	f.start = &start;
	test_barrier_init(&start, NOTIFIERS + 1);
	for (i = 0; i < NOTIFIERS; i++)
		t[i] = test_thread_start(flood_thread, &f);
	test_barrier_wait(&start);
	/* Wait until every notification was taken: a lost one hangs. */
	while (sum < total) {
		struct rouse_event_wait wait;

		ck_assert_int_eq(rouse_event_wait_init(&wait, f.ev), 0);
		wait.count = 0;
		ck_assert_int_eq(test_runner_block_on(&ru, &wait.op.base), 0);
		ck_assert_int_eq(wait.result, 0);
		ck_assert_uint_ge(wait.count, 1);
		sum += wait.count;
		waits++;
		ck_assert_int_eq(rouse_future_drop(&wait.op.base), 0);
	}
	for (i = 0; i < NOTIFIERS; i++)
		test_thread_join(t[i]);
	/* None was counted twice either. */
	ck_assert_uint_eq(sum, total);
	ck_assert_uint_le(waits, total);
	{
		struct counting_waker cw;
		struct rouse_waker w = counting_waker(&cw);
		struct rouse_event_wait wait;

		ck_assert_int_eq(rouse_event_wait_init(&wait, f.ev), 0);
		ck_assert_int_eq(test_poll_with(&wait.op.base, &w),
				 ROUSE_PENDING);
		ck_assert_int_eq(rouse_future_drop(&wait.op.base), 0);
		ck_assert_int_eq(rouse_waker_drop(&w), 0);
		/*
		 * A threaded reactor may still be handing on the flood's last
		 * edge: it took the clone out of the event under its lock and
		 * wakes (and so drops) it after.  The clone must go; a leak
		 * hangs here.
		 */
		while (atomic_load(&cw.live) != 0)
			sched_yield();
	}
	test_barrier_destroy(&start);
	rouse_event_free(f.ev);
	test_runner_free(&ru);
	ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

/* ---- freed with a waiter ------------------------------------------- */

START_TEST(test_free_pending)
{
	struct test_fixture fx;
	struct rouse_event *ev;
	struct rouse_event_wait wait;
	int fds0;

	test_fixture_init(&fx);
	ev = event_make(fx.r);
	fds0 = test_count_fds();
	ck_assert_int_eq(rouse_event_wait_init(&wait, ev), 0);
	ck_assert_int_eq(test_poll_with(&wait.op.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&fx.cw.live), 2);
	rouse_event_free(ev);
	/* Its eventfd is closed, its waiter woken once. */
	ck_assert_int_eq(test_count_fds(), fds0 - 1);
	ck_assert_int_eq(atomic_load(&fx.cw.wakes), 1);
	ck_assert_int_eq(atomic_load(&fx.cw.drops), 0);
	ck_assert_int_eq(atomic_load(&fx.cw.live), 1);
	wait.result = 1;
	ck_assert_int_eq(test_poll_with(&wait.op.base, &fx.w), ROUSE_READY);
	ck_assert_int_eq(wait.result, -ECANCELED);
	ck_assert_int_eq(atomic_load(&fx.cw.live), 1);
	ck_assert_int_eq(rouse_future_drop(&wait.op.base), 0);
	counting_waker_drop_last(&fx.w, &fx.cw);
	ck_assert_int_eq(counting_waker_total_wakes(&fx.cw), 1);
	/* The reactor goes on. */
	ck_assert_int_eq(rouse_reactor_turn(fx.r, 0), 0);
	rouse_reactor_free(fx.r);
}
END_TEST

struct blocked {
	struct rouse_event_wait wait;
	struct test_watched w;
	int err;
};

static void *blocked_thread(void *arg)
{
	struct blocked *b = arg;

	b->err = rouse_block_on(&b->w.base);
	return NULL;
}

START_TEST(test_free_wakes_blocked_thread)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_event *ev = event_make(r);
	struct blocked b = { .err = 1 };
	pthread_t t;

	ck_assert_int_eq(rouse_reactor_start(r), 0);
	ck_assert_int_eq(rouse_event_wait_init(&b.wait, ev), 0);
	test_watched_init(&b.w, &b.wait.op.base);
	b.wait.result = 1;
	t = test_thread_start(blocked_thread, &b);
	/* Once its poll has returned (it parks next), free the event. */
	test_spin_until_ge(&b.w.polls, 1);
	rouse_event_free(ev);
	test_thread_join(t);
	ck_assert_int_eq(b.err, 0);
	ck_assert_int_eq(b.wait.result, -ECANCELED);
	ck_assert_int_eq(rouse_future_drop(&b.wait.op.base), 0);
	rouse_reactor_free(r);
}
END_TEST

/* ---- descriptors ---------------------------------------------------- */

START_TEST(test_fds)
{
	struct test_fdset before, during;
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_event *ev[100];
	int fds0, fd = -1, i;
	char link[128];

	fds0 = test_count_fds();
	test_fdset_take(&before);
	ev[0] = event_make(r);
	test_fdset_take(&during);
	/* One eventfd each, close-on-exec and nonblocking. */
	ck_assert_int_eq(test_fdset_new(&before, &during, &fd, 1), 1);
	test_fd_link(fd, link, sizeof(link));
	ck_assert_str_eq(link, "anon_inode:[eventfd]");
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
	for (i = 1; i < 100; i++)
		ev[i] = event_make(r);
	ck_assert_int_eq(test_count_fds(), fds0 + 100);
	for (i = 0; i < 100; i += 2)
		rouse_event_free(ev[i]);
	for (i = 1; i < 100; i += 2) {
		ck_assert_int_eq(rouse_event_notify(ev[i]), 0);
		rouse_event_free(ev[i]);
	}
	rouse_event_free(NULL);
	ck_assert_int_eq(test_count_fds(), fds0);
	/* Notified but never waited for, then freed: nothing is left. */
	ck_assert_int_eq(rouse_reactor_turn(r, 0), 0);
	rouse_reactor_free(r);
}
END_TEST

START_TEST(test_freed_with_reactor)
{
	struct rouse_reactor *r = test_reactor_make();
	int fds0 = test_count_fds();
	int i;

	/* Events left when the reactor goes are freed with it. */
	for (i = 0; i < 10; i++) {
		struct rouse_event *ev = event_make(r);

		if (i % 2)
			ck_assert_int_eq(rouse_event_notify(ev), 0);
	}
	ck_assert_int_eq(test_count_fds(), fds0 + 10);
	rouse_reactor_free(r);
	ck_assert_int_eq(test_count_fds(), fds0 - 3);
}
END_TEST

START_TEST(test_einval)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_event *ev = (struct rouse_event *)(void *)0x5e47;
	struct rouse_event_wait wait;
	int fds0 = test_count_fds();

	ck_assert_int_eq(rouse_event_new(NULL, &ev), -EINVAL);
	ck_assert_ptr_eq(ev, (struct rouse_event *)(void *)0x5e47);
	ck_assert_int_eq(rouse_event_new(r, NULL), -EINVAL);
	ck_assert_int_eq(rouse_event_new(NULL, NULL), -EINVAL);
	ck_assert_int_eq(rouse_event_notify(NULL), -EINVAL);
	ck_assert_int_eq(rouse_event_wait_init(&wait, NULL), -EINVAL);
	ev = event_make(r);
	ck_assert_int_eq(rouse_event_wait_init(NULL, ev), -EINVAL);
	ck_assert_int_eq(rouse_event_wait_init(NULL, NULL), -EINVAL);
	rouse_event_free(NULL);
	rouse_event_free(ev);
	ck_assert_int_eq(test_count_fds(), fds0);
	rouse_reactor_free(r);
}
END_TEST

static Suite *event_suite(void)
{
	Suite *s = suite_create("event");
	TCase *tc;

	tc = tcase_create("notify_thread");
	tcase_add_loop_test(tc, test_notify_other_thread, 0, TEST_MODES);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("coalesce");
	tcase_add_test(tc, test_coalesce);
	tcase_add_test(tc, test_second_waiter_busy);
	suite_add_tcase(s, tc);

	tc = tcase_create("signal");
	tcase_add_loop_test(tc, test_notify_from_signal, 0, 3);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("none_lost");
	tcase_add_loop_test(tc, test_million_none_lost, 0, TEST_MODES);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = tcase_create("free_pending");
	tcase_add_test(tc, test_free_pending);
	tcase_add_test(tc, test_free_wakes_blocked_thread);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("fds");
	tcase_add_test(tc, test_fds);
	tcase_add_test(tc, test_freed_with_reactor);
	suite_add_tcase(s, tc);

	tc = tcase_create("einval");
	tcase_add_test(tc, test_einval);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return test_run_suite(event_suite());
}
