// SPDX-License-Identifier: MIT
/* tests/check_sleep.c - timer futures: sleep(_until), interval, timeout. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rouse/executor.h>
#include <rouse/reactor.h>

#include "testutil.h"

#define US INT64_C(1000)
#define MS INT64_C(1000000)
#define HOUR INT64_C(3600000000000)

/* A fixed-seed generator, so that a failure reproduces. */
static uint64_t rng_state;

static uint64_t rng(void)
{
	return test_splitmix64(&rng_state);
}

/* ---- never early --------------------------------------------------- */

static const int64_t durations[] = {
	0, 1, 999, 50 * US, 999 * US, MS, MS + 1, 2500 * US, 10 * MS,
};
#define NDURATIONS (sizeof(durations) / sizeof(durations[0]))

START_TEST(test_sleep_never_early)
{
	struct test_runner ru;
	size_t i;
	int rep;

	test_runner_init(&ru, (enum test_mode)_i);
	for (rep = 0; rep < 3; rep++) {
		for (i = 0; i < NDURATIONS; i++) {
			struct rouse_sleep s;
			int64_t d = durations[i], t0, m0;

			m0 = test_mono_ns();
			t0 = rouse_reactor_now(ru.r);
			ck_assert_int_eq(rouse_sleep_init(&s, ru.r, d), 0);
			s.result = 1;
			ck_assert_int_eq(test_runner_block_on(&ru, &s.base), 0);
			/* Elapsed on the reactor's clock and the system's. */
			ck_assert_int_ge(rouse_reactor_now(ru.r) - t0, d);
			ck_assert_int_ge(test_mono_ns() - m0, d);
			test_sleep_done(&s);
		}
	}
	test_runner_free(&ru);
}
END_TEST

START_TEST(test_sleep_until_never_early)
{
	struct test_runner ru;
	size_t i;
	int rep;

	test_runner_init(&ru, (enum test_mode)_i);
	for (rep = 0; rep < 3; rep++) {
		for (i = 0; i < NDURATIONS; i++) {
			struct rouse_sleep s;
			int64_t deadline;

			deadline = rouse_reactor_now(ru.r) + durations[i];
			ck_assert_int_eq(rouse_sleep_until_init(&s, ru.r,
								deadline), 0);
			s.result = 1;
			ck_assert_int_eq(test_runner_block_on(&ru, &s.base), 0);
			ck_assert_int_ge(rouse_reactor_now(ru.r), deadline);
			test_sleep_done(&s);
		}
	}
	/* A deadline in the past (even 0) is ready at the next turn. */
	{
		struct rouse_sleep s;

		ck_assert_int_eq(rouse_sleep_until_init(&s, ru.r, 0), 0);
		s.result = 1;
		ck_assert_int_eq(test_runner_block_on(&ru, &s.base), 0);
		test_sleep_done(&s);
	}
	test_runner_free(&ru);
}
END_TEST

/*
 * Many sleeps at once, of different lengths, under one future: each is
 * ready no earlier than its deadline, whatever order the others finish.
 */
#define CONCURRENT 128

struct many {
	struct rouse_future base;
	struct rouse_reactor *r;
	struct rouse_sleep s[CONCURRENT];
	int64_t deadline[CONCURRENT];
	bool done[CONCURRENT];
	int left;
};

static enum rouse_poll many_poll(struct rouse_future *f,
				 struct rouse_context *cx)
{
	struct many *m = (struct many *)f;
	int i;

	for (i = 0; i < CONCURRENT; i++) {
		if (m->done[i] || rouse_future_poll(&m->s[i].base, cx) !=
					  ROUSE_READY)
			continue;
		ck_assert_int_ge(rouse_reactor_now(m->r), m->deadline[i]);
		ck_assert_int_eq(m->s[i].result, 0);
		m->done[i] = true;
		m->left--;
	}
	return m->left == 0 ? ROUSE_READY : ROUSE_PENDING;
}

static const struct rouse_future_vtable many_vtable = { many_poll, NULL };

START_TEST(test_sleep_many_never_early)
{
	static struct many m;
	struct test_runner ru;
	int i;

	rng_state = 7;
	test_runner_init(&ru, (enum test_mode)_i);
	m.base.vtable = &many_vtable;
	m.r = ru.r;
	m.left = CONCURRENT;
	for (i = 0; i < CONCURRENT; i++) {
		/* Most within a few wheel slots; some a level or two up. */
		int64_t d = (int64_t)(rng() % (i % 8 ? 5 * MS : 150 * MS));

		/* The deadline is at least now (read before init) + d. */
		m.deadline[i] = rouse_reactor_now(ru.r) + d;
		ck_assert_int_eq(rouse_sleep_init(&m.s[i], ru.r, d), 0);
		m.done[i] = false;
	}
	ck_assert_int_eq(test_runner_block_on(&ru, &m.base), 0);
	for (i = 0; i < CONCURRENT; i++)
		ck_assert_int_eq(rouse_future_drop(&m.s[i].base), 0);
	test_runner_free(&ru);
}
END_TEST

