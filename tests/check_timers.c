// SPDX-License-Identifier: MIT
/* tests/check_timers.c - the reactor's timer set (wheel + exact heap) alone. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "../reactor/timer.h"
#include "testutil.h"

/* A fixed-seed generator, so that a failure reproduces. */
static uint64_t rng_state;

static uint64_t rng(void)
{
	return test_splitmix64(&rng_state);
}

static struct rouse_timer_entry *entries(size_t n)
{
	struct rouse_timer_entry *t = calloc(n, sizeof(*t));
	size_t i;

	ck_assert_ptr_nonnull(t);
	for (i = 0; i < n; i++)
		t[i].where = ROUSE__TIMER_NONE;
	return t;
}

static bool before(const struct rouse_timer_entry *a,
		   const struct rouse_timer_entry *b)
{
	return a->deadline < b->deadline ||
	       (a->deadline == b->deadline && a->seq < b->seq);
}

/*
 * Fire everything, the way the reactor does: step the clock to the next
 * wake-up (plus some lateness), pop what is due.  Checks that nothing
 * fires early, that the order is (deadline, seq), that the wake-up is
 * never later than the earliest deadline, and returns how many fired.
 * The checks per timer are test_require(), which costs no system call.
 */
static size_t drain(struct rouse__timers *ts, int64_t *now, int64_t jitter,
		    struct rouse_timer_entry *first, size_t n)
{
	struct rouse_timer_entry *prev = NULL, *t;
	size_t fired = 0, i;
	int64_t min;

	while (ts->count > 0) {
		int64_t wake = rouse__timers_next_wakeup(ts);

		/* The wake-up is at or before the earliest pending deadline. */
		min = INT64_MAX;
		for (i = 0; first != NULL && i < n; i++)
			if (rouse__timer_pending(&first[i]) &&
			    first[i].deadline < min)
				min = first[i].deadline;
		if (first != NULL)
			test_require_int(wake, <=, min);
		test_require_int(wake, !=, INT64_MAX);
		if (wake > *now)
			*now = wake + (jitter ? (int64_t)(rng() % jitter) : 0);
		while ((t = rouse__timers_pop_expired(ts, *now)) != NULL) {
			test_require_int(t->deadline, <=, *now);
			test_require(!rouse__timer_pending(t));
			if (prev != NULL)
				test_require(before(prev, t));
			prev = t;
			fired++;
		}
	}
	return fired;
}

START_TEST(test_order_random)
{
	const size_t n = 100000;
	struct rouse_timer_entry *t = entries(n);
	struct rouse__timers ts;
	int64_t now = 1000000000;
	size_t i;

	rng_state = 42;
	rouse__timers_init(&ts, now);
	for (i = 0; i < n; i++) {
		/* Up to 100 s ahead, with many exact duplicates. */
		t[i].deadline = now + (int64_t)(rng() % 100000000000ULL);
		if (i % 5 == 0)
			t[i].deadline = t[i / 2].deadline;
		rouse__timers_insert(&ts, &t[i]);
	}
	ck_assert_uint_eq(ts.count, n);
	ck_assert_uint_eq(drain(&ts, &now, 3000000, NULL, 0), n);
	ck_assert_int_eq(rouse__timers_next_wakeup(&ts), INT64_MAX);
	free(t);
}
END_TEST

START_TEST(test_wakeup_never_late)
{
	const size_t n = 2000;
	struct rouse_timer_entry *t = entries(n);
	struct rouse__timers ts;
	int64_t now = 5;
	size_t i;

	rng_state = 7;
	rouse__timers_init(&ts, now);
	for (i = 0; i < n; i++) {
		/* Spread over every level's range: 1 ns to ~4 hours. */
		t[i].deadline = now + (int64_t)(rng() >> (rng() % 64)) %
					      (INT64_C(1) << 44);
		rouse__timers_insert(&ts, &t[i]);
	}
	ck_assert_uint_eq(drain(&ts, &now, 0, t, n), n);
	free(t);
}
END_TEST

