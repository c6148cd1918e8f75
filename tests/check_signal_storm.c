// SPDX-License-Identifier: MIT
/*
 * tests/check_signal_storm.c - the runtime under a storm of signals.
 *
 * A helper thread sends SIGUSR1 every 20 microseconds, with tgkill(2), to
 * the thread that runs the futures and, when the reactor runs on a thread
 * of its own, to that thread too.  The handler is installed without
 * SA_RESTART, so every blocking system call that a signal interrupts
 * fails with EINTR, and it calls rouse_event_notify(3), which is
 * async-signal-safe, counting the calls that succeed.  Meanwhile the main
 * thread sleeps, waits for that event, moves bytes through socket pairs
 * whose writer half-closes, and (with a driven reactor) turns the reactor
 * by hand.  Nothing may report EINTR or any other error, no sleep may end
 * early on the reactor's clock, and the waits must take exactly the
 * notifications that the handler made (and one more that the storm makes
 * as it ends, for a wait that began too late).  The storm lasts a fixed
 * time and ends by itself.
 *
 * Each case runs four ways (Check loop index bit 0: the reactor on its own
 * thread, or driven by the main thread through rouse_reactor_parker(3);
 * bit 1: rouse_block_on(3) directly, or each step a task of a
 * current-thread executor, run with rouse_executor_block_on(3)).
 */
#include <signal.h>
#include <sys/prctl.h>

#include "testutil.h"

#define US INT64_C(1000)
#define MS INT64_C(1000000)
#define STORM_NS (400 * MS)
#define STORM_PERIOD_NS (20 * US)
#define XFER_BUF 4096
#define XFER_MAX 65536

/* ---- the handler ---------------------------------------------------- */

static struct rouse_event *storm_ev;
static atomic_int main_tid, reactor_tid;	/* read by the handler */
static atomic_long notified;		/* notifications that succeeded */
static atomic_long notify_errors;
static atomic_long caught_main, caught_reactor, caught_other;

static void on_signal(int sig)
{
	int saved = errno;
	pid_t tid = test_gettid();

	(void)sig;
	if (rouse_event_notify(storm_ev) == 0)
		atomic_fetch_add(&notified, 1);
	else
		atomic_fetch_add(&notify_errors, 1);
	if (tid == atomic_load(&main_tid))
		atomic_fetch_add(&caught_main, 1);
	else if (tid == atomic_load(&reactor_tid))
		atomic_fetch_add(&caught_reactor, 1);
	else
		atomic_fetch_add(&caught_other, 1);
	errno = saved;
}

/* ---- the storm ------------------------------------------------------ */

struct storm {
	pid_t tid[2];		/* the threads to hit */
	int n;
	int64_t end;		/* CLOCK_MONOTONIC */
	atomic_int done;
	long sent, refused;
	int last;		/* the storm's last notification: 0 or -errno */
};

static void *storm_run(void *arg)
{
	struct storm *st = arg;
	pid_t pid = getpid();
	int64_t next = test_mono_ns(), now;
	struct timespec ts;
	sigset_t set;
	int i;

	/* Never a target, so its own sleeps are never cut short. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* Let the 20 us sleeps be 20 us, not the default slack of 50. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	while ((now = test_mono_ns()) < st->end) {
		for (i = 0; i < st->n; i++) {
			if (syscall(SYS_tgkill, pid, st->tid[i], SIGUSR1) == 0)
				st->sent++;
			else
				st->refused++;
		}
		/* Every 20 us on a grid; a late round is not made up for. */
		next += STORM_PERIOD_NS;
		if (next < now)
			next = now;
		ts.tv_sec = next / 1000000000;
		ts.tv_nsec = next % 1000000000;
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
	/* A wait that began just now gets this one, then the loop ends. */
	atomic_store(&st->done, 1);
	st->last = rouse_event_notify(storm_ev);
	return NULL;
}

/* A call_waker's function: note the thread that wakes. */
static void note_tid(struct call_waker *c, int nth)
{
	(void)nth;
	atomic_store((atomic_int *)c->arg, (int)test_gettid());
}

/*
 * The thread of a started reactor: the one that runs the wakers of its
 * timers.  (Listing threads before and after the start could pick a
 * thread that a sanitizer's runtime starts at the same moment.)
 */
