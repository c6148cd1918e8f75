// SPDX-License-Identifier: MIT
/* tests/check_future.c - the header-only core: wakers, futures, parkers. */
#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include <rouse/future.h>

#include "testutil.h"

/* ---- waker helpers ------------------------------------------------- */

START_TEST(test_waker_wake_by_ref)
{
	struct counting_waker c;
	struct rouse_waker w = counting_waker(&c);

	ck_assert_int_eq(rouse_waker_wake_by_ref(&w), 0);
	ck_assert_int_eq(atomic_load(&c.wake_by_refs), 1);
	ck_assert_int_eq(atomic_load(&c.wakes), 0);
	ck_assert_int_eq(atomic_load(&c.clones), 0);
	ck_assert_int_eq(atomic_load(&c.drops), 0);
	ck_assert_int_eq(atomic_load(&c.live), 1);
	/* The reference is kept: the waker is still usable. */
	ck_assert_ptr_nonnull(w.vtable);
	ck_assert_ptr_eq(w.data, &c);
	ck_assert_int_eq(rouse_waker_wake_by_ref(&w), 0);
	ck_assert_int_eq(atomic_load(&c.wake_by_refs), 2);
	ck_assert_int_eq(rouse_waker_drop(&w), 0);
	ck_assert_int_eq(atomic_load(&c.live), 0);
}
END_TEST

START_TEST(test_waker_wake_consumes)
{
	struct counting_waker c;
	struct rouse_waker w = counting_waker(&c);

	ck_assert_int_eq(rouse_waker_wake(&w), 0);
	ck_assert_int_eq(atomic_load(&c.wakes), 1);
	ck_assert_int_eq(atomic_load(&c.wake_by_refs), 0);
	ck_assert_int_eq(atomic_load(&c.drops), 0);
	ck_assert_int_eq(atomic_load(&c.live), 0);
	ck_assert_ptr_null(w.vtable);
	/* A consumed waker refuses every further use, calling nothing. */
	ck_assert_int_eq(rouse_waker_wake(&w), -EINVAL);
	ck_assert_int_eq(rouse_waker_wake_by_ref(&w), -EINVAL);
	ck_assert_int_eq(rouse_waker_drop(&w), -EINVAL);
	ck_assert_int_eq(atomic_load(&c.wakes), 1);
	ck_assert_int_eq(atomic_load(&c.wake_by_refs), 0);
	ck_assert_int_eq(atomic_load(&c.drops), 0);
}
END_TEST

START_TEST(test_waker_drop_consumes)
{
	struct counting_waker c;
	struct rouse_waker w = counting_waker(&c);
	struct rouse_waker out = { NULL, NULL };

	ck_assert_int_eq(rouse_waker_drop(&w), 0);
	ck_assert_int_eq(atomic_load(&c.drops), 1);
	ck_assert_int_eq(atomic_load(&c.wakes), 0);
	ck_assert_int_eq(atomic_load(&c.wake_by_refs), 0);
	ck_assert_int_eq(atomic_load(&c.live), 0);
	ck_assert_ptr_null(w.vtable);
	ck_assert_int_eq(rouse_waker_drop(&w), -EINVAL);
	ck_assert_int_eq(rouse_waker_wake(&w), -EINVAL);
	ck_assert_int_eq(rouse_waker_clone(&w, &out), -EINVAL);
	ck_assert_ptr_null(out.vtable);
	ck_assert_int_eq(atomic_load(&c.drops), 1);
	ck_assert_int_eq(atomic_load(&c.clones), 0);
}
END_TEST

