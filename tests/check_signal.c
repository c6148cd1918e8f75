// SPDX-License-Identifier: MIT
/*
 * tests/check_signal.c - signal listeners: real deliveries from every kind
 * of sender, coalescing, several listeners and reactors, the disposition
 * put back, cancellation, fork, storms.
 *
 * Every signal here is a real one (raise, kill, pthread_kill, sigqueue).
 * Where deliveries may come after a listener is gone, the test first
 * gives the signal a harmless disposition, which is then the one put back.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
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
#include <rouse/executor.h>
#include <rouse/reactor.h>
#include <rouse/signal.h>

#include "testutil.h"

/*
 * TSan does not run a handler when an asynchronous signal comes: it
 * queues it, one per signal number, and runs it at the thread's next
 * interceptor, or at once only inside the calls it knows to block
 * (epoll_wait, poll).  (A thread parked in read(2) on its eventfd would
 * never run it; the parkers block in poll under TSan for that reason, and
 * the senders and storm tests below check it.)  A second delivery of a
 * signal that TSan holds is dropped, so queued realtime signals sent from
 * another thread are not counted exactly; that case is skipped.  Signals
 * a thread raises to itself are handled at once and counted exactly.
 */
#ifdef __SANITIZE_THREAD__
#define UNDER_TSAN 1
#else
#define UNDER_TSAN 0
#endif

/* ---- helpers ---------------------------------------------------------- */

static struct rouse_signal *listener_make(struct rouse_reactor *r, int signo)
{
	struct rouse_signal *s = NULL;

	ck_assert_int_eq(rouse_signal_new(r, signo, &s), 0);
	ck_assert_ptr_nonnull(s);
	return s;
}

/* Set signo's disposition to handler (or SIG_IGN, SIG_DFL), flags 0. */
static void disposition_set(int signo, void (*handler)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(signo, &sa, NULL), 0);
}

static struct sigaction disposition_get(int signo)
{
	struct sigaction sa;

	ck_assert_int_eq(sigaction(signo, NULL, &sa), 0);
	return sa;
}

/* Whether a and b are the same disposition, mask included. */
static bool disposition_same(const struct sigaction *a,
			     const struct sigaction *b)
{
	int i;

	if (a->sa_flags != b->sa_flags)
		return false;
	if ((a->sa_flags & SA_SIGINFO) ? a->sa_sigaction != b->sa_sigaction
				       : a->sa_handler != b->sa_handler)
		return false;
	/* Bit by bit: glibc leaves the tail of sigset_t as it found it. */
	for (i = 1; i < NSIG; i++) {
		if (sigismember(&a->sa_mask, i) != sigismember(&b->sa_mask, i))
			return false;
	}
	return true;
}

/* Count of deliveries to on_stray(), a handler that only counts. */
static atomic_int strays;

static void on_stray(int signo)
{
	(void)signo;
	atomic_fetch_add(&strays, 1);
}

/*
 * Wait until thread tid sleeps in the kernel: after its poll returned,
 * that is its park (epoll_wait or read).  It only chooses the moment of
 * the signal -- any moment gives the same answer.
 */
static void wait_sleeping(pid_t tid)
{
	char path[64], buf[512];

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	for (;;) {
		FILE *f = fopen(path, "re");
		size_t n;
		char *p;

		ck_assert_ptr_nonnull(f);
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		p = strrchr(buf, ')');
		if (p != NULL && p[1] == ' ' && p[2] == 'S')
			return;
		sched_yield();
	}
}

/* Poll w once with a waker that does nothing. */
static int poll_noop(struct rouse_signal_wait *w)
{
	return test_poll_noop(&w->base);
}

/*
 * A bystander: a thread that has not blocked any signal and sits in
 * poll(2) on a pipe until told to stop, so that a signal sent to it runs
 * the handler there.
 */
struct bystander {
	pthread_t t;
	int pipe[2];
	atomic_int interrupts;
	atomic_int tid;
};

static void *bystander_thread(void *arg)
{
	struct bystander *b = arg;
	struct pollfd pfd = { .fd = b->pipe[0], .events = POLLIN };

	atomic_store(&b->tid, (int)test_gettid());
	for (;;) {
		int n = poll(&pfd, 1, -1);

		if (n > 0)
			return NULL;
		ck_assert_int_eq(errno, EINTR);
		atomic_fetch_add(&b->interrupts, 1);
	}
}

static void bystander_start(struct bystander *b)
{
	ck_assert_int_eq(pipe2(b->pipe, O_CLOEXEC), 0);
	atomic_init(&b->interrupts, 0);
	atomic_init(&b->tid, 0);
	b->t = test_thread_start(bystander_thread, b);
	/*
	 * In its poll before the first signal: a thread still starting (slow
	 * under a sanitizer and load) would run every handler outside it.
	 */
	while (atomic_load(&b->tid) == 0)
		sched_yield();
	wait_sleeping((pid_t)atomic_load(&b->tid));
}

static void bystander_stop(struct bystander *b)
{
	ck_assert_int_eq(write(b->pipe[1], "x", 1), 1);
	test_thread_join(b->t);
	close(b->pipe[0]);
	close(b->pipe[1]);
}