/* ---- firing order under the paused clock --------------------------- */

/*
 * The waker of one timer, a call_waker: a wake appends the timer's index
 * to the log, so the log is the order of the wakes.
 */
struct rec {
	struct call_waker cw;
	int idx;
};

static int *order_log;
static atomic_int order_n;

/* A call_waker's callback: the timer's index appended to the log. */
static void rec_fn(struct call_waker *c, int nth)
{
	struct rec *rc = c->arg;

	order_log[atomic_fetch_add(&order_n, 1)] = rc->idx;
}

/* What order must come out: by deadline, then by registration. */
struct expect {
	int64_t deadline;
	int polled;	/* position in the order of first polls */
	int idx;
};

static int expect_cmp(const void *a, const void *b)
{
	const struct expect *x = a, *y = b;

	if (x->deadline != y->deadline)
		return x->deadline < y->deadline ? -1 : 1;
	return x->polled < y->polled ? -1 : x->polled > y->polled;
}

/*
 * n timers with deadlines t0 + (random in [-back, span)) rounded down to
 * a multiple of grain (so that many are equal), registered in a random
 * order, then the clock advanced in random steps of up to max_step: after
 * each step exactly the timers due have fired, in (deadline, registration)
 * order, each once.  (One due already when first polled may instead be
 * ready at that poll; it then takes no part in the order.)
 */
static void run_order(int n, int64_t back, int64_t span, int64_t grain,
		      int64_t max_step, uint64_t seed)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_sleep *s = calloc((size_t)n, sizeof(*s));
	struct rec *rc = calloc((size_t)n, sizeof(*rc));
	struct expect *ex = calloc((size_t)n, sizeof(*ex));
	int *perm = calloc((size_t)n, sizeof(*perm));
	int64_t t0, now, last = 0;
	int i, m, fired = 0, steps = 0;

	ck_assert(s && rc && ex && perm);
	order_log = calloc((size_t)n, sizeof(*order_log));
	ck_assert_ptr_nonnull(order_log);
	atomic_store(&order_n, 0);
	rng_state = seed;

	ck_assert_int_eq(rouse_reactor_clock_pause(r), 0);
	t0 = rouse_reactor_now(r);
	ck_assert_int_gt(t0, back);
	for (i = 0; i < n; i++) {
		int64_t off = (int64_t)(rng() % (uint64_t)(back + span)) - back;
		int64_t d;

		off -= ((off % grain) + grain) % grain;
		d = t0 + off;
		if (d > last)
			last = d;
		ex[i].deadline = d;
		ex[i].idx = i;
		rc[i].idx = i;
		/* Half by duration, half by deadline: the same thing. */
		if (i % 2 == 0 && off >= 0)
			test_require_int(rouse_sleep_init(&s[i], r, off), ==,
					 0);
		else
			test_require_int(rouse_sleep_until_init(&s[i], r, d),
					 ==, 0);
		perm[i] = i;
	}
	/* Register in a random order (Fisher-Yates). */
	for (i = n - 1; i > 0; i--) {
		int j = (int)(rng() % (uint64_t)(i + 1)), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	for (i = 0; i < n; i++) {
		int k = perm[i];
		struct rouse_waker w = call_waker(&rc[k].cw, rec_fn, &rc[k]);
		int p;

		ex[k].polled = i;
		s[k].result = 1;
		p = test_poll_with(&s[k].base, &w);
		/* Only the timer's clone of w may be left. */
		test_require_int(rouse_waker_drop(&w), ==, 0);
		if (p == ROUSE_PENDING)
			continue;
		/*
		 * Ready at its first poll: only a timer due already may be,
		 * and it never enters the set (nor the order of wakes).
		 */
		ck_assert_int_le(ex[k].deadline, t0);
		ck_assert_int_eq(s[k].result, 0);
		ck_assert_int_eq(atomic_load(&rc[k].cw.live), 0);
		ex[k].idx = -1;
		rc[k].idx = -1;
	}
	/* What must fire, and in which order. */
	for (i = 0, m = 0; i < n; i++)
		if (ex[i].idx >= 0)
			ex[m++] = ex[i];
	qsort(ex, (size_t)m, sizeof(*ex), expect_cmp);

	now = t0;
	for (;;) {
		int64_t step = steps == 0 ? 0 :
			(int64_t)(rng() % (uint64_t)(max_step + 1));
		int due = fired, got;

		ck_assert_int_ge(rouse_reactor_clock_advance(r, step), 0);
		now += step;
		steps++;
		ck_assert_int_eq(rouse_reactor_now(r), now);
		while (due < m && ex[due].deadline <= now)
			due++;
		got = atomic_load(&order_n);
		ck_assert_msg(got == due, "at +%lld ns: %d fired, %d due",
			      (long long)(now - t0), got, due);
		for (; fired < due; fired++)
			if (order_log[fired] != ex[fired].idx)
				ck_abort_msg("wake %d: timer %d, not %d", fired,
					     order_log[fired], ex[fired].idx);
		if (now > last)
			break;
	}
	ck_assert_int_eq(fired, m);
	for (i = 0; i < n; i++) {
		struct rouse_waker w = rouse_waker_noop();

		test_require_int(atomic_load(&rc[i].cw.wakes), ==,
				 rc[i].idx >= 0);
		test_require_int(atomic_load(&rc[i].cw.live), ==, 0);
		s[i].result = 1;
		test_require_int(test_poll_with(&s[i].base, &w), ==,
				 ROUSE_READY);
		test_require_int(s[i].result, ==, 0);
		test_require_int(rouse_future_drop(&s[i].base), ==, 0);
	}
	rouse_reactor_free(r);
	free(order_log);
	order_log = NULL;
	free(perm);
	free(ex);
	free(rc);
	free(s);
}