START_TEST(test_waker_clone)
{
	struct counting_waker c;
	struct rouse_waker w = counting_waker(&c);
	struct rouse_waker c1, c2;

	ck_assert_int_eq(rouse_waker_clone(&w, &c1), 0);
	ck_assert_int_eq(atomic_load(&c.clones), 1);
	ck_assert_int_eq(atomic_load(&c.live), 2);
	ck_assert_ptr_eq(c1.data, &c);
	ck_assert_ptr_eq(c1.vtable, w.vtable);
	/* A clone of a clone is one more independent reference. */
	ck_assert_int_eq(rouse_waker_clone(&c1, &c2), 0);
	ck_assert_int_eq(atomic_load(&c.clones), 2);
	ck_assert_int_eq(atomic_load(&c.live), 3);
	ck_assert_int_eq(atomic_load(&c.wakes), 0);
	ck_assert_int_eq(atomic_load(&c.wake_by_refs), 0);
	ck_assert_int_eq(atomic_load(&c.drops), 0);
	/* Releasing one leaves the others usable. */
	ck_assert_int_eq(rouse_waker_wake(&c1), 0);
	ck_assert_int_eq(rouse_waker_wake_by_ref(&c2), 0);
	ck_assert_int_eq(rouse_waker_drop(&c2), 0);
	ck_assert_int_eq(rouse_waker_wake(&w), 0);
	ck_assert_int_eq(atomic_load(&c.wakes), 2);
	ck_assert_int_eq(atomic_load(&c.wake_by_refs), 1);
	ck_assert_int_eq(atomic_load(&c.drops), 1);
	ck_assert_int_eq(atomic_load(&c.live), 0);
}
END_TEST

START_TEST(test_waker_einval)
{
	struct counting_waker c;
	struct rouse_waker w = counting_waker(&c);
	struct rouse_waker nullvt = { &c, NULL };
	struct rouse_waker out = { NULL, NULL };

	ck_assert_int_eq(rouse_waker_wake(NULL), -EINVAL);
	ck_assert_int_eq(rouse_waker_wake_by_ref(NULL), -EINVAL);
	ck_assert_int_eq(rouse_waker_drop(NULL), -EINVAL);
	ck_assert_int_eq(rouse_waker_clone(NULL, &out), -EINVAL);
	ck_assert_int_eq(rouse_waker_wake(&nullvt), -EINVAL);
	ck_assert_int_eq(rouse_waker_wake_by_ref(&nullvt), -EINVAL);
	ck_assert_int_eq(rouse_waker_drop(&nullvt), -EINVAL);
	ck_assert_int_eq(rouse_waker_clone(&nullvt, &out), -EINVAL);
	ck_assert_ptr_null(out.vtable);
	/* A valid waker with nowhere to put the clone: nothing is cloned. */
	ck_assert_int_eq(rouse_waker_clone(&w, NULL), -EINVAL);
	ck_assert_int_eq(atomic_load(&c.clones), 0);
	ck_assert_int_eq(atomic_load(&c.live), 1);
	/* Failed calls leave the data pointer alone. */
	ck_assert_ptr_eq(nullvt.data, &c);
	ck_assert_int_eq(rouse_waker_drop(&w), 0);
}
END_TEST

/* ---- will_wake ----------------------------------------------------- */

static struct rouse_waker other_vt_clone(void *data)
{
	struct rouse_waker w = { data, NULL };

	return w;
}

static void other_vt_op(void *data)
{
	(void)data;
}

static const struct rouse_waker_vtable other_vtable = {
	other_vt_clone, other_vt_op, other_vt_op, other_vt_op,
};