/* ---- bad input -------------------------------------------------------- */

static void probe_handler(int signo)
{
	(void)signo;
}

START_TEST(test_einval)
{
	static const int bad[] = { 0, -1, SIGKILL, SIGSTOP, 32, 33, NSIG,
				   NSIG + 1, 1000 };
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_signal *s = (struct rouse_signal *)&s, *ok;
	struct rouse_signal_wait w;
	struct sigaction before = disposition_get(SIGUSR1), probe, saved;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(rouse_signal_new(r, bad[i], &s), -EINVAL);
	ck_assert_int_eq(rouse_signal_new(NULL, SIGUSR1, &s), -EINVAL);
	ck_assert_int_eq(rouse_signal_new(r, SIGUSR1, NULL), -EINVAL);
	/* Nothing stored, nothing installed. */
	ck_assert_ptr_eq(s, (struct rouse_signal *)&s);
	{
		struct sigaction now = disposition_get(SIGUSR1);

		ck_assert(disposition_same(&before, &now));
	}
	ck_assert_int_eq(rouse_signal_free(NULL), -EINVAL);
	ok = listener_make(r, SIGUSR1);
	ck_assert_int_eq(rouse_signal_wait_init(NULL, ok), -EINVAL);
	ck_assert_int_eq(rouse_signal_wait_init(&w, NULL), -EINVAL);
	ck_assert_int_eq(rouse_signal_free(ok), 0);
	/* The extremes that are allowed. */
	ok = listener_make(r, 1);
	ck_assert_int_eq(rouse_signal_free(ok), 0);
	ok = listener_make(r, SIGRTMIN);
	ck_assert_int_eq(rouse_signal_free(ok), 0);
	/*
	 * valgrind keeps SIGRTMAX for itself and refuses a handler for it;
	 * rouse must then refuse it too, and install nothing.
	 */
	memset(&probe, 0, sizeof(probe));
	probe.sa_handler = probe_handler;
	if (sigaction(SIGRTMAX, &probe, &saved) < 0) {
		ck_assert_int_eq(errno, EINVAL);
		ck_assert_int_eq(rouse_signal_new(r, SIGRTMAX, &s), -EINVAL);
	} else {
		ck_assert_int_eq(sigaction(SIGRTMAX, &saved, NULL), 0);
		ok = listener_make(r, SIGRTMAX);
		ck_assert_int_eq(rouse_signal_free(ok), 0);
	}
	rouse_reactor_free(r);
}
END_TEST

/* ---- coalescing, by hand ---------------------------------------------- */

START_TEST(test_coalesce)
{
	struct test_fixture fx;
	struct rouse_signal *s;
	struct rouse_signal_wait w;
	int i;

	test_fixture_init(&fx);
	s = listener_make(fx.r, SIGUSR1);
	/*
	 * raise() runs the handler before it returns, so each of the three
	 * is one delivery; one wait takes them all, without waiting.
	 */
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(raise(SIGUSR1), 0);
	ck_assert_int_eq(rouse_signal_wait_init(&w, s), 0);
	ck_assert_int_eq(test_poll_with(&w.base, &fx.w), ROUSE_READY);
	ck_assert_int_eq(w.result, 0);
	ck_assert_uint_eq(w.count, 3);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);

	/* Taken: the next wait waits, and a turn does not wake it. */
	ck_assert_int_ge(rouse_reactor_turn(fx.r, 0), 0);
	ck_assert_int_eq(rouse_signal_wait_init(&w, s), 0);
	ck_assert_int_eq(test_poll_with(&w.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(rouse_reactor_turn(fx.r, 0), 0);
	ck_assert_int_eq(counting_waker_total_wakes(&fx.cw), 0);
	/* Two while it waits: one wake, at the turn, and count 2. */
	ck_assert_int_eq(raise(SIGUSR1), 0);
	ck_assert_int_eq(raise(SIGUSR1), 0);
	ck_assert_int_eq(counting_waker_total_wakes(&fx.cw), 0);
	ck_assert_int_eq(rouse_reactor_turn(fx.r, 0), 1);
	ck_assert_int_eq(atomic_load(&fx.cw.wakes), 1);
	ck_assert_int_eq(test_poll_with(&w.base, &fx.w), ROUSE_READY);
	ck_assert_uint_eq(w.count, 2);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);

	ck_assert_int_eq(rouse_signal_free(s), 0);
	test_fixture_free(&fx);
}
END_TEST

/* ---- senders ---------------------------------------------------------- */

enum sender {
	SEND_RAISE,		/* a helper thread raises it to itself */
	SEND_KILL,		/* kill(getpid()): goes to the main thread */
	SEND_MAIN,		/* pthread_kill() of the waiting thread */
	SEND_BYSTANDER,		/* pthread_kill() of a thread in poll(2) */
	SENDERS,
};

struct send_arg {
	enum sender how;
	int signo;
	struct test_watched *w;	/* the wait, watched */
	int after;		/* send once this many polls returned */
	pid_t main_tid;
	pthread_t main;
	pthread_t bystander;
};

