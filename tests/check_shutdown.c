// SPDX-License-Identifier: MIT
/*
 * tests/check_shutdown.c - rouse_executor_shutdown(3) and the executor's
 * metrics (rouse_executor_metrics(3)): tasks finish in their grace, the
 * rest are cancelled at the deadline with their futures dropped, spawns
 * are refused from the start, the report adds up, the threads are joined;
 * the counters count what ran.
 *
 * Cases with a loop index run twice: 0 current-thread, 1 multi-thread
 * with two workers.
 */
#include "testutil.h"

/* Yields `left` times, then is ready; counts its drops. */
struct yielder {
	struct rouse_future base;
	int left;
	atomic_int *drops;
};

static enum rouse_poll yielder_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct yielder *y = (struct yielder *)f;

	if (y->left-- <= 0)
		return ROUSE_READY;
	rouse_waker_wake_by_ref(cx->waker);
	return ROUSE_PENDING;
}

static void yielder_drop(struct rouse_future *f)
{
	struct yielder *y = (struct yielder *)f;

	if (y->drops != NULL)
		atomic_fetch_add(y->drops, 1);
}

static const struct rouse_future_vtable yielder_vt = { yielder_poll,
						       yielder_drop };

/* Pending for ever, never woken; counts its drops. */
static enum rouse_poll forever_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	(void)f;
	(void)cx;
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable forever_vt = { forever_poll,
						       yielder_drop };

