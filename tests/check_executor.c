// SPDX-License-Identifier: MIT
/* tests/check_executor.c - rouse_block_on and the per-thread eventfd parker. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <rouse/executor.h>

#include "testutil.h"

/* ---- shared scaffolding -------------------------------------------- */

/*
 * A future that counts its polls and drops and asks fn what to answer.
 * polls is counted before fn runs, so fn sees 1 on the first poll.
 */
struct tfut;
typedef enum rouse_poll tfut_fn(struct tfut *f, struct rouse_context *cx);

struct tfut {
	struct rouse_future base;
	tfut_fn *fn;
	void *arg;
	int polls;
	int drops;
	pid_t poll_tid;
};

static enum rouse_poll tfut_poll(struct rouse_future *self,
				 struct rouse_context *cx)
{
	struct tfut *f = (struct tfut *)self;

	f->polls++;
	f->poll_tid = test_gettid();
	return f->fn(f, cx);
}

static void tfut_drop(struct rouse_future *self)
{
	((struct tfut *)self)->drops++;
}

static const struct rouse_future_vtable tfut_vtable = { tfut_poll, tfut_drop };

static struct tfut tfut_make(tfut_fn *fn, void *arg)
{
	struct tfut f = { .base.vtable = &tfut_vtable, .fn = fn, .arg = arg };

	return f;
}

static enum rouse_poll fn_ready(struct tfut *f, struct rouse_context *cx)
{
	return ROUSE_READY;
}

/* Pending once, having woken itself; then ready. */
static enum rouse_poll fn_self_wake_once(struct tfut *f,
					 struct rouse_context *cx)
{
	if (f->polls > 1)
		return ROUSE_READY;
	ck_assert_int_eq(rouse_waker_wake_by_ref(cx->waker), 0);
	return ROUSE_PENDING;
}

/*
 * Block on f: it must be ready after polls polls, and the eventfd parker
 * must neither park nor be written to meanwhile.
 */
static void block_on_unparked(struct tfut *f, int polls)
{
	struct rouse_executor_stats s0 = test_executor_stats(), s1;

	ck_assert_int_eq(rouse_block_on(&f->base), 0);
	s1 = test_executor_stats();
	ck_assert_int_eq(f->polls, polls);
	ck_assert(s1.parks == s0.parks);
	ck_assert(s1.eventfd_writes == s0.eventfd_writes);
}

/* ---- ready on the first poll --------------------------------------- */

START_TEST(test_ready_first_poll)
{
	struct tfut f = tfut_make(fn_ready, NULL);

	block_on_unparked(&f, 1);
	/* block_on does not drop the future: that is the caller's call. */
	ck_assert_int_eq(f.drops, 0);
	ck_assert_int_eq(f.poll_tid, test_gettid());
	/* And again on the same thread, with the same parker. */
	ck_assert_int_eq(rouse_block_on(&f.base), 0);
	ck_assert_int_eq(f.polls, 2);
}
END_TEST

/* ---- woken from another thread ------------------------------------- */

struct xwake {
	struct rouse_waker kept;	/* the clone the other thread wakes */
	uint64_t parks0;		/* park count before block_on */
	atomic_int waker_tid;		/* set by the other thread, then wake */
	pthread_t thread;
};

static void *xwake_thread(void *arg)
{
	struct xwake *x = arg;

	/* Wake only once the block_on thread is provably parked. */
	test_wait_parks(x->parks0 + 1);
	atomic_store(&x->waker_tid, test_gettid());
	ck_assert_int_eq(rouse_waker_wake(&x->kept), 0);
	return NULL;
}

static enum rouse_poll fn_xwake(struct tfut *f, struct rouse_context *cx)
{
	struct xwake *x = f->arg;

	if (f->polls == 1) {
		ck_assert_int_eq(rouse_waker_clone(cx->waker, &x->kept), 0);
		x->thread = test_thread_start(xwake_thread, x);
		return ROUSE_PENDING;
	}
	return atomic_load(&x->waker_tid) != 0 ? ROUSE_READY : ROUSE_PENDING;
}

START_TEST(test_woken_from_other_thread)
{
	struct xwake x = { 0 };
	struct tfut f = tfut_make(fn_xwake, &x);
	struct rouse_executor_stats s0 = test_executor_stats(), s1;

	x.parks0 = s0.parks;
	ck_assert_int_eq(rouse_block_on(&f.base), 0);
	s1 = test_executor_stats();
	test_thread_join(x.thread);
	/* One pending poll, one park, one wake that wrote the eventfd. */
	ck_assert_int_eq(f.polls, 2);
	ck_assert_int_ne(atomic_load(&x.waker_tid), 0);
	ck_assert_int_ne(atomic_load(&x.waker_tid), test_gettid());
	ck_assert(s1.parks - s0.parks == 1);
	ck_assert(s1.eventfd_writes - s0.eventfd_writes == 1);
}
END_TEST

/* ---- wakes while running cost no system call ----------------------- */

#define MANY_WAKES 100000

struct during {
	struct rouse_waker clone;
	atomic_int in_poll;
	atomic_int other_done;
	pthread_t thread;
};

static void *during_thread(void *arg)
{
	struct during *d = arg;
	int i;

	test_spin_until_eq(&d->in_poll, 1);
	for (i = 0; i < MANY_WAKES; i++)
		test_require_int(rouse_waker_wake_by_ref(&d->clone), ==, 0);
	ck_assert_int_eq(rouse_waker_drop(&d->clone), 0);
	atomic_store(&d->other_done, 1);
	return NULL;
}

static enum rouse_poll fn_during(struct tfut *f, struct rouse_context *cx)
{
	struct during *d = f->arg;
	int i;

	if (f->polls > 1)
		return ROUSE_READY;
	ck_assert_int_eq(rouse_waker_clone(cx->waker, &d->clone), 0);
	d->thread = test_thread_start(during_thread, d);
	/* The other thread wakes only while this poll is running. */
	atomic_store(&d->in_poll, 1);
	for (i = 0; i < MANY_WAKES; i++)
		test_require_int(rouse_waker_wake_by_ref(cx->waker), ==, 0);
	test_spin_until_eq(&d->other_done, 1);
	return ROUSE_PENDING;
}

START_TEST(test_wakes_during_poll_no_syscall)
{
	struct during d = { 0 };
	struct tfut f = tfut_make(fn_during, &d);

	/* 2 * MANY_WAKES wakes, all while running: no write, no park. */
	block_on_unparked(&f, 2);
	test_thread_join(d.thread);
}
END_TEST

START_TEST(test_wake_before_park)
{
	struct tfut f = tfut_make(fn_self_wake_once, NULL);

	/* The wake was found at park time: re-poll without blocking. */
	block_on_unparked(&f, 2);
}
END_TEST

/* A consuming wake of a clone, inside the poll, does the same. */
static enum rouse_poll fn_clone_wake_once(struct tfut *f,
					  struct rouse_context *cx)
{
	struct rouse_waker c;

