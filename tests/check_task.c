// SPDX-License-Identifier: MIT
/*
 * tests/check_task.c - tasks under both schedulers: spawn, join, abort,
 * detach, ids, the current executor, a million tasks, spawns from foreign
 * threads, abort racing completion, shutdown with live tasks, bad input.
 *
 * Every case runs twice (Check loop index 0: current-thread executor;
 * 1: multi-thread with two workers).
 */
#include <rouse/sync.h>

#include "testutil.h"

/* ---- test futures --------------------------------------------------- */

/* Ready at once: out = 2 * in; counts polls and drops. */
struct dbl {
	struct rouse_future base;
	int in, out;
	atomic_int *polls, *drops;
	uint64_t id;			/* rouse_task_current_id() seen */
	struct rouse_executor *ex;	/* rouse_executor_current() seen */
};

static enum rouse_poll dbl_poll(struct rouse_future *f,
				struct rouse_context *cx)
{
	struct dbl *d = (struct dbl *)f;

	(void)cx;
	d->out = 2 * d->in;
	d->id = rouse_task_current_id();
	d->ex = rouse_executor_current();
	if (d->polls != NULL)
		atomic_fetch_add(d->polls, 1);
	return ROUSE_READY;
}

static void dbl_drop(struct rouse_future *f)
{
	struct dbl *d = (struct dbl *)f;

	if (d->drops != NULL)
		atomic_fetch_add(d->drops, 1);
}

static const struct rouse_future_vtable dbl_vt = { dbl_poll, dbl_drop };

static struct dbl dbl_make(int in, atomic_int *polls, atomic_int *drops)
{
	struct dbl d;

	memset(&d, 0, sizeof(d));
	d.base.vtable = &dbl_vt;
	d.in = in;
	d.polls = polls;
	d.drops = drops;
	return d;
}

/*
 * Pending until *go is set; keeps a clone of its waker in *slot (under
 * slot_lock) so that the test can wake it from anywhere.
 */
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;

struct gate {
	struct rouse_future base;
	atomic_int *go;
	struct rouse_waker *slot;
	atomic_int *polls, *drops;
};

static enum rouse_poll gate_poll(struct rouse_future *f,
				 struct rouse_context *cx)
{
	struct gate *g = (struct gate *)f;

	if (g->polls != NULL)
		atomic_fetch_add(g->polls, 1);
	pthread_mutex_lock(&slot_lock);
	if (g->slot != NULL) {
		if (g->slot->vtable != NULL)
			rouse_waker_drop(g->slot);
		rouse_waker_clone(cx->waker, g->slot);
	}
	pthread_mutex_unlock(&slot_lock);
	if (g->go != NULL && atomic_load(g->go))
		return ROUSE_READY;
	return ROUSE_PENDING;
}

static void gate_drop(struct rouse_future *f)
{
	struct gate *g = (struct gate *)f;

	if (g->drops != NULL)
		atomic_fetch_add(g->drops, 1);
}

static const struct rouse_future_vtable gate_vt = { gate_poll, gate_drop };

static struct gate gate_make(atomic_int *go, struct rouse_waker *slot,
			     atomic_int *polls, atomic_int *drops)
{
	struct gate g = { { &gate_vt }, go, slot, polls, drops };

	return g;
}

static void slot_wake(struct rouse_waker *slot)
{
	struct rouse_waker w = { NULL, NULL };

	pthread_mutex_lock(&slot_lock);
	if (slot->vtable != NULL)
		rouse_waker_clone(slot, &w);
	pthread_mutex_unlock(&slot_lock);
	if (w.vtable != NULL)
		rouse_waker_wake(&w);
}

static void slot_release(struct rouse_waker *slot)
{
	pthread_mutex_lock(&slot_lock);
	if (slot->vtable != NULL)
		rouse_waker_drop(slot);
	pthread_mutex_unlock(&slot_lock);
}

/* Awaits handles[0..n) in order; a root future for block_on. */
struct join_all {
	struct rouse_future base;
	struct rouse_join_handle *h;
	size_t n, next;
};

static enum rouse_poll join_all_poll(struct rouse_future *f,
				     struct rouse_context *cx)
{
	struct join_all *j = (struct join_all *)f;

	while (j->next < j->n) {
		if (rouse_future_poll(&j->h[j->next].base, cx) != ROUSE_READY)
			return ROUSE_PENDING;
		j->next++;
	}
	return ROUSE_READY;
}

static const struct rouse_future_vtable join_all_vt = { join_all_poll, NULL };