START_TEST(test_will_wake)
{
	struct counting_waker c, d;
	struct rouse_waker w = counting_waker(&c);
	struct rouse_waker x = counting_waker(&d);
	struct rouse_waker same_data_other_vt = { &c, &other_vtable };
	struct rouse_waker nullvt = { &c, NULL };
	struct rouse_waker cl;

	ck_assert(rouse_waker_will_wake(&w, &w));
	ck_assert_int_eq(rouse_waker_clone(&w, &cl), 0);
	ck_assert(rouse_waker_will_wake(&w, &cl));
	ck_assert(rouse_waker_will_wake(&cl, &w));
	/* Different data, or the same data with another vtable. */
	ck_assert(!rouse_waker_will_wake(&w, &x));
	ck_assert(!rouse_waker_will_wake(&x, &w));
	ck_assert(!rouse_waker_will_wake(&w, &same_data_other_vt));
	/* NULL, or no vtable, is never the same task. */
	ck_assert(!rouse_waker_will_wake(&w, NULL));
	ck_assert(!rouse_waker_will_wake(NULL, &w));
	ck_assert(!rouse_waker_will_wake(NULL, NULL));
	ck_assert(!rouse_waker_will_wake(&w, &nullvt));
	ck_assert(!rouse_waker_will_wake(&nullvt, &nullvt));
	/* will_wake calls nothing. */
	ck_assert_int_eq(atomic_load(&c.clones), 1);
	ck_assert_int_eq(counting_waker_total_wakes(&c), 0);
	ck_assert_int_eq(atomic_load(&c.drops), 0);
	ck_assert_int_eq(rouse_waker_drop(&cl), 0);
	ck_assert_int_eq(rouse_waker_drop(&w), 0);
	ck_assert_int_eq(rouse_waker_drop(&x), 0);
}
END_TEST

/* ---- the noop waker ------------------------------------------------ */

START_TEST(test_noop_waker)
{
	struct rouse_waker w = rouse_waker_noop();
	struct rouse_waker w2 = rouse_waker_noop();
	struct rouse_waker c, cc;

	ck_assert_ptr_nonnull(w.vtable);
	ck_assert_ptr_null(w.data);
	ck_assert(rouse_waker_will_wake(&w, &w2));
	ck_assert_int_eq(rouse_waker_clone(&w, &c), 0);
	ck_assert(rouse_waker_will_wake(&w, &c));
	ck_assert_int_eq(rouse_waker_clone(&c, &cc), 0);
	ck_assert(rouse_waker_will_wake(&cc, &w));
	ck_assert_int_eq(rouse_waker_wake_by_ref(&w), 0);
	ck_assert_int_eq(rouse_waker_wake_by_ref(&c), 0);
	ck_assert_int_eq(rouse_waker_wake(&c), 0);
	ck_assert_int_eq(rouse_waker_drop(&cc), 0);
	ck_assert_int_eq(rouse_waker_drop(&w), 0);
	/* Dropping is optional: w2 is simply forgotten. */
	ck_assert_int_eq(rouse_waker_wake_by_ref(&w2), 0);
}
END_TEST

/* ---- futures ------------------------------------------------------- */

struct test_future {
	struct rouse_future base;
	enum rouse_poll answer;
	int polls;
	int drops;
	struct rouse_future *seen_self;
	struct rouse_context *seen_cx;
};

static enum rouse_poll tf_poll(struct rouse_future *self,
			       struct rouse_context *cx)
{
	struct test_future *f = (struct test_future *)self;

	f->polls++;
	f->seen_self = self;
	f->seen_cx = cx;
	return f->answer;
}

static void tf_drop(struct rouse_future *self)
{
	((struct test_future *)self)->drops++;
}

static const struct rouse_future_vtable tf_vtable = { tf_poll, tf_drop };
static const struct rouse_future_vtable tf_vtable_nodrop = { tf_poll, NULL };
static const struct rouse_future_vtable tf_vtable_nopoll = { NULL, tf_drop };

START_TEST(test_future_poll)
{
	struct test_future f = { .base.vtable = &tf_vtable };
	struct rouse_waker w = rouse_waker_noop();
	struct rouse_context cx = { &w };

	f.answer = ROUSE_PENDING;
	ck_assert_int_eq(rouse_future_poll(&f.base, &cx), ROUSE_PENDING);
	ck_assert_int_eq(f.polls, 1);
	ck_assert_ptr_eq(f.seen_self, &f.base);
	ck_assert_ptr_eq(f.seen_cx, &cx);
	f.answer = ROUSE_READY;
	ck_assert_int_eq(rouse_future_poll(&f.base, &cx), ROUSE_READY);
	ck_assert_int_eq(f.polls, 2);
	ck_assert_int_eq(f.drops, 0);
}
END_TEST