START_TEST(test_fifo_equal_deadlines_across_levels)
{
	struct rouse_timer_entry t[4];
	struct rouse__timers ts;
	int64_t now = 0, d = INT64_C(10) * 1000000000;	/* 10 s */
	int i;

	for (i = 0; i < 4; i++)
		t[i].where = ROUSE__TIMER_NONE;
	rouse__timers_init(&ts, now);
	/* a goes in far away (a high level)... */
	t[0].deadline = d;
	rouse__timers_insert(&ts, &t[0]);
	/* ...b and c with the same deadline once it is near (level 0). */
	ck_assert_ptr_null(rouse__timers_pop_expired(&ts, d - 500000));
	t[1].deadline = d;
	t[2].deadline = d;
	rouse__timers_insert(&ts, &t[1]);
	rouse__timers_insert(&ts, &t[2]);
	/* d: one nanosecond earlier, inserted last, fires first. */
	t[3].deadline = d - 1;
	rouse__timers_insert(&ts, &t[3]);
	ck_assert_ptr_null(rouse__timers_pop_expired(&ts, d - 2));
	ck_assert_ptr_eq(rouse__timers_pop_expired(&ts, d), &t[3]);
	ck_assert_ptr_eq(rouse__timers_pop_expired(&ts, d), &t[0]);
	ck_assert_ptr_eq(rouse__timers_pop_expired(&ts, d), &t[1]);
	ck_assert_ptr_eq(rouse__timers_pop_expired(&ts, d), &t[2]);
	ck_assert_ptr_null(rouse__timers_pop_expired(&ts, INT64_MAX));
	ck_assert_uint_eq(ts.count, 0);
}
END_TEST

START_TEST(test_never_early)
{
	struct rouse_timer_entry t;
	struct rouse__timers ts;
	int64_t d = 123456789;

	t.where = ROUSE__TIMER_NONE;
	rouse__timers_init(&ts, 0);
	t.deadline = d;
	rouse__timers_insert(&ts, &t);
	/* Through every cascade on the way, it never fires a ns early. */
	ck_assert_ptr_null(rouse__timers_pop_expired(&ts, d / 2));
	ck_assert_ptr_null(rouse__timers_pop_expired(&ts, d - 1000));
	ck_assert_ptr_null(rouse__timers_pop_expired(&ts, d - 1));
	ck_assert_int_le(rouse__timers_next_wakeup(&ts), d);
	ck_assert_ptr_eq(rouse__timers_pop_expired(&ts, d), &t);
}
END_TEST

START_TEST(test_past_and_extreme_deadlines)
{
	struct rouse_timer_entry t[3];
	struct rouse__timers ts;
	int i;

	for (i = 0; i < 3; i++)
		t[i].where = ROUSE__TIMER_NONE;
	rouse__timers_init(&ts, 1000000000);
	t[0].deadline = INT64_MAX;
	t[1].deadline = 0;		/* long past */
	t[2].deadline = -5;		/* clamped to 0 */
	for (i = 0; i < 3; i++)
		rouse__timers_insert(&ts, &t[i]);
	/* The past ones are due now, in insertion order. */
	ck_assert_int_eq(rouse__timers_next_wakeup(&ts), 0);
	ck_assert_ptr_eq(rouse__timers_pop_expired(&ts, 1000000000), &t[1]);
	ck_assert_ptr_eq(rouse__timers_pop_expired(&ts, 1000000000), &t[2]);
	ck_assert_ptr_null(rouse__timers_pop_expired(&ts, INT64_MAX - 1));
	ck_assert_ptr_eq(rouse__timers_pop_expired(&ts, INT64_MAX), &t[0]);
	ck_assert_uint_eq(ts.count, 0);
}
END_TEST

START_TEST(test_million_insert_remove_leaves_empty)
{
	const size_t n = 1000000;
	struct rouse_timer_entry *t = entries(n);
	struct rouse__timers ts;
	int64_t now = 777;
	size_t i;
	int level, slot;

	rng_state = 1;
	rouse__timers_init(&ts, now);
	for (i = 0; i < n; i++) {
		t[i].deadline = now + (int64_t)(rng() % 20000000000ULL);
		rouse__timers_insert(&ts, &t[i]);
	}
	/* Move part of them into the heap, then cancel in a mixed order. */
	ck_assert_ptr_nonnull(rouse__timers_pop_expired(&ts, now + 5000000));
	for (i = 0; i < n; i += 2)
		rouse__timers_remove(&ts, &t[i]);
	for (i = n - 1; i < n; i -= 2)
		rouse__timers_remove(&ts, &t[i]);
	ck_assert_uint_eq(ts.count, 0);
	ck_assert_ptr_null(ts.heap);
	for (level = 0; level < ROUSE__WHEEL_LEVELS; level++) {
		ck_assert_uint_eq(ts.occupied[level], 0);
		for (slot = 0; slot < ROUSE__WHEEL_SLOTS; slot++)
			for (int c = 0; c < ROUSE__WHEEL_CHAINS; c++)
				test_require(ts.slot[level][slot][c] == NULL);
	}
	ck_assert_int_eq(rouse__timers_next_wakeup(&ts), INT64_MAX);
	/* Removing what is not pending is a no-op. */
	rouse__timers_remove(&ts, &t[0]);
	ck_assert_uint_eq(ts.count, 0);
	free(t);
}
END_TEST