	if (f->polls > 1)
		return ROUSE_READY;
	ck_assert_int_eq(rouse_waker_clone(cx->waker, &c), 0);
	ck_assert(rouse_waker_will_wake(&c, cx->waker));
	ck_assert_int_eq(rouse_waker_wake(&c), 0);
	return ROUSE_PENDING;
}

START_TEST(test_clone_wake_before_park)
{
	struct tfut f = tfut_make(fn_clone_wake_once, NULL);

	block_on_unparked(&f, 2);
}
END_TEST

/* ---- no wake is ever lost ------------------------------------------ */

#define MILLION 1000000

struct counter_wake {
	struct rouse_waker clone;
	atomic_int counter;
	int target;
	pthread_t thread;
};

static void *million_thread(void *arg)
{
	struct counter_wake *c = arg;
	int i;

	for (i = 0; i < c->target; i++) {
		atomic_fetch_add(&c->counter, 1);
		rouse_waker_wake_by_ref(&c->clone);
	}
	ck_assert_int_eq(rouse_waker_drop(&c->clone), 0);
	return NULL;
}

static enum rouse_poll fn_million(struct tfut *f, struct rouse_context *cx)
{
	struct counter_wake *c = f->arg;

	if (f->polls == 1) {
		ck_assert_int_eq(rouse_waker_clone(cx->waker, &c->clone), 0);
		c->thread = test_thread_start(million_thread, c);
	}
	return atomic_load(&c->counter) == c->target ? ROUSE_READY
						     : ROUSE_PENDING;
}

START_TEST(test_million_wakes)
{
	struct counter_wake c = { .target = MILLION };
	struct tfut f = tfut_make(fn_million, &c);
	struct rouse_executor_stats s0 = test_executor_stats(), s1;

	/* A lost wake leaves block_on parked for ever: the timeout fails it. */
	ck_assert_int_eq(rouse_block_on(&f.base), 0);
	s1 = test_executor_stats();
	test_thread_join(c.thread);
	ck_assert_int_eq(atomic_load(&c.counter), MILLION);
	ck_assert(s1.eventfd_writes - s0.eventfd_writes <= MILLION);
	/* Every poll after the first was paid for by at least one wake. */
	ck_assert_int_le(f.polls, MILLION + 1);
	ck_assert(s1.parks - s0.parks <= (uint64_t)f.polls);
}
END_TEST

#define HAMMER_THREADS 3
#define HAMMER_WAKES 200000

struct hammer {
	struct rouse_waker clones[HAMMER_THREADS];
	struct test_barrier start;
	atomic_int done;
	pthread_t threads[HAMMER_THREADS];
	int idx[HAMMER_THREADS];
};

struct hammer_arg {
	struct hammer *h;
	int i;
};

static void *hammer_thread(void *arg)
{
	struct hammer_arg *a = arg;
	struct hammer *h = a->h;
	struct rouse_waker *w = &h->clones[a->i];
	int i;

	test_barrier_wait(&h->start);
	for (i = 0; i < HAMMER_WAKES; i++)
		rouse_waker_wake_by_ref(w);
	/* The last wake follows the store that makes the future ready. */
	atomic_fetch_add(&h->done, 1);
	ck_assert_int_eq(rouse_waker_wake(w), 0);
	return NULL;
}

static struct hammer_arg hammer_args[HAMMER_THREADS];

static enum rouse_poll fn_hammer(struct tfut *f, struct rouse_context *cx)
{
	struct hammer *h = f->arg;
	int i;

	if (f->polls == 1) {
		for (i = 0; i < HAMMER_THREADS; i++) {
			ck_assert_int_eq(rouse_waker_clone(cx->waker,
							   &h->clones[i]), 0);
			hammer_args[i].h = h;
			hammer_args[i].i = i;
			h->threads[i] = test_thread_start(hammer_thread,
							  &hammer_args[i]);
		}
	}
	/* A short poll body, so the thread is at the park boundary often. */
	return atomic_load(&h->done) == HAMMER_THREADS ? ROUSE_READY
						       : ROUSE_PENDING;
}

START_TEST(test_hammer_park_boundary)
{
	struct hammer h = { 0 };
	struct tfut f = tfut_make(fn_hammer, &h);
	struct rouse_executor_stats s0 = test_executor_stats(), s1;
	int i;

	test_barrier_init(&h.start, HAMMER_THREADS);
	ck_assert_int_eq(rouse_block_on(&f.base), 0);
	s1 = test_executor_stats();
	for (i = 0; i < HAMMER_THREADS; i++)
		test_thread_join(h.threads[i]);
	test_barrier_destroy(&h.start);
	ck_assert_int_eq(atomic_load(&h.done), HAMMER_THREADS);
	ck_assert(s1.eventfd_writes - s0.eventfd_writes <=
		  (uint64_t)HAMMER_THREADS * (HAMMER_WAKES + 1));
	ck_assert(s1.parks - s0.parks <= (uint64_t)f.polls);
	ck_assert(s1.eventfd_writes - s0.eventfd_writes <= s1.parks - s0.parks);
}
END_TEST

/*
 * Two wakers per round, each waking exactly once after publishing its
 * part; the round is over when both parts are seen.  Losing either wake
 * leaves the executor parked for ever, so this exercises the park's
 * NOTIFIED path while a second wake lands on it.
 */
#define ROUNDS 50000

struct rounds {
	struct rouse_waker clones[2];
	atomic_int go;		/* round the wakers may start */
	atomic_int arrived;	/* parts published, over all rounds */
	int round;
	pthread_t threads[2];
	struct test_barrier start;
};

struct rounds_arg {
	struct rounds *r;
	int i;
};

static struct rounds_arg rounds_args[2];

static void *rounds_thread(void *arg)
{
	struct rounds_arg *a = arg;
	struct rounds *r = a->r;
	int n;

	test_barrier_wait(&r->start);
	for (n = 1; n <= ROUNDS; n++) {
		test_spin_until_ge(&r->go, n);
		atomic_fetch_add(&r->arrived, 1);
		rouse_waker_wake_by_ref(&r->clones[a->i]);
	}
	ck_assert_int_eq(rouse_waker_drop(&r->clones[a->i]), 0);
	return NULL;
}

static enum rouse_poll fn_rounds(struct tfut *f, struct rouse_context *cx)
{
	struct rounds *r = f->arg;
	int i;

	if (f->polls == 1) {
		for (i = 0; i < 2; i++) {
			ck_assert_int_eq(rouse_waker_clone(cx->waker,
							   &r->clones[i]), 0);
			rounds_args[i].r = r;
			rounds_args[i].i = i;
			r->threads[i] = test_thread_start(rounds_thread,
							  &rounds_args[i]);
		}
	}
	if (atomic_load(&r->arrived) < 2 * r->round)
		return ROUSE_PENDING;
	if (r->round == ROUNDS)
		return ROUSE_READY;
	r->round++;
	atomic_store(&r->go, r->round);
	return ROUSE_PENDING;
}