static pid_t reactor_thread_tid(struct rouse_reactor *r)
{
	struct call_waker c;
	atomic_int tid = 0;
	struct rouse_waker w = call_waker(&c, note_tid, &tid);
	struct rouse_sleep s;

	ck_assert_int_eq(rouse_sleep_init(&s, r, MS), 0);
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_PENDING);
	while (atomic_load(&tid) == 0)
		sched_yield();
	ck_assert_int_eq(test_poll_with(&s.base, &w), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	ck_assert_int_eq(rouse_waker_drop(&w), 0);
	ck_assert_int_eq(atomic_load(&c.live), 0);
	ck_assert_int_ne(atomic_load(&tid), test_gettid());
	return (pid_t)atomic_load(&tid);
}

/* ---- the scene ------------------------------------------------------ */

struct scene {
	bool driven;		/* the main thread drives the reactor */
	bool tasks;		/* steps run as tasks of ex */
	struct rouse_reactor *r;
	struct rouse_parker parker;
	struct rouse_executor *ex;
	uint64_t rng;
	long taken;		/* notifications the waits took */
	long sleeps, waits, xfers, turns;
	int64_t bytes;
};

static uint64_t rnd_below(struct scene *sc, uint64_t n)
{
	return test_splitmix64(&sc->rng) % n;
}

/*
 * Run the size-byte future at f to completion the scene's way, and leave
 * its final state (its outputs) at f.  f must never have been polled.
 */
static void run(struct scene *sc, struct rouse_future *f, size_t size)
{
	struct rouse_join_handle h;

	if (!sc->tasks) {
		if (sc->driven)
			ck_assert_int_eq(rouse_block_on_with(f, &sc->parker),
					 0);
		else
			ck_assert_int_eq(rouse_block_on(f), 0);
		ck_assert_int_eq(rouse_future_drop(f), 0);
		return;
	}
	ck_assert_int_eq(rouse_spawn(sc->ex, f, size, &h), 0);
	ck_assert_int_eq(rouse_executor_block_on(sc->ex, &h.base), 0);
	ck_assert_int_eq(h.result, 0);
	/* The task's drop has run already; its outputs stay readable. */
	memcpy(f, h.output, size);
	ck_assert_int_eq(rouse_future_drop(&h.base), 0);
}

/* ---- a checked sleep ------------------------------------------------ */

struct step_sleep {
	struct rouse_future base;
	struct rouse_reactor *r;
	int64_t d;
	bool until;
	int state;		/* 0 not begun, 1 sleeping, 2 done */
	struct rouse_sleep s;
	int64_t early;		/* output: > 0 if it ended that early */
	int result;		/* output */
};

static enum rouse_poll sleep_poll(struct rouse_future *f,
				  struct rouse_context *cx)
{
	struct step_sleep *s = (struct step_sleep *)f;
	int64_t t0;

	if (s->state == 0) {
		t0 = rouse_reactor_now(s->r);
		/* The deadline is at least t0 + d however it is made. */
		s->early = t0 + s->d;
		if (s->until)
			s->result = rouse_sleep_until_init(&s->s, s->r,
							   t0 + s->d);
		else
			s->result = rouse_sleep_init(&s->s, s->r, s->d);
		if (s->result != 0)
			return ROUSE_READY;
		s->state = 1;
	}
	if (rouse_future_poll(&s->s.base, cx) == ROUSE_PENDING)
		return ROUSE_PENDING;
	s->early -= rouse_reactor_now(s->r);
	s->result = s->s.result;
	rouse_future_drop(&s->s.base);
	s->state = 2;
	return ROUSE_READY;
}

static void sleep_drop(struct rouse_future *f)
{
	struct step_sleep *s = (struct step_sleep *)f;

	if (s->state == 1)
		rouse_future_drop(&s->s.base);
}

static const struct rouse_future_vtable sleep_vt = { sleep_poll, sleep_drop };