/*
 * The model of test_random_ops_against_model: the entries it believes
 * pending, in no order, and where each one is in that list.  Checking
 * "nothing due is left behind" against it looks at the few hundred
 * pending entries instead of all of them at every step.
 */
#define MODEL_NONE SIZE_MAX

struct model {
	size_t *live;	/* indices of the pending entries */
	size_t *pos;	/* pos[i]: where i is in live, or MODEL_NONE */
	size_t count;
};

static void model_init(struct model *m, size_t n)
{
	size_t i;

	m->live = calloc(n, sizeof(*m->live));
	m->pos = calloc(n, sizeof(*m->pos));
	ck_assert(m->live != NULL && m->pos != NULL);
	for (i = 0; i < n; i++)
		m->pos[i] = MODEL_NONE;
	m->count = 0;
}

static void model_add(struct model *m, size_t i)
{
	test_require(m->pos[i] == MODEL_NONE);
	m->pos[i] = m->count;
	m->live[m->count++] = i;
}

/* Take i out of the model, where it must be. */
static void model_del(struct model *m, size_t i)
{
	size_t at = m->pos[i];

	test_require(at != MODEL_NONE);
	m->live[at] = m->live[--m->count];
	m->pos[m->live[at]] = at;
	m->pos[i] = MODEL_NONE;
}

static void model_free(struct model *m)
{
	free(m->live);
	free(m->pos);
}

START_TEST(test_random_ops_against_model)
{
	const size_t n = 20000;
	struct rouse_timer_entry *t = entries(n);
	struct rouse__timers ts;
	struct model m;
	int64_t now = 0;
	size_t i, fired = 0, cancelled = 0;
	int round;

	rng_state = 99;
	model_init(&m, n);
	rouse__timers_init(&ts, now);
	for (round = 0; round < 200000; round++) {
		size_t k = rng() % n;
		struct rouse_timer_entry *e = &t[k];
		uint64_t op = rng() % 10;

		if (op < 5 && !rouse__timer_pending(e)) {
			e->deadline = now + (int64_t)(rng() % 3000000000ULL);
			rouse__timers_insert(&ts, e);
			model_add(&m, k);
		} else if (op < 7 && rouse__timer_pending(e)) {
			rouse__timers_remove(&ts, e);
			model_del(&m, k);
			cancelled++;
		} else if (op == 9) {
			struct rouse_timer_entry *x, *prev = NULL;

			now += (int64_t)(rng() % 50000000);
			while ((x = rouse__timers_pop_expired(&ts, now))) {
				test_require_int(x->deadline, <=, now);
				test_require(!rouse__timer_pending(x));
				if (prev != NULL)
					test_require(before(prev, x));
				prev = x;
				model_del(&m, (size_t)(x - t));
				fired++;
			}
			/* Nothing due is left behind. */
			for (i = 0; i < m.count; i++) {
				e = &t[m.live[i]];
				test_require(rouse__timer_pending(e));
				test_require_int(e->deadline, >, now);
			}
		}
		test_require_int(ts.count, ==, m.count);
		/* Now and then, every entry agrees with the model. */
		if (round % 1000 == 0)
			for (i = 0; i < n; i++)
				test_require(rouse__timer_pending(&t[i]) ==
					     (m.pos[i] != MODEL_NONE));
	}
	fired += drain(&ts, &now, 1000, NULL, 0);
	ck_assert_uint_eq(ts.count, 0);
	ck_assert_uint_gt(fired, 0);
	ck_assert_uint_gt(cancelled, 0);
	model_free(&m);
	free(t);
}
END_TEST

static Suite *timers_suite(void)
{
	Suite *s = suite_create("timers");
	TCase *tc;

	tc = tcase_create("order");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_order_random);
	tcase_add_test(tc, test_wakeup_never_late);
	tcase_add_test(tc, test_fifo_equal_deadlines_across_levels);
	tcase_add_test(tc, test_never_early);
	tcase_add_test(tc, test_past_and_extreme_deadlines);
	suite_add_tcase(s, tc);

	tc = tcase_create("cancel");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_million_insert_remove_leaves_empty);
	tcase_add_test(tc, test_random_ops_against_model);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(timers_suite());
}