START_TEST(test_two_wakers_rounds)
{
	struct rounds r = { 0 };
	struct tfut f = tfut_make(fn_rounds, &r);

	test_barrier_init(&r.start, 2);
	ck_assert_int_eq(rouse_block_on(&f.base), 0);
	test_thread_join(r.threads[0]);
	test_thread_join(r.threads[1]);
	test_barrier_destroy(&r.start);
	ck_assert_int_eq(r.round, ROUNDS);
	ck_assert_int_eq(atomic_load(&r.arrived), 2 * ROUNDS);
}
END_TEST

/* ---- ping-pong: one wake per pending, across the park -------------- */

#define PINGPONG 100000

struct pingpong {
	int rounds;		/* pending polls before ready */
	struct rouse_waker clone;
	atomic_int published;	/* number of the last pending poll */
	uint64_t parks0;
	bool wait_for_park;	/* wake only once the thread is parked */
	pthread_t thread;
};

static void *pingpong_thread(void *arg)
{
	struct pingpong *p = arg;
	int i;

	for (i = 1; i <= p->rounds; i++) {
		if (p->wait_for_park)
			test_wait_parks(p->parks0 + (uint64_t)i);
		else
			test_spin_until_eq(&p->published, i);
		test_require_int(rouse_waker_wake_by_ref(&p->clone), ==, 0);
	}
	ck_assert_int_eq(rouse_waker_drop(&p->clone), 0);
	return NULL;
}

static enum rouse_poll fn_pingpong(struct tfut *f, struct rouse_context *cx)
{
	struct pingpong *p = f->arg;

	if (f->polls == 1) {
		ck_assert_int_eq(rouse_waker_clone(cx->waker, &p->clone), 0);
		p->thread = test_thread_start(pingpong_thread, p);
	}
	if (f->polls > p->rounds)
		return ROUSE_READY;
	/* Exactly one wake answers each pending poll. */
	atomic_store(&p->published, f->polls);
	return ROUSE_PENDING;
}

START_TEST(test_pingpong_parked)
{
	struct pingpong p = { .rounds = PINGPONG, .wait_for_park = true };
	struct tfut f = tfut_make(fn_pingpong, &p);
	struct rouse_executor_stats s0 = test_executor_stats(), s1;

	p.parks0 = s0.parks;
	ck_assert_int_eq(rouse_block_on(&f.base), 0);
	s1 = test_executor_stats();
	test_thread_join(p.thread);
	/* Each wake found the thread parked: one park, one write, each. */
	ck_assert_int_eq(f.polls, PINGPONG + 1);
	ck_assert(s1.parks - s0.parks == PINGPONG);
	ck_assert(s1.eventfd_writes - s0.eventfd_writes == PINGPONG);
}
END_TEST

START_TEST(test_pingpong_racing)
{
	struct pingpong p = { .rounds = PINGPONG, .wait_for_park = false };
	struct tfut f = tfut_make(fn_pingpong, &p);
	struct rouse_executor_stats s0 = test_executor_stats(), s1;

	ck_assert_int_eq(rouse_block_on(&f.base), 0);
	s1 = test_executor_stats();
	test_thread_join(p.thread);
	/*
	 * Each wake races the park: it is either found as NOTIFIED (no park,
	 * no write) or it finds the thread parked (one park, one write).
	 */
	ck_assert_int_eq(f.polls, PINGPONG + 1);
	ck_assert(s1.parks - s0.parks <= PINGPONG);
	ck_assert(s1.parks - s0.parks == s1.eventfd_writes - s0.eventfd_writes);
}
END_TEST

/* ---- wakers outliving block_on and their thread -------------------- */

struct outlive {
	struct rouse_waker kept;
	atomic_int handed;	/* kept is filled in */
	atomic_int owner_gone;	/* the block_on thread was joined */
	int fds_with_clone;	/* fd count seen by the keeper */
	int fds_after_drop;
};

static enum rouse_poll fn_outlive(struct tfut *f, struct rouse_context *cx)
{
	struct outlive *o = f->arg;

	if (f->polls > 1)
		return ROUSE_READY;
	ck_assert_int_eq(rouse_waker_clone(cx->waker, &o->kept), 0);
	atomic_store(&o->handed, 1);
	ck_assert_int_eq(rouse_waker_wake_by_ref(cx->waker), 0);
	return ROUSE_PENDING;
}

static void *outlive_owner(void *arg)
{
	struct tfut *f = arg;

	ck_assert_int_eq(rouse_block_on(&f->base), 0);
	return NULL;
}

static void *outlive_keeper(void *arg)
{
	struct outlive *o = arg;
	struct rouse_waker c;

	test_spin_until_eq(&o->handed, 1);
	test_spin_until_eq(&o->owner_gone, 1);
	/* The owner is gone: waking is harmless, dropping the last closes. */
	o->fds_with_clone = test_count_fds();
	ck_assert_int_eq(rouse_waker_wake_by_ref(&o->kept), 0);
	ck_assert_int_eq(rouse_waker_clone(&o->kept, &c), 0);
	ck_assert_int_eq(rouse_waker_wake(&c), 0);
	ck_assert_int_eq(test_count_fds(), o->fds_with_clone);
	ck_assert_int_eq(rouse_waker_drop(&o->kept), 0);
	o->fds_after_drop = test_count_fds();
	return NULL;
}

START_TEST(test_waker_outlives_thread)
{
	struct outlive o = { 0 };
	struct tfut f = tfut_make(fn_outlive, &o);
	int fd0 = test_count_fds();
	pthread_t keeper, owner;

	keeper = test_thread_start(outlive_keeper, &o);
	owner = test_thread_start(outlive_owner, &f);
	test_thread_join(owner);
	ck_assert_int_eq(f.polls, 2);
	/* The clone keeps the dead thread's eventfd open, and only that. */
	ck_assert_int_eq(test_count_fds(), fd0 + 1);
	atomic_store(&o.owner_gone, 1);
	test_thread_join(keeper);
	ck_assert_int_eq(o.fds_with_clone, fd0 + 1);
	ck_assert_int_eq(o.fds_after_drop, fd0);
	ck_assert_int_eq(test_count_fds(), fd0);
}
END_TEST

#define SHARE_THREADS 4
#define SHARE_CLONES 1000

struct share {
	struct rouse_waker clones[SHARE_THREADS][SHARE_CLONES];
	struct test_barrier start;
};

struct share_arg {
	struct share *s;
	int i;
};

static enum rouse_poll fn_share(struct tfut *f, struct rouse_context *cx)
{
	struct share *s = f->arg;
	int i, j;

	for (i = 0; i < SHARE_THREADS; i++)
		for (j = 0; j < SHARE_CLONES; j++)
			ck_assert_int_eq(rouse_waker_clone(cx->waker,
							   &s->clones[i][j]),
					 0);
	return ROUSE_READY;
}