static void step_sleep(struct scene *sc)
{
	struct step_sleep s;

	memset(&s, 0, sizeof(s));
	s.base.vtable = &sleep_vt;
	s.r = sc->r;
	s.d = (int64_t)rnd_below(sc, 2 * MS + 1);
	s.until = rnd_below(sc, 2) == 0;
	run(sc, &s.base, sizeof(s));
	ck_assert_int_eq(s.state, 2);
	ck_assert_int_eq(s.result, 0);
	ck_assert_msg(s.early <= 0, "a sleep of %lld ns ended %lld ns early",
		      (long long)s.d, (long long)s.early);
	sc->sleeps++;
}

/* ---- a wait for the signals' event ---------------------------------- */

struct step_wait {
	struct rouse_future base;
	bool started;
	struct rouse_event_wait w;
	int result;		/* output */
	uint64_t count;		/* output */
};

static enum rouse_poll wait_poll(struct rouse_future *f,
				 struct rouse_context *cx)
{
	struct step_wait *s = (struct step_wait *)f;

	if (!s->started) {
		ck_assert_int_eq(rouse_event_wait_init(&s->w, storm_ev), 0);
		s->started = true;
	}
	if (rouse_future_poll(&s->w.op.base, cx) == ROUSE_PENDING)
		return ROUSE_PENDING;
	s->result = s->w.result;
	s->count = s->w.count;
	rouse_future_drop(&s->w.op.base);
	s->started = false;
	return ROUSE_READY;
}

static void wait_drop(struct rouse_future *f)
{
	struct step_wait *s = (struct step_wait *)f;

	if (s->started)
		rouse_future_drop(&s->w.op.base);
}

static const struct rouse_future_vtable wait_vt = { wait_poll, wait_drop };

static void step_wait(struct scene *sc)
{
	struct step_wait s;

	memset(&s, 0, sizeof(s));
	s.base.vtable = &wait_vt;
	run(sc, &s.base, sizeof(s));
	ck_assert_int_eq(s.result, 0);
	ck_assert_uint_gt(s.count, 0);
	sc->taken += (long)s.count;
	sc->waits++;
}

/* ---- bytes through a socket pair, then end of file ------------------ */

static uint8_t pat_byte(uint8_t pat, int64_t off)
{
	return (uint8_t)(pat + off * 7 + (off >> 8));
}

/*
 * Writes total bytes into io[1] and reads them from io[0] at the same
 * time, in pieces of random sizes; then shuts the writing side down and
 * reads until end of file.
 */
struct step_xfer {
	struct rouse_future base;
	int fd[2];
	struct rouse_io *io[2];
	uint8_t pat;
	uint64_t rng;
	int64_t total, written, readn;
	bool wbusy, rbusy, shut, eof;
	int err;		/* output: the first error */
	int64_t bad;		/* output: first wrong byte's offset, or -1 */
	struct rouse_io_rw wr, rd;
	uint8_t wbuf[XFER_BUF], rbuf[XFER_BUF];
};

static size_t xfer_len(struct step_xfer *x)
{
	return 1 + test_splitmix64(&x->rng) % XFER_BUF;
}

static enum rouse_poll xfer_poll(struct rouse_future *f,
				 struct rouse_context *cx)
{
	struct step_xfer *x = (struct step_xfer *)f;
	size_t len, i;
	ssize_t n;
	bool moved;

	do {
		moved = false;
		if (x->written < x->total) {
			if (!x->wbusy) {
				len = xfer_len(x);
				if ((int64_t)len > x->total - x->written)
					len = (size_t)(x->total - x->written);
				for (i = 0; i < len; i++)
					x->wbuf[i] = pat_byte(x->pat,
						x->written + (int64_t)i);
				rouse_io_write_init(&x->wr, x->io[1], x->wbuf,
						    len);
				x->wbusy = true;
			}
			if (rouse_future_poll(&x->wr.op.base, cx) ==
			    ROUSE_READY) {
				n = x->wr.result;
				rouse_future_drop(&x->wr.op.base);
				x->wbusy = false;
				if (n <= 0) {
					x->err = n < 0 ? (int)n : -EIO;
					return ROUSE_READY;
				}
				x->written += n;
				moved = true;
			}
		}
		if (x->written == x->total && !x->shut) {
			if (shutdown(x->fd[1], SHUT_WR) != 0) {
				x->err = -errno;
				return ROUSE_READY;
			}
			x->shut = true;
		}
		if (!x->rbusy) {
			rouse_io_read_init(&x->rd, x->io[0], x->rbuf,
					   xfer_len(x));
			x->rbusy = true;
		}
		if (rouse_future_poll(&x->rd.op.base, cx) == ROUSE_READY) {
			n = x->rd.result;
			rouse_future_drop(&x->rd.op.base);
			x->rbusy = false;
			if (n < 0) {
				x->err = (int)n;
				return ROUSE_READY;
			}
			if (n == 0) {
				x->eof = true;
				return ROUSE_READY;
			}
			for (i = 0; i < (size_t)n; i++)
				if (x->bad < 0 && x->rbuf[i] !=
				    pat_byte(x->pat, x->readn + (int64_t)i))
					x->bad = x->readn + (int64_t)i;
			x->readn += n;
			moved = true;
		}
	} while (moved);
	return ROUSE_PENDING;
}

