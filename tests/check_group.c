// SPDX-License-Identifier: MIT
/*
 * tests/check_group.c - task groups: completions come back in the order
 * the tasks finish, with their ids and outputs; a completion costs one
 * poll of one handle however many tasks wait; abort-all; free with live
 * tasks drops every future before it returns, and refuses (changing
 * nothing) inside a poll; one waiter at a time; spawns and waits from
 * several threads; bad input; no leaks in any order of free, completion
 * and abort.
 *
 * The cases that run tasks run twice (Check loop index 0: current-thread
 * executor; 1: multi-thread with two workers).  Nothing here sleeps or
 * times anything: every wait is for a count that the code under test
 * moves.
 */
#include <rouse/alloc.h>
#include <rouse/group.h>

#include "testutil.h"

static enum rouse_executor_kind kind_of(int i)
{
	return i == 0 ? ROUSE_EXECUTOR_CURRENT_THREAD :
			ROUSE_EXECUTOR_MULTI_THREAD;
}

static struct rouse_executor *make_ex(int i)
{
	struct rouse_executor_config cfg;
	struct rouse_executor *ex;

	ck_assert_int_eq(rouse_executor_config_init(&cfg), 0);
	cfg.kind = kind_of(i);
	cfg.workers = 2;
	ck_assert_int_eq(rouse_executor_new(&cfg, &ex), 0);
	return ex;
}

/* ---- a task that finishes when told ---------------------------------- */

/*
 * The test's side of a gate, which outlives the task: whether it may
 * finish, the waker its last poll left, its polls and drops.  A gate's
 * drop may also try the group it belongs to (spawn into it, free it), to
 * see what a task's drop gets while the group is being freed.
 */
struct gate_ctl {
	pthread_mutex_t lock;
	bool go;
	struct rouse_waker waker;	/* vtable NULL: none */
	atomic_int polls, drops;
	struct rouse_group *group_in_drop;
	struct rouse_executor *ex_in_drop;
	int spawn_err, free_err;
};

struct gate {
	struct rouse_future base;
	struct gate_ctl *ctl;
	int in;
	int out;			/* output: 2 * in */
	char pad[40];			/* outputs live in the task's copy */
};

static const struct rouse_future_vtable gate_vt;

static enum rouse_poll gate_poll(struct rouse_future *f,
				 struct rouse_context *cx)
{
	struct gate *t = (struct gate *)f;
	struct gate_ctl *c = t->ctl;
	bool go;

	atomic_fetch_add(&c->polls, 1);
	pthread_mutex_lock(&c->lock);
	go = c->go;
	if (!go && !rouse_waker_will_wake(&c->waker, cx->waker)) {
		rouse_waker_drop(&c->waker);
		rouse_waker_clone(cx->waker, &c->waker);
	}
	pthread_mutex_unlock(&c->lock);
	if (!go)
		return ROUSE_PENDING;
	t->out = 2 * t->in;
	memset(t->pad, 0x5a, sizeof(t->pad));
	return ROUSE_READY;
}

static void gate_drop(struct rouse_future *f)
{
	struct gate_ctl *c = ((struct gate *)f)->ctl;

	pthread_mutex_lock(&c->lock);
	rouse_waker_drop(&c->waker);	/* -EINVAL when there is none */
	pthread_mutex_unlock(&c->lock);
	if (c->group_in_drop != NULL) {
		struct gate other = { { &gate_vt }, c, 0, 0, { 0 } };

		c->spawn_err = rouse_group_spawn(c->group_in_drop,
						 c->ex_in_drop, &other.base,
						 sizeof(other), NULL);
		c->free_err = rouse_group_free(c->group_in_drop);
	}
	atomic_fetch_add(&c->drops, 1);
}

static const struct rouse_future_vtable gate_vt = { gate_poll, gate_drop };

static void ctl_init(struct gate_ctl *c)
{
	memset(c, 0, sizeof(*c));
	ck_assert_int_eq(pthread_mutex_init(&c->lock, NULL), 0);
}

static void ctl_destroy(struct gate_ctl *c)
{
	rouse_waker_drop(&c->waker);
	pthread_mutex_destroy(&c->lock);
}

/* Let the gate's task finish, and wake it if it waits. */
static void ctl_release(struct gate_ctl *c)
{
	struct rouse_waker w;

	pthread_mutex_lock(&c->lock);
	c->go = true;
	w = c->waker;
	c->waker.vtable = NULL;
	pthread_mutex_unlock(&c->lock);
	rouse_waker_wake(&w);		/* -EINVAL when none was left */
}

/* Spawn a gate with input in into g on ex; returns the task's id. */
static uint64_t spawn_gate(struct rouse_group *g, struct rouse_executor *ex,
			   struct gate_ctl *c, int in)
{
	struct gate t = { { &gate_vt }, c, in, 0, { 0 } };
	uint64_t id = 0;

	ck_assert_int_eq(rouse_group_spawn(g, ex, &t.base, sizeof(t), &id), 0);
	ck_assert_uint_ne(id, 0);
	return id;
}

/* ---- futures for the test's own block_on ------------------------------ */

/* Ready once the group counted at least target wakes; yields till then. */
struct wait_wakes {
	struct rouse_future base;
	struct rouse_group *g;
	uint64_t target;
};

static enum rouse_poll wait_wakes_poll(struct rouse_future *f,
				       struct rouse_context *cx)
{
	struct wait_wakes *w = (struct wait_wakes *)f;
	struct rouse_group_stats st;