static void *share_thread(void *arg)
{
	struct share_arg *a = arg;
	int j;

	test_barrier_wait(&a->s->start);
	for (j = 0; j < SHARE_CLONES; j++) {
		struct rouse_waker *w = &a->s->clones[a->i][j];

		ck_assert_int_eq(rouse_waker_wake_by_ref(w), 0);
		if (j % 2)
			ck_assert_int_eq(rouse_waker_wake(w), 0);
		else
			ck_assert_int_eq(rouse_waker_drop(w), 0);
	}
	return NULL;
}

START_TEST(test_clones_released_concurrently)
{
	static struct share s;
	struct share_arg args[SHARE_THREADS];
	pthread_t t[SHARE_THREADS], owner;
	struct tfut f = tfut_make(fn_share, &s);
	int fd0 = test_count_fds();
	int i;

	owner = test_thread_start(outlive_owner, &f);
	test_thread_join(owner);
	ck_assert_int_eq(test_count_fds(), fd0 + 1);
	/* Whichever thread drops the last clone closes the eventfd, once. */
	test_barrier_init(&s.start, SHARE_THREADS);
	for (i = 0; i < SHARE_THREADS; i++) {
		args[i].s = &s;
		args[i].i = i;
		t[i] = test_thread_start(share_thread, &args[i]);
	}
	for (i = 0; i < SHARE_THREADS; i++)
		test_thread_join(t[i]);
	test_barrier_destroy(&s.start);
	ck_assert_int_eq(test_count_fds(), fd0);
}
END_TEST

/* ---- bad input ----------------------------------------------------- */

struct fake_parker {
	int parks;
	int unparks;
	int wakers;
};

static int fake_park(void *data, int64_t timeout_ns)
{
	((struct fake_parker *)data)->parks++;
	return 0;
}

static void fake_unpark(void *data)
{
	((struct fake_parker *)data)->unparks++;
}

static int fake_waker(void *data, struct rouse_waker *out)
{
	((struct fake_parker *)data)->wakers++;
	*out = rouse_waker_noop();
	return 0;
}

START_TEST(test_einval)
{
	static const struct rouse_future_vtable no_poll = { NULL, tfut_drop };
	static const struct rouse_parker_vtable pv_full = {
		fake_park, fake_unpark, fake_waker,
	};
	static const struct rouse_parker_vtable pv_no_park = {
		NULL, fake_unpark, fake_waker,
	};
	static const struct rouse_parker_vtable pv_no_unpark = {
		fake_park, NULL, fake_waker,
	};
	static const struct rouse_parker_vtable pv_no_waker = {
		fake_park, fake_unpark, NULL,
	};
	const struct rouse_parker_vtable *bad_vts[] = {
		NULL, &pv_no_park, &pv_no_unpark, &pv_no_waker,
	};
	struct fake_parker fp = { 0 };
	struct rouse_parker good = { &fp, &pv_full };
	struct tfut f = tfut_make(fn_ready, NULL);
	struct tfut nopoll = f, novt = f;
	struct rouse_parker tp;
	size_t i;

	nopoll.base.vtable = &no_poll;
	novt.base.vtable = NULL;

	ck_assert_int_eq(rouse_block_on(NULL), -EINVAL);
	ck_assert_int_eq(rouse_block_on(&novt.base), -EINVAL);
	ck_assert_int_eq(rouse_block_on(&nopoll.base), -EINVAL);

	ck_assert_int_eq(rouse_block_on_with(NULL, &good), -EINVAL);
	ck_assert_int_eq(rouse_block_on_with(&novt.base, &good), -EINVAL);
	ck_assert_int_eq(rouse_block_on_with(&nopoll.base, &good), -EINVAL);
	ck_assert_int_eq(rouse_block_on_with(&f.base, NULL), -EINVAL);
	for (i = 0; i < sizeof(bad_vts) / sizeof(bad_vts[0]); i++) {
		struct rouse_parker p = { &fp, bad_vts[i] };

		ck_assert_int_eq(rouse_block_on_with(&f.base, &p), -EINVAL);
	}
	/* Nothing was polled, parked or asked for a waker. */
	ck_assert_int_eq(f.polls, 0);
	ck_assert_int_eq(nopoll.drops + novt.drops + f.drops, 0);
	ck_assert_int_eq(fp.parks + fp.unparks + fp.wakers, 0);

	ck_assert_int_eq(rouse_thread_parker(NULL), -EINVAL);
	ck_assert_int_eq(rouse_executor_get_stats(NULL), -EINVAL);

	/* And the good inputs still work after all that. */
	ck_assert_int_eq(rouse_block_on_with(&f.base, &good), 0);
	ck_assert_int_eq(f.polls, 1);
	ck_assert_int_eq(fp.wakers, 1);
	ck_assert_int_eq(rouse_thread_parker(&tp), 0);
	ck_assert_ptr_nonnull(tp.vtable);
	ck_assert_int_eq(rouse_block_on(&f.base), 0);
	ck_assert_int_eq(f.polls, 2);
}
END_TEST

/* ---- block_on inside a poll ---------------------------------------- */

struct nested {
	struct tfut inner;
	struct rouse_parker parker;
	int results[3];
	int other_thread_result;
};

static void *nested_other_thread(void *arg)
{
	struct nested *n = arg;
	struct tfut f = tfut_make(fn_self_wake_once, NULL);

	n->other_thread_result = rouse_block_on(&f.base);
	ck_assert_int_eq(f.polls, 2);
	return NULL;
}

static enum rouse_poll fn_nested(struct tfut *f, struct rouse_context *cx)
{
	struct nested *n = f->arg;
	struct fake_parker fp = { 0 };
	static const struct rouse_parker_vtable pv = {
		fake_park, fake_unpark, fake_waker,
	};
	struct rouse_parker other = { &fp, &pv };

	n->results[0] = rouse_block_on(&n->inner.base);
	n->results[1] = rouse_block_on_with(&n->inner.base, &n->parker);
	n->results[2] = rouse_block_on_with(&n->inner.base, &other);
	ck_assert_int_eq(fp.parks + fp.unparks + fp.wakers, 0);
	/* Another thread may block_on while this one polls. */
	test_thread_join(test_thread_start(nested_other_thread, n));
	return ROUSE_READY;
}

START_TEST(test_block_on_in_poll)
{
	struct nested n = { 0 };
	struct tfut outer = tfut_make(fn_nested, &n);
	struct tfut again = tfut_make(fn_self_wake_once, NULL);

	n.inner = tfut_make(fn_ready, NULL);
	ck_assert_int_eq(rouse_thread_parker(&n.parker), 0);
	ck_assert_int_eq(rouse_block_on(&outer.base), 0);
	ck_assert_int_eq(outer.polls, 1);
	ck_assert_int_eq(n.results[0], -EDEADLK);
	ck_assert_int_eq(n.results[1], -EDEADLK);
	ck_assert_int_eq(n.results[2], -EDEADLK);
	ck_assert_int_eq(n.inner.polls, 0);
	ck_assert_int_eq(n.other_thread_result, 0);
	/* Once the outer block_on is over, this thread may block_on again. */
	ck_assert_int_eq(rouse_block_on(&again.base), 0);
	ck_assert_int_eq(again.polls, 2);
}
END_TEST