static void await_all(struct rouse_executor *ex, struct rouse_join_handle *h,
		      size_t n)
{
	struct join_all j = { { &join_all_vt }, h, n, 0 };

	ck_assert_int_eq(rouse_executor_block_on(ex, &j.base), 0);
}

/* ---- cases ------------------------------------------------------------ */

START_TEST(spawn_join_output)
{
	struct rouse_executor *ex = test_executor_make(_i);
	atomic_int polls = 0, drops = 0;
	struct dbl d = dbl_make(21, &polls, &drops);
	struct rouse_join_handle h;
	struct dbl *out;

	ck_assert_int_eq(rouse_spawn(ex, &d.base, sizeof(d), &h), 0);
	ck_assert_uint_ne(rouse_join_handle_id(&h), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &h.base), 0);
	ck_assert_int_eq(h.result, 0);
	out = (struct dbl *)h.output;
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(out->out, 42);
	ck_assert_uint_eq(out->id, rouse_join_handle_id(&h));
	ck_assert_ptr_eq(out->ex, ex);
	ck_assert_int_eq(atomic_load(&polls), 1);
	/*
	 * The future was dropped when it completed; its output fields stay
	 * readable until the handle goes, which drops nothing more.
	 */
	ck_assert_int_eq(atomic_load(&drops), 1);
	ck_assert_int_eq(rouse_future_drop(&h.base), 0);
	ck_assert_int_eq(atomic_load(&drops), 1);
	ck_assert_uint_eq(rouse_task_current_id(), 0);
	ck_assert_ptr_null(rouse_executor_current());
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