START_TEST(grace_is_enough)
{
	int threads = test_count_threads_settled();
	struct rouse_executor *ex = test_executor_make(_i);
	struct rouse_shutdown_report rep;
	struct rouse_executor_metrics m;
	struct rouse_join_handle h[20];
	atomic_int drops = 0;
	int k;

	for (k = 0; k < 20; k++) {
		struct yielder y = { { &yielder_vt }, k % 5, &drops };

		ck_assert_int_eq(rouse_spawn(ex, &y.base, sizeof(y), &h[k]),
				 0);
	}
	ck_assert_int_eq(rouse_executor_shutdown(ex, -1, &rep), 0);
	/* Workers may finish some before the call: those are not counted. */
	if (_i == 0)
		ck_assert_uint_eq(rep.completed, 20);
	else
		ck_assert_uint_le(rep.completed, 20);
	ck_assert_uint_eq(rep.aborted, 0);
	ck_assert_int_eq(atomic_load(&drops), 20);
	for (k = 0; k < 20; k++) {
		ck_assert_int_eq(test_poll_noop(&h[k].base), ROUSE_READY);
		ck_assert_int_eq(h[k].result, 0);
		rouse_future_drop(&h[k].base);
	}
	/* The threads are joined by the shutdown itself. */
	ck_assert_int_eq(test_wait_threads(threads), threads);
	ck_assert_int_eq(rouse_executor_metrics(ex, &m), 0);
	ck_assert_uint_eq(m.spawned, 20);
	ck_assert_uint_eq(m.completed, 20);
	ck_assert_uint_eq(m.aborted, 0);
	ck_assert_uint_eq(m.tasks_alive, 0);
	/* 0+1+2+3+4 yields, four times over, and one last poll each. */
	ck_assert_uint_eq(m.polls, 4 * 10 + 20);
	/* Spawns, block_on and a second shutdown are refused after it. */
	{
		struct yielder y = { { &yielder_vt }, 0, NULL };

		ck_assert_int_eq(rouse_spawn(ex, &y.base, sizeof(y), NULL),
				 -ECANCELED);
		ck_assert_int_lt(rouse_executor_block_on(ex, &y.base), 0);
	}
	ck_assert_int_eq(rouse_executor_shutdown(ex, -1, &rep), -ESHUTDOWN);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

START_TEST(deadline_cancels_the_rest)
{
	int threads = test_count_threads_settled();
	struct rouse_executor *ex = test_executor_make(_i);
	struct rouse_shutdown_report rep;
	struct rouse_executor_metrics m;
	struct rouse_join_handle h[6];
	atomic_int drops = 0;
	int k, ok = 0, cancelled = 0;

	for (k = 0; k < 6; k++) {
		struct yielder y = { { k < 3 ? &forever_vt : &yielder_vt },
				     2, &drops };

		ck_assert_int_eq(rouse_spawn(ex, &y.base, sizeof(y), &h[k]),
				 0);
	}
	ck_assert_int_eq(rouse_executor_shutdown(ex, 1000000, &rep), 0);
	/*
	 * The three that never finish are cancelled; every future dropped.
	 * (Workers may finish some of the others before the call.)
	 */
	if (_i == 0)
		ck_assert_uint_eq(rep.completed + rep.aborted, 6);
	ck_assert_uint_ge(rep.aborted, 3);
	ck_assert_int_eq(atomic_load(&drops), 6);
	for (k = 0; k < 6; k++) {
		ck_assert_int_eq(test_poll_noop(&h[k].base), ROUSE_READY);
		if (k < 3)
			ck_assert_int_eq(h[k].result, -ECANCELED);
		if (h[k].result == 0)
			ok++;
		else
			cancelled++;
		rouse_future_drop(&h[k].base);
	}
	if (_i == 0)
		ck_assert_uint_eq(rep.completed, ok);
	else
		ck_assert_uint_le(rep.completed, ok);
	ck_assert_uint_eq(rep.aborted, cancelled);
	ck_assert_int_eq(rouse_executor_metrics(ex, &m), 0);
	ck_assert_uint_eq(m.aborted, cancelled);
	ck_assert_uint_eq(m.tasks_alive, 0);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
	ck_assert_int_eq(test_wait_threads(threads), threads);
}
END_TEST

/*
 * A task spawns a short task at every poll until a spawn is refused: the
 * shutdown refuses them from its start (-ESHUTDOWN), and then every task
 * finishes in the grace.
 */
struct spawner {
	struct rouse_future base;
	int *last_err;
	atomic_int *spawned;
};

static enum rouse_poll spawner_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct spawner *s = (struct spawner *)f;
	struct yielder y = { { &yielder_vt }, 1, NULL };
	int err = rouse_spawn(NULL, &y.base, sizeof(y), NULL);

	if (err < 0) {
		*s->last_err = err;
		return ROUSE_READY;
	}
	atomic_fetch_add(s->spawned, 1);
	rouse_waker_wake_by_ref(cx->waker);
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable spawner_vt = { spawner_poll, NULL };

START_TEST(spawns_refused)
{
	struct rouse_executor *ex = test_executor_make(_i);
	struct rouse_shutdown_report rep;
	struct rouse_executor_metrics m;
	atomic_int spawned = 0;
	int last_err = 0;
	struct spawner s = { { &spawner_vt }, &last_err, &spawned };

	ck_assert_int_eq(rouse_spawn(ex, &s.base, sizeof(s), NULL), 0);
	ck_assert_int_eq(rouse_executor_shutdown(ex, -1, &rep), 0);
	ck_assert_int_eq(last_err, -ESHUTDOWN);
	ck_assert_uint_eq(rep.aborted, 0);
	ck_assert_int_eq(rouse_executor_metrics(ex, &m), 0);
	ck_assert_uint_eq(m.spawned, 1 + (uint64_t)atomic_load(&spawned));
	ck_assert_uint_eq(m.completed, m.spawned);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/* From inside one of its tasks, a shutdown would wait for itself. */
struct inner {
	struct rouse_future base;
	struct rouse_executor *ex;
	int err;
};

static enum rouse_poll inner_poll(struct rouse_future *f,
				  struct rouse_context *cx)
{
	struct inner *in = (struct inner *)f;

	(void)cx;
	in->err = rouse_executor_shutdown(in->ex, 0, NULL);
	return ROUSE_READY;
}

static const struct rouse_future_vtable inner_vt = { inner_poll, NULL };

START_TEST(bad_calls)
{
	struct rouse_executor *ex = test_executor_make(_i);
	struct rouse_executor_metrics m;
	struct rouse_worker_metrics wm;
	struct inner in = { { &inner_vt }, ex, 0 };
	struct rouse_join_handle h;

	ck_assert_int_eq(rouse_executor_shutdown(NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(rouse_executor_metrics(NULL, &m), -EINVAL);
	ck_assert_int_eq(rouse_executor_metrics(ex, NULL), -EINVAL);
	ck_assert_int_eq(rouse_executor_worker_metrics(ex, 0, NULL), -EINVAL);
	ck_assert_int_eq(rouse_executor_worker_metrics(ex, _i == 0 ? 1 : 2,
						       &wm), -EINVAL);
	ck_assert_int_eq(rouse_spawn(ex, &in.base, sizeof(in), &h), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &h.base), 0);
	ck_assert_int_eq(((struct inner *)h.output)->err, -EDEADLK);
	rouse_future_drop(&h.base);
	/* Nothing was disturbed: the shutdown still works. */
	ck_assert_int_eq(rouse_executor_shutdown(ex, 0, NULL), 0);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/*
 * Metrics of a current-thread executor, where every count is exact: ten
 * tasks of three yields each, spawned from outside, run by block_on.
 */
struct all_of {
	struct rouse_future base;
	struct rouse_join_handle *h;
	int n, next;
};

static enum rouse_poll all_of_poll(struct rouse_future *f,
				   struct rouse_context *cx)
{
	struct all_of *a = (struct all_of *)f;

	for (; a->next < a->n; a->next++) {
		if (rouse_future_poll(&a->h[a->next].base, cx) ==
		    ROUSE_PENDING)
			return ROUSE_PENDING;
		rouse_future_drop(&a->h[a->next].base);
	}
	return ROUSE_READY;
}

static const struct rouse_future_vtable all_of_vt = { all_of_poll, NULL };

START_TEST(metrics_count)
{
	struct rouse_executor *ex = test_executor_make(0);
	struct rouse_executor_metrics m;
	struct rouse_worker_metrics wm;
	struct rouse_join_handle h[10];
	struct all_of all = { { &all_of_vt }, h, 10, 0 };
	int k;

	ck_assert_int_eq(rouse_executor_metrics(ex, &m), 0);
	ck_assert_uint_eq(m.workers, 1);
	ck_assert_uint_eq(m.spawned, 0);
	for (k = 0; k < 10; k++) {
		struct yielder y = { { &yielder_vt }, 3, NULL };

		ck_assert_int_eq(rouse_spawn(ex, &y.base, sizeof(y), &h[k]),
				 0);
	}
	ck_assert_int_eq(rouse_executor_metrics(ex, &m), 0);
	ck_assert_uint_eq(m.spawned, 10);
	ck_assert_uint_eq(m.tasks_alive, 10);
	ck_assert_int_eq(rouse_executor_block_on(ex, &all.base), 0);
	ck_assert_int_eq(rouse_executor_metrics(ex, &m), 0);
	ck_assert_uint_eq(m.spawned, 10);
	ck_assert_uint_eq(m.completed, 10);
	ck_assert_uint_eq(m.tasks_alive, 0);
	ck_assert_uint_eq(m.polls, 40);
	ck_assert_uint_eq(m.steals, 0);
	ck_assert_uint_eq(m.inject_depth, 0);
	ck_assert_int_eq(rouse_executor_worker_metrics(ex, 0, &wm), 0);
	ck_assert_uint_eq(wm.polls, 40);
	ck_assert_uint_eq(wm.completed, 10);
	/* Spawned from outside: no worker's own. */
	ck_assert_uint_eq(wm.spawned, 0);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

static Suite *shutdown_suite(void)
{
	Suite *s = suite_create("shutdown");
	TCase *tc = tcase_create("shutdown");

	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	tcase_add_loop_test(tc, grace_is_enough, 0, 2);
	tcase_add_loop_test(tc, deadline_cancels_the_rest, 0, 2);
	tcase_add_loop_test(tc, spawns_refused, 0, 2);
	tcase_add_loop_test(tc, bad_calls, 0, 2);
	tcase_add_test(tc, metrics_count);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(shutdown_suite());
}