/* ---- block_on_with a parker of one's own --------------------------- */

/*
 * A condition-variable parker.  Its waker's data is the parker itself;
 * every operation is counted, and live counts the waker references.
 */
struct cv_parker {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool notified;
	atomic_int parks;
	atomic_int unparks;
	atomic_int wakers;
	atomic_int clones;
	atomic_int wakes;
	atomic_int wake_by_refs;
	atomic_int drops;
	atomic_int live;
	/* Scripted park results; 0 once the script is over. */
	int script[4];
	int script_len;
	int waker_err;
};

static const struct rouse_waker_vtable cvw_vtable;

static void cvp_unpark(void *data)
{
	struct cv_parker *p = data;

	atomic_fetch_add(&p->unparks, 1);
	pthread_mutex_lock(&p->lock);
	p->notified = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static int cvp_park(void *data, int64_t timeout_ns)
{
	struct cv_parker *p = data;
	int n = atomic_fetch_add(&p->parks, 1);

	if (n < p->script_len)
		return p->script[n];
	ck_assert(timeout_ns < 0);
	pthread_mutex_lock(&p->lock);
	while (!p->notified)
		pthread_cond_wait(&p->cond, &p->lock);
	p->notified = false;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static int cvp_waker(void *data, struct rouse_waker *out)
{
	struct cv_parker *p = data;

	atomic_fetch_add(&p->wakers, 1);
	if (p->waker_err < 0)
		return p->waker_err;
	atomic_fetch_add(&p->live, 1);
	out->data = p;
	out->vtable = &cvw_vtable;
	return 0;
}

static struct rouse_waker cvw_clone(void *data)
{
	struct cv_parker *p = data;
	struct rouse_waker w = { p, &cvw_vtable };

	atomic_fetch_add(&p->clones, 1);
	atomic_fetch_add(&p->live, 1);
	return w;
}

static void cvw_wake(void *data)
{
	struct cv_parker *p = data;

	atomic_fetch_add(&p->wakes, 1);
	cvp_unpark(p);
	atomic_fetch_sub(&p->live, 1);
}

static void cvw_wake_by_ref(void *data)
{
	struct cv_parker *p = data;

	atomic_fetch_add(&p->wake_by_refs, 1);
	cvp_unpark(p);
}

static void cvw_drop(void *data)
{
	struct cv_parker *p = data;

	atomic_fetch_add(&p->drops, 1);
	atomic_fetch_sub(&p->live, 1);
}

static const struct rouse_waker_vtable cvw_vtable = {
	cvw_clone, cvw_wake, cvw_wake_by_ref, cvw_drop,
};

static const struct rouse_parker_vtable cvp_vtable = {
	cvp_park, cvp_unpark, cvp_waker,
};

static void cvp_init(struct cv_parker *p)
{
	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(pthread_mutex_init(&p->lock, NULL), 0);
	ck_assert_int_eq(pthread_cond_init(&p->cond, NULL), 0);
}

static void cvp_destroy(struct cv_parker *p)
{
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
}

struct cv_use {
	struct cv_parker *p;
	struct rouse_waker clone;
	const struct rouse_waker *seen;	/* cx->waker of the first poll */
	struct rouse_waker seen_copy;
	atomic_int woken;
	pthread_t thread;
};

static void *cv_wake_thread(void *arg)
{
	struct cv_use *u = arg;

	/* Wake once the executor is inside park (or has been). */
	test_spin_until_ge(&u->p->parks, 1);
	atomic_store(&u->woken, 1);
	ck_assert_int_eq(rouse_waker_wake(&u->clone), 0);
	return NULL;
}

static enum rouse_poll fn_cv(struct tfut *f, struct rouse_context *cx)
{
	struct cv_use *u = f->arg;

	if (f->polls == 1) {
		u->seen = cx->waker;
		u->seen_copy = *cx->waker;
		ck_assert_int_eq(rouse_waker_clone(cx->waker, &u->clone), 0);
		u->thread = test_thread_start(cv_wake_thread, u);
		return ROUSE_PENDING;
	}
	return atomic_load(&u->woken) ? ROUSE_READY : ROUSE_PENDING;
}

START_TEST(test_custom_parker)
{
	struct cv_parker p;
	struct rouse_parker parker = { &p, &cvp_vtable };
	struct cv_use u = { .p = &p };
	struct tfut f = tfut_make(fn_cv, &u);
	struct rouse_executor_stats s0 = test_executor_stats(), s1;

	cvp_init(&p);
	ck_assert_int_eq(rouse_block_on_with(&f.base, &parker), 0);
	s1 = test_executor_stats();
	test_thread_join(u.thread);
	ck_assert_int_eq(f.polls, 2);
	/* The poll's waker is the one the parker made. */
	ck_assert_ptr_eq(u.seen_copy.data, &p);
	ck_assert_ptr_eq(u.seen_copy.vtable, &cvw_vtable);
	/* One waker asked for, one park, and the other thread's wake. */
	ck_assert_int_eq(atomic_load(&p.wakers), 1);
	ck_assert_int_eq(atomic_load(&p.parks), 1);
	ck_assert_int_eq(atomic_load(&p.clones), 1);
	ck_assert_int_eq(atomic_load(&p.wakes), 1);
	ck_assert_int_eq(atomic_load(&p.unparks), 1);
	ck_assert_int_eq(atomic_load(&p.wake_by_refs), 0);
	/* block_on dropped its own waker: no reference is left. */
	ck_assert_int_eq(atomic_load(&p.drops), 1);
	ck_assert_int_eq(atomic_load(&p.live), 0);
	/* The eventfd parker was not used. */
	ck_assert(s1.parks == s0.parks);
	ck_assert(s1.eventfd_writes == s0.eventfd_writes);
	cvp_destroy(&p);
}
END_TEST

static enum rouse_poll fn_pending(struct tfut *f, struct rouse_context *cx)
{
	return ROUSE_PENDING;
}

static enum rouse_poll fn_ready_at_4(struct tfut *f, struct rouse_context *cx)
{
	return f->polls >= 4 ? ROUSE_READY : ROUSE_PENDING;
}

START_TEST(test_custom_parker_errors)
{
	struct cv_parker p;
	struct rouse_parker parker = { &p, &cvp_vtable };
	struct tfut f = tfut_make(fn_pending, NULL);
	struct tfut g = tfut_make(fn_ready_at_4, NULL);
	struct tfut h = tfut_make(fn_self_wake_once, NULL);

	/* A park failure ends block_on with it, the waker released. */
	cvp_init(&p);
	p.script[0] = -EIO;
	p.script_len = 1;
	ck_assert_int_eq(rouse_block_on_with(&f.base, &parker), -EIO);
	ck_assert_int_eq(f.polls, 1);
	ck_assert_int_eq(atomic_load(&p.parks), 1);
	ck_assert_int_eq(atomic_load(&p.live), 0);
	cvp_destroy(&p);

	/* -ETIMEDOUT, -EINTR and a spurious 0 only mean "poll again". */
	cvp_init(&p);
	p.script[0] = -ETIMEDOUT;
	p.script[1] = -EINTR;
	p.script[2] = 0;
	p.script_len = 3;
	ck_assert_int_eq(rouse_block_on_with(&g.base, &parker), 0);
	ck_assert_int_eq(g.polls, 4);
	ck_assert_int_eq(atomic_load(&p.parks), 3);
	ck_assert_int_eq(atomic_load(&p.live), 0);
	cvp_destroy(&p);

	/* When the parker cannot make a waker, nothing is polled. */
	cvp_init(&p);
	p.waker_err = -ENOMEM;
	ck_assert_int_eq(rouse_block_on_with(&f.base, &parker), -ENOMEM);
	ck_assert_int_eq(f.polls, 1);
	ck_assert_int_eq(atomic_load(&p.parks), 0);
	cvp_destroy(&p);

	/* After the errors this thread can block_on normally. */
	ck_assert_int_eq(rouse_block_on(&h.base), 0);
	ck_assert_int_eq(h.polls, 2);
}
END_TEST

/* ---- the thread parker --------------------------------------------- */

START_TEST(test_park_timeout_zero)
{
	struct rouse_parker p;
	struct rouse_executor_stats s0, s1;

	ck_assert_int_eq(rouse_thread_parker(&p), 0);
	s0 = test_executor_stats();
	ck_assert_int_eq(rouse_parker_park(&p, 0), -ETIMEDOUT);
	ck_assert_int_eq(rouse_parker_unpark(&p), 0);
	ck_assert_int_eq(rouse_parker_park(&p, 0), 0);
	/* The unpark was consumed. */
	ck_assert_int_eq(rouse_parker_park(&p, 0), -ETIMEDOUT);
	/* Unparks do not add up: two are one. */
	ck_assert_int_eq(rouse_parker_unpark(&p), 0);
	ck_assert_int_eq(rouse_parker_unpark(&p), 0);
	ck_assert_int_eq(rouse_parker_park(&p, 0), 0);
	ck_assert_int_eq(rouse_parker_park(&p, 0), -ETIMEDOUT);
	s1 = test_executor_stats();
	/* A park that does not block is no park, and nothing was written. */
	ck_assert(s1.parks == s0.parks);
	ck_assert(s1.eventfd_writes == s0.eventfd_writes);
}
END_TEST

START_TEST(test_park_timeout_positive)
{
	struct rouse_parker p;

	ck_assert_int_eq(rouse_thread_parker(&p), 0);
	ck_assert_int_eq(rouse_parker_park(&p, 1), -ETIMEDOUT);
	ck_assert_int_eq(rouse_parker_park(&p, 1000), -ETIMEDOUT);
	ck_assert_int_eq(rouse_parker_park(&p, 2000000), -ETIMEDOUT);
	/* A timed-out park leaves nothing behind for the next one. */
	ck_assert_int_eq(rouse_parker_park(&p, 0), -ETIMEDOUT);
	ck_assert_int_eq(rouse_parker_unpark(&p), 0);
	ck_assert_int_eq(rouse_parker_park(&p, 2000000), 0);
	ck_assert_int_eq(rouse_parker_park(&p, 0), -ETIMEDOUT);
}
END_TEST

START_TEST(test_unpark_before_park)
{
	struct rouse_parker p;
	struct rouse_executor_stats s0, s1;

	ck_assert_int_eq(rouse_thread_parker(&p), 0);
	s0 = test_executor_stats();
	ck_assert_int_eq(rouse_parker_unpark(&p), 0);
	/* Would block for ever if the unpark were lost. */
	ck_assert_int_eq(rouse_parker_park(&p, -1), 0);
	ck_assert_int_eq(rouse_parker_unpark(&p), 0);
	ck_assert_int_eq(rouse_parker_park(&p, INT64_MAX), 0);
	s1 = test_executor_stats();
	ck_assert(s1.parks == s0.parks);
	ck_assert(s1.eventfd_writes == s0.eventfd_writes);
}
END_TEST

struct unparker {
	struct rouse_parker p;
	uint64_t parks_target;
	int n;
};

static void *unparker_thread(void *arg)
{
	struct unparker *u = arg;
	int i;

	for (i = 1; i <= u->n; i++) {
		test_wait_parks(u->parks_target + (uint64_t)i);
		ck_assert_int_eq(rouse_parker_unpark(&u->p), 0);
	}
	return NULL;
}

static void park_cross_thread(int64_t timeout_ns)
{
	struct unparker u = { .n = 1 };
	struct rouse_executor_stats s0, s1;
	pthread_t t;

	ck_assert_int_eq(rouse_thread_parker(&u.p), 0);
	s0 = test_executor_stats();
	u.parks_target = s0.parks;
	t = test_thread_start(unparker_thread, &u);
	ck_assert_int_eq(rouse_parker_park(&u.p, timeout_ns), 0);
	test_thread_join(t);
	s1 = test_executor_stats();
	ck_assert(s1.parks - s0.parks == 1);
	ck_assert(s1.eventfd_writes - s0.eventfd_writes == 1);
	ck_assert_int_eq(rouse_parker_park(&u.p, 0), -ETIMEDOUT);
}

START_TEST(test_park_unparked_by_other_thread)
{
	park_cross_thread(-1);
}
END_TEST

/* No limit in practice, and no overflow computing the deadline. */
START_TEST(test_park_longest_timeout)
{
	park_cross_thread(INT64_MAX);
}
END_TEST

START_TEST(test_park_long_timeout)
{
	park_cross_thread(INT64_MAX / 4);
}
END_TEST

/* The thread parker's eventfd: the one fd that is new after first use. */
static int parker_eventfd(struct rouse_parker *p)
{
	struct test_fdset before, after;
	char link[128];
	int fd = -1;

	test_fdset_take(&before);
	ck_assert_int_eq(rouse_thread_parker(p), 0);
	test_fdset_take(&after);
	ck_assert_int_eq(test_fdset_new(&before, &after, &fd, 1), 1);
	test_fd_link(fd, link, sizeof(link));
	ck_assert_str_eq(link, "anon_inode:[eventfd]");
	return fd;
}

static uint64_t eventfd_count(int fd)
{
	char v[64];

	ck_assert(test_fdinfo(fd, "eventfd-count", v, sizeof(v)));
	return strtoull(v, NULL, 16);
}

#define TIMED_RACE 20000

struct timed_race {
	struct rouse_parker p;
	atomic_int stop;
	atomic_int unparks;
};

static void *timed_race_thread(void *arg)
{
	struct timed_race *r = arg;

	while (!atomic_load(&r->stop)) {
		test_require_int(rouse_parker_unpark(&r->p), ==, 0);
		atomic_fetch_add(&r->unparks, 1);
		sched_yield();
	}
	return NULL;
}

START_TEST(test_park_timeout_races_unpark)
{
	struct timed_race r = { 0 };
	int fd = parker_eventfd(&r.p);
	int i, got = 0;
	pthread_t t;

	t = test_thread_start(timed_race_thread, &r);
	/*
	 * Short timed parks while unparks rain: some time out, some are
	 * unparked, some are unparked just as they time out.
	 */
	for (i = 0; i < TIMED_RACE; i++) {
		int err = rouse_parker_park(&r.p, 1000 + (i % 7) * 3000);

		ck_assert(err == 0 || err == -ETIMEDOUT);
		got += err == 0;
	}
	atomic_store(&r.stop, 1);
	test_thread_join(t);
	ck_assert_int_le(got, atomic_load(&r.unparks));
	/* At most one unpark is still pending; then the parker is idle. */
	(void)rouse_parker_park(&r.p, 0);
	ck_assert_int_eq(rouse_parker_park(&r.p, 0), -ETIMEDOUT);
	/* Every eventfd write was read: no stale token is left behind. */
	ck_assert(eventfd_count(fd) == 0);
	ck_assert_int_eq(rouse_parker_park(&r.p, 1000000), -ETIMEDOUT);
	ck_assert(eventfd_count(fd) == 0);
}
END_TEST

struct parker_id {
	void *data;
	const void *vtable;
};

static void *parker_id_thread(void *arg)
{
	struct parker_id *id = arg;
	struct rouse_parker p;

	ck_assert_int_eq(rouse_thread_parker(&p), 0);
	id->data = p.data;
	id->vtable = p.vtable;
	return NULL;
}

START_TEST(test_thread_parker_identity)
{
	struct rouse_parker a, b;
	struct rouse_waker w1, w2, c;
	struct parker_id other;
	int efd = parker_eventfd(&a);
	int flags = fcntl(efd, F_GETFD);

	/* The eventfd does not leak into exec'd programs. */
	ck_assert(flags >= 0 && (flags & FD_CLOEXEC));
	/* One parker per thread, made once. */
	ck_assert_int_eq(rouse_thread_parker(&b), 0);
	ck_assert_ptr_eq(a.data, b.data);
	ck_assert_ptr_eq(a.vtable, b.vtable);
	test_thread_join(test_thread_start(parker_id_thread, &other));
	ck_assert_ptr_ne(other.data, a.data);
	ck_assert_ptr_eq(other.vtable, a.vtable);

	/* Its wakers unpark it, and are the same waker for will_wake. */
	ck_assert_int_eq(rouse_parker_waker(&a, &w1), 0);
	ck_assert_int_eq(rouse_parker_waker(&a, &w2), 0);
	ck_assert(rouse_waker_will_wake(&w1, &w2));
	ck_assert_int_eq(rouse_waker_wake_by_ref(&w1), 0);
	ck_assert_int_eq(rouse_parker_park(&a, 0), 0);
	ck_assert_int_eq(rouse_waker_clone(&w2, &c), 0);
	ck_assert_int_eq(rouse_waker_wake(&c), 0);
	ck_assert_int_eq(rouse_parker_park(&a, -1), 0);
	ck_assert_int_eq(rouse_waker_drop(&w1), 0);
	ck_assert_int_eq(rouse_waker_wake(&w2), 0);
	ck_assert_int_eq(rouse_parker_park(&a, 0), 0);
	ck_assert_int_eq(rouse_parker_park(&a, 0), -ETIMEDOUT);
	/* The thread's own reference keeps the eventfd. */
	ck_assert(test_fd_is_open(efd));
}
END_TEST

/* ---- no leaks ------------------------------------------------------ */

static void *block_on_thread(void *arg)
{
	struct xwake x = { 0 };
	struct tfut f = tfut_make(fn_xwake, &x);

	x.parks0 = test_executor_stats().parks;
	ck_assert_int_eq(rouse_block_on(&f.base), 0);
	test_thread_join(x.thread);
	ck_assert_int_eq(f.polls, 2);
	return NULL;
}

START_TEST(test_no_fd_leak)
{
	int fd0 = test_count_fds();
	int i;

	for (i = 0; i < 100; i++) {
		test_thread_join(test_thread_start(block_on_thread, NULL));
		ck_assert_int_eq(test_count_fds(), fd0);
	}
}
END_TEST

START_TEST(test_first_use_makes_one_fd)
{
	struct tfut f = tfut_make(fn_self_wake_once, NULL);
	int fd0 = test_count_fds();
	int i;

	/* This thread's parker: one eventfd, made on first use, kept. */
	ck_assert_int_eq(rouse_block_on(&f.base), 0);
	ck_assert_int_eq(test_count_fds(), fd0 + 1);
	for (i = 0; i < 10; i++) {
		f.polls = 0;
		ck_assert_int_eq(rouse_block_on(&f.base), 0);
	}
	ck_assert_int_eq(test_count_fds(), fd0 + 1);
}
END_TEST

#define LEAK_THREADS 8

START_TEST(test_no_thread_leak)
{
	pthread_t t[LEAK_THREADS];
	int n0, round, i;

	/*
	 * A first thread, so that any helper thread of the runtime (TSan
	 * starts one with the first pthread_create) is counted in n0.
	 */
	n0 = test_count_threads_settled();

	for (round = 0; round < 10; round++) {
		for (i = 0; i < LEAK_THREADS; i++)
			t[i] = test_thread_start(block_on_thread, NULL);
		for (i = 0; i < LEAK_THREADS; i++)
			test_thread_join(t[i]);
	}
	/* The executor starts no thread of its own. */
	ck_assert_int_eq(test_wait_threads(n0), n0);
	ck_assert_int_eq(test_count_threads(), n0);
}
END_TEST

/* ---- thread cancellation ------------------------------------------------ */

struct cancel {
	struct rouse_waker kept;
	uint64_t parks0;
	atomic_int woken;
	atomic_int returned;
	int result;
	struct tfut f;
};

static enum rouse_poll fn_cancel(struct tfut *f, struct rouse_context *cx)
{
	struct cancel *c = f->arg;

	if (f->polls == 1) {
		ck_assert_int_eq(rouse_waker_clone(cx->waker, &c->kept), 0);
		return ROUSE_PENDING;
	}
	return atomic_load(&c->woken) ? ROUSE_READY : ROUSE_PENDING;
}

static void *cancel_thread(void *arg)
{
	struct cancel *c = arg;

	c->result = rouse_block_on(&c->f.base);
	atomic_store(&c->returned, 1);
	pthread_testcancel();
	return NULL;
}

/*
 * A thread cancelled while parked in block_on finishes it first: the
 * cancellation stays pending (the eventfd read is not allowed to act on
 * it) and takes effect at the thread's next cancellation point.
 */
START_TEST(test_cancel_while_parked)
{
	struct cancel c = { 0 };
	int fd0 = test_count_fds();
	void *ret = NULL;
	int returned;
	pthread_t t;

	c.f = tfut_make(fn_cancel, &c);
	c.parks0 = test_executor_stats().parks;
	t = test_thread_start(cancel_thread, &c);
	test_wait_parks(c.parks0 + 1);
	ck_assert_int_eq(pthread_cancel(t), 0);
	atomic_store(&c.woken, 1);
	ck_assert_int_eq(rouse_waker_wake(&c.kept), 0);
	ck_assert_int_eq(pthread_join(t, &ret), 0);
	returned = atomic_load(&c.returned);
	ck_assert_msg(returned, "cancelled inside block_on");
	ck_assert_int_eq(c.result, 0);
	ck_assert_int_eq(c.f.polls, 2);
	ck_assert(ret == PTHREAD_CANCELED);
	/* The cancelled thread's parker went with it. */
	ck_assert_int_eq(test_count_fds(), fd0);
}
END_TEST

/* ---- fork ---------------------------------------------------------- */

#define FORK_ROUNDS 1000

struct fork_wait {
	struct rouse_parker p;
	pid_t child;
	int status;
	atomic_int done;
};

static void *fork_reaper(void *arg)
{
	struct fork_wait *w = arg;

	ck_assert_int_eq(waitpid(w->child, &w->status, 0), w->child);
	atomic_store(&w->done, 1);
	ck_assert_int_eq(rouse_parker_unpark(&w->p), 0);
	return NULL;
}

/*
 * The child's side: a ping-pong like test_pingpong_parked's, without any
 * Check macro (the child shares the test's Check channel, and its marks
 * would hide the parent's).
 */
struct fork_pp {
	struct rouse_waker clone;
	uint64_t parks0;
	pthread_t thread;
};

static void *fork_pp_thread(void *arg)
{
	struct fork_pp *p = arg;
	int i;

	for (i = 1; i <= FORK_ROUNDS; i++) {
		test_wait_parks(p->parks0 + (uint64_t)i);
		rouse_waker_wake_by_ref(&p->clone);
	}
	rouse_waker_drop(&p->clone);
	return NULL;
}

static enum rouse_poll fn_fork_pp(struct tfut *f, struct rouse_context *cx)
{
	struct fork_pp *p = f->arg;

	if (f->polls == 1 &&
	    (rouse_waker_clone(cx->waker, &p->clone) != 0 ||
	     pthread_create(&p->thread, NULL, fork_pp_thread, p) != 0))
		_exit(3);
	return f->polls > FORK_ROUNDS ? ROUSE_READY : ROUSE_PENDING;
}

static void fork_child(void)
{
	struct fork_pp p = { .parks0 = test_executor_stats().parks };
	struct tfut f = tfut_make(fn_fork_pp, &p);

	if (rouse_block_on(&f.base) != 0)
		_exit(1);
	pthread_join(p.thread, NULL);
	_exit(f.polls == FORK_ROUNDS + 1 ? 0 : 2);
}

/*
 * A process forked by a thread that has a parker runs block_on in the
 * child while the parent's thread is parked.  Each must get its own
 * wakes: a child whose wake is read by the parent's park (or the other
 * way round) waits for ever, and this test then fails by its timeout.
 */
START_TEST(test_fork_child_block_on)
{
	struct fork_wait w = { 0 };
	pthread_t reaper;

	ck_assert_int_eq(rouse_thread_parker(&w.p), 0);
	w.child = fork();
	if (w.child == 0)
		fork_child();
	ck_assert_int_gt(w.child, 0);
	/* The parent parks on its own parker until the child is done. */
	reaper = test_thread_start(fork_reaper, &w);
	mark_point();	/* a timeout after this: the child lost a wake */
	while (!atomic_load(&w.done))
		if (rouse_parker_park(&w.p, -1) != 0)
			ck_abort_msg("park failed");
	test_thread_join(reaper);
	ck_assert_msg(WIFEXITED(w.status) && WEXITSTATUS(w.status) == 0,
		      "child status %#x", w.status);
}
END_TEST

/* ---- stats --------------------------------------------------------- */

START_TEST(test_stats_monotonic)
{
	struct rouse_executor_stats a, b;

	memset(&a, 0xff, sizeof(a));
	ck_assert_int_eq(rouse_executor_get_stats(&a), 0);
	test_thread_join(test_thread_start(block_on_thread, NULL));
	ck_assert_int_eq(rouse_executor_get_stats(&b), 0);
	ck_assert(b.parks >= a.parks + 1);
	ck_assert(b.eventfd_writes >= a.eventfd_writes + 1);
}
END_TEST

static Suite *executor_suite(void)
{
	Suite *s = suite_create("executor");
	TCase *tc;

	tc = tcase_create("ready");
	tcase_add_test(tc, test_ready_first_poll);
	suite_add_tcase(s, tc);

	tc = tcase_create("cross_thread_wake");
	tcase_add_test(tc, test_woken_from_other_thread);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("wake_while_running");
	tcase_add_test(tc, test_wakes_during_poll_no_syscall);
	tcase_add_test(tc, test_wake_before_park);
	tcase_add_test(tc, test_clone_wake_before_park);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = tcase_create("lost_wakes");
	tcase_add_test(tc, test_million_wakes);
	tcase_add_test(tc, test_hammer_park_boundary);
	tcase_add_test(tc, test_two_wakers_rounds);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = tcase_create("pingpong");
	tcase_add_test(tc, test_pingpong_parked);
	tcase_add_test(tc, test_pingpong_racing);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = tcase_create("waker_lifetime");
	tcase_add_test(tc, test_waker_outlives_thread);
	tcase_add_test(tc, test_clones_released_concurrently);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("einval");
	tcase_add_test(tc, test_einval);
	suite_add_tcase(s, tc);

	tc = tcase_create("deadlock");
	tcase_add_test(tc, test_block_on_in_poll);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("custom_parker");
	tcase_add_test(tc, test_custom_parker);
	tcase_add_test(tc, test_custom_parker_errors);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("thread_parker");
	tcase_add_test(tc, test_park_timeout_zero);
	tcase_add_test(tc, test_park_timeout_positive);
	tcase_add_test(tc, test_unpark_before_park);
	tcase_add_test(tc, test_park_unparked_by_other_thread);
	tcase_add_test(tc, test_park_long_timeout);
	tcase_add_test(tc, test_park_longest_timeout);
	tcase_add_test(tc, test_park_timeout_races_unpark);
	tcase_add_test(tc, test_thread_parker_identity);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = tcase_create("leaks");
	tcase_add_test(tc, test_no_fd_leak);
	tcase_add_test(tc, test_first_use_makes_one_fd);
	tcase_add_test(tc, test_no_thread_leak);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = tcase_create("cancel");
	tcase_add_test(tc, test_cancel_while_parked);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("fork");
	tcase_add_test(tc, test_fork_child_block_on);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("stats");
	tcase_add_test(tc, test_stats_monotonic);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return test_run_suite(executor_suite());
}