static void xfer_drop(struct rouse_future *f)
{
	struct step_xfer *x = (struct step_xfer *)f;

	if (x->wbusy)
		rouse_future_drop(&x->wr.op.base);
	if (x->rbusy)
		rouse_future_drop(&x->rd.op.base);
	x->wbusy = x->rbusy = false;
}

static const struct rouse_future_vtable xfer_vt = { xfer_poll, xfer_drop };

static void step_xfer(struct scene *sc)
{
	struct step_xfer *x = calloc(1, sizeof(*x));
	int fd[2];
	struct rouse_io *io[2];

	ck_assert_ptr_nonnull(x);
	test_pair_make(fd);
	ck_assert_int_eq(rouse_io_register(sc->r, fd[0], &io[0]), 0);
	ck_assert_int_eq(rouse_io_register(sc->r, fd[1], &io[1]), 0);
	x->base.vtable = &xfer_vt;
	x->fd[0] = fd[0];
	x->fd[1] = fd[1];
	x->io[0] = io[0];
	x->io[1] = io[1];
	x->pat = (uint8_t)rnd_below(sc, 256);
	x->rng = test_splitmix64(&sc->rng);
	x->total = (int64_t)rnd_below(sc, XFER_MAX + 1);
	x->bad = -1;
	run(sc, &x->base, sizeof(*x));
	ck_assert_msg(x->err == 0, "transfer: error %d (%s) after %lld of "
		      "%lld bytes", x->err, strerror(-x->err),
		      (long long)x->readn, (long long)x->total);
	ck_assert(x->eof);
	ck_assert_int_eq(x->readn, x->total);
	ck_assert_msg(x->bad < 0, "byte %lld is wrong", (long long)x->bad);
	sc->bytes += x->readn;
	sc->xfers++;
	ck_assert_int_eq(rouse_io_deregister(io[0]), 0);
	ck_assert_int_eq(rouse_io_deregister(io[1]), 0);
	close(fd[0]);
	close(fd[1]);
	free(x);
}

/* A turn by hand: interrupted or not, never -EINTR. */
static void step_turn(struct scene *sc)
{
	int n = rouse_reactor_turn(sc->r, (int64_t)rnd_below(sc, MS + 1));

	ck_assert_msg(n >= 0, "rouse_reactor_turn: %d", n);
	sc->turns++;
}

/* ---- the case ------------------------------------------------------- */

/* Take what the event still holds; the reactor is not running. */
static long drain_event(void)
{
	struct rouse_event_wait w;
	long n = 0;

	for (;;) {
		ck_assert_int_eq(rouse_event_wait_init(&w, storm_ev), 0);
		if (test_poll_noop(&w.op.base) != ROUSE_READY) {
			rouse_future_drop(&w.op.base);
			return n;
		}
		ck_assert_int_eq(w.result, 0);
		n += (long)w.count;
		rouse_future_drop(&w.op.base);
	}
}