START_TEST(test_order_deadline_fifo)
{
	/* 2000 timers on 100 distinct deadlines: lots of ties. */
	run_order(2000, 0, 100 * MS, MS, 3 * MS, 1);
	/* Some already due when registered. */
	run_order(2000, 10 * MS, 50 * MS, 500 * US, 2 * MS, 2);
	/* All at one deadline: pure FIFO. */
	run_order(1000, 0, 1, 1, MS, 3);
}
END_TEST

START_TEST(test_order_100k)
{
	/* Nanosecond deadlines over ten minutes, big random steps. */
	run_order(100000, 0, 600000 * MS, 1, 20000 * MS, 4);
	/* Over a second, in steps that cross few wheel slots at a time. */
	run_order(100000, 5 * MS, 1000 * MS, 1, 3 * MS, 5);
}
END_TEST

/* ---- due already when first polled, under the paused clock -------- */

/*
 * A timer whose deadline has passed when it is first polled must be ready
 * at that poll or at the next turn of the reactor, paused clock or not:
 * nothing else would ever fire it, and a rouse_block_on_with() on the
 * reactor's parker would block for ever in epoll_wait().
 */
START_TEST(test_paused_due_when_polled)
{
	struct test_fixture fx;
	struct rouse_sleep s;
	int64_t t0;
	int p;

	test_fixture_init(&fx);
	ck_assert_int_eq(rouse_reactor_clock_pause(fx.r), 0);
	t0 = rouse_reactor_now(fx.r);
	ck_assert_int_eq(rouse_sleep_until_init(&s, fx.r, t0), 0);
	s.result = 1;
	p = test_poll_with(&s.base, &fx.w);
	if (p == ROUSE_PENDING) {
		ck_assert_int_ge(rouse_reactor_turn(fx.r, 0), 0);
		ck_assert_msg(atomic_load(&fx.cw.wakes) == 1,
			      "a sleep due when first polled was not fired "
			      "by a turn of the reactor with the clock "
			      "paused");
		p = test_poll_with(&s.base, &fx.w);
	}
	ck_assert_int_eq(p, ROUSE_READY);
	test_sleep_done(&s);
	test_fixture_free(&fx);
}
END_TEST

/*
 * The same for a timer that was armed before the pause and whose deadline
 * passed before the pause too, but which no turn has fired yet: pausing
 * the clock must not strand it.
 */
START_TEST(test_paused_due_before_pause)
{
	struct test_fixture fx;
	struct rouse_sleep s;
	int64_t deadline;

	test_fixture_init(&fx);
	deadline = rouse_reactor_now(fx.r) + MS;
	ck_assert_int_eq(rouse_sleep_until_init(&s, fx.r, deadline), 0);
	ck_assert_int_eq(test_poll_with(&s.base, &fx.w), ROUSE_PENDING);
	/* Wait (without turning) until the deadline has passed. */
	while (rouse_reactor_now(fx.r) < deadline)
		sched_yield();
	ck_assert_int_eq(rouse_reactor_clock_pause(fx.r), 0);
	ck_assert_int_ge(rouse_reactor_now(fx.r), deadline);
	ck_assert_int_ge(rouse_reactor_turn(fx.r, 0), 0);
	ck_assert_msg(atomic_load(&fx.cw.wakes) == 1,
		      "a timer due before the clock was paused was not "
		      "fired by a turn of the reactor");
	s.result = 1;
	ck_assert_int_eq(test_poll_with(&s.base, &fx.w), ROUSE_READY);
	test_sleep_done(&s);
	test_fixture_free(&fx);
}
END_TEST