	ck_assert_int_eq(rouse_group_get_stats(w->g, &st), 0);
	if (st.wakes >= w->target)
		return ROUSE_READY;
	rouse_waker_wake_by_ref(cx->waker);
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable wait_wakes_vt = { wait_wakes_poll,
							   NULL };

static void run_until_wakes(struct rouse_executor *ex, struct rouse_group *g,
			    uint64_t target)
{
	struct wait_wakes w = { { &wait_wakes_vt }, g, target };

	ck_assert_int_eq(rouse_executor_block_on(ex, &w.base), 0);
}

/* Ready once *counter reached target; yields till then. */
struct wait_count {
	struct rouse_future base;
	atomic_int *counter;
	int target;
};

static enum rouse_poll wait_count_poll(struct rouse_future *f,
				       struct rouse_context *cx)
{
	struct wait_count *w = (struct wait_count *)f;

	if (atomic_load(w->counter) >= w->target)
		return ROUSE_READY;
	rouse_waker_wake_by_ref(cx->waker);
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable wait_count_vt = { wait_count_poll,
							   NULL };

static void run_until_count(struct rouse_executor *ex, atomic_int *counter,
			    int target)
{
	struct wait_count w = { { &wait_count_vt }, counter, target };

	ck_assert_int_eq(rouse_executor_block_on(ex, &w.base), 0);
}

/* Take the next completion of g on ex's block_on; the caller drops n. */
static void next_on(struct rouse_executor *ex, struct rouse_group *g,
		    struct rouse_group_next *n)
{
	ck_assert_int_eq(rouse_group_next_init(n, g), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &n->base), 0);
}

static struct rouse_group *group_new(void)
{
	struct rouse_group *g = NULL;

	ck_assert_int_eq(rouse_group_new(&g), 0);
	ck_assert_ptr_nonnull(g);
	return g;
}

static struct rouse_group_stats stats_of(struct rouse_group *g)
{
	struct rouse_group_stats st;