static int send_one(const struct send_arg *a)
{
	switch (a->how) {
	case SEND_RAISE:
		return raise(a->signo);
	case SEND_KILL:
		return kill(getpid(), a->signo);
	case SEND_MAIN:
		return pthread_kill(a->main, a->signo);
	default:
		return pthread_kill(a->bystander, a->signo);
	}
}

/* Once the waiter's poll returned and it has parked, send one signal. */
static void *send_thread(void *arg)
{
	struct send_arg *a = arg;

	test_spin_until_ge(&a->w->polls, a->after);
	wait_sleeping(a->main_tid);
	ck_assert_int_eq(send_one(a), 0);
	return NULL;
}

/*
 * _i: the reactor's mode times the sender.  Each round the waiter
 * polls, parks, and is woken by exactly one delivery.
 */
START_TEST(test_senders)
{
	enum test_mode mode = (enum test_mode)(_i / SENDERS);
	enum sender how = (enum sender)(_i % SENDERS);
	struct test_runner ru;
	struct bystander by;
	struct rouse_signal *s;
	int fds0, round;

	fds0 = test_count_fds_warm();
	bystander_start(&by);
	test_runner_init(&ru, mode);
	s = listener_make(ru.r, SIGUSR1);
	for (round = 0; round < 20; round++) {
		struct rouse_signal_wait w;
		struct test_watched tw;
		struct send_arg a = {
			.how = how, .signo = SIGUSR1, .w = &tw, .after = 1,
			.main_tid = test_gettid(), .main = pthread_self(),
			.bystander = by.t,
		};
		pthread_t t;

		ck_assert_int_eq(rouse_signal_wait_init(&w, s), 0);
		test_watched_init(&tw, &w.base);
		w.result = 1;
		t = test_thread_start(send_thread, &a);
		ck_assert_int_eq(test_runner_block_on(&ru, &tw.base), 0);
		test_thread_join(t);
		ck_assert_int_eq(w.result, 0);
		ck_assert_uint_eq(w.count, 1);
		ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	}
	if (how == SEND_BYSTANDER)
		ck_assert_int_ge(atomic_load(&by.interrupts), 1);
	ck_assert_int_eq(rouse_signal_free(s), 0);
	test_runner_free(&ru);
	bystander_stop(&by);
	ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

/* ---- several listeners, several reactors ------------------------------ */

/*
 * Two listeners on a driven reactor, one on a threaded reactor, and a
 * listener of another signal: every delivery reaches all three, through
 * a wake of each waiter, and the other signal's listener sees none.
 */
START_TEST(test_all_listeners)
{
	struct rouse_reactor *r1 = test_reactor_make();
	struct rouse_reactor *r2 = test_reactor_make();
	struct rouse_signal *s[3], *other;
	struct counting_waker cw[3], cwo;
	struct rouse_waker wk[3], wko;
	int k, i;

	ck_assert_int_eq(rouse_reactor_start(r2), 0);
	s[0] = listener_make(r1, SIGUSR1);
	s[1] = listener_make(r1, SIGUSR1);
	s[2] = listener_make(r2, SIGUSR1);
	other = listener_make(r1, SIGUSR2);
	for (k = 1; k <= 3; k++) {
		struct rouse_signal_wait w[3], wo;

		for (i = 0; i < 3; i++) {
			wk[i] = counting_waker(&cw[i]);
			ck_assert_int_eq(rouse_signal_wait_init(&w[i], s[i]),
					 0);
			ck_assert_int_eq(test_poll_with(&w[i].base, &wk[i]),
					 ROUSE_PENDING);
		}
		wko = counting_waker(&cwo);
		ck_assert_int_eq(rouse_signal_wait_init(&wo, other), 0);
		ck_assert_int_eq(test_poll_with(&wo.base, &wko), ROUSE_PENDING);

		for (i = 0; i < k; i++)
			ck_assert_int_eq(raise(SIGUSR1), 0);
		/* r2's thread wakes its waiter; r1 wakes its two in turns. */
		test_spin_until_ge(&cw[2].wakes, 1);
		while (atomic_load(&cw[0].wakes) + atomic_load(&cw[1].wakes) <
		       2)
			ck_assert_int_ge(rouse_reactor_turn(r1, -1), 0);
		for (i = 0; i < 3; i++) {
			ck_assert_int_eq(atomic_load(&cw[i].wakes), 1);
			ck_assert_int_eq(test_poll_with(&w[i].base, &wk[i]),
					 ROUSE_READY);
			ck_assert_int_eq(w[i].result, 0);
			ck_assert_uint_eq(w[i].count, (uint64_t)k);
			ck_assert_int_eq(rouse_future_drop(&w[i].base), 0);
			counting_waker_drop_last(&wk[i], &cw[i]);
		}
		ck_assert_int_eq(rouse_reactor_turn(r1, 0), 0);
		ck_assert_int_eq(counting_waker_total_wakes(&cwo), 0);
		ck_assert_int_eq(test_poll_with(&wo.base, &wko), ROUSE_PENDING);
		ck_assert_int_eq(rouse_future_drop(&wo.base), 0);
		counting_waker_drop_last(&wko, &cwo);
	}
	/* A listener freed sees no more; the others go on. */
	ck_assert_int_eq(rouse_signal_free(s[1]), 0);
	ck_assert_int_eq(raise(SIGUSR1), 0);
	for (i = 0; i < 3; i += 2) {
		struct rouse_signal_wait w;

		ck_assert_int_eq(rouse_signal_wait_init(&w, s[i]), 0);
		ck_assert_int_eq(poll_noop(&w), ROUSE_READY);
		ck_assert_uint_eq(w.count, 1);
		ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	}
	ck_assert_int_eq(rouse_signal_free(s[0]), 0);
	ck_assert_int_eq(rouse_signal_free(s[2]), 0);
	ck_assert_int_eq(rouse_signal_free(other), 0);
	ck_assert_int_eq(rouse_reactor_stop(r2), 0);
	rouse_reactor_free(r2);
	rouse_reactor_free(r1);
}
END_TEST

/* ---- the old disposition ---------------------------------------------- */

static atomic_int custom_calls;

static void on_custom(int signo, siginfo_t *si, void *uc)
{
	(void)signo;
	(void)si;
	(void)uc;
	atomic_fetch_add(&custom_calls, 1);
}

/*
 * _i: the disposition found -- a handler of the program's (SA_SIGINFO,
 * a mask), SIG_IGN, SIG_DFL.  Listeners come and go on two reactors;
 * the disposition is the library's while any is left, and exactly the
 * old one after the last.
 */
START_TEST(test_restore)
{
	int signo = _i == 2 ? SIGWINCH : SIGUSR1;	/* SIGWINCH: no harm */
	struct rouse_reactor *r1 = test_reactor_make();
	struct rouse_reactor *r2 = test_reactor_make();
	struct sigaction old, now;
	struct rouse_signal *a, *b, *c;
	struct rouse_signal_wait w;

	memset(&old, 0, sizeof(old));
	if (_i == 0) {
		old.sa_sigaction = on_custom;
		old.sa_flags = SA_SIGINFO | SA_RESTART;
		sigemptyset(&old.sa_mask);
		sigaddset(&old.sa_mask, SIGUSR2);
		sigaddset(&old.sa_mask, SIGRTMIN + 3);
	} else {
		old.sa_handler = _i == 1 ? SIG_IGN : SIG_DFL;
		sigemptyset(&old.sa_mask);
	}
	ck_assert_int_eq(sigaction(signo, &old, NULL), 0);
	old = disposition_get(signo);	/* as the kernel keeps it */
	atomic_store(&custom_calls, 0);

	a = listener_make(r1, signo);
	now = disposition_get(signo);
	ck_assert(!disposition_same(&old, &now));
	b = listener_make(r2, signo);
	c = listener_make(r1, signo);
	ck_assert_int_eq(rouse_signal_free(a), 0);
	ck_assert_int_eq(rouse_signal_free(c), 0);
	/* b is left: the handler stays, and the old one is not called. */
	now = disposition_get(signo);
	ck_assert(!disposition_same(&old, &now));
	ck_assert_int_eq(raise(signo), 0);
	ck_assert_int_eq(atomic_load(&custom_calls), 0);
	ck_assert_int_eq(rouse_signal_wait_init(&w, b), 0);
	ck_assert_int_eq(poll_noop(&w), ROUSE_READY);
	ck_assert_uint_eq(w.count, 1);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);

	ck_assert_int_eq(rouse_signal_free(b), 0);
	now = disposition_get(signo);
	ck_assert(disposition_same(&old, &now));
	if (_i != 2) {
		/* And it acts: called, or ignored. */
		ck_assert_int_eq(raise(signo), 0);
		ck_assert_int_eq(atomic_load(&custom_calls), _i == 0 ? 1 : 0);
	}

	/* A second generation saves and restores the same way. */
	a = listener_make(r2, signo);
	ck_assert_int_eq(rouse_signal_free(a), 0);
	now = disposition_get(signo);
	ck_assert(disposition_same(&old, &now));
	rouse_reactor_free(r1);
	rouse_reactor_free(r2);
}
END_TEST