/* ---- interval ------------------------------------------------------ */

START_TEST(test_interval_paused)
{
	const int64_t p = 10 * MS;
	struct test_fixture fx;
	struct rouse_interval iv;

	test_fixture_init(&fx);
	ck_assert_int_eq(rouse_reactor_clock_pause(fx.r), 0);
	ck_assert_int_eq(rouse_interval_init(&iv, fx.r, p), 0);
	ck_assert_int_eq(test_poll_with(&iv.sleep.base, &fx.w), ROUSE_PENDING);

	/* One period: one tick, not a nanosecond early. */
	ck_assert_int_eq(rouse_reactor_clock_advance(fx.r, p - 1), 0);
	ck_assert_int_eq(counting_waker_total_wakes(&fx.cw), 0);
	ck_assert_int_ge(rouse_reactor_clock_advance(fx.r, 1), 0);
	ck_assert_int_eq(atomic_load(&fx.cw.wakes), 1);
	ck_assert_int_eq(test_poll_with(&iv.sleep.base, &fx.w), ROUSE_READY);
	ck_assert_int_eq(iv.result, 0);
	ck_assert_uint_eq(iv.ticks, 1);

	/* Polled again, it waits for the next tick (at 2p). */
	ck_assert_int_eq(test_poll_with(&iv.sleep.base, &fx.w), ROUSE_PENDING);
	/* 3.5 periods later (at 4.5p): the ticks at 2p, 3p, 4p. */
	ck_assert_int_ge(rouse_reactor_clock_advance(fx.r, 3 * p + p / 2), 0);
	ck_assert_int_eq(atomic_load(&fx.cw.wakes), 2);
	ck_assert_int_eq(test_poll_with(&iv.sleep.base, &fx.w), ROUSE_READY);
	ck_assert_uint_eq(iv.ticks, 3);

	/* The next one is on the grid, at 5p: half a period away. */
	ck_assert_int_eq(test_poll_with(&iv.sleep.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(rouse_reactor_clock_advance(fx.r, p / 2 - 1), 0);
	ck_assert_int_eq(atomic_load(&fx.cw.wakes), 2);
	ck_assert_int_ge(rouse_reactor_clock_advance(fx.r, 1), 0);
	ck_assert_int_eq(atomic_load(&fx.cw.wakes), 3);
	ck_assert_int_eq(test_poll_with(&iv.sleep.base, &fx.w), ROUSE_READY);
	ck_assert_uint_eq(iv.ticks, 1);

	/* Exactly a period (to 6p): one tick. */
	ck_assert_int_eq(test_poll_with(&iv.sleep.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_ge(rouse_reactor_clock_advance(fx.r, p), 0);
	ck_assert_int_eq(test_poll_with(&iv.sleep.base, &fx.w), ROUSE_READY);
	ck_assert_uint_eq(iv.ticks, 1);

	/* A tick missed by exactly k periods (to 9p): k + 1 = 3 ticks. */
	ck_assert_int_eq(test_poll_with(&iv.sleep.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_ge(rouse_reactor_clock_advance(fx.r, 3 * p), 0);
	ck_assert_int_eq(test_poll_with(&iv.sleep.base, &fx.w), ROUSE_READY);
	ck_assert_uint_eq(iv.ticks, 3);

	/* Dropped while waiting: nothing left behind. */
	ck_assert_int_eq(test_poll_with(&iv.sleep.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(rouse_future_drop(&iv.sleep.base), 0);
	counting_waker_drop_last(&fx.w, &fx.cw);
	ck_assert_int_eq(rouse_reactor_clock_advance(fx.r, 100 * p), 0);
	ck_assert_int_eq(atomic_load(&fx.cw.wakes), 5);
	rouse_reactor_free(fx.r);
}
END_TEST

START_TEST(test_interval_real)
{
	const int64_t p = 2 * MS;
	struct rouse_interval iv;
	struct test_runner ru;
	uint64_t total = 0;
	int64_t t0;
	int i;

	test_runner_init(&ru, (enum test_mode)_i);
	t0 = rouse_reactor_now(ru.r);
	ck_assert_int_eq(rouse_interval_init(&iv, ru.r, p), 0);
	for (i = 0; i < 5; i++) {
		iv.ticks = 0;
		ck_assert_int_eq(test_runner_block_on(&ru, &iv.sleep.base), 0);
		ck_assert_int_eq(iv.result, 0);
		ck_assert_uint_ge(iv.ticks, 1);
		total += iv.ticks;
		/* Never early: that many periods have passed. */
		ck_assert_int_ge(rouse_reactor_now(ru.r) - t0,
				 (int64_t)total * p);
	}
	ck_assert_int_eq(rouse_future_drop(&iv.sleep.base), 0);
	test_runner_free(&ru);
}
END_TEST

/* ---- timeout ------------------------------------------------------- */

/* A sleep that counts its polls and drops. */
struct counted {
	struct rouse_future base;
	struct rouse_sleep inner;
	int polls;
	int drops;
};

static enum rouse_poll counted_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct counted *c = (struct counted *)f;

	c->polls++;
	ck_assert_int_eq(c->drops, 0);
	return c->inner.base.vtable->poll(&c->inner.base, cx);
}

static void counted_drop(struct rouse_future *f)
{
	struct counted *c = (struct counted *)f;

	c->drops++;
	ck_assert_int_eq(rouse_future_drop(&c->inner.base), 0);
}

static const struct rouse_future_vtable counted_vtable = {
	counted_poll, counted_drop,
};

static void counted_init(struct counted *c, struct rouse_reactor *r,
			 int64_t duration)
{
	c->base.vtable = &counted_vtable;
	c->polls = c->drops = 0;
	ck_assert_int_eq(rouse_sleep_init(&c->inner, r, duration), 0);
	c->inner.result = 1;
}

/*
 * Start t on fx's reactor, its clock paused: a timeout of limit ns on c, a
 * sleep of inner ns.  Its first poll is pending.
 */
static void timeout_start(struct test_fixture *fx, struct rouse_timeout *t,
			  struct counted *c, int64_t inner, int64_t limit)
{
	ck_assert_int_eq(rouse_reactor_clock_pause(fx->r), 0);
	counted_init(c, fx->r, inner);
	ck_assert_int_eq(rouse_timeout_init(t, fx->r, &c->base, limit), 0);
	t->result = 1;
	ck_assert_int_eq(test_poll_with(&t->base, &fx->w), ROUSE_PENDING);
}

START_TEST(test_timeout_inner_wins)
{
	struct test_fixture fx;
	struct rouse_timeout t;
	struct counted c;

	test_fixture_init(&fx);
	timeout_start(&fx, &t, &c, 10 * MS, HOUR);
	ck_assert_int_ge(rouse_reactor_clock_advance(fx.r, 10 * MS), 0);
	ck_assert_int_ge(atomic_load(&fx.cw.wakes), 1);
	ck_assert_int_eq(test_poll_with(&t.base, &fx.w), ROUSE_READY);
	ck_assert_int_eq(t.result, 0);
	/* The inner's output is there, and the inner is not dropped yet. */
	ck_assert_int_eq(c.inner.result, 0);
	ck_assert_int_eq(c.drops, 0);
	/* The deadline passing later changes nothing. */
	ck_assert_int_ge(rouse_reactor_clock_advance(fx.r, 2 * HOUR), 0);
	ck_assert_int_eq(c.drops, 0);
	ck_assert_int_eq(c.inner.result, 0);
	ck_assert_int_eq(t.result, 0);
	/* Dropping the timeout drops the inner, once. */
	ck_assert_int_eq(rouse_future_drop(&t.base), 0);
	ck_assert_int_eq(c.drops, 1);
	test_fixture_free(&fx);
}
END_TEST

START_TEST(test_timeout_deadline_wins)
{
	struct test_fixture fx;
	struct rouse_timeout t;
	struct counted c;
	int polls;

	test_fixture_init(&fx);
	timeout_start(&fx, &t, &c, HOUR, 10 * MS);
	ck_assert_int_eq(rouse_reactor_clock_advance(fx.r, 10 * MS - 1), 0);
	ck_assert_int_eq(counting_waker_total_wakes(&fx.cw), 0);
	ck_assert_int_ge(rouse_reactor_clock_advance(fx.r, 1), 0);
	ck_assert_int_eq(test_poll_with(&t.base, &fx.w), ROUSE_READY);
	ck_assert_int_eq(t.result, -ETIMEDOUT);
	/* The inner was dropped already, exactly once. */
	ck_assert_int_eq(c.drops, 1);
	polls = c.polls;
	/* Nothing of the inner is left: its deadline passing wakes nobody. */
	ck_assert_int_eq(rouse_reactor_clock_advance(fx.r, 2 * HOUR), 0);
	ck_assert_int_eq(rouse_future_drop(&t.base), 0);
	ck_assert_int_eq(c.drops, 1);
	ck_assert_int_eq(c.polls, polls);
	test_fixture_free(&fx);
}
END_TEST

START_TEST(test_timeout_dropped_pending)
{
	struct test_fixture fx;
	struct rouse_timeout t;
	struct counted c;

	/* Dropped before either finished: both cancelled, inner once. */
	test_fixture_init(&fx);
	timeout_start(&fx, &t, &c, HOUR, HOUR);
	ck_assert_int_eq(rouse_future_drop(&t.base), 0);
	ck_assert_int_eq(c.drops, 1);
	counting_waker_drop_last(&fx.w, &fx.cw);
	ck_assert_int_eq(rouse_reactor_clock_advance(fx.r, 3 * HOUR), 0);
	ck_assert_int_eq(counting_waker_total_wakes(&fx.cw), 0);

	/* Never polled: dropping it drops the inner too. */
	counted_init(&c, fx.r, HOUR);
	ck_assert_int_eq(rouse_timeout_init(&t, fx.r, &c.base, HOUR), 0);
	ck_assert_int_eq(rouse_future_drop(&t.base), 0);
	ck_assert_int_eq(c.drops, 1);
	rouse_reactor_free(fx.r);
}
END_TEST

START_TEST(test_timeout_real)
{
	struct rouse_timeout t;
	struct counted c;
	struct test_runner ru;
	int64_t t0;

	test_runner_init(&ru, (enum test_mode)_i);
	/* Deadline first. */
	counted_init(&c, ru.r, HOUR);
	t0 = rouse_reactor_now(ru.r);
	ck_assert_int_eq(rouse_timeout_init(&t, ru.r, &c.base, 2 * MS), 0);
	ck_assert_int_eq(test_runner_block_on(&ru, &t.base), 0);
	ck_assert_int_eq(t.result, -ETIMEDOUT);
	ck_assert_int_ge(rouse_reactor_now(ru.r) - t0, 2 * MS);
	ck_assert_int_eq(c.drops, 1);
	ck_assert_int_eq(rouse_future_drop(&t.base), 0);
	ck_assert_int_eq(c.drops, 1);
	/* Inner first. */
	/* The inner sleep's deadline is fixed at its init: read t0 first. */
	t0 = rouse_reactor_now(ru.r);
	counted_init(&c, ru.r, MS);
	ck_assert_int_eq(rouse_timeout_init(&t, ru.r, &c.base, HOUR), 0);
	ck_assert_int_eq(test_runner_block_on(&ru, &t.base), 0);
	ck_assert_int_eq(t.result, 0);
	ck_assert_int_eq(c.inner.result, 0);
	ck_assert_int_ge(rouse_reactor_now(ru.r) - t0, MS);
	ck_assert_int_eq(c.drops, 0);
	ck_assert_int_eq(rouse_future_drop(&t.base), 0);
	ck_assert_int_eq(c.drops, 1);
	test_runner_free(&ru);
}
END_TEST

/* ---- a million dropped ---------------------------------------------- */

#define MILLION 1000000

/* The reactor's timerfd: the one new "[timerfd]" fd that new made. */
static int reactor_with_timerfd(struct rouse_reactor **out)
{
	struct test_fdset before, after;
	int fds[8], n, i, tfd = -1;

	test_fdset_take(&before);
	*out = test_reactor_make();
	test_fdset_take(&after);
	n = test_fdset_new(&before, &after, fds, 8);
	ck_assert_int_eq(n, 3);
	for (i = 0; i < n; i++) {
		char link[128];

		test_fd_link(fds[i], link, sizeof(link));
		if (strcmp(link, "anon_inode:[timerfd]") == 0) {
			ck_assert_int_eq(tfd, -1);
			tfd = fds[i];
		}
	}
	ck_assert_int_ge(tfd, 0);
	return tfd;
}

static bool timerfd_armed(int tfd)
{
	char v[128];

	ck_assert(test_fdinfo(tfd, "it_value", v, sizeof(v)));
	return strcmp(v, "(0, 0)") != 0;
}

/*
 * Whether the last timerfd_settime() armed the timerfd: it is armed
 * still, or it has fired since.  The reactor never reads its timerfd, so
 * the count of expiries stays until the next settime resets it.  A short
 * timer may well have fired before the test looks at it (a loaded
 * machine, valgrind), and that is no reason to fail.
 */
static bool timerfd_was_armed(int tfd)
{
	char v[128];

	if (timerfd_armed(tfd))
		return true;
	ck_assert(test_fdinfo(tfd, "ticks", v, sizeof(v)));
	return strtoull(v, NULL, 10) > 0;
}

START_TEST(test_drop_million)
{
	struct rouse_reactor *r;
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct rouse_sleep *s = calloc(MILLION, sizeof(*s));
	int *perm = calloc(MILLION, sizeof(*perm));
	int tfd, i;

	ck_assert(s != NULL && perm != NULL);
	rng_state = 11;
	tfd = reactor_with_timerfd(&r);
	ck_assert(!timerfd_armed(tfd));
	for (i = 0; i < MILLION; i++) {
		/* An hour and up to an hour more: none fires meanwhile. */
		int64_t d = HOUR + (int64_t)(rng() % (uint64_t)HOUR);

		test_require_int(rouse_sleep_init(&s[i], r, d), ==, 0);
		test_require_int(test_poll_with(&s[i].base, &w), ==,
				 ROUSE_PENDING);
		perm[i] = i;
	}
	ck_assert_int_eq(atomic_load(&cw.live), MILLION + 1);
	ck_assert(timerfd_armed(tfd));
	for (i = MILLION - 1; i > 0; i--) {
		int j = (int)(rng() % (uint64_t)(i + 1)), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	for (i = 0; i < MILLION; i++)
		test_require_int(rouse_future_drop(&s[perm[i]].base), ==, 0);
	/* Every clone was dropped, none woken; the timerfd is off. */
	ck_assert_int_eq(atomic_load(&cw.live), 1);
	ck_assert_int_eq(atomic_load(&cw.drops), MILLION);
	ck_assert(!timerfd_armed(tfd));
	ck_assert_int_eq(rouse_reactor_turn(r, 0), 0);
	ck_assert(!timerfd_armed(tfd));
	/* No timer is left to fire, however far the clock goes. */
	ck_assert_int_eq(rouse_reactor_clock_pause(r), 0);
	ck_assert_int_eq(rouse_reactor_clock_advance(r, 1000 * HOUR), 0);
	ck_assert_int_eq(counting_waker_total_wakes(&cw), 0);
	ck_assert_int_eq(rouse_reactor_clock_resume(r), 0);
	ck_assert(!timerfd_armed(tfd));
	ck_assert_int_eq(rouse_waker_drop(&w), 0);
	rouse_reactor_free(r);
	free(perm);
	free(s);
}
END_TEST

START_TEST(test_rearm_after_drop)
{
	struct rouse_reactor *r;
	struct rouse_sleep a, b;
	struct rouse_parker p;
	struct rouse_waker w = rouse_waker_noop();
	int64_t t0;
	int tfd;

	/* Dropping the earliest of two keeps the later one working. */
	tfd = reactor_with_timerfd(&r);
	ck_assert_int_eq(rouse_reactor_parker(r, &p), 0);
	ck_assert_int_eq(rouse_sleep_init(&a, r, MS), 0);
	ck_assert_int_eq(test_poll_with(&a.base, &w), ROUSE_PENDING);
	t0 = rouse_reactor_now(r);
	ck_assert_int_eq(rouse_sleep_init(&b, r, 3 * MS), 0);
	ck_assert(timerfd_was_armed(tfd));
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	b.result = 1;
	ck_assert_int_eq(rouse_block_on_with(&b.base, &p), 0);
	ck_assert_int_eq(b.result, 0);
	ck_assert_int_ge(rouse_reactor_now(r) - t0, 3 * MS);
	ck_assert_int_eq(rouse_future_drop(&b.base), 0);
	rouse_reactor_free(r);
}
END_TEST

/* ---- bad arguments ------------------------------------------------- */

static enum rouse_poll never_poll(struct rouse_future *f,
				  struct rouse_context *cx)
{
	return ROUSE_PENDING;
}

START_TEST(test_einval)
{
	static const struct rouse_future_vtable no_poll = { NULL, NULL };
	static const struct rouse_future_vtable ok = { never_poll, NULL };
	struct rouse_future inner = { &ok }, bad = { &no_poll };
	struct rouse_future none = { NULL };
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_interval iv;
	struct rouse_timeout t;
	struct rouse_sleep s;
	int fds0 = test_count_fds();

	ck_assert_int_eq(rouse_sleep_init(NULL, r, 0), -EINVAL);
	ck_assert_int_eq(rouse_sleep_init(&s, NULL, 0), -EINVAL);
	ck_assert_int_eq(rouse_sleep_init(&s, r, -1), -EINVAL);
	ck_assert_int_eq(rouse_sleep_init(&s, r, INT64_MIN), -EINVAL);
	ck_assert_int_eq(rouse_sleep_until_init(NULL, r, 0), -EINVAL);
	ck_assert_int_eq(rouse_sleep_until_init(&s, NULL, 0), -EINVAL);
	ck_assert_int_eq(rouse_sleep_until_init(&s, r, -1), -EINVAL);
	ck_assert_int_eq(rouse_sleep_until_init(&s, r, INT64_MIN), -EINVAL);
	ck_assert_int_eq(rouse_interval_init(NULL, r, MS), -EINVAL);
	ck_assert_int_eq(rouse_interval_init(&iv, NULL, MS), -EINVAL);
	ck_assert_int_eq(rouse_interval_init(&iv, r, 0), -EINVAL);
	ck_assert_int_eq(rouse_interval_init(&iv, r, -1), -EINVAL);
	ck_assert_int_eq(rouse_interval_init(&iv, r, INT64_MIN), -EINVAL);
	ck_assert_int_eq(rouse_timeout_init(NULL, r, &inner, MS), -EINVAL);
	ck_assert_int_eq(rouse_timeout_init(&t, NULL, &inner, MS), -EINVAL);
	ck_assert_int_eq(rouse_timeout_init(&t, r, NULL, MS), -EINVAL);
	ck_assert_int_eq(rouse_timeout_init(&t, r, &bad, MS), -EINVAL);
	ck_assert_int_eq(rouse_timeout_init(&t, r, &none, MS), -EINVAL);
	ck_assert_int_eq(rouse_timeout_init(&t, r, &inner, -1), -EINVAL);
	ck_assert_int_eq(rouse_timeout_init(&t, r, &inner, INT64_MIN),
			 -EINVAL);
	/* Huge but valid values saturate instead of overflowing. */
	ck_assert_int_eq(rouse_sleep_init(&s, r, INT64_MAX), 0);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	ck_assert_int_eq(rouse_sleep_until_init(&s, r, INT64_MAX), 0);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	ck_assert_int_eq(rouse_interval_init(&iv, r, INT64_MAX), 0);
	ck_assert_int_eq(rouse_future_drop(&iv.sleep.base), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
	rouse_reactor_free(r);
}
END_TEST

START_TEST(test_huge_deadline_pending)
{
	struct test_fixture fx;
	struct rouse_sleep s, u;

	test_fixture_init(&fx);
	/* The end of time is a deadline like any other: never reached. */
	ck_assert_int_eq(rouse_sleep_init(&s, fx.r, INT64_MAX), 0);
	ck_assert_int_eq(rouse_sleep_until_init(&u, fx.r, INT64_MAX - 1), 0);
	ck_assert_int_eq(test_poll_with(&s.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(test_poll_with(&u.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(rouse_reactor_turn(fx.r, 0), 0);
	ck_assert_int_eq(rouse_reactor_clock_pause(fx.r), 0);
	ck_assert_int_eq(rouse_reactor_clock_advance(fx.r, 1000 * HOUR), 0);
	ck_assert_int_eq(counting_waker_total_wakes(&fx.cw), 0);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	ck_assert_int_eq(rouse_future_drop(&u.base), 0);
	test_fixture_free(&fx);
}
END_TEST

static Suite *sleep_suite(void)
{
	Suite *s = suite_create("sleep");
	TCase *tc;

	tc = tcase_create("never_early");
	tcase_add_loop_test(tc, test_sleep_never_early, 0, TEST_MODES);
	tcase_add_loop_test(tc, test_sleep_until_never_early, 0, TEST_MODES);
	tcase_add_loop_test(tc, test_sleep_many_never_early, 0, TEST_MODES);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("order");
	tcase_add_test(tc, test_order_deadline_fifo);
	tcase_add_test(tc, test_order_100k);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = tcase_create("paused_due");
	tcase_add_test(tc, test_paused_due_when_polled);
	tcase_add_test(tc, test_paused_due_before_pause);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("interval");
	tcase_add_test(tc, test_interval_paused);
	tcase_add_loop_test(tc, test_interval_real, 0, TEST_MODES);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("timeout");
	tcase_add_test(tc, test_timeout_inner_wins);
	tcase_add_test(tc, test_timeout_deadline_wins);
	tcase_add_test(tc, test_timeout_dropped_pending);
	tcase_add_loop_test(tc, test_timeout_real, 0, TEST_MODES);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("drop");
	tcase_add_test(tc, test_drop_million);
	tcase_add_test(tc, test_rearm_after_drop);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = tcase_create("einval");
	tcase_add_test(tc, test_einval);
	tcase_add_test(tc, test_huge_deadline_pending);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return test_run_suite(sleep_suite());
}