START_TEST(ids_are_unique)
{
	struct rouse_executor *ex = test_executor_make(_i);
	struct rouse_join_handle h[64];
	struct dbl d = dbl_make(1, NULL, NULL);
	int i, j;

	for (i = 0; i < 64; i++)
		ck_assert_int_eq(rouse_spawn(ex, &d.base, sizeof(d), &h[i]),
				 0);
	for (i = 0; i < 64; i++)
		for (j = 0; j < i; j++)
			ck_assert_uint_ne(rouse_join_handle_id(&h[i]),
					  rouse_join_handle_id(&h[j]));
	await_all(ex, h, 64);
	for (i = 0; i < 64; i++) {
		ck_assert_uint_eq(((struct dbl *)h[i].output)->id,
				  rouse_join_handle_id(&h[i]));
		rouse_future_drop(&h[i].base);
	}
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/* A task that spawns children through the current executor (ex NULL). */
struct parent {
	struct rouse_future base;
	int n, state;
	struct rouse_join_handle h[8];
	int sum, err;
};

static enum rouse_poll parent_poll(struct rouse_future *f,
				   struct rouse_context *cx)
{
	struct parent *p = (struct parent *)f;
	int i;

	if (p->state == 0) {
		for (i = 0; i < p->n; i++) {
			struct dbl d = dbl_make(i, NULL, NULL);

			p->err = rouse_spawn(NULL, &d.base, sizeof(d),
					     &p->h[i]);
			if (p->err != 0)
				return ROUSE_READY;
		}
		p->state = 1;
	}
	for (i = 0; i < p->n; i++) {
		if (p->h[i].base.vtable == NULL)
			continue;
		if (rouse_future_poll(&p->h[i].base, cx) != ROUSE_READY)
			return ROUSE_PENDING;
		p->sum += ((struct dbl *)p->h[i].output)->out;
		rouse_future_drop(&p->h[i].base);
	}
	return ROUSE_READY;
}

static void parent_drop(struct rouse_future *f)
{
	struct parent *p = (struct parent *)f;
	int i;

	for (i = 0; i < p->n; i++)
		if (p->h[i].base.vtable != NULL)
			rouse_future_drop(&p->h[i].base);
}

static const struct rouse_future_vtable parent_vt = { parent_poll,
						       parent_drop };

START_TEST(spawn_from_task)
{
	struct rouse_executor *ex = test_executor_make(_i);
	struct parent p;
	struct rouse_join_handle h;

	memset(&p, 0, sizeof(p));
	p.base.vtable = &parent_vt;
	p.n = 8;
	ck_assert_int_eq(rouse_spawn(ex, &p.base, sizeof(p), &h), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &h.base), 0);
	ck_assert_int_eq(h.result, 0);
	ck_assert_int_eq(((struct parent *)h.output)->err, 0);
	ck_assert_int_eq(((struct parent *)h.output)->sum, 2 * 28);
	rouse_future_drop(&h.base);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/* The root future of block_on can spawn too (ex NULL). */
START_TEST(spawn_from_root)
{
	struct rouse_executor *ex = test_executor_make(_i);
	struct parent p;

	memset(&p, 0, sizeof(p));
	p.base.vtable = &parent_vt;
	p.n = 5;
	ck_assert_int_eq(rouse_executor_block_on(ex, &p.base), 0);
	ck_assert_int_eq(p.err, 0);
	ck_assert_int_eq(p.sum, 2 * 10);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

START_TEST(abort_pending)
{
	struct rouse_executor *ex = test_executor_make(_i);
	atomic_int go = 0, polls = 0, drops = 0;
	struct rouse_waker slot = { NULL, NULL };
	struct gate g = gate_make(&go, &slot, &polls, &drops);
	struct rouse_join_handle h, h2;
	struct dbl d = dbl_make(1, NULL, NULL);

	ck_assert_int_eq(rouse_spawn(ex, &g.base, sizeof(g), &h), 0);
	/* Run it once: a second task's join proves the first was polled. */
	ck_assert_int_eq(rouse_spawn(ex, &d.base, sizeof(d), &h2), 0);
	while (atomic_load(&polls) == 0) {
		struct dbl d2 = dbl_make(1, NULL, NULL);

		rouse_future_drop(&h2.base);
		ck_assert_int_eq(rouse_spawn(ex, &d2.base, sizeof(d2), &h2),
				 0);
		ck_assert_int_eq(rouse_executor_block_on(ex, &h2.base), 0);
	}
	rouse_future_drop(&h2.base);
	ck_assert_int_eq(rouse_join_handle_abort(&h), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &h.base), 0);
	ck_assert_int_eq(h.result, -ECANCELED);
	ck_assert_ptr_null(h.output);
	ck_assert_int_eq(atomic_load(&drops), 1);
	/* The task is gone: waking its stale waker is harmless. */
	slot_wake(&slot);
	ck_assert_int_eq(rouse_join_handle_abort(&h), 0);
	rouse_future_drop(&h.base);
	slot_release(&slot);
	ck_assert_int_eq(atomic_load(&drops), 1);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/* Abort before the first poll: dropped without ever being polled. */
START_TEST(abort_queued)
{
	struct rouse_executor *ex = test_executor_make(0);
	atomic_int polls = 0, drops = 0;
	struct dbl d = dbl_make(3, &polls, &drops);
	struct rouse_join_handle h;

	/* A current-thread executor runs nothing outside block_on. */
	ck_assert_int_eq(rouse_spawn(ex, &d.base, sizeof(d), &h), 0);
	ck_assert_int_eq(rouse_join_handle_abort(&h), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &h.base), 0);
	ck_assert_int_eq(h.result, -ECANCELED);
	ck_assert_int_eq(atomic_load(&polls), 0);
	ck_assert_int_eq(atomic_load(&drops), 1);
	rouse_future_drop(&h.base);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/*
 * A task's future is dropped when it completes, not when its handle goes:
 * a producer whose drop releases the only sender of a channel closes the
 * channel as soon as it finishes, while main still holds its handle.
 */
struct producer {
	struct rouse_future base;
	struct rouse_mpsc *m;
	int sent;			/* output */
};

static enum rouse_poll producer_poll(struct rouse_future *f,
				     struct rouse_context *cx)
{
	struct producer *p = (struct producer *)f;
	int v;

	for (v = 1; v <= 3; v++)
		ck_assert_int_eq(rouse_mpsc_try_send(p->m, &v), 0);
	p->sent = 3;
	return ROUSE_READY;
}

static void producer_drop(struct rouse_future *f)
{
	ck_assert_int_eq(rouse_mpsc_sender_release(((struct producer *)f)->m),
			 0);
}

static const struct rouse_future_vtable producer_vt = { producer_poll,
							producer_drop };

/* Receives until the channel closes; ready with the sum of the values. */
struct drain {
	struct rouse_future base;
	struct rouse_mpsc_recv rx;
	struct rouse_mpsc *m;
	int value, sum;
	bool waiting;
};

static enum rouse_poll drain_poll(struct rouse_future *f,
				  struct rouse_context *cx)
{
	struct drain *d = (struct drain *)f;

	for (;;) {
		if (!d->waiting) {
			ck_assert_int_eq(rouse_mpsc_recv_init(&d->rx, d->m,
							      &d->value), 0);
			d->waiting = true;
		}
		if (rouse_future_poll(&d->rx.base, cx) == ROUSE_PENDING)
			return ROUSE_PENDING;
		rouse_future_drop(&d->rx.base);
		d->waiting = false;
		if (d->rx.result == -EPIPE)
			return ROUSE_READY;
		ck_assert_int_eq(d->rx.result, 0);
		d->sum += d->value;
	}
}

static const struct rouse_future_vtable drain_vt = { drain_poll, NULL };

START_TEST(completed_task_drops_future)
{
	struct rouse_executor *ex = test_executor_make(_i);
	struct producer p = { { &producer_vt }, NULL, 0 };
	struct drain d = { .base = { &drain_vt } };
	struct rouse_join_handle h;

	ck_assert_int_eq(rouse_mpsc_new(sizeof(int), 0, &p.m), 0);
	d.m = p.m;
	ck_assert_int_eq(rouse_spawn(ex, &p.base, sizeof(p), &h), 0);
	/* Hangs if the producer's sender waits for the handle to go. */
	ck_assert_int_eq(rouse_executor_block_on(ex, &d.base), 0);
	ck_assert_int_eq(d.sum, 6);
	ck_assert_int_eq(rouse_executor_block_on(ex, &h.base), 0);
	ck_assert_int_eq(h.result, 0);
	ck_assert_int_eq(((struct producer *)h.output)->sent, 3);
	ck_assert_int_eq(rouse_future_drop(&h.base), 0);
	ck_assert_int_eq(rouse_mpsc_free(d.m), 0);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

START_TEST(abort_after_completion)
{
	struct rouse_executor *ex = test_executor_make(_i);
	atomic_int drops = 0;
	struct dbl d = dbl_make(4, NULL, &drops);
	struct rouse_join_handle h;

	ck_assert_int_eq(rouse_spawn(ex, &d.base, sizeof(d), &h), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &h.base), 0);
	ck_assert_int_eq(rouse_join_handle_abort(&h), 0);
	/* Polled again after ready: still the output. */
	ck_assert_int_eq(h.result, 0);
	ck_assert_int_eq(((struct dbl *)h.output)->out, 8);
	ck_assert_int_eq(atomic_load(&drops), 1);
	ck_assert_int_eq(rouse_join_handle_detach(&h), 0);
	ck_assert_int_eq(atomic_load(&drops), 1);
	ck_assert_int_eq(rouse_join_handle_detach(&h), -EINVAL);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

START_TEST(detach_runs_and_drops)
{
	struct rouse_executor *ex = test_executor_make(_i);
	atomic_int polls = 0, drops = 0, go = 0;
	struct rouse_waker slot = { NULL, NULL };
	struct gate g = gate_make(&go, &slot, &polls, &drops);
	struct rouse_join_handle h;
	struct dbl d = dbl_make(5, &polls, &drops);

	/* Detached by passing no handle. */
	ck_assert_int_eq(rouse_spawn(ex, &d.base, sizeof(d), NULL), 0);
	/* Detached after spawning: it still completes. */
	ck_assert_int_eq(rouse_spawn(ex, &g.base, sizeof(g), &h), 0);
	ck_assert_int_eq(rouse_join_handle_detach(&h), 0);
	{
		/* Drive the executor until both ran and were dropped. */
		struct rouse_join_handle lh;

		while (atomic_load(&drops) < 1 || atomic_load(&polls) < 2) {
			struct dbl e = dbl_make(0, NULL, NULL);

			ck_assert_int_eq(rouse_spawn(ex, &e.base, sizeof(e),
						     &lh), 0);
			ck_assert_int_eq(rouse_executor_block_on(ex, &lh.base),
					 0);
			rouse_future_drop(&lh.base);
		}
	}
	/* The gate task is pending; open it and wake it. */
	atomic_store(&go, 1);
	slot_wake(&slot);
	while (atomic_load(&drops) < 2) {
		struct dbl e = dbl_make(0, NULL, NULL);
		struct rouse_join_handle lh;

		ck_assert_int_eq(rouse_spawn(ex, &e.base, sizeof(e), &lh), 0);
		ck_assert_int_eq(rouse_executor_block_on(ex, &lh.base), 0);
		rouse_future_drop(&lh.base);
	}
	ck_assert_int_eq(atomic_load(&drops), 2);
	slot_release(&slot);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/* Waking a finished task, before and after the executor is freed. */
START_TEST(wake_after_finish)
{
	struct rouse_executor *ex = test_executor_make(_i);
	atomic_int go = 1, polls = 0, drops = 0;
	struct rouse_waker slot = { NULL, NULL };
	struct gate g = gate_make(&go, &slot, &polls, &drops);
	struct rouse_join_handle h;

	ck_assert_int_eq(rouse_spawn(ex, &g.base, sizeof(g), &h), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &h.base), 0);
	ck_assert_int_eq(h.result, 0);
	slot_wake(&slot);
	rouse_future_drop(&h.base);
	slot_wake(&slot);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
	slot_wake(&slot);
	ck_assert_int_eq(atomic_load(&polls), 1);
	ck_assert_int_eq(atomic_load(&drops), 1);
	slot_release(&slot);
}
END_TEST


/*
 * Abort of a task that keeps waking itself (queued again while still
 * marked running): it is dropped at its next turn, from a root future on
 * the executor's own thread (current-thread) or from this thread.
 */
struct yielder {
	struct rouse_future base;
	atomic_int *polls, *drops;
};

static enum rouse_poll yielder_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct yielder *y = (struct yielder *)f;

	atomic_fetch_add(y->polls, 1);
	rouse_waker_wake_by_ref(cx->waker);
	return ROUSE_PENDING;
}

static void yielder_drop(struct rouse_future *f)
{
	atomic_fetch_add(((struct yielder *)f)->drops, 1);
}

static const struct rouse_future_vtable yielder_vt = { yielder_poll,
						       yielder_drop };

struct abort_root {
	struct rouse_future base;
	struct rouse_join_handle *h;
	atomic_int *polls;
	bool aborted;
};

static enum rouse_poll abort_root_poll(struct rouse_future *f,
				       struct rouse_context *cx)
{
	struct abort_root *r = (struct abort_root *)f;

	if (!r->aborted) {
		if (atomic_load(r->polls) < 100) {
			rouse_waker_wake_by_ref(cx->waker);
			return ROUSE_PENDING;
		}
		r->aborted = true;
		ck_assert_int_eq(rouse_join_handle_abort(r->h), 0);
	}
	return (enum rouse_poll)rouse_future_poll(&r->h->base, cx);
}

static const struct rouse_future_vtable abort_root_vt = { abort_root_poll,
							   NULL };

START_TEST(abort_yielding)
{
	struct rouse_executor *ex = test_executor_make(_i);
	atomic_int polls = 0, drops = 0;
	struct yielder y = { { &yielder_vt }, &polls, &drops };
	struct rouse_join_handle h;
	struct abort_root root = { { &abort_root_vt }, &h, &polls, false };
	int p;

	ck_assert_int_eq(rouse_spawn(ex, &y.base, sizeof(y), &h), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &root.base), 0);
	ck_assert_int_eq(h.result, -ECANCELED);
	ck_assert_int_eq(atomic_load(&drops), 1);
	/* Not polled again once dropped. */
	p = atomic_load(&polls);
	rouse_future_drop(&h.base);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
	ck_assert_int_eq(atomic_load(&polls), p);
	ck_assert_int_eq(atomic_load(&drops), 1);
}
END_TEST

/* One million tasks spawned by a root future and joined. */
#define MANY 1000000

START_TEST(million_tasks)
{
	struct rouse_executor *ex = test_executor_make(_i);
	struct rouse_join_handle *h = calloc(MANY, sizeof(*h));
	atomic_int polls = 0, drops = 0;
	long long sum = 0;
	size_t i;

	ck_assert_ptr_nonnull(h);
	for (i = 0; i < MANY; i++) {
		struct dbl d = dbl_make((int)(i & 1023), &polls, &drops);

		test_require_int(rouse_spawn(ex, &d.base, sizeof(d), &h[i]),
				 ==, 0);
	}
	await_all(ex, h, MANY);
	for (i = 0; i < MANY; i++) {
		test_require_int(h[i].result, ==, 0);
		sum += ((struct dbl *)h[i].output)->out;
		rouse_future_drop(&h[i].base);
	}
	ck_assert_int_eq(atomic_load(&polls), MANY);
	ck_assert_int_eq(atomic_load(&drops), MANY);
	ck_assert_int_eq(sum, 2LL * (MANY / 1024) * (1023 * 1024 / 2) +
				      2LL * (long long)((MANY % 1024) *
							((MANY % 1024) - 1) / 2));
	free(h);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/* Four foreign threads spawn at once; a root waits for all. */
#define FOREIGN 4
#define PER_THREAD 20000

struct foreign_arg {
	struct rouse_executor *ex;
	struct test_barrier *b;
	atomic_int *done;
	int err;
};

static void *foreign_spawner(void *arg)
{
	struct foreign_arg *a = arg;
	int i;

	test_barrier_wait(a->b);
	for (i = 0; i < PER_THREAD && a->err == 0; i++) {
		struct dbl d = dbl_make(i, a->done, NULL);

		a->err = rouse_spawn(a->ex, &d.base, sizeof(d), NULL);
	}
	return NULL;
}

/* Root: ready once *count reaches want; woken by the last task's wake. */
struct count_root {
	struct rouse_future base;
	atomic_int *count;
	int want;
};

static enum rouse_poll count_root_poll(struct rouse_future *f,
				       struct rouse_context *cx)
{
	struct count_root *r = (struct count_root *)f;

	if (atomic_load(r->count) >= r->want)
		return ROUSE_READY;
	/* Not a real waiter: ask to be polled again right away. */
	rouse_waker_wake_by_ref(cx->waker);
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable count_root_vt = { count_root_poll,
							   NULL };

START_TEST(foreign_spawns)
{
	struct rouse_executor *ex = test_executor_make(_i);
	struct foreign_arg a[FOREIGN];
	struct test_barrier b;
	pthread_t t[FOREIGN];
	atomic_int done = 0;
	struct count_root root = { { &count_root_vt }, &done,
				   FOREIGN * PER_THREAD };
	int i;

	test_barrier_init(&b, FOREIGN);
	for (i = 0; i < FOREIGN; i++) {
		a[i].ex = ex;
		a[i].b = &b;
		a[i].done = &done;
		a[i].err = 0;
		t[i] = test_thread_start(foreign_spawner, &a[i]);
	}
	ck_assert_int_eq(rouse_executor_block_on(ex, &root.base), 0);
	for (i = 0; i < FOREIGN; i++) {
		test_thread_join(t[i]);
		ck_assert_int_eq(a[i].err, 0);
	}
	ck_assert_int_eq(atomic_load(&done), FOREIGN * PER_THREAD);
	test_barrier_destroy(&b);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/*
 * Abort racing completion: a gate task is woken from one thread while
 * another aborts it.  Exactly one outcome, the body dropped exactly once.
 */
struct race_arg {
	struct test_barrier *b;
	struct rouse_join_handle *h;
	struct rouse_waker *slot;
	atomic_int *go;
};

static void *race_aborter(void *arg)
{
	struct race_arg *a = arg;

	test_barrier_wait(a->b);
	rouse_join_handle_abort(a->h);
	return NULL;
}

static void *race_waker(void *arg)
{
	struct race_arg *a = arg;

	test_barrier_wait(a->b);
	atomic_store(a->go, 1);
	slot_wake(a->slot);
	return NULL;
}

START_TEST(abort_races_completion)
{
	struct rouse_executor *ex = test_executor_make(_i);
	int round, completed = 0, cancelled = 0;

	for (round = 0; round < 300; round++) {
		atomic_int go = 0, polls = 0, drops = 0;
		struct rouse_waker slot = { NULL, NULL };
		struct gate g = gate_make(&go, &slot, &polls, &drops);
		struct rouse_join_handle h;
		struct test_barrier b;
		struct race_arg ra;
		pthread_t t1, t2;

		ck_assert_int_eq(rouse_spawn(ex, &g.base, sizeof(g), &h), 0);
		/* Until the first poll stored the waker. */
		while (atomic_load(&polls) == 0) {
			struct dbl e = dbl_make(0, NULL, NULL);
			struct rouse_join_handle lh;

			ck_assert_int_eq(rouse_spawn(ex, &e.base, sizeof(e),
						     &lh), 0);
			ck_assert_int_eq(rouse_executor_block_on(ex,
								 &lh.base), 0);
			rouse_future_drop(&lh.base);
		}
		test_barrier_init(&b, 2);
		ra.b = &b;
		ra.h = &h;
		ra.slot = &slot;
		ra.go = &go;
		t1 = test_thread_start(race_aborter, &ra);
		t2 = test_thread_start(race_waker, &ra);
		test_thread_join(t1);
		test_thread_join(t2);
		ck_assert_int_eq(rouse_executor_block_on(ex, &h.base), 0);
		if (h.result == 0) {
			completed++;
			ck_assert_ptr_nonnull(h.output);
			ck_assert_int_eq(atomic_load(&drops), 1);
		} else {
			cancelled++;
			ck_assert_int_eq(h.result, -ECANCELED);
			ck_assert_int_eq(atomic_load(&drops), 1);
		}
		rouse_future_drop(&h.base);
		ck_assert_int_eq(atomic_load(&drops), 1);
		slot_release(&slot);
		test_barrier_destroy(&b);
	}
	ck_assert_int_eq(completed + cancelled, 300);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/* Freeing an executor with pending, queued and completed tasks. */
START_TEST(shutdown_with_live_tasks)
{
	int threads = test_count_threads_settled();
	struct rouse_executor *ex = test_executor_make(_i);
	atomic_int go = 0, polls = 0, drops = 0;
	struct rouse_waker slots[8];
	struct rouse_join_handle h[8], done_h;
	struct dbl d = dbl_make(6, NULL, &drops);
	int i;

	memset(slots, 0, sizeof(slots));
	for (i = 0; i < 8; i++) {
		struct gate g = gate_make(&go, &slots[i], &polls, &drops);

		ck_assert_int_eq(rouse_spawn(ex, &g.base, sizeof(g), &h[i]),
				 0);
	}
	ck_assert_int_eq(rouse_spawn(ex, &d.base, sizeof(d), &done_h), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &done_h.base), 0);
	/* Some gates were polled (or not); none can complete. */
	ck_assert_int_eq(rouse_executor_free(ex), 0);
	ck_assert_int_eq(atomic_load(&drops), 9);
	for (i = 0; i < 8; i++) {
		ck_assert_int_eq(test_poll_noop(&h[i].base), ROUSE_READY);
		ck_assert_int_eq(h[i].result, -ECANCELED);
		rouse_future_drop(&h[i].base);
		slot_wake(&slots[i]);
		slot_release(&slots[i]);
	}
	/* A completed task's output outlives its executor. */
	ck_assert_int_eq(done_h.result, 0);
	ck_assert_int_eq(((struct dbl *)done_h.output)->out, 12);
	rouse_future_drop(&done_h.base);
	ck_assert_int_eq(atomic_load(&drops), 9);
	ck_assert_int_eq(test_wait_threads(threads), threads);
}
END_TEST

/*
 * Free while another thread wakes the executor's tasks without pause:
 * free waits for none of those wakes, and they stay harmless after it
 * (each waker keeps its task's memory and the executor's; ASan and TSan
 * would see a use after free or a race).
 */
struct waker_storm {
	struct rouse_waker *slots;
	int n;
	atomic_int stop, rounds;
};

static void *waker_storm_thread(void *arg)
{
	struct waker_storm *ws = arg;
	int i;

	while (!atomic_load(&ws->stop)) {
		for (i = 0; i < ws->n; i++)
			slot_wake(&ws->slots[i]);
		atomic_fetch_add(&ws->rounds, 1);
	}
	return NULL;
}

START_TEST(free_under_wakes)
{
	int threads = test_count_threads_settled();
	struct rouse_executor *ex = test_executor_make(_i);
	atomic_int go = 0, polls = 0, drops = 0;
	struct rouse_waker slots[8];
	struct rouse_join_handle h[8];
	struct waker_storm ws = { slots, 8, 0, 0 };
	pthread_t t;
	int i, rounds;

	memset(slots, 0, sizeof(slots));
	for (i = 0; i < 8; i++) {
		struct gate g = gate_make(&go, &slots[i], &polls, &drops);

		ck_assert_int_eq(rouse_spawn(ex, &g.base, sizeof(g), &h[i]),
				 0);
	}
	/* Every gate polled once (so every slot holds a waker). */
	{
		struct dbl d = dbl_make(1, NULL, NULL);
		struct rouse_join_handle dh;

		while (atomic_load(&polls) < 8) {
			ck_assert_int_eq(rouse_spawn(ex, &d.base, sizeof(d),
						     &dh), 0);
			ck_assert_int_eq(rouse_executor_block_on(ex,
								 &dh.base), 0);
			rouse_future_drop(&dh.base);
		}
	}
	t = test_thread_start(waker_storm_thread, &ws);
	test_spin_until_ge(&ws.rounds, 2);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
	ck_assert_int_eq(atomic_load(&drops), 8);
	/* The storm goes on past the free. */
	rounds = atomic_load(&ws.rounds);
	test_spin_until_ge(&ws.rounds, rounds + 2);
	atomic_store(&ws.stop, 1);
	test_thread_join(t);
	for (i = 0; i < 8; i++) {
		ck_assert_int_eq(test_poll_noop(&h[i].base), ROUSE_READY);
		ck_assert_int_eq(h[i].result, -ECANCELED);
		rouse_future_drop(&h[i].base);
		slot_release(&slots[i]);
	}
	ck_assert_int_eq(test_wait_threads(threads), threads);
}
END_TEST

/* Nested block_on and free from inside a task are refused. */
struct inner {
	struct rouse_future base;
	struct rouse_executor *ex;
	int block_err, free_err;
};

static enum rouse_poll inner_poll(struct rouse_future *f,
				  struct rouse_context *cx)
{
	struct inner *in = (struct inner *)f;
	struct dbl d = dbl_make(0, NULL, NULL);

	(void)cx;
	in->block_err = rouse_executor_block_on(in->ex, &d.base);
	in->free_err = rouse_executor_free(in->ex);
	return ROUSE_READY;
}

static const struct rouse_future_vtable inner_vt = { inner_poll, NULL };

START_TEST(refused_inside_task)
{
	struct rouse_executor *ex = test_executor_make(_i);
	struct inner in = { { &inner_vt }, ex, 0, 0 };
	struct rouse_join_handle h;
	struct inner *o;

	ck_assert_int_eq(rouse_spawn(ex, &in.base, sizeof(in), &h), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &h.base), 0);
	o = (struct inner *)h.output;
	ck_assert_int_eq(o->block_err, -EDEADLK);
	ck_assert_int_eq(o->free_err, -EDEADLK);
	rouse_future_drop(&h.base);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

START_TEST(bad_input)
{
	struct rouse_executor_config cfg;
	struct rouse_executor *ex;
	struct dbl d = dbl_make(0, NULL, NULL);
	struct rouse_future nopoll = { NULL };
	struct rouse_join_handle h;

	ck_assert_int_eq(rouse_executor_config_init(NULL), -EINVAL);
	ck_assert_int_eq(rouse_executor_new(NULL, NULL), -EINVAL);
	rouse_executor_config_init(&cfg);
	cfg.kind = (enum rouse_executor_kind)7;
	ck_assert_int_eq(rouse_executor_new(&cfg, &ex), -EINVAL);
	rouse_executor_config_init(&cfg);
	cfg.event_interval = 0;
	ck_assert_int_eq(rouse_executor_new(&cfg, &ex), -EINVAL);
	rouse_executor_config_init(&cfg);
	cfg.kind = ROUSE_EXECUTOR_MULTI_THREAD;
	cfg.workers = 100000;
	ck_assert_int_eq(rouse_executor_new(&cfg, &ex), -EINVAL);
	ck_assert_int_eq(rouse_executor_free(NULL), -EINVAL);

	ex = test_executor_make(_i);
	ck_assert_int_eq(rouse_spawn(ex, NULL, sizeof(d), &h), -EINVAL);
	ck_assert_int_eq(rouse_spawn(ex, &nopoll, sizeof(nopoll), &h),
			 -EINVAL);
	ck_assert_int_eq(rouse_spawn(ex, &d.base, 1, &h), -EINVAL);
	ck_assert_int_eq(rouse_spawn(NULL, &d.base, sizeof(d), &h), -ESRCH);
	ck_assert_int_eq(rouse_executor_block_on(NULL, &d.base), -EINVAL);
	ck_assert_int_eq(rouse_executor_block_on(ex, NULL), -EINVAL);
	ck_assert_int_eq(rouse_join_handle_abort(NULL), -EINVAL);
	ck_assert_int_eq(rouse_join_handle_detach(NULL), -EINVAL);
	ck_assert_uint_eq(rouse_join_handle_id(NULL), 0);
	/* A future that is not a join handle is refused. */
	ck_assert_int_eq(rouse_join_handle_abort((struct rouse_join_handle *)
						 (void *)&d), -EINVAL);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

static Suite *task_suite(void)
{
	Suite *s = suite_create("task");
	TCase *tc = tcase_create("both schedulers");

	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	tcase_add_loop_test(tc, spawn_join_output, 0, 2);
	tcase_add_loop_test(tc, ids_are_unique, 0, 2);
	tcase_add_loop_test(tc, spawn_from_task, 0, 2);
	tcase_add_loop_test(tc, spawn_from_root, 0, 2);
	tcase_add_loop_test(tc, abort_pending, 0, 2);
	tcase_add_test(tc, abort_queued);
	tcase_add_loop_test(tc, abort_after_completion, 0, 2);
	tcase_add_loop_test(tc, completed_task_drops_future, 0, 2);
	tcase_add_loop_test(tc, detach_runs_and_drops, 0, 2);
	tcase_add_loop_test(tc, wake_after_finish, 0, 2);
	tcase_add_loop_test(tc, abort_yielding, 0, 2);
	tcase_add_loop_test(tc, million_tasks, 0, 2);
	tcase_add_loop_test(tc, foreign_spawns, 0, 2);
	tcase_add_loop_test(tc, abort_races_completion, 0, 2);
	tcase_add_loop_test(tc, shutdown_with_live_tasks, 0, 2);
	tcase_add_loop_test(tc, free_under_wakes, 0, 2);
	tcase_add_loop_test(tc, refused_inside_task, 0, 2);
	tcase_add_loop_test(tc, bad_input, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(task_suite());
}
