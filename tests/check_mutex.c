// SPDX-License-Identifier: MIT
/*
 * tests/check_mutex.c - lib/mutex.h, the executor's lock, alone: the
 * word's three states, mutual exclusion under contention, and that a
 * thread asleep on the lock is always woken.
 */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>

#include "../lib/mutex.h"
#include "testutil.h"

static uint32_t word_of(struct rouse__mutex *m)
{
	return __atomic_load_n(&m->word, __ATOMIC_ACQUIRE);
}

START_TEST(test_uncontended_states)
{
	struct rouse__mutex m = ROUSE__MUTEX_INIT;

	ck_assert_uint_eq(word_of(&m), 0);
	rouse__mutex_lock(&m);
	ck_assert_uint_eq(word_of(&m), 1);
	rouse__mutex_unlock(&m);
	ck_assert_uint_eq(word_of(&m), 0);
	rouse__mutex_init(&m);
	rouse__mutex_lock(&m);
	rouse__mutex_unlock(&m);
	ck_assert_uint_eq(word_of(&m), 0);
}
END_TEST

/* ---- mutual exclusion: a plain counter, many threads ------------------- */

#define ADDERS 4
#define ADDS 100000

struct shared {
	struct rouse__mutex m;
	uint64_t counter;		/* under m only: no atomics */
	unsigned int inside;		/* under m only */
	bool overlap;
};

static void *adder(void *arg)
{
	struct shared *sh = arg;
	int i;

	for (i = 0; i < ADDS; i++) {
		rouse__mutex_lock(&sh->m);
		if (sh->inside++ != 0)
			sh->overlap = true;
		sh->counter++;
		sh->inside--;
		rouse__mutex_unlock(&sh->m);
	}
	return NULL;
}

START_TEST(test_contended_counter_exact)
{
	struct shared sh = { ROUSE__MUTEX_INIT, 0, 0, false };
	pthread_t th[ADDERS];
	int i;

	for (i = 0; i < ADDERS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, adder, &sh), 0);
	for (i = 0; i < ADDERS; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
	ck_assert(!sh.overlap);
	ck_assert_uint_eq(sh.counter, (uint64_t)ADDERS * ADDS);
	ck_assert_uint_eq(word_of(&sh.m), 0);
}
END_TEST

/* ---- the sleep path ------------------------------------------------------ */

struct sleeper {
	struct rouse__mutex *m;
	bool got;			/* atomic */
};

static void *take_once(void *arg)
{
	struct sleeper *s = arg;

	rouse__mutex_lock(s->m);
	__atomic_store_n(&s->got, true, __ATOMIC_RELEASE);
	rouse__mutex_unlock(s->m);
	return NULL;
}

/*
 * While the lock is held, lockers end their spin by marking the word 2
 * (and sleep); the holder's unlock must wake them, one after another,
 * each passing the mark on.  A lost wake leaves a join hanging: the
 * suite's timeout fails the test.
 */
START_TEST(test_sleepers_are_woken)
{
	struct rouse__mutex m = ROUSE__MUTEX_INIT;
	struct sleeper s[3];
	pthread_t th[3];
	int i;

	rouse__mutex_lock(&m);
	for (i = 0; i < 3; i++) {
		s[i].m = &m;
		s[i].got = false;
		ck_assert_int_eq(pthread_create(&th[i], NULL, take_once, &s[i]),
				 0);
	}
	/* A locker gave up spinning: it marks the word before it sleeps. */
	while (word_of(&m) != 2)
		sched_yield();
	for (i = 0; i < 3; i++)
		ck_assert(!__atomic_load_n(&s[i].got, __ATOMIC_ACQUIRE));
	rouse__mutex_unlock(&m);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert(__atomic_load_n(&s[i].got, __ATOMIC_ACQUIRE));
	}
	ck_assert_uint_eq(word_of(&m), 0);
}
END_TEST

static Suite *mutex_suite(void)
{
	Suite *s = suite_create("mutex");
	TCase *tc = tcase_create("mutex");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_uncontended_states);
	tcase_add_test(tc, test_contended_counter_exact);
	tcase_add_test(tc, test_sleepers_are_woken);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(mutex_suite());
}