START_TEST(storm)
{
	struct scene sc;
	struct storm st;
	struct sigaction sa, old;
	struct rouse_executor_config cfg;
	sigset_t set;
	pthread_t t;
	long left;

	memset(&sc, 0, sizeof(sc));
	sc.driven = (_i & 1) != 0;
	sc.tasks = (_i & 2) != 0;
	sc.rng = 0x5157a7e5u + (uint64_t)_i;
	memset(&st, 0, sizeof(st));
	atomic_init(&notified, 0);
	atomic_init(&notify_errors, 0);
	atomic_init(&caught_main, 0);
	atomic_init(&caught_reactor, 0);
	atomic_init(&caught_other, 0);
	atomic_store(&main_tid, (int)test_gettid());
	atomic_store(&reactor_tid, 0);
	/* The eventfd parker is made before the storm, as anything else. */
	test_warm_thread_parker();

	sc.r = test_reactor_make();
	ck_assert_int_eq(rouse_event_new(sc.r, &storm_ev), 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;	/* no SA_RESTART: calls fail with EINTR */
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);

	st.tid[st.n++] = test_gettid();
	if (sc.driven) {
		ck_assert_int_eq(rouse_reactor_parker(sc.r, &sc.parker), 0);
	} else {
		ck_assert_int_eq(rouse_reactor_start(sc.r), 0);
		st.tid[st.n] = reactor_thread_tid(sc.r);
		atomic_store(&reactor_tid, (int)st.tid[st.n++]);
	}
	if (sc.tasks) {
		ck_assert_int_eq(rouse_executor_config_init(&cfg), 0);
		if (sc.driven)
			cfg.parker = &sc.parker;
		ck_assert_int_eq(rouse_executor_new(&cfg, &sc.ex), 0);
	}

	st.end = test_mono_ns() + STORM_NS;
	t = test_thread_start(storm_run, &st);
	while (!atomic_load(&st.done)) {
		switch (rnd_below(&sc, 4)) {
		case 0:
			step_sleep(&sc);
			break;
		case 1:
			step_wait(&sc);
			break;
		case 2:
			step_xfer(&sc);
			break;
		default:
			if (sc.driven)
				step_turn(&sc);
			else
				step_sleep(&sc);
			break;
		}
	}
	test_thread_join(t);

	/*
	 * The storm is over.  Signals sent to this thread were delivered
	 * before the join returned; the reactor's thread, once stopped,
	 * runs no handler any more.  Then no signal is left to come.
	 */
	if (!sc.driven)
		ck_assert_int_eq(rouse_reactor_stop(sc.r), 0);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
	left = drain_event();

	printf("storm %d (%s, %s): %ld signals sent (%ld refused); caught "
	       "%ld by the main thread, %ld by the reactor's; %ld "
	       "notifications, taken %ld by %ld waits and %ld at the end; "
	       "%ld sleeps, %ld transfers of %lld bytes, %ld turns\n", _i,
	       sc.driven ? "driven" : "threaded",
	       sc.tasks ? "tasks" : "block_on", st.sent, st.refused,
	       atomic_load(&caught_main), atomic_load(&caught_reactor),
	       atomic_load(&notified), sc.taken, sc.waits, left, sc.sleeps,
	       sc.xfers, (long long)sc.bytes, sc.turns);
	ck_assert_int_eq(st.last, 0);
	ck_assert_int_eq(atomic_load(&notify_errors), 0);
	ck_assert_int_eq(atomic_load(&caught_other), 0);
	ck_assert_int_eq(st.refused, 0);
	ck_assert_int_gt(atomic_load(&caught_main), 0);
	if (!sc.driven)
		ck_assert_int_gt(atomic_load(&caught_reactor), 0);
	/* Every notification the handler made, and the storm's last. */
	ck_assert_int_eq(sc.taken + left, atomic_load(&notified) + 1);

	if (sc.ex != NULL)
		ck_assert_int_eq(rouse_executor_free(sc.ex), 0);
	rouse_event_free(storm_ev);
	storm_ev = NULL;
	rouse_reactor_free(sc.r);
	ck_assert_int_eq(sigaction(SIGUSR1, &old, NULL), 0);
	ck_assert_int_eq(pthread_sigmask(SIG_UNBLOCK, &set, NULL), 0);
}
END_TEST

static Suite *storm_suite(void)
{
	Suite *s = suite_create("signal_storm");
	TCase *tc = tcase_create("storm");

	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	tcase_add_loop_test(tc, storm, 0, 4);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(storm_suite());
}