START_TEST(test_future_poll_einval)
{
	struct test_future f = { .base.vtable = &tf_vtable };
	struct test_future nopoll = { .base.vtable = &tf_vtable_nopoll };
	struct test_future novt = { .base.vtable = NULL };
	struct rouse_waker w = rouse_waker_noop();
	struct rouse_waker bad = { NULL, NULL };
	struct rouse_context cx = { &w };
	struct rouse_context no_waker = { NULL };
	struct rouse_context bad_waker = { &bad };

	ck_assert_int_eq(rouse_future_poll(NULL, &cx), -EINVAL);
	ck_assert_int_eq(rouse_future_poll(&novt.base, &cx), -EINVAL);
	ck_assert_int_eq(rouse_future_poll(&nopoll.base, &cx), -EINVAL);
	ck_assert_int_eq(rouse_future_poll(&f.base, NULL), -EINVAL);
	ck_assert_int_eq(rouse_future_poll(&f.base, &no_waker), -EINVAL);
	ck_assert_int_eq(rouse_future_poll(&f.base, &bad_waker), -EINVAL);
	ck_assert_int_eq(f.polls, 0);
	ck_assert_int_eq(nopoll.drops, 0);
}
END_TEST

START_TEST(test_future_drop)
{
	struct test_future f = { .base.vtable = &tf_vtable };
	struct test_future nodrop = { .base.vtable = &tf_vtable_nodrop };
	struct test_future novt = { .base.vtable = NULL };

	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	ck_assert_int_eq(f.drops, 1);
	ck_assert_int_eq(f.polls, 0);
	/* A dropped future is spent: a second drop runs nothing. */
	ck_assert_ptr_null(f.base.vtable);
	ck_assert_int_eq(rouse_future_drop(&f.base), -EINVAL);
	ck_assert_int_eq(f.drops, 1);
	/* No drop entry: nothing to release, and that is not an error. */
	ck_assert_int_eq(rouse_future_drop(&nodrop.base), 0);
	ck_assert_int_eq(nodrop.drops, 0);
	ck_assert_ptr_null(nodrop.base.vtable);
	ck_assert_int_eq(rouse_future_drop(NULL), -EINVAL);
	ck_assert_int_eq(rouse_future_drop(&novt.base), -EINVAL);
}
END_TEST

/* ---- parkers ------------------------------------------------------- */

struct fake_parker {
	int parks;
	int unparks;
	int wakers;
	int64_t last_timeout;
	int park_ret;
	int waker_ret;
	struct counting_waker cw;
};

static int fp_park(void *data, int64_t timeout_ns)
{
	struct fake_parker *p = data;

	p->parks++;
	p->last_timeout = timeout_ns;
	return p->park_ret;
}

static void fp_unpark(void *data)
{
	((struct fake_parker *)data)->unparks++;
}

static int fp_waker(void *data, struct rouse_waker *out)
{
	struct fake_parker *p = data;

	p->wakers++;
	if (p->waker_ret < 0)
		return p->waker_ret;
	*out = counting_waker(&p->cw);
	return 0;
}

static const struct rouse_parker_vtable fp_vtable = {
	fp_park, fp_unpark, fp_waker,
};