	ck_assert_int_eq(rouse_group_get_stats(g, &st), 0);
	return st;
}

/* ---- cases ------------------------------------------------------------ */

START_TEST(bad_input)
{
	struct rouse_executor *ex = make_ex(_i);
	struct rouse_group *g = group_new();
	struct gate_ctl c;
	struct gate t = { { &gate_vt }, &c, 1, 0, { 0 } };
	struct rouse_future nopoll = { NULL };
	struct rouse_group_next n;
	struct rouse_group_join_all ja;
	struct rouse_group_stats st;
	uint64_t id = 77;

	ctl_init(&c);
	ck_assert_int_eq(rouse_group_new(NULL), -EINVAL);
	ck_assert_int_eq(rouse_group_free(NULL), -EINVAL);
	ck_assert_int_eq(rouse_group_spawn(NULL, ex, &t.base, sizeof(t), &id),
			 -EINVAL);
	ck_assert_int_eq(rouse_group_spawn(g, ex, NULL, sizeof(t), &id),
			 -EINVAL);
	ck_assert_int_eq(rouse_group_spawn(g, ex, &nopoll, sizeof(nopoll),
					   &id), -EINVAL);
	/* What rouse_spawn() refuses, the group refuses, adding nothing. */
	ck_assert_int_eq(rouse_group_spawn(g, ex, &t.base, 1, &id), -EINVAL);
	ck_assert_int_eq(rouse_group_spawn(g, ex, &t.base, (size_t)1 << 31,
					   &id), -EINVAL);
	/* No executor given, and none is the calling thread's. */
	ck_assert_int_eq(rouse_group_spawn(g, NULL, &t.base, sizeof(t), &id),
			 -ESRCH);
	ck_assert_uint_eq(id, 77);
	ck_assert_int_eq(rouse_group_len(g), 0);
	ck_assert_int_eq(rouse_group_len(NULL), -EINVAL);
	ck_assert_int_eq(rouse_group_abort_all(NULL), -EINVAL);
	ck_assert_int_eq(rouse_group_get_stats(NULL, &st), -EINVAL);
	ck_assert_int_eq(rouse_group_get_stats(g, NULL), -EINVAL);
	ck_assert_int_eq(rouse_group_next_init(NULL, g), -EINVAL);
	ck_assert_int_eq(rouse_group_next_init(&n, NULL), -EINVAL);
	ck_assert_int_eq(rouse_group_join_all_init(NULL, g), -EINVAL);
	ck_assert_int_eq(rouse_group_join_all_init(&ja, NULL), -EINVAL);
	st = stats_of(g);
	ck_assert_uint_eq(st.spawned + st.taken + st.wakes + st.polls, 0);
	ck_assert_int_eq(atomic_load(&c.polls) + atomic_load(&c.drops), 0);

	/* An empty group: next says so at once, join-all is ready. */
	ck_assert_int_eq(rouse_group_next_init(&n, g), 0);
	ck_assert_int_eq(test_poll_noop(&n.base), ROUSE_READY);
	ck_assert_uint_eq(n.id, 0);
	ck_assert_int_eq(n.result, -ENOENT);
	ck_assert_ptr_null(n.output);
	ck_assert_int_eq(test_poll_noop(&n.base), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&n.base), 0);
	ck_assert_int_eq(rouse_group_join_all_init(&ja, g), 0);
	ck_assert_int_eq(test_poll_noop(&ja.base), ROUSE_READY);
	ck_assert_int_eq(ja.result, 0);
	ck_assert_uint_eq(ja.completed + ja.cancelled, 0);
	ck_assert_int_eq(rouse_future_drop(&ja.base), 0);
	ck_assert_int_eq(rouse_group_free(g), 0);
	ctl_destroy(&c);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

#define ON 8

/*
 * Completions come back in the order the tasks finished, not the order
 * of their spawns, each with its task's id and output; each is held
 * until its next future is dropped, after the group is gone too.
 */
START_TEST(completion_order)
{
	static const int order[ON] = { 5, 2, 7, 0, 3, 6, 1, 4 };
	struct rouse_executor *ex = make_ex(_i);
	struct rouse_group *g = group_new();
	struct gate_ctl c[ON];
	struct rouse_group_next n[ON], empty;
	uint64_t ids[ON];
	int k;

	for (k = 0; k < ON; k++) {
		ctl_init(&c[k]);
		ids[k] = spawn_gate(g, ex, &c[k], 100 + k);
	}
	ck_assert_int_eq(rouse_group_len(g), ON);
	/* Let each finish in turn; its completion is queued before the next. */
	for (k = 0; k < ON; k++) {
		ctl_release(&c[order[k]]);
		run_until_wakes(ex, g, (uint64_t)k + 1);
	}
	ck_assert_int_eq(rouse_group_len(g), ON);
	for (k = 0; k < ON; k++) {
		int t = order[k];

		next_on(ex, g, &n[k]);
		ck_assert_uint_eq(n[k].id, ids[t]);
		ck_assert_int_eq(n[k].result, 0);
		ck_assert_ptr_nonnull(n[k].output);
		ck_assert_int_eq(((struct gate *)n[k].output)->out,
				 2 * (100 + t));
		ck_assert_int_eq(((struct gate *)n[k].output)->in, 100 + t);
		ck_assert_int_eq(rouse_group_len(g), ON - 1 - k);
		/* The task's future was dropped when it completed. */
		ck_assert_int_eq(atomic_load(&c[t].drops), 1);
	}
	next_on(ex, g, &empty);
	ck_assert_uint_eq(empty.id, 0);
	ck_assert_int_eq(empty.result, -ENOENT);
	rouse_future_drop(&empty.base);
	ck_assert_int_eq(rouse_group_free(g), 0);
	/* The outputs outlive the group, until each next future goes. */
	for (k = 0; k < ON; k++) {
		ck_assert_int_eq(((struct gate *)n[k].output)->pad[39], 0x5a);
		ck_assert_int_eq(rouse_future_drop(&n[k].base), 0);
		ck_assert_ptr_null(n[k].base.vtable);
	}
	for (k = 0; k < ON; k++)
		ctl_destroy(&c[k]);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

#define BN 1000

/*
 * O(1) per completion, structurally: with a thousand tasks waiting, a
 * completion costs one poll of one join handle, and an idle wait polls
 * none.  Every handle is polled once at its spawn and once per wake.
 */
START_TEST(one_poll_per_completion)
{
	struct rouse_executor *ex = make_ex(_i);
	struct rouse_group *g = group_new();
	struct gate_ctl *c = calloc(BN, sizeof(*c));
	struct rouse_group_stats s0, s1;
	uint64_t *ids = calloc(BN, sizeof(*ids)), seed = 7;
	int k;

	ck_assert(c != NULL && ids != NULL);
	for (k = 0; k < BN; k++) {
		ctl_init(&c[k]);
		ids[k] = spawn_gate(g, ex, &c[k], k);
	}
	/* Every task has run once and waits on its gate. */
	for (k = 0; k < BN; k++)
		run_until_count(ex, &c[k].polls, 1);
	s0 = stats_of(g);
	ck_assert_uint_eq(s0.spawned, BN);
	ck_assert_uint_eq(s0.polls, BN);
	ck_assert_uint_eq(s0.wakes, 0);

	/* A wait with nothing finished polls no handle. */
	{
		struct counting_waker cw;
		struct rouse_waker w = counting_waker(&cw);
		struct rouse_group_next n;

		ck_assert_int_eq(rouse_group_next_init(&n, g), 0);
		ck_assert_int_eq(test_poll_with(&n.base, &w), ROUSE_PENDING);
		ck_assert_int_eq(test_poll_with(&n.base, &w), ROUSE_PENDING);
		ck_assert_uint_eq(stats_of(g).polls, BN);
		ck_assert_int_eq(rouse_future_drop(&n.base), 0);
		counting_waker_drop_last(&w, &cw);
	}

	for (k = 0; k < 50; k++) {
		int t = (int)(test_splitmix64(&seed) % BN);
		struct rouse_group_next n;

		if (atomic_load(&c[t].drops) != 0)
			continue;	/* that one was taken already */
		s0 = stats_of(g);
		ctl_release(&c[t]);
		next_on(ex, g, &n);
		/* The wake is counted once it is done: wait for that. */
		run_until_wakes(ex, g, s0.wakes + 1);
		s1 = stats_of(g);
		ck_assert_uint_eq(n.id, ids[t]);
		/* One wake, one poll of one handle, one completion. */
		ck_assert_uint_eq(s1.wakes - s0.wakes, 1);
		ck_assert_uint_eq(s1.polls - s0.polls, 1);
		ck_assert_uint_eq(s1.taken - s0.taken, 1);
		rouse_future_drop(&n.base);
	}
	ck_assert_uint_eq(stats_of(g).polls, BN + stats_of(g).wakes);
	ck_assert_int_eq(rouse_group_free(g), 0);
	for (k = 0; k < BN; k++) {
		ck_assert_int_eq(atomic_load(&c[k].drops), 1);
		ctl_destroy(&c[k]);
	}
	free(c);
	free(ids);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/* abort-all: every task that has not finished reports -ECANCELED. */
START_TEST(abort_all)
{
	struct rouse_executor *ex = make_ex(_i);
	struct rouse_group *g = group_new();
	struct gate_ctl c[10];
	struct rouse_group_join_all ja;
	int k;

	for (k = 0; k < 10; k++) {
		ctl_init(&c[k]);
		spawn_gate(g, ex, &c[k], k);
	}
	/* Three finish first. */
	for (k = 0; k < 3; k++)
		ctl_release(&c[k]);
	run_until_wakes(ex, g, 3);
	ck_assert_int_eq(rouse_group_abort_all(g), 0);
	ck_assert_int_eq(rouse_group_join_all_init(&ja, g), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &ja.base), 0);
	ck_assert_int_eq(ja.result, 0);
	ck_assert_uint_eq(ja.completed, 3);
	ck_assert_uint_eq(ja.cancelled, 7);
	ck_assert_int_eq(rouse_future_drop(&ja.base), 0);
	ck_assert_int_eq(rouse_group_len(g), 0);
	for (k = 0; k < 10; k++)
		ck_assert_int_eq(atomic_load(&c[k].drops), 1);
	/* The group is empty, and still usable. */
	ck_assert_int_eq(rouse_group_abort_all(g), 0);
	ctl_release(&c[0]);
	spawn_gate(g, ex, &c[0], 1);
	{
		struct rouse_group_next n;

		next_on(ex, g, &n);
		ck_assert_int_eq(n.result, 0);
		ck_assert_int_eq(((struct gate *)n.output)->out, 2);
		rouse_future_drop(&n.base);
	}
	/* An aborted task's completion says so, and has no output. */
	spawn_gate(g, ex, &c[5], 1);
	ck_assert_int_eq(rouse_group_abort_all(g), 0);
	{
		struct rouse_group_next n;

		next_on(ex, g, &n);
		ck_assert_uint_ne(n.id, 0);
		ck_assert_int_eq(n.result, -ECANCELED);
		ck_assert_ptr_null(n.output);
		rouse_future_drop(&n.base);
	}
	ck_assert_int_eq(rouse_group_free(g), 0);
	for (k = 0; k < 10; k++)
		ctl_destroy(&c[k]);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

#define FN 16

/*
 * Free with tasks that wait for ever, from a thread that runs no
 * executor: every future has been dropped when free returns.  On the
 * current-thread executor nobody runs, free runs it itself.
 */
START_TEST(free_drops_before_return)
{
	struct rouse_executor *ex = make_ex(_i);
	struct rouse_group *g = group_new();
	struct gate_ctl c[FN], done;
	struct rouse_group_next n;
	int k;

	ctl_init(&done);
	for (k = 0; k < FN; k++) {
		ctl_init(&c[k]);
		spawn_gate(g, ex, &c[k], k);
	}
	/* Half have run and wait; the other half may be still queued. */
	for (k = 0; k < FN / 2; k++)
		run_until_count(ex, &c[k].polls, 1);
	/* One finished, one was taken and is held by n. */
	ctl_release(&done);
	spawn_gate(g, ex, &done, 21);
	run_until_wakes(ex, g, 1);
	ck_assert_int_eq(rouse_group_next_init(&n, g), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &n.base), 0);
	ck_assert_int_eq(n.result, 0);
	ck_assert_int_eq(rouse_group_len(g), FN);

	ck_assert_int_eq(rouse_group_free(g), 0);
	for (k = 0; k < FN; k++)
		ck_assert_int_eq(atomic_load(&c[k].drops), 1);
	ck_assert_int_eq(((struct gate *)n.output)->out, 42);
	ck_assert_int_eq(rouse_future_drop(&n.base), 0);
	for (k = 0; k < FN; k++)
		ctl_destroy(&c[k]);
	ctl_destroy(&done);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/*
 * Free while another thread runs the current-thread executor of the
 * tasks: that thread drops them, and free waits for it.
 */
struct runner {
	struct rouse_executor *ex;
	atomic_int stop;
	atomic_int started;
	struct rouse_waker waker;	/* the root's, for stopping it */
	pthread_mutex_t lock;
};

struct runner_root {
	struct rouse_future base;
	struct runner *r;
};

static enum rouse_poll runner_poll(struct rouse_future *f,
				   struct rouse_context *cx)
{
	struct runner *r = ((struct runner_root *)f)->r;

	pthread_mutex_lock(&r->lock);
	if (r->waker.vtable == NULL)
		rouse_waker_clone(cx->waker, &r->waker);
	pthread_mutex_unlock(&r->lock);
	atomic_store(&r->started, 1);
	return atomic_load(&r->stop) ? ROUSE_READY : ROUSE_PENDING;
}

static const struct rouse_future_vtable runner_vt = { runner_poll, NULL };

static void *runner_thread(void *arg)
{
	struct runner *r = arg;
	struct runner_root root = { { &runner_vt }, r };

	ck_assert_int_eq(rouse_executor_block_on(r->ex, &root.base), 0);
	return NULL;
}

START_TEST(free_while_other_thread_runs)
{
	struct runner r;
	struct rouse_group *g = group_new();
	struct gate_ctl c[FN];
	pthread_t t;
	int k;

	memset(&r, 0, sizeof(r));
	pthread_mutex_init(&r.lock, NULL);
	r.ex = make_ex(_i);
	t = test_thread_start(runner_thread, &r);
	test_spin_until_eq(&r.started, 1);
	for (k = 0; k < FN; k++) {
		ctl_init(&c[k]);
		spawn_gate(g, r.ex, &c[k], k);
	}
	for (k = 0; k < FN; k++)
		test_spin_until_ge(&c[k].polls, 1);
	ck_assert_int_eq(rouse_group_free(g), 0);
	for (k = 0; k < FN; k++)
		ck_assert_int_eq(atomic_load(&c[k].drops), 1);
	atomic_store(&r.stop, 1);
	pthread_mutex_lock(&r.lock);
	rouse_waker_wake_by_ref(&r.waker);
	pthread_mutex_unlock(&r.lock);
	test_thread_join(t);
	rouse_waker_drop(&r.waker);
	pthread_mutex_destroy(&r.lock);
	for (k = 0; k < FN; k++)
		ctl_destroy(&c[k]);
	ck_assert_int_eq(rouse_executor_free(r.ex), 0);
}
END_TEST

/*
 * Inside a task, free cannot wait: with a task of the group unfinished it
 * fails with -EDEADLK and changes nothing; the task then aborts them,
 * awaits join-all, and frees the group.  With nothing unfinished, free
 * works inside a poll too.
 */
struct owner {
	struct rouse_future base;
	struct rouse_group *g;
	struct gate_ctl *c;
	int state;
	struct rouse_group_join_all ja;
	/* outputs */
	int first_free, second_free, third_free;
	long len_after_refusal;
	int drops_after_refusal;
	uint64_t cancelled;
};

static enum rouse_poll owner_poll(struct rouse_future *f,
				  struct rouse_context *cx)
{
	struct owner *o = (struct owner *)f;
	int k;

	switch (o->state) {
	case 0:
		for (k = 0; k < 4; k++) {
			struct gate t = { { &gate_vt }, &o->c[k], k, 0, { 0 } };

			ck_assert_int_eq(rouse_group_spawn(o->g, NULL, &t.base,
							   sizeof(t), NULL),
					 0);
		}
		o->first_free = rouse_group_free(o->g);
		o->len_after_refusal = rouse_group_len(o->g);
		o->drops_after_refusal = 0;
		for (k = 0; k < 4; k++)
			o->drops_after_refusal += atomic_load(&o->c[k].drops);
		rouse_group_abort_all(o->g);
		rouse_group_join_all_init(&o->ja, o->g);
		o->state = 1;
		/* fall through */
	case 1:
		if (rouse_future_poll(&o->ja.base, cx) != ROUSE_READY)
			return ROUSE_PENDING;
		o->cancelled = o->ja.cancelled;
		rouse_future_drop(&o->ja.base);
		o->second_free = rouse_group_free(o->g);
		/* A new group whose one task finished: free it in here. */
		ck_assert_int_eq(rouse_group_new(&o->g), 0);
		o->c[4].go = true;
		{
			struct gate t = { { &gate_vt }, &o->c[4], 4, 0, { 0 } };

			ck_assert_int_eq(rouse_group_spawn(o->g, NULL, &t.base,
							   sizeof(t), NULL),
					 0);
		}
		o->state = 2;
		/* fall through */
	case 2: {
		struct rouse_group_stats st;

		/* Its completion queued: its task has finished. */
		ck_assert_int_eq(rouse_group_get_stats(o->g, &st), 0);
		if (st.wakes == 0) {
			rouse_waker_wake_by_ref(cx->waker);
			return ROUSE_PENDING;
		}
		o->third_free = rouse_group_free(o->g);
		return ROUSE_READY;
	}
	}
	return ROUSE_READY;
}

static const struct rouse_future_vtable owner_vt = { owner_poll, NULL };

START_TEST(free_inside_task)
{
	struct rouse_executor *ex = make_ex(_i);
	struct gate_ctl c[5];
	struct owner o, *out;
	struct rouse_join_handle h;
	int k;

	memset(&o, 0, sizeof(o));
	o.base.vtable = &owner_vt;
	o.c = c;
	o.g = group_new();
	for (k = 0; k < 5; k++)
		ctl_init(&c[k]);
	ck_assert_int_eq(rouse_spawn(ex, &o.base, sizeof(o), &h), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &h.base), 0);
	ck_assert_int_eq(h.result, 0);
	out = (struct owner *)h.output;
	ck_assert_int_eq(out->first_free, -EDEADLK);
	ck_assert_int_eq(out->len_after_refusal, 4);
	ck_assert_int_eq(out->drops_after_refusal, 0);
	ck_assert_uint_eq(out->cancelled, 4);
	ck_assert_int_eq(out->second_free, 0);
	ck_assert_int_eq(out->third_free, 0);
	for (k = 0; k < 5; k++)
		ck_assert_int_eq(atomic_load(&c[k].drops), 1);
	rouse_future_drop(&h.base);
	for (k = 0; k < 5; k++)
		ctl_destroy(&c[k]);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/*
 * One waiter at a time: a second future answers -EBUSY; a free wakes the
 * one that waits, which then answers -ECANCELED; a drop of the first
 * gives the turn back.
 */
START_TEST(one_waiter)
{
	struct rouse_executor *ex = make_ex(_i);
	struct rouse_group *g = group_new();
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct rouse_group_next a, b;
	struct rouse_group_join_all ja;
	struct gate_ctl c[2];

	ctl_init(&c[0]);
	ctl_init(&c[1]);
	spawn_gate(g, ex, &c[0], 1);
	spawn_gate(g, ex, &c[1], 2);
	ck_assert_int_eq(rouse_group_next_init(&a, g), 0);
	ck_assert_int_eq(rouse_group_next_init(&b, g), 0);
	ck_assert_int_eq(test_poll_with(&a.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(test_poll_with(&b.base, &w), ROUSE_READY);
	ck_assert_uint_eq(b.id, 0);
	ck_assert_int_eq(b.result, -EBUSY);
	ck_assert_int_eq(rouse_future_drop(&b.base), 0);
	ck_assert_int_eq(rouse_group_join_all_init(&ja, g), 0);
	ck_assert_int_eq(test_poll_with(&ja.base, &w), ROUSE_READY);
	ck_assert_int_eq(ja.result, -EBUSY);
	ck_assert_int_eq(rouse_future_drop(&ja.base), 0);

	/* The first one is woken by the completion. */
	ctl_release(&c[0]);
	run_until_wakes(ex, g, 1);
	test_spin_until_eq(&cw.wakes, 1);
	ck_assert_int_eq(test_poll_with(&a.base, &w), ROUSE_READY);
	ck_assert_int_eq(a.result, 0);
	ck_assert_int_eq(((struct gate *)a.output)->out, 2);
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);

	/* Ready, a gave the turn back; dropped while waiting, so does b. */
	ck_assert_int_eq(rouse_group_next_init(&b, g), 0);
	ck_assert_int_eq(test_poll_with(&b.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(rouse_future_drop(&b.base), 0);
	ck_assert_int_eq(rouse_group_next_init(&a, g), 0);
	ck_assert_int_eq(test_poll_with(&a.base, &w), ROUSE_PENDING);
	/* A free wakes it, and it learns the group is going. */
	ck_assert_int_eq(rouse_group_free(g), 0);
	ck_assert_int_eq(atomic_load(&c[1].drops), 1);
	ck_assert_int_eq(atomic_load(&cw.wakes), 2);
	ck_assert_int_eq(test_poll_with(&a.base, &w), ROUSE_READY);
	ck_assert_uint_eq(a.id, 0);
	ck_assert_int_eq(a.result, -ECANCELED);
	ck_assert_int_eq(rouse_future_drop(&a.base), 0);
	counting_waker_drop_last(&w, &cw);
	ctl_destroy(&c[0]);
	ctl_destroy(&c[1]);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/*
 * While free drains the group, a task's drop that spawns into it is
 * refused with -ECANCELED, and one that frees it with -EBUSY.
 */
START_TEST(free_refuses_reentry)
{
	struct rouse_executor *ex = make_ex(_i);
	struct rouse_group *g = group_new();
	struct gate_ctl c;

	ctl_init(&c);
	c.group_in_drop = g;
	c.ex_in_drop = ex;
	spawn_gate(g, ex, &c, 0);
	run_until_count(ex, &c.polls, 1);
	ck_assert_int_eq(rouse_group_free(g), 0);
	ck_assert_int_eq(atomic_load(&c.drops), 1);
	ck_assert_int_eq(c.spawn_err, -ECANCELED);
	ck_assert_int_eq(c.free_err, -EBUSY);
	ctl_destroy(&c);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/*
 * A task that owns a group of tasks on the same executor is cancelled by
 * rouse_executor_free(), and frees its group in its drop: that free must
 * not wait for the executor's own free, which drops the group's tasks
 * after it (nor hang, nor leak).
 */
struct group_owner {
	struct rouse_future base;
	struct rouse_group *g;
	struct gate_ctl *c;
	int n;
	int *free_err;
};

static enum rouse_poll group_owner_poll(struct rouse_future *f,
					struct rouse_context *cx)
{
	struct group_owner *o = (struct group_owner *)f;
	int k;

	(void)cx;
	if (o->g == NULL) {
		ck_assert_int_eq(rouse_group_new(&o->g), 0);
		for (k = 0; k < o->n; k++) {
			struct gate t = { { &gate_vt }, &o->c[k], k, 0, { 0 } };

			ck_assert_int_eq(rouse_group_spawn(o->g, NULL, &t.base,
							   sizeof(t), NULL),
					 0);
		}
	}
	return ROUSE_PENDING;
}

static void group_owner_drop(struct rouse_future *f)
{
	struct group_owner *o = (struct group_owner *)f;

	if (o->g != NULL)
		*o->free_err = rouse_group_free(o->g);
}

static const struct rouse_future_vtable group_owner_vt = {
	group_owner_poll, group_owner_drop,
};

START_TEST(owner_cancelled_by_executor_free)
{
	struct rouse_executor *ex = make_ex(_i);
	struct gate_ctl c[6];
	int free_err = 1, k;
	struct group_owner o = { { &group_owner_vt }, NULL, c, 6, &free_err };

	for (k = 0; k < 6; k++)
		ctl_init(&c[k]);
	ck_assert_int_eq(rouse_spawn(ex, &o.base, sizeof(o), NULL), 0);
	for (k = 0; k < 6; k++)
		run_until_count(ex, &c[k].polls, 1);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
	ck_assert_int_eq(free_err, 0);
	for (k = 0; k < 6; k++) {
		ck_assert_int_eq(atomic_load(&c[k].drops), 1);
		ctl_destroy(&c[k]);
	}
}
END_TEST

/*
 * Four threads spawn into one group at once (onto the executor, from
 * outside it) while the main thread takes completions on the executor
 * and a fifth reads the group's length: every task comes back once, with
 * its id and output.
 */
#define ST_THREADS 4
#define ST_PER 500
#define ST_N (ST_THREADS * ST_PER)

struct val {
	struct rouse_future base;
	int in, out;
	atomic_int *ran;
};

static enum rouse_poll val_poll(struct rouse_future *f,
				struct rouse_context *cx)
{
	struct val *v = (struct val *)f;

	/* Every other one yields once first: not all finish at once. */
	if (v->in % 2 == 0 && v->out == 0) {
		v->out = -1;
		rouse_waker_wake_by_ref(cx->waker);
		return ROUSE_PENDING;
	}
	v->out = v->in * 3;
	atomic_fetch_add(v->ran, 1);
	return ROUSE_READY;
}

static const struct rouse_future_vtable val_vt = { val_poll, NULL };

struct spawner {
	struct rouse_group *g;
	struct rouse_executor *ex;
	struct test_barrier *start;
	int first;
	uint64_t ids[ST_PER];
	atomic_int *ran;
};

static void *spawner_thread(void *arg)
{
	struct spawner *s = arg;
	int k;

	test_barrier_wait(s->start);
	for (k = 0; k < ST_PER; k++) {
		struct val v = { { &val_vt }, s->first + k, 0, s->ran };

		test_require(rouse_group_spawn(s->g, s->ex, &v.base, sizeof(v),
					       &s->ids[k]) == 0);
	}
	return NULL;
}

struct len_reader {
	struct rouse_group *g;
	atomic_int stop;
	long max;
};

static void *len_thread(void *arg)
{
	struct len_reader *r = arg;

	while (!atomic_load(&r->stop)) {
		long n = rouse_group_len(r->g);

		test_require(n >= 0 && n <= ST_N);
		if (n > r->max)
			r->max = n;
		sched_yield();
	}
	return NULL;
}

/* Takes ST_N completions, retrying while the group is momentarily empty. */
struct consumer {
	struct rouse_future base;
	struct rouse_group *g;
	struct rouse_group_next n;
	bool waiting;
	int taken;
	int *seen;			/* per input: times taken */
	uint64_t *ids;			/* per input: id taken with it */
	int wrong;
};

static enum rouse_poll consumer_poll(struct rouse_future *f,
				     struct rouse_context *cx)
{
	struct consumer *c = (struct consumer *)f;

	while (c->taken < ST_N) {
		struct val *v;

		if (!c->waiting) {
			test_require(rouse_group_next_init(&c->n, c->g) == 0);
			c->waiting = true;
		}
		if (rouse_future_poll(&c->n.base, cx) != ROUSE_READY)
			return ROUSE_PENDING;
		c->waiting = false;
		if (c->n.id == 0) {
			/* Empty for now: the spawners are not done. */
			test_require(c->n.result == -ENOENT);
			rouse_future_drop(&c->n.base);
			rouse_waker_wake_by_ref(cx->waker);
			return ROUSE_PENDING;
		}
		v = (struct val *)c->n.output;
		if (c->n.result != 0 || v == NULL || v->out != 3 * v->in)
			c->wrong++;
		else {
			c->seen[v->in]++;
			c->ids[v->in] = c->n.id;
		}
		rouse_future_drop(&c->n.base);
		c->taken++;
	}
	return ROUSE_READY;
}

static void consumer_drop(struct rouse_future *f)
{
	struct consumer *c = (struct consumer *)f;

	if (c->waiting)
		rouse_future_drop(&c->n.base);
}

static const struct rouse_future_vtable consumer_vt = { consumer_poll,
							 consumer_drop };

START_TEST(threads)
{
	struct rouse_executor *ex = make_ex(_i);
	struct rouse_group *g = group_new();
	struct test_barrier start;
	struct spawner *sp = calloc(ST_THREADS, sizeof(*sp));
	struct consumer cons;
	struct len_reader lr = { g, 0, 0 };
	atomic_int ran = 0;
	pthread_t t[ST_THREADS], lt;
	int k, j;

	ck_assert_ptr_nonnull(sp);
	memset(&cons, 0, sizeof(cons));
	cons.base.vtable = &consumer_vt;
	cons.g = g;
	cons.seen = calloc(ST_N, sizeof(*cons.seen));
	cons.ids = calloc(ST_N, sizeof(*cons.ids));
	ck_assert(cons.seen != NULL && cons.ids != NULL);
	test_barrier_init(&start, ST_THREADS);
	for (k = 0; k < ST_THREADS; k++) {
		sp[k].g = g;
		sp[k].ex = ex;
		sp[k].start = &start;
		sp[k].first = k * ST_PER;
		sp[k].ran = &ran;
		t[k] = test_thread_start(spawner_thread, &sp[k]);
	}
	lt = test_thread_start(len_thread, &lr);
	ck_assert_int_eq(rouse_executor_block_on(ex, &cons.base), 0);
	for (k = 0; k < ST_THREADS; k++)
		test_thread_join(t[k]);
	atomic_store(&lr.stop, 1);
	test_thread_join(lt);
	test_barrier_destroy(&start);

	ck_assert_int_eq(cons.wrong, 0);
	ck_assert_int_eq(cons.taken, ST_N);
	ck_assert_int_eq(atomic_load(&ran), ST_N);
	for (k = 0; k < ST_THREADS; k++)
		for (j = 0; j < ST_PER; j++) {
			int in = k * ST_PER + j;

			ck_assert_int_eq(cons.seen[in], 1);
			ck_assert_uint_eq(cons.ids[in], sp[k].ids[j]);
		}
	ck_assert_int_eq(rouse_group_len(g), 0);
	ck_assert_uint_eq(stats_of(g).spawned, ST_N);
	ck_assert_uint_eq(stats_of(g).taken, ST_N);
	ck_assert_int_eq(rouse_future_drop(&cons.base), 0);
	ck_assert_int_eq(rouse_group_free(g), 0);
	free(cons.seen);
	free(cons.ids);
	free(sp);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/*
 * Every order of the last steps leaks nothing (ASan's leak check, and
 * the drop counts): the group freed before or after the next futures
 * that hold completions, a waiting next future outliving the group,
 * tasks aborted, finished or neither at free, the executor freed before
 * the group.
 */
START_TEST(lifetimes)
{
	int order;

	for (order = 0; order < 4; order++) {
		struct rouse_executor *ex = make_ex(_i);
		struct rouse_group *g = group_new();
		struct gate_ctl c[4];
		struct rouse_group_next held, waiting;
		int k;

		for (k = 0; k < 4; k++) {
			ctl_init(&c[k]);
			spawn_gate(g, ex, &c[k], k + 1);
		}
		ctl_release(&c[0]);
		run_until_wakes(ex, g, 1);
		next_on(ex, g, &held);
		ck_assert_int_eq(held.result, 0);
		ctl_release(&c[1]);		/* finishes, never taken */
		run_until_wakes(ex, g, 2);
		if (order & 1)
			rouse_group_abort_all(g);	/* c[2], c[3] */
		ck_assert_int_eq(rouse_group_next_init(&waiting, g), 0);
		if (order & 2) {
			/* The executor goes first: it cancels the tasks. */
			ck_assert_int_eq(rouse_executor_free(ex), 0);
			ex = NULL;
		}
		ck_assert_int_eq(rouse_group_free(g), 0);
		for (k = 0; k < 4; k++)
			ck_assert_int_eq(atomic_load(&c[k].drops), 1);
		/* The waiting future, never polled, sees the group gone. */
		ck_assert_int_eq(test_poll_noop(&waiting.base), ROUSE_READY);
		ck_assert_int_eq(waiting.result, -ECANCELED);
		if (order & 1) {
			ck_assert_int_eq(rouse_future_drop(&waiting.base), 0);
			ck_assert_int_eq(((struct gate *)held.output)->out, 2);
			ck_assert_int_eq(rouse_future_drop(&held.base), 0);
		} else {
			ck_assert_int_eq(rouse_future_drop(&held.base), 0);
			ck_assert_int_eq(rouse_future_drop(&waiting.base), 0);
		}
		for (k = 0; k < 4; k++)
			ctl_destroy(&c[k]);
		if (ex != NULL)
			ck_assert_int_eq(rouse_executor_free(ex), 0);
	}
}
END_TEST

/* An allocator that fails its fail_at-th call, and counts live blocks. */
static struct {
	atomic_int calls, fail_at, live;
} fa;

static void *fa_malloc(void *data, size_t size)
{
	void *p;

	(void)data;
	if (atomic_fetch_add(&fa.calls, 1) + 1 == atomic_load(&fa.fail_at))
		return NULL;
	p = malloc(size);
	if (p != NULL)
		atomic_fetch_add(&fa.live, 1);
	return p;
}

static void *fa_realloc(void *data, void *ptr, size_t size)
{
	(void)data;
	return realloc(ptr, size);
}

static void fa_free(void *data, void *ptr)
{
	(void)data;
	atomic_fetch_sub(&fa.live, 1);
	free(ptr);
}

static const struct rouse_allocator fa_allocator = {
	fa_malloc, fa_realloc, fa_free, NULL,
};

/*
 * Out of memory at each allocation in turn: new and spawn fail with
 * -ENOMEM, leave nothing behind, and the group still works.
 */
START_TEST(no_memory)
{
	struct rouse_executor *ex = make_ex(_i);
	struct gate_ctl c;
	int k, err;

	ctl_init(&c);
	c.go = true;
	/* This thread's parker, made once and kept, is made before. */
	test_warm_thread_parker();
	ck_assert_int_eq(rouse_executor_set_allocator(&fa_allocator), 0);
	for (k = 1;; k++) {
		struct rouse_group *g = NULL;
		struct gate t = { { &gate_vt }, &c, 5, 0, { 0 } };
		struct rouse_group_join_all ja;
		int live;

		live = atomic_load(&fa.live);
		atomic_store(&fa.calls, 0);
		atomic_store(&fa.fail_at, k);
		err = rouse_group_new(&g);
		if (err == 0)
			err = rouse_group_spawn(g, ex, &t.base, sizeof(t),
						NULL);
		atomic_store(&fa.fail_at, 0);
		if (g == NULL) {
			ck_assert_int_eq(err, -ENOMEM);
			ck_assert_int_eq(atomic_load(&fa.live), live);
			continue;
		}
		if (err < 0) {
			ck_assert_int_eq(err, -ENOMEM);
			ck_assert_int_eq(rouse_group_len(g), 0);
		}
		ck_assert_int_eq(rouse_group_join_all_init(&ja, g), 0);
		ck_assert_int_eq(rouse_executor_block_on(ex, &ja.base), 0);
		ck_assert_uint_eq(ja.completed, err == 0 ? 1 : 0);
		ck_assert_int_eq(rouse_future_drop(&ja.base), 0);
		ck_assert_int_eq(rouse_group_free(g), 0);
		/*
		 * A worker may still hold the task for a moment after its
		 * completion was taken: wait for its memory to go (a leak
		 * would hang here, and the case time out).
		 */
		test_spin_until_eq(&fa.live, live);
		if (err == 0)
			break;
	}
	ck_assert_int_ge(k, 3);		/* the group, its record, the task */
	ck_assert_int_eq(rouse_executor_set_allocator(NULL), 0);
	ctl_destroy(&c);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

static Suite *group_suite(void)
{
	Suite *s = suite_create("group");
	TCase *tc = tcase_create("both schedulers");

	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	tcase_add_loop_test(tc, bad_input, 0, 2);
	tcase_add_loop_test(tc, completion_order, 0, 2);
	tcase_add_loop_test(tc, one_poll_per_completion, 0, 2);
	tcase_add_loop_test(tc, abort_all, 0, 2);
	tcase_add_loop_test(tc, free_drops_before_return, 0, 2);
	tcase_add_loop_test(tc, free_while_other_thread_runs, 0, 2);
	tcase_add_loop_test(tc, free_inside_task, 0, 2);
	tcase_add_loop_test(tc, one_waiter, 0, 2);
	tcase_add_loop_test(tc, free_refuses_reentry, 0, 2);
	tcase_add_loop_test(tc, owner_cancelled_by_executor_free, 0, 2);
	tcase_add_loop_test(tc, threads, 0, 2);
	tcase_add_loop_test(tc, lifetimes, 0, 2);
	tcase_add_loop_test(tc, no_memory, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(group_suite());
}