/* A handler the program installs over the library's stays after it. */
START_TEST(test_replaced_kept)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_signal *s = listener_make(r, SIGUSR2);
	struct sigaction mine, now;

	memset(&mine, 0, sizeof(mine));
	mine.sa_sigaction = on_custom;
	mine.sa_flags = SA_SIGINFO;
	sigemptyset(&mine.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR2, &mine, NULL), 0);
	mine = disposition_get(SIGUSR2);
	ck_assert_int_eq(rouse_signal_free(s), 0);
	now = disposition_get(SIGUSR2);
	ck_assert(disposition_same(&mine, &now));
	atomic_store(&custom_calls, 0);
	ck_assert_int_eq(raise(SIGUSR2), 0);
	ck_assert_int_eq(atomic_load(&custom_calls), 1);
	rouse_reactor_free(r);
}
END_TEST

/* ---- cancellation ----------------------------------------------------- */

START_TEST(test_drop_keeps_count)
{
	struct test_fixture fx;
	struct rouse_signal *s;
	struct rouse_signal_wait w, busy;

	test_fixture_init(&fx);
	s = listener_make(fx.r, SIGUSR1);

	/* Dropped while pending: deliveries after it stay counted. */
	ck_assert_int_eq(rouse_signal_wait_init(&w, s), 0);
	ck_assert_int_eq(test_poll_with(&w.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&fx.cw.live), 2);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	ck_assert_int_eq(atomic_load(&fx.cw.live), 1);
	ck_assert_int_eq(raise(SIGUSR1), 0);
	ck_assert_int_eq(raise(SIGUSR1), 0);
	ck_assert_int_ge(rouse_reactor_turn(fx.r, 0), 0);
	ck_assert_int_eq(counting_waker_total_wakes(&fx.cw), 0);

	/* Woken, then dropped instead of polled: still counted. */
	ck_assert_int_eq(rouse_signal_wait_init(&w, s), 0);
	ck_assert_int_eq(test_poll_with(&w.base, &fx.w), ROUSE_READY);
	ck_assert_uint_eq(w.count, 2);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	ck_assert_int_eq(rouse_signal_wait_init(&w, s), 0);
	ck_assert_int_eq(test_poll_with(&w.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(raise(SIGUSR1), 0);
	ck_assert_int_eq(rouse_reactor_turn(fx.r, 0), 1);
	ck_assert_int_eq(atomic_load(&fx.cw.wakes), 1);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	ck_assert_int_eq(raise(SIGUSR1), 0);
	ck_assert_int_eq(rouse_signal_wait_init(&w, s), 0);
	ck_assert_int_eq(test_poll_with(&w.base, &fx.w), ROUSE_READY);
	ck_assert_uint_eq(w.count, 2);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);

	/* One wait at a time per listener. */
	ck_assert_int_eq(rouse_signal_wait_init(&w, s), 0);
	ck_assert_int_eq(test_poll_with(&w.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(rouse_signal_wait_init(&busy, s), 0);
	ck_assert_int_eq(poll_noop(&busy), ROUSE_READY);
	ck_assert_int_eq(busy.result, -EBUSY);
	ck_assert_int_eq(rouse_future_drop(&busy.base), 0);

	/* Freed under a pending wait: woken, and -ECANCELED. */
	ck_assert_int_eq(rouse_signal_free(s), 0);
	ck_assert_int_eq(atomic_load(&fx.cw.wakes), 2);
	w.result = 1;
	ck_assert_int_eq(test_poll_with(&w.base, &fx.w), ROUSE_READY);
	ck_assert_int_eq(w.result, -ECANCELED);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	test_fixture_free(&fx);
}
END_TEST

/* ---- fork ------------------------------------------------------------- */

#define CHILD_CHECK(cond)                                                  \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "%s:%d: child: %s\n", __FILE__,    \
				__LINE__, #cond);                          \
			_exit(1);                                          \
		}                                                          \
	} while (0)

/*
 * In the child, the parent's listener and reactor refuse everything, and
 * a delivery does not write to the parent's eventfd; once the child has
 * made the reactor its own, the listener counts in the child.
 */
static void child_of_listener(struct rouse_reactor *r, struct rouse_signal *s,
			      struct rouse_signal_wait *parents)
{
	struct rouse_signal *s2 = NULL;
	struct rouse_signal_wait w;
	struct rouse_parker parker;
	struct sigaction now;

	alarm(60);
	CHILD_CHECK(rouse_signal_new(r, SIGUSR2, &s2) == -ECHILD);
	CHILD_CHECK(s2 == NULL);
	CHILD_CHECK(rouse_signal_free(s) == -ECHILD);
	CHILD_CHECK(rouse_signal_wait_init(&w, s) == 0);
	w.result = 1;
	CHILD_CHECK(test_poll_noop(&w.base) == ROUSE_READY);
	CHILD_CHECK(w.result == -ECHILD);
	rouse_future_drop(&w.base);
	CHILD_CHECK(raise(SIGUSR1) == 0);

	CHILD_CHECK(rouse_reactor_fork(r) == 0);
	/* The parent's pending wait holds the listener's one waiter slot. */
	rouse_future_drop(&parents->base);
	CHILD_CHECK(rouse_reactor_parker(r, &parker) == 0);
	CHILD_CHECK(raise(SIGUSR1) == 0);
	CHILD_CHECK(rouse_signal_wait_init(&w, s) == 0);
	CHILD_CHECK(rouse_block_on_with(&w.base, &parker) == 0);
	CHILD_CHECK(w.result == 0);
	/* Only this one: the one before rouse_reactor_fork() was refused. */
	CHILD_CHECK(w.count == 1);
	rouse_future_drop(&w.base);
	CHILD_CHECK(rouse_signal_free(s) == 0);
	CHILD_CHECK(sigaction(SIGUSR1, NULL, &now) == 0);
	CHILD_CHECK(now.sa_handler == SIG_IGN);
	rouse_reactor_free(r);
	_exit(0);
}

START_TEST(test_fork)
{
	struct test_fixture fx;
	struct rouse_signal *s;
	struct rouse_signal_wait w;
	int status;
	pid_t pid;

	test_fixture_init(&fx);
	disposition_set(SIGUSR1, SIG_IGN);
	s = listener_make(fx.r, SIGUSR1);
	ck_assert_int_eq(rouse_signal_wait_init(&w, s), 0);
	ck_assert_int_eq(test_poll_with(&w.base, &fx.w), ROUSE_PENDING);
	pid = fork();
	if (pid == 0)
		child_of_listener(fx.r, s, &w);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	/* The child's deliveries did not reach the parent. */
	ck_assert_int_eq(rouse_reactor_turn(fx.r, 0), 0);
	ck_assert_int_eq(counting_waker_total_wakes(&fx.cw), 0);
	ck_assert_int_eq(test_poll_with(&w.base, &fx.w), ROUSE_PENDING);
	/* Its own still do. */
	ck_assert_int_eq(raise(SIGUSR1), 0);
	ck_assert_int_eq(rouse_reactor_turn(fx.r, 0), 1);
	ck_assert_int_eq(test_poll_with(&w.base, &fx.w), ROUSE_READY);
	ck_assert_uint_eq(w.count, 1);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	ck_assert_int_eq(rouse_signal_free(s), 0);
	test_fixture_free(&fx);
}
END_TEST

/* ---- allocation failure ----------------------------------------------- */

static atomic_long alloc_calls, alloc_fail_at;

static void *fail_malloc(void *data, size_t size)
{
	(void)data;
	if (atomic_fetch_add(&alloc_calls, 1) == atomic_load(&alloc_fail_at))
		return NULL;
	return malloc(size);
}

static void *fail_realloc(void *data, void *p, size_t size)
{
	(void)data;
	if (atomic_fetch_add(&alloc_calls, 1) == atomic_load(&alloc_fail_at))
		return NULL;
	return realloc(p, size);
}

static void fail_free(void *data, void *p)
{
	(void)data;
	free(p);
}

/*
 * Fail each allocation of rouse_signal_new() in turn: -ENOMEM, nothing
 * stored, no descriptor left open, the disposition untouched.
 */
START_TEST(test_enomem)
{
	static const struct rouse_allocator a = {
		fail_malloc, fail_realloc, fail_free, NULL,
	};
	struct rouse_reactor *r = test_reactor_make();
	struct sigaction before, now;
	long n;
	int fds0 = test_count_fds();

	/*
	 * Set through glibc, as a restore is: the kernel's untouched
	 * default lacks the SA_RESTORER flag that glibc adds to each.
	 */
	disposition_set(SIGUSR1, SIG_DFL);
	before = disposition_get(SIGUSR1);

	ck_assert_int_eq(rouse_reactor_set_allocator(&a), 0);
	for (n = 0;; n++) {
		struct rouse_signal *s = (struct rouse_signal *)&n;
		int err;

		atomic_store(&alloc_calls, 0);
		atomic_store(&alloc_fail_at, n);
		err = rouse_signal_new(r, SIGUSR1, &s);
		atomic_store(&alloc_fail_at, -1);
		if (err == 0) {
			/* Every allocation was tried and survived. */
			ck_assert_int_le(atomic_load(&alloc_calls), n);
			ck_assert_int_eq(rouse_signal_free(s), 0);
			break;
		}
		ck_assert_int_eq(err, -ENOMEM);
		ck_assert_ptr_eq(s, (struct rouse_signal *)&n);
		ck_assert_int_eq(test_count_fds(), fds0);
		now = disposition_get(SIGUSR1);
		ck_assert(disposition_same(&before, &now));
	}
	ck_assert_int_ge(n, 1);
	ck_assert_int_eq(rouse_reactor_set_allocator(NULL), 0);
	now = disposition_get(SIGUSR1);
	ck_assert(disposition_same(&before, &now));
	ck_assert_int_eq(test_count_fds(), fds0);
	rouse_reactor_free(r);
}
END_TEST

/* ---- storms ----------------------------------------------------------- */

#define STORM 10000

enum storm_target {
	STORM_RAISE,		/* the sender raises each to itself */
	STORM_KILL,		/* kill(getpid()): at the main thread */
	STORM_BYSTANDER,	/* pthread_kill() of a thread in poll(2) */
	STORM_TARGETS,
};

struct storm {
	enum storm_target target;
	int signo;
	pthread_t bystander;
	struct test_barrier *start;
	atomic_int done;
};

static int storm_send(const struct storm *st)
{
	switch (st->target) {
	case STORM_RAISE:
		return raise(st->signo);
	case STORM_KILL:
		return kill(getpid(), st->signo);
	default:
		return pthread_kill(st->bystander, st->signo);
	}
}

static void *storm_thread(void *arg)
{
	struct storm *st = arg;
	int i;

	test_barrier_wait(st->start);
	for (i = 0; i < STORM; i++)
		ck_assert_int_eq(storm_send(st), 0);
	/*
	 * One more after done is set: a wait that began before the waiter
	 * could see done would otherwise have nothing left to end it.
	 */
	atomic_store(&st->done, 1);
	ck_assert_int_eq(storm_send(st), 0);
	return NULL;
}

/*
 * _i: threaded or driven, times the target.  A thread sends STORM
 * signals as fast as it can while the main thread waits in a loop; the
 * kernel coalesces standard signals, so the sum is only at least 1.
 * After the storm, a new wait still completes on the next delivery.
 */
START_TEST(test_storm)
{
	enum test_mode mode = _i / STORM_TARGETS ? TEST_MODE_DRIVEN
						 : TEST_MODE_THREADED;
	enum storm_target target = (enum storm_target)(_i % STORM_TARGETS);
	struct test_barrier start;
	struct test_runner ru;
	struct bystander by;
	struct storm st;
	struct rouse_signal *s;
	uint64_t sum = 0, waits = 0;
	pthread_t t;

	/* Deliveries still on their way after the free are ignored. */
	disposition_set(SIGUSR1, SIG_IGN);
	bystander_start(&by);
	test_runner_init(&ru, mode);
	s = listener_make(ru.r, SIGUSR1);
	st.target = target;
	st.signo = SIGUSR1;
	st.bystander = by.t;
	st.start = &start;
	atomic_init(&st.done, 0);
	test_barrier_init(&start, 2);
	t = test_thread_start(storm_thread, &st);
	test_barrier_wait(&start);
	for (;;) {
		struct rouse_signal_wait w;

		ck_assert_int_eq(rouse_signal_wait_init(&w, s), 0);
		w.result = 1;
		ck_assert_int_eq(test_runner_block_on(&ru, &w.base), 0);
		ck_assert_int_eq(w.result, 0);
		ck_assert_uint_ge(w.count, 1);
		sum += w.count;
		waits++;
		ck_assert_int_eq(rouse_future_drop(&w.base), 0);
		if (atomic_load(&st.done))
			break;
	}
	test_thread_join(t);
	ck_assert_uint_ge(sum, 1);
	ck_assert_uint_le(sum, STORM + 1);
	ck_assert_uint_le(waits, sum);

	/* After the storm: one more signal, sent once the waiter parked. */
	{
		struct rouse_signal_wait w;
		struct test_watched tw;
		struct send_arg a = {
			.how = target == STORM_RAISE  ? SEND_RAISE :
			       target == STORM_KILL   ? SEND_KILL :
							SEND_BYSTANDER,
			.signo = SIGUSR1, .w = &tw, .after = 1,
			.main_tid = test_gettid(), .main = pthread_self(),
			.bystander = by.t,
		};

		ck_assert_int_eq(rouse_signal_wait_init(&w, s), 0);
		test_watched_init(&tw, &w.base);
		t = test_thread_start(send_thread, &a);
		ck_assert_int_eq(test_runner_block_on(&ru, &tw.base), 0);
		test_thread_join(t);
		ck_assert_int_eq(w.result, 0);
		ck_assert_uint_ge(w.count, 1);
		ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	}
	test_barrier_destroy(&start);
	ck_assert_int_eq(rouse_signal_free(s), 0);
	test_runner_free(&ru);
	bystander_stop(&by);
}
END_TEST

/* ---- realtime signals: every one counted ------------------------------ */

#define RT_SIGNALS 10000

struct rt_storm {
	bool queue;	/* sigqueue() to the process, or raise() */
	int signo;
	struct test_barrier *start;
};

static void *rt_thread(void *arg)
{
	struct rt_storm *rt = arg;
	int i;

	test_barrier_wait(rt->start);
	for (i = 0; i < RT_SIGNALS; i++) {
		union sigval v = { .sival_int = i };
		int err;

		/* Queued, not coalesced; EAGAIN: the queue is full. */
		while ((err = rt->queue ? sigqueue(getpid(), rt->signo, v)
					: raise(rt->signo)) != 0) {
			ck_assert_int_eq(errno, EAGAIN);
			sched_yield();
		}
	}
	return NULL;
}

/*
 * _i: threaded or driven, times raise() in the sender or sigqueue() to
 * the process.  Realtime signals queue, one instance per send: the
 * counts must add up to exactly RT_SIGNALS.
 */
START_TEST(test_rt_exact)
{
	enum test_mode mode = _i / 2 ? TEST_MODE_DRIVEN : TEST_MODE_THREADED;
	struct test_barrier start;
	struct test_runner ru;
	struct rt_storm rt = { _i % 2 == 1, SIGRTMIN + 1, &start };
	struct rouse_signal *s;
	struct rouse_signal_wait w;
	uint64_t sum = 0;
	pthread_t t;

	if (UNDER_TSAN && rt.queue)
		return;
	disposition_set(rt.signo, SIG_IGN);
	test_runner_init(&ru, mode);
	s = listener_make(ru.r, rt.signo);
	test_barrier_init(&start, 2);
	t = test_thread_start(rt_thread, &rt);
	test_barrier_wait(&start);
	/* A lost one hangs here, and the tcase timeout says so. */
	while (sum < RT_SIGNALS) {
		ck_assert_int_eq(rouse_signal_wait_init(&w, s), 0);
		w.result = 1;
		ck_assert_int_eq(test_runner_block_on(&ru, &w.base), 0);
		ck_assert_int_eq(w.result, 0);
		ck_assert_uint_ge(w.count, 1);
		sum += w.count;
		ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	}
	test_thread_join(t);
	/* None counted twice either. */
	ck_assert_uint_eq(sum, RT_SIGNALS);
	ck_assert_int_eq(rouse_signal_wait_init(&w, s), 0);
	ck_assert_int_eq(poll_noop(&w), ROUSE_PENDING);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	test_barrier_destroy(&start);
	ck_assert_int_eq(rouse_signal_free(s), 0);
	test_runner_free(&ru);
}
END_TEST

/* ---- listeners come and go under a storm ------------------------------ */

#define CHURNERS 2
#define CHURN_ROUNDS 1000

struct churn {
	struct rouse_reactor *r;
	struct test_barrier *start;
	atomic_int *left;
};

/*
 * Make a listener, raise the signal (the handler runs before raise()
 * returns, so this listener has counted it), take the count, free it.
 */
static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	int i;

	test_barrier_wait(c->start);
	for (i = 0; i < CHURN_ROUNDS; i++) {
		struct rouse_signal *s = listener_make(c->r, SIGUSR1);
		struct rouse_signal_wait w;

		ck_assert_int_eq(raise(SIGUSR1), 0);
		ck_assert_int_eq(rouse_signal_wait_init(&w, s), 0);
		ck_assert_int_eq(poll_noop(&w), ROUSE_READY);
		ck_assert_int_eq(w.result, 0);
		ck_assert_uint_ge(w.count, 1);
		ck_assert_int_eq(rouse_future_drop(&w.base), 0);
		ck_assert_int_eq(rouse_signal_free(s), 0);
	}
	atomic_fetch_sub(c->left, 1);
	return NULL;
}