START_TEST(test_parker_helpers)
{
	struct fake_parker fp = { 0 };
	struct rouse_parker p = { &fp, &fp_vtable };
	struct rouse_waker w = { NULL, NULL };

	fp.park_ret = -ETIMEDOUT;
	ck_assert_int_eq(rouse_parker_park(&p, 1234), -ETIMEDOUT);
	ck_assert_int_eq(fp.parks, 1);
	ck_assert(fp.last_timeout == 1234);
	fp.park_ret = 0;
	ck_assert_int_eq(rouse_parker_park(&p, -1), 0);
	ck_assert_int_eq(fp.parks, 2);
	ck_assert(fp.last_timeout == -1);
	fp.park_ret = -EIO;
	ck_assert_int_eq(rouse_parker_park(&p, 0), -EIO);
	ck_assert(fp.last_timeout == 0);
	ck_assert_int_eq(fp.parks, 3);

	ck_assert_int_eq(rouse_parker_unpark(&p), 0);
	ck_assert_int_eq(fp.unparks, 1);

	ck_assert_int_eq(rouse_parker_waker(&p, &w), 0);
	ck_assert_int_eq(fp.wakers, 1);
	ck_assert_ptr_eq(w.data, &fp.cw);
	ck_assert_int_eq(atomic_load(&fp.cw.live), 1);
	ck_assert_int_eq(rouse_waker_drop(&w), 0);
	ck_assert_int_eq(atomic_load(&fp.cw.live), 0);

	/* The parker's own error comes back unchanged. */
	fp.waker_ret = -ENOMEM;
	ck_assert_int_eq(rouse_parker_waker(&p, &w), -ENOMEM);
	ck_assert_int_eq(fp.wakers, 2);
	ck_assert_int_eq(fp.parks, 3);
	ck_assert_int_eq(fp.unparks, 1);
}
END_TEST

START_TEST(test_parker_einval)
{
	static const struct rouse_parker_vtable no_park = {
		NULL, fp_unpark, fp_waker,
	};
	static const struct rouse_parker_vtable no_unpark = {
		fp_park, NULL, fp_waker,
	};
	static const struct rouse_parker_vtable no_waker = {
		fp_park, fp_unpark, NULL,
	};
	const struct rouse_parker_vtable *partial[] = {
		&no_park, &no_unpark, &no_waker, NULL,
	};
	struct fake_parker fp = { 0 };
	struct rouse_parker good = { &fp, &fp_vtable };
	struct rouse_waker w = { NULL, NULL };
	size_t i;

	ck_assert_int_eq(rouse_parker_park(NULL, -1), -EINVAL);
	ck_assert_int_eq(rouse_parker_unpark(NULL), -EINVAL);
	ck_assert_int_eq(rouse_parker_waker(NULL, &w), -EINVAL);
	ck_assert_int_eq(rouse_parker_waker(&good, NULL), -EINVAL);
	/* Each of park, unpark, waker missing, and no vtable at all. */
	for (i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
		struct rouse_parker p = { &fp, partial[i] };

		ck_assert_int_eq(rouse_parker_park(&p, -1), -EINVAL);
		ck_assert_int_eq(rouse_parker_park(&p, 0), -EINVAL);
		ck_assert_int_eq(rouse_parker_unpark(&p), -EINVAL);
		ck_assert_int_eq(rouse_parker_waker(&p, &w), -EINVAL);
	}
	/* None of the entries that were there was called. */
	ck_assert_int_eq(fp.parks, 0);
	ck_assert_int_eq(fp.unparks, 0);
	ck_assert_int_eq(fp.wakers, 0);
	ck_assert_ptr_null(w.vtable);
}
END_TEST

static Suite *future_suite(void)
{
	Suite *s = suite_create("future");
	TCase *tc;

	tc = tcase_create("waker");
	tcase_add_test(tc, test_waker_wake_by_ref);
	tcase_add_test(tc, test_waker_wake_consumes);
	tcase_add_test(tc, test_waker_drop_consumes);
	tcase_add_test(tc, test_waker_clone);
	tcase_add_test(tc, test_waker_einval);
	suite_add_tcase(s, tc);

	tc = tcase_create("will_wake");
	tcase_add_test(tc, test_will_wake);
	suite_add_tcase(s, tc);

	tc = tcase_create("noop");
	tcase_add_test(tc, test_noop_waker);
	suite_add_tcase(s, tc);

	tc = tcase_create("future");
	tcase_add_test(tc, test_future_poll);
	tcase_add_test(tc, test_future_poll_einval);
	tcase_add_test(tc, test_future_drop);
	suite_add_tcase(s, tc);

	tc = tcase_create("parker");
	tcase_add_test(tc, test_parker_helpers);
	tcase_add_test(tc, test_parker_einval);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return test_run_suite(future_suite());
}