struct churn_storm {
	struct test_barrier *start;
	atomic_int *left;
	unsigned long sent;
};

static void *churn_storm_thread(void *arg)
{
	struct churn_storm *cs = arg;

	test_barrier_wait(cs->start);
	while (atomic_load(cs->left) > 0) {
		ck_assert_int_eq(raise(SIGUSR1), 0);
		/* Under TSan kill() hits main in pthread_join; deferred. */
		if (!UNDER_TSAN)
			ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
		cs->sent++;
	}
	return NULL;
}

/*
 * Listeners are made and freed on two threads while a third raises and
 * sends the signal without pause: handlers walk the list while it
 * changes, and a free waits for the handlers that may still see its
 * listener (ASan would catch a use after free, TSan a race).  Between
 * listeners the old handler runs, and counts.
 */
START_TEST(test_churn)
{
	struct rouse_reactor *r = test_reactor_make();
	struct test_barrier start;
	atomic_int left;
	struct churn c = { r, &start, &left };
	struct churn_storm cs = { &start, &left, 0 };
	pthread_t t[CHURNERS + 1];
	struct sigaction before, now;
	int fds0, i;

	disposition_set(SIGUSR1, on_stray);
	before = disposition_get(SIGUSR1);
	fds0 = test_count_fds();
	atomic_init(&left, CHURNERS);
	test_barrier_init(&start, CHURNERS + 1);
	for (i = 0; i < CHURNERS; i++)
		t[i] = test_thread_start(churn_thread, &c);
	t[CHURNERS] = test_thread_start(churn_storm_thread, &cs);
	for (i = 0; i <= CHURNERS; i++)
		test_thread_join(t[i]);
	ck_assert_uint_ge(cs.sent, 1);
	now = disposition_get(SIGUSR1);
	ck_assert(disposition_same(&before, &now));
	ck_assert_int_eq(test_count_fds(), fds0);
	test_barrier_destroy(&start);
	rouse_reactor_free(r);
}
END_TEST

static Suite *signal_suite(void)
{
	Suite *s = suite_create("signal");
	TCase *tc;

	tc = tcase_create("einval");
	tcase_add_test(tc, test_einval);
	tcase_add_test(tc, test_enomem);
	suite_add_tcase(s, tc);

	tc = tcase_create("coalesce");
	tcase_add_test(tc, test_coalesce);
	tcase_add_test(tc, test_drop_keeps_count);
	suite_add_tcase(s, tc);

	tc = tcase_create("senders");
	tcase_add_loop_test(tc, test_senders, 0, TEST_MODES * SENDERS);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("listeners");
	tcase_add_test(tc, test_all_listeners);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("disposition");
	tcase_add_loop_test(tc, test_restore, 0, 3);
	tcase_add_test(tc, test_replaced_kept);
	suite_add_tcase(s, tc);

	tc = tcase_create("fork");
	tcase_add_test(tc, test_fork);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("storm");
	tcase_add_loop_test(tc, test_storm, 0, 2 * STORM_TARGETS);
	tcase_add_loop_test(tc, test_rt_exact, 0, 4);
	tcase_add_test(tc, test_churn);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return test_run_suite(signal_suite());
}
