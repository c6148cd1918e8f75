// SPDX-License-Identifier: MIT
/*
 * tests/check_sched.c - what the schedulers promise beyond running tasks:
 * fairness counted in polls (a woken task against an always-ready one,
 * the LIFO slot's cap, injected tasks on a busy worker), stealing, a
 * driven reactor as the park of block_on and of a worker, shutdown while
 * tasks are always ready, the default worker count, and no thread or fd
 * leaks.
 */
#include "testutil.h"

static struct rouse_executor *make(enum rouse_executor_kind kind,
				   unsigned int workers,
				   const struct rouse_parker *parker)
{
	struct rouse_executor_config cfg;
	struct rouse_executor *ex;

	ck_assert_int_eq(rouse_executor_config_init(&cfg), 0);
	cfg.kind = kind;
	cfg.workers = workers;
	cfg.parker = parker;
	ck_assert_int_eq(rouse_executor_new(&cfg, &ex), 0);
	return ex;
}

/* ---- an always-ready task: yields until *stop, counting its polls ----- */

struct spinner {
	struct rouse_future base;
	atomic_int *stop;
	atomic_long *polls;
	atomic_int *drops;
};

static enum rouse_poll spinner_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct spinner *s = (struct spinner *)f;

	atomic_fetch_add(s->polls, 1);
	if (atomic_load(s->stop))
		return ROUSE_READY;
	rouse_waker_wake_by_ref(cx->waker);
	return ROUSE_PENDING;
}

static void spinner_drop(struct rouse_future *f)
{
	struct spinner *s = (struct spinner *)f;

	if (s->drops != NULL)
		atomic_fetch_add(s->drops, 1);
}

static const struct rouse_future_vtable spinner_vt = { spinner_poll,
						       spinner_drop };

/* ---- a task that waits to be woken and notes the spinner's count ------ */

static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;

struct sleeper {
	struct rouse_future base;
	struct rouse_waker *slot;
	atomic_long *spinner_polls;
	atomic_long *seen;		/* spinner's count at the 2nd poll */
	atomic_int *polls;
};

static enum rouse_poll sleeper_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct sleeper *s = (struct sleeper *)f;

	if (atomic_fetch_add(s->polls, 1) >= 1) {
		atomic_store(s->seen, atomic_load(s->spinner_polls));
		return ROUSE_READY;
	}
	pthread_mutex_lock(&slot_lock);
	rouse_waker_clone(cx->waker, s->slot);
	pthread_mutex_unlock(&slot_lock);
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable sleeper_vt = { sleeper_poll, NULL };

static bool slot_take(struct rouse_waker *slot, struct rouse_waker *out)
{
	bool ok;

	pthread_mutex_lock(&slot_lock);
	*out = *slot;
	slot->vtable = NULL;
	ok = out->vtable != NULL;
	pthread_mutex_unlock(&slot_lock);
	return ok;
}

/* Root: yields (polled again at once) until *flag reaches want. */
struct until {
	struct rouse_future base;
	atomic_int *flag;
	int want;
};

static enum rouse_poll until_poll(struct rouse_future *f,
				  struct rouse_context *cx)
{
	struct until *u = (struct until *)f;

	if (atomic_load(u->flag) >= u->want)
		return ROUSE_READY;
	rouse_waker_wake_by_ref(cx->waker);
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable until_vt = { until_poll, NULL };

/*
 * Current-thread: the root wakes a sleeping task while an always-ready
 * task spins; the woken task is polled after at most one spinner poll
 * (the queue is FIFO and a self-wake goes to its back).
 */
struct ct_fair_root {
	struct rouse_future base;
	int phase;
	struct rouse_waker *slot;
	atomic_int *sleeper_polls;
	atomic_long *spinner_polls, *at_wake;
	atomic_int *stop;
};

static enum rouse_poll ct_fair_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct ct_fair_root *r = (struct ct_fair_root *)f;
	struct rouse_waker w;

	switch (r->phase) {
	case 0:
		/* Wait until the sleeper parked and the spinner ran a while. */
		if (atomic_load(r->sleeper_polls) < 1 ||
		    atomic_load(r->spinner_polls) < 100)
			break;
		ck_assert(slot_take(r->slot, &w));
		rouse_waker_wake(&w);
		atomic_store(r->at_wake, atomic_load(r->spinner_polls));
		r->phase = 1;
		break;
	case 1:
		if (atomic_load(r->sleeper_polls) < 2)
			break;
		atomic_store(r->stop, 1);
		return ROUSE_READY;
	}
	rouse_waker_wake_by_ref(cx->waker);
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable ct_fair_vt = { ct_fair_poll, NULL };

START_TEST(ct_woken_task_not_starved)
{
	struct rouse_executor *ex = make(ROUSE_EXECUTOR_CURRENT_THREAD, 0,
					 NULL);
	atomic_int stop = 0, sleeper_polls = 0;
	atomic_long spins = 0, seen = 0, at_wake = 0;
	struct rouse_waker slot = { NULL, NULL };
	struct spinner sp = { { &spinner_vt }, &stop, &spins, NULL };
	struct sleeper sl = { { &sleeper_vt }, &slot, &spins, &seen,
			      &sleeper_polls };
	struct ct_fair_root root = { { &ct_fair_vt }, 0, &slot,
				     &sleeper_polls, &spins, &at_wake, &stop };
	struct rouse_join_handle h;

	ck_assert_int_eq(rouse_spawn(ex, &sp.base, sizeof(sp), NULL), 0);
	ck_assert_int_eq(rouse_spawn(ex, &sl.base, sizeof(sl), NULL), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &root.base), 0);
	/* Woken by the root: polled before the spinner's second poll. */
	ck_assert_int_le(atomic_load(&seen) - atomic_load(&at_wake), 1);
	/* Let the spinner see stop and finish. */
	{
		struct spinner last = { { &spinner_vt }, &stop, &spins,
					NULL };

		ck_assert_int_eq(rouse_spawn(ex, &last.base, sizeof(last),
					     &h), 0);
		ck_assert_int_eq(rouse_executor_block_on(ex, &h.base), 0);
		rouse_future_drop(&h.base);
	}
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/*
 * Multi-thread, one worker busy with an always-ready task: a task woken
 * from another thread (through the injection queue) is polled within
 * event_interval + 1 polls of the spinner.
 */
START_TEST(mt_injected_not_starved)
{
	struct rouse_executor_config cfg;
	struct rouse_executor *ex;
	atomic_int stop = 0, sleeper_polls = 0;
	atomic_long spins = 0, seen = 0;
	struct rouse_waker slot = { NULL, NULL }, w;
	struct spinner sp = { { &spinner_vt }, &stop, &spins, NULL };
	struct sleeper sl = { { &sleeper_vt }, &slot, &spins, &seen,
			      &sleeper_polls };
	struct rouse_join_handle hs, hl;
	long at_wake;

	rouse_executor_config_init(&cfg);
	cfg.kind = ROUSE_EXECUTOR_MULTI_THREAD;
	cfg.workers = 1;
	ck_assert_int_eq(rouse_executor_new(&cfg, &ex), 0);
	ck_assert_int_eq(rouse_spawn(ex, &sl.base, sizeof(sl), &hl), 0);
	ck_assert_int_eq(rouse_spawn(ex, &sp.base, sizeof(sp), &hs), 0);
	while (atomic_load(&sleeper_polls) < 1 || atomic_load(&spins) < 1000)
		sched_yield();
	ck_assert(slot_take(&slot, &w));
	rouse_waker_wake(&w);
	/* Read after the wake: the bound counts from a later point. */
	at_wake = atomic_load(&spins);
	while (atomic_load(&sleeper_polls) < 2)
		sched_yield();
	ck_assert_int_le(atomic_load(&seen) - at_wake,
			 (long)cfg.event_interval + 1);
	atomic_store(&stop, 1);
	ck_assert_int_eq(rouse_executor_block_on(ex, &hs.base), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &hl.base), 0);
	ck_assert_int_eq(hs.result, 0);
	ck_assert_int_eq(hl.result, 0);
	rouse_future_drop(&hs.base);
	rouse_future_drop(&hl.base);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/*
 * Two tasks that wake each other run through the LIFO slot; a task queued
 * meanwhile gets its turn after at most lifo_cap + 1 of their polls.
 */
struct pingpong {
	struct rouse_waker w[2];	/* slot_lock */
	atomic_long polls;
	atomic_long c_seen;
	atomic_int c_polled;
	long c_spawned_at;
	int spawn_err;
};

struct pp_task {
	struct rouse_future base;
	struct pingpong *pp;
	int me;
	long limit;
};

struct c_task {
	struct rouse_future base;
	struct pingpong *pp;
};

static enum rouse_poll c_poll(struct rouse_future *f,
			      struct rouse_context *cx)
{
	struct c_task *c = (struct c_task *)f;

	(void)cx;
	atomic_store(&c->pp->c_seen, atomic_load(&c->pp->polls));
	atomic_store(&c->pp->c_polled, 1);
	return ROUSE_READY;
}

static const struct rouse_future_vtable c_vt = { c_poll, NULL };

static enum rouse_poll pp_poll(struct rouse_future *f,
			       struct rouse_context *cx)
{
	struct pp_task *t = (struct pp_task *)f;
	struct pingpong *pp = t->pp;
	struct rouse_waker other = { NULL, NULL };
	long n = atomic_fetch_add(&pp->polls, 1) + 1;

	if (n == 100) {
		struct c_task c = { { &c_vt }, pp };

		pp->c_spawned_at = n;
		pp->spawn_err = rouse_spawn(NULL, &c.base, sizeof(c), NULL);
	}
	pthread_mutex_lock(&slot_lock);
	if (pp->w[t->me].vtable == NULL)
		rouse_waker_clone(cx->waker, &pp->w[t->me]);
	if (pp->w[!t->me].vtable != NULL)
		rouse_waker_clone(&pp->w[!t->me], &other);
	pthread_mutex_unlock(&slot_lock);
	if (other.vtable != NULL)
		rouse_waker_wake(&other);
	if (n >= t->limit)
		return ROUSE_READY;
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable pp_vt = { pp_poll, NULL };

START_TEST(lifo_slot_is_capped)
{
	struct rouse_executor_config cfg;
	struct rouse_executor *ex;
	struct pingpong pp;
	struct pp_task a, b;
	struct rouse_join_handle ha, hb;
	int i;

	memset(&pp, 0, sizeof(pp));
	rouse_executor_config_init(&cfg);
	cfg.kind = ROUSE_EXECUTOR_MULTI_THREAD;
	cfg.workers = 1;
	ck_assert_int_eq(rouse_executor_new(&cfg, &ex), 0);
	a.base.vtable = b.base.vtable = &pp_vt;
	a.pp = b.pp = &pp;
	a.me = 0;
	b.me = 1;
	a.limit = b.limit = 100000;
	ck_assert_int_eq(rouse_spawn(ex, &a.base, sizeof(a), &ha), 0);
	ck_assert_int_eq(rouse_spawn(ex, &b.base, sizeof(b), &hb), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &ha.base), 0);
	ck_assert_int_eq(rouse_executor_block_on(ex, &hb.base), 0);
	ck_assert_int_eq(pp.spawn_err, 0);
	ck_assert_int_eq(atomic_load(&pp.c_polled), 1);
	ck_assert_int_le(atomic_load(&pp.c_seen) - pp.c_spawned_at,
			 (long)cfg.lifo_cap + 1);
	rouse_future_drop(&ha.base);
	rouse_future_drop(&hb.base);
	for (i = 0; i < 2; i++)
		if (pp.w[i].vtable != NULL)
			rouse_waker_drop(&pp.w[i]);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/*
 * Stealing: a task spawns two tasks onto its own worker's ring; each of
 * them blocks its thread on a barrier of two.  They can only both get
 * through if the other worker stole one.
 */
static struct test_barrier steal_barrier;

struct blocker {
	struct rouse_future base;
	atomic_int *through;
};

static enum rouse_poll blocker_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct blocker *b = (struct blocker *)f;

	(void)cx;
	test_barrier_wait(&steal_barrier);
	atomic_fetch_add(b->through, 1);
	return ROUSE_READY;
}

static const struct rouse_future_vtable blocker_vt = { blocker_poll, NULL };

struct two_spawner {
	struct rouse_future base;
	atomic_int *through;
	struct rouse_join_handle h[2];
	bool spawned;
	int err;
};

static enum rouse_poll two_spawner_poll(struct rouse_future *f,
					struct rouse_context *cx)
{
	struct two_spawner *s = (struct two_spawner *)f;
	int i;

	if (!s->spawned) {
		s->spawned = true;
		for (i = 0; i < 2; i++) {
			struct blocker b = { { &blocker_vt }, s->through };

			s->err = rouse_spawn(NULL, &b.base, sizeof(b),
					     &s->h[i]);
			if (s->err != 0)
				return ROUSE_READY;
		}
	}
	for (i = 0; i < 2; i++)
		if (rouse_future_poll(&s->h[i].base, cx) != ROUSE_READY)
			return ROUSE_PENDING;
	for (i = 0; i < 2; i++)
		rouse_future_drop(&s->h[i].base);
	return ROUSE_READY;
}

static const struct rouse_future_vtable two_spawner_vt = { two_spawner_poll,
							    NULL };

START_TEST(idle_worker_steals)
{
	struct rouse_executor *ex = make(ROUSE_EXECUTOR_MULTI_THREAD, 2, NULL);
	atomic_int through = 0;
	struct two_spawner s;
	struct rouse_join_handle h;
	int round;

	test_barrier_init(&steal_barrier, 2);
	for (round = 0; round < 50; round++) {
		memset(&s, 0, sizeof(s));
		s.base.vtable = &two_spawner_vt;
		s.through = &through;
		ck_assert_int_eq(rouse_spawn(ex, &s.base, sizeof(s), &h), 0);
		ck_assert_int_eq(rouse_executor_block_on(ex, &h.base), 0);
		ck_assert_int_eq(((struct two_spawner *)h.output)->err, 0);
		rouse_future_drop(&h.base);
	}
	ck_assert_int_eq(atomic_load(&through), 100);
	test_barrier_destroy(&steal_barrier);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/* ---- a driven reactor as the executor's park ----------------------- */

struct napper {
	struct rouse_future base;
	struct rouse_sleep s;
	struct rouse_reactor *r;
	bool armed;
	int err;
};

static enum rouse_poll napper_poll(struct rouse_future *f,
				   struct rouse_context *cx)
{
	struct napper *n = (struct napper *)f;

	if (!n->armed) {
		n->armed = true;
		n->err = rouse_sleep_init(&n->s, n->r, 1000000);
		if (n->err != 0)
			return ROUSE_READY;
	}
	if (rouse_future_poll(&n->s.base, cx) != ROUSE_READY)
		return ROUSE_PENDING;
	return ROUSE_READY;
}

static void napper_drop(struct rouse_future *f)
{
	struct napper *n = (struct napper *)f;

	if (n->armed && n->err == 0)
		rouse_future_drop(&n->s.base);
}

static const struct rouse_future_vtable napper_vt = { napper_poll,
						      napper_drop };

/*
 * Loop 0: current-thread, block_on parks in the reactor.  Loop 1: multi-
 * thread with one worker that parks in the reactor.  The reactor has no
 * thread of its own, so the sleeps can only fire if the park drives it.
 */
START_TEST(driven_reactor_parks)
{
	int threads = test_count_threads_settled();
	struct rouse_reactor *r;
	struct rouse_parker parker;
	struct rouse_executor *ex;
	struct rouse_join_handle h[4];
	int i;

	ck_assert_int_eq(rouse_reactor_new(&r, 0), 0);
	ck_assert_int_eq(rouse_reactor_parker(r, &parker), 0);
	ex = make(_i == 0 ? ROUSE_EXECUTOR_CURRENT_THREAD :
			    ROUSE_EXECUTOR_MULTI_THREAD, 1, &parker);
	for (i = 0; i < 4; i++) {
		struct napper n;

		memset(&n, 0, sizeof(n));
		n.base.vtable = &napper_vt;
		n.r = r;
		ck_assert_int_eq(rouse_spawn(ex, &n.base, sizeof(n), &h[i]),
				 0);
	}
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(rouse_executor_block_on(ex, &h[i].base), 0);
		ck_assert_int_eq(h[i].result, 0);
		ck_assert_int_eq(((struct napper *)h[i].output)->err, 0);
		rouse_future_drop(&h[i].base);
	}
	ck_assert_int_eq(rouse_executor_free(ex), 0);
	rouse_reactor_free(r);
	ck_assert_int_eq(test_wait_threads(threads), threads);
}
END_TEST

/* Freeing a multi-thread executor whose tasks are always ready. */
START_TEST(shutdown_while_spinning)
{
	int threads = test_count_threads_settled();
	struct rouse_executor *ex = make(ROUSE_EXECUTOR_MULTI_THREAD, 2, NULL);
	atomic_int stop = 0, drops = 0;
	atomic_long spins = 0;
	struct rouse_join_handle h[6];
	int i;

	for (i = 0; i < 6; i++) {
		struct spinner sp = { { &spinner_vt }, &stop, &spins, &drops };

		ck_assert_int_eq(rouse_spawn(ex, &sp.base, sizeof(sp), &h[i]),
				 0);
	}
	while (atomic_load(&spins) < 1000)
		sched_yield();
	ck_assert_int_eq(rouse_executor_free(ex), 0);
	ck_assert_int_eq(atomic_load(&drops), 6);
	for (i = 0; i < 6; i++) {
		ck_assert_int_eq(test_poll_noop(&h[i].base), ROUSE_READY);
		ck_assert_int_eq(h[i].result, -ECANCELED);
		rouse_future_drop(&h[i].base);
	}
	ck_assert_int_eq(test_wait_threads(threads), threads);
}
END_TEST

/* workers = 0 means one per online CPU; all are joined by free. */
START_TEST(default_worker_count)
{
	int threads = test_count_threads_settled();
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int fds = test_count_fds_warm();
	struct rouse_executor *ex = make(ROUSE_EXECUTOR_MULTI_THREAD, 0, NULL);

	ck_assert_int_eq(test_count_threads(), threads + (int)cpus);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
	ck_assert_int_eq(test_wait_threads(threads), threads);
	/* The workers' eventfds close with their threads. */
	ck_assert_int_eq(test_count_fds(), fds);
}
END_TEST

/* A root future on a multi-thread executor sees it as current. */
START_TEST(mt_block_on_current)
{
	struct rouse_executor *ex = make(ROUSE_EXECUTOR_MULTI_THREAD, 2, NULL);
	atomic_int flag = 1;
	struct until u = { { &until_vt }, &flag, 1 };

	ck_assert_ptr_null(rouse_executor_current());
	ck_assert_int_eq(rouse_executor_block_on(ex, &u.base), 0);
	ck_assert_ptr_null(rouse_executor_current());
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST


/*
 * Worker 0's parker fails (the reactor runs on its own thread, so a park
 * through it is -EBUSY): the worker falls back to an eventfd and tasks
 * still run, spawned from outside while the workers are idle.
 */
START_TEST(failing_parker_falls_back)
{
	struct rouse_reactor *r;
	struct rouse_parker parker;
	struct rouse_executor *ex;
	atomic_int ran = 0;
	int round;

	ck_assert_int_eq(rouse_reactor_new(&r, 0), 0);
	ck_assert_int_eq(rouse_reactor_start(r), 0);
	ck_assert_int_eq(rouse_reactor_parker(r, &parker), 0);
	ex = make(ROUSE_EXECUTOR_MULTI_THREAD, 1, &parker);
	for (round = 0; round < 20; round++) {
		struct spinner sp = { { &spinner_vt }, NULL, NULL, NULL };
		atomic_int stop = 1;
		atomic_long polls = 0;
		struct rouse_join_handle h;

		sp.stop = &stop;
		sp.polls = &polls;
		ck_assert_int_eq(rouse_spawn(ex, &sp.base, sizeof(sp), &h), 0);
		ck_assert_int_eq(rouse_executor_block_on(ex, &h.base), 0);
		ck_assert_int_eq(h.result, 0);
		rouse_future_drop(&h.base);
		atomic_fetch_add(&ran, 1);
	}
	ck_assert_int_eq(atomic_load(&ran), 20);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
	rouse_reactor_free(r);
}
END_TEST

/* Free refuses while another thread is inside block_on of the executor. */
struct blocked_arg {
	struct rouse_executor *ex;
	atomic_int *inside, *flag;
	int err;
};

struct flag_root {
	struct rouse_future base;
	struct blocked_arg *a;
};

static enum rouse_poll flag_root_poll(struct rouse_future *f,
				      struct rouse_context *cx)
{
	struct blocked_arg *a = ((struct flag_root *)f)->a;

	atomic_store(a->inside, 1);
	if (atomic_load(a->flag))
		return ROUSE_READY;
	rouse_waker_wake_by_ref(cx->waker);
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable flag_root_vt = { flag_root_poll,
							  NULL };

static void *blocked_thread(void *arg)
{
	struct blocked_arg *a = arg;
	struct flag_root root = { { &flag_root_vt }, a };

	a->err = rouse_executor_block_on(a->ex, &root.base);
	return NULL;
}

START_TEST(free_refused_during_block_on)
{
	struct rouse_executor *ex = make(_i == 0 ?
					 ROUSE_EXECUTOR_CURRENT_THREAD :
					 ROUSE_EXECUTOR_MULTI_THREAD, 1, NULL);
	atomic_int inside = 0, flag = 0;
	struct blocked_arg a = { ex, &inside, &flag, 0 };
	pthread_t t = test_thread_start(blocked_thread, &a);

	test_spin_until_eq(&inside, 1);
	ck_assert_int_eq(rouse_executor_free(ex), -EBUSY);
	atomic_store(&flag, 1);
	test_thread_join(t);
	ck_assert_int_eq(a.err, 0);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
}
END_TEST

/* ---- a busy root future does not starve the reactor ------------------ */

/*
 * The root future of block_on yields for ever (it wakes itself at every
 * poll) while three tasks wait on the reactor: a 10 ms sleep, a socket
 * read and an event wait.  Each must complete however busy the root
 * keeps its thread.  The root writes the socket's data and notifies the
 * event at its second poll, once every task has had its first poll and
 * waits.  It counts its polls from then on until both are seen.
 */
enum { BUSY_SLEEP, BUSY_READ, BUSY_EVENT, BUSY_TASKS };

struct busy_scene {
	struct rouse_reactor *r;
	struct rouse_io *io;
	struct rouse_event *ev;
	int sv[2];
	atomic_int done[BUSY_TASKS];
	long polls, polls_after_write;
};

struct busy_task {
	struct rouse_future base;
	struct busy_scene *sc;
	int kind;
	bool started;
	union {
		struct rouse_sleep sleep;
		struct rouse_io_rw rd;
		struct rouse_event_wait wait;
	} u;
	char buf[8];
};

static enum rouse_poll busy_task_poll(struct rouse_future *f,
				      struct rouse_context *cx)
{
	struct busy_task *t = (struct busy_task *)f;
	struct rouse_future *sub = &t->u.sleep.base;

	if (!t->started) {
		t->started = true;
		if (t->kind == BUSY_SLEEP) {
			ck_assert_int_eq(rouse_sleep_init(&t->u.sleep,
							  t->sc->r, 10000000),
					 0);
		} else if (t->kind == BUSY_READ) {
			ck_assert_int_eq(rouse_io_read_init(&t->u.rd,
							    t->sc->io,
							    t->buf,
							    sizeof(t->buf)),
					 0);
			sub = &t->u.rd.op.base;
		} else {
			ck_assert_int_eq(rouse_event_wait_init(&t->u.wait,
							       t->sc->ev),
					 0);
			sub = &t->u.wait.op.base;
		}
	} else if (t->kind == BUSY_READ) {
		sub = &t->u.rd.op.base;
	} else if (t->kind == BUSY_EVENT) {
		sub = &t->u.wait.op.base;
	}
	if (rouse_future_poll(sub, cx) == ROUSE_PENDING)
		return ROUSE_PENDING;
	if (t->kind == BUSY_SLEEP)
		ck_assert_int_eq(t->u.sleep.result, 0);
	else if (t->kind == BUSY_READ)
		ck_assert_int_eq(t->u.rd.result, 2);
	else
		ck_assert_int_eq(t->u.wait.result, 0);
	ck_assert_int_eq(rouse_future_drop(sub), 0);
	atomic_store(&t->sc->done[t->kind], 1);
	return ROUSE_READY;
}

static const struct rouse_future_vtable busy_task_vt = { busy_task_poll,
							 NULL };

struct busy_root {
	struct rouse_future base;
	struct busy_scene *sc;
};

static enum rouse_poll busy_root_poll(struct rouse_future *f,
				      struct rouse_context *cx)
{
	struct busy_scene *sc = ((struct busy_root *)f)->sc;
	int k, all = 1;

	if (++sc->polls == 2) {
		ck_assert_int_eq(write(sc->sv[1], "hi", 2), 2);
		ck_assert_int_eq(rouse_event_notify(sc->ev), 0);
	}
	if (sc->polls > 2 && (!atomic_load(&sc->done[BUSY_READ]) ||
			      !atomic_load(&sc->done[BUSY_EVENT])))
		sc->polls_after_write++;
	for (k = 0; k < BUSY_TASKS; k++)
		all &= atomic_load(&sc->done[k]);
	if (all)
		return ROUSE_READY;
	rouse_waker_wake_by_ref(cx->waker);
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable busy_root_vt = { busy_root_poll,
							 NULL };

#define BUSY_INTERVAL 4u

/*
 * _i: the executor (current-thread, multi-thread with two workers) and the
 * reactor (on its own thread, driven by the executor's parker, driven and
 * made ROUSE_REACTOR_LOCAL: current-thread only, where one thread uses it).
 */
START_TEST(busy_root_does_not_starve_reactor)
{
	static const struct {
		enum rouse_executor_kind kind;
		enum test_mode mode;
	} cases[] = {
		{ ROUSE_EXECUTOR_CURRENT_THREAD, TEST_MODE_THREADED },
		{ ROUSE_EXECUTOR_CURRENT_THREAD, TEST_MODE_DRIVEN },
		{ ROUSE_EXECUTOR_CURRENT_THREAD, TEST_MODE_LOCAL },
		{ ROUSE_EXECUTOR_MULTI_THREAD, TEST_MODE_THREADED },
		{ ROUSE_EXECUTOR_MULTI_THREAD, TEST_MODE_DRIVEN },
	};
	struct busy_scene sc;
	struct busy_task t[BUSY_TASKS];
	struct busy_root root = { { &busy_root_vt }, &sc };
	struct rouse_executor_config cfg;
	struct rouse_executor *ex;
	struct test_runner ru;
	int k;

	memset(&sc, 0, sizeof(sc));
	test_runner_init(&ru, cases[_i].mode);
	sc.r = ru.r;
	test_pair_make(sc.sv);
	ck_assert_int_eq(rouse_io_register(sc.r, sc.sv[0], &sc.io), 0);
	ck_assert_int_eq(rouse_event_new(sc.r, &sc.ev), 0);
	ck_assert_int_eq(rouse_executor_config_init(&cfg), 0);
	cfg.kind = cases[_i].kind;
	cfg.workers = 2;
	cfg.event_interval = BUSY_INTERVAL;
	cfg.parker = cases[_i].mode == TEST_MODE_THREADED ? NULL : &ru.parker;
	ck_assert_int_eq(rouse_executor_new(&cfg, &ex), 0);
	for (k = 0; k < BUSY_TASKS; k++) {
		memset(&t[k], 0, sizeof(t[k]));
		t[k].base.vtable = &busy_task_vt;
		t[k].sc = &sc;
		t[k].kind = k;
		ck_assert_int_eq(rouse_spawn(ex, &t[k].base, sizeof(t[k]),
					     NULL), 0);
	}
	ck_assert_int_eq(rouse_executor_block_on(ex, &root.base), 0);
	/*
	 * The bound rouse_executor_new(3) states for a current-thread
	 * executor that drives its reactor: ready I/O is seen within 32
	 * turns of event_interval polls (one more interval for the task
	 * to run and the root to see it).
	 */
	if (cases[_i].kind == ROUSE_EXECUTOR_CURRENT_THREAD &&
	    cases[_i].mode != TEST_MODE_THREADED)
		ck_assert_int_le(sc.polls_after_write, 33 * BUSY_INTERVAL);
	ck_assert_int_eq(rouse_executor_free(ex), 0);
	rouse_event_free(sc.ev);
	ck_assert_int_eq(rouse_io_deregister(sc.io), 0);
	close(sc.sv[0]);
	close(sc.sv[1]);
	test_runner_free(&ru);
}
END_TEST

/* ---- a worker stuck in a long poll does not hold the reactor -------- */

/*
 * Two workers drive the reactor between them.  One task spins inside a
 * single poll, never returning, until a 10 ms sleep and a socket read
 * (whose data the spinner itself writes once it spins) have completed on
 * the other worker: whichever worker the spinner lands on, the other one
 * must take the reactor.  Several rounds, so that the spinner lands on
 * each worker.  (If the reactor stayed with a stuck worker, this would
 * hang.)
 */
struct stuck_scene {
	struct rouse_reactor *r;
	struct rouse_io *io;
	int sv[2];
	atomic_int spinning, done[2];
};

struct stuck_task {
	struct rouse_future base;
	struct stuck_scene *sc;
	int kind;			/* 0 sleep, 1 read, 2 spin */
	bool started;
	union {
		struct rouse_sleep sleep;
		struct rouse_io_rw rd;
	} u;
	char buf[8];
};

static enum rouse_poll stuck_task_poll(struct rouse_future *f,
				       struct rouse_context *cx)
{
	struct stuck_task *t = (struct stuck_task *)f;
	struct stuck_scene *sc = t->sc;
	struct rouse_future *sub;

	if (t->kind == 2) {
		atomic_store(&sc->spinning, 1);
		ck_assert_int_eq(write(sc->sv[1], "hi", 2), 2);
		while (!atomic_load(&sc->done[0]) || !atomic_load(&sc->done[1]))
			;
		return ROUSE_READY;
	}
	if (!t->started) {
		t->started = true;
		if (t->kind == 0)
			ck_assert_int_eq(rouse_sleep_init(&t->u.sleep, sc->r,
							  10000000), 0);
		else
			ck_assert_int_eq(rouse_io_read_init(&t->u.rd, sc->io,
							    t->buf,
							    sizeof(t->buf)),
					 0);
	}
	sub = t->kind == 0 ? &t->u.sleep.base : &t->u.rd.op.base;
	if (rouse_future_poll(sub, cx) == ROUSE_PENDING)
		return ROUSE_PENDING;
	if (t->kind == 0)
		ck_assert_int_eq(t->u.sleep.result, 0);
	else
		ck_assert_int_eq(t->u.rd.result, 2);
	ck_assert_int_eq(rouse_future_drop(sub), 0);
	atomic_store(&sc->done[t->kind], 1);
	return ROUSE_READY;
}

static const struct rouse_future_vtable stuck_task_vt = { stuck_task_poll,
							  NULL };

START_TEST(stuck_worker_does_not_hold_reactor)
{
	struct rouse_executor_config cfg;
	struct rouse_executor *ex;
	struct test_runner ru;
	int round, k;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	ck_assert_int_eq(rouse_executor_config_init(&cfg), 0);
	cfg.kind = ROUSE_EXECUTOR_MULTI_THREAD;
	cfg.workers = 2;
	cfg.parker = &ru.parker;
	ck_assert_int_eq(rouse_executor_new(&cfg, &ex), 0);
	for (round = 0; round < 8; round++) {
		struct stuck_scene sc;
		struct stuck_task t[3];
		struct rouse_join_handle h[3];

		memset(&sc, 0, sizeof(sc));
		sc.r = ru.r;
		test_pair_make(sc.sv);
		ck_assert_int_eq(rouse_io_register(sc.r, sc.sv[0], &sc.io), 0);
		for (k = 0; k < 3; k++) {
			memset(&t[k], 0, sizeof(t[k]));
			t[k].base.vtable = &stuck_task_vt;
			t[k].sc = &sc;
			t[k].kind = (k + round) % 3;
			ck_assert_int_eq(rouse_spawn(ex, &t[k].base,
						     sizeof(t[k]), &h[k]), 0);
		}
		for (k = 0; k < 3; k++) {
			ck_assert_int_eq(rouse_executor_block_on(ex,
								 &h[k].base),
					 0);
			ck_assert_int_eq(h[k].result, 0);
			rouse_future_drop(&h[k].base);
		}
		ck_assert_int_eq(atomic_load(&sc.spinning), 1);
		ck_assert_int_eq(rouse_io_deregister(sc.io), 0);
		close(sc.sv[0]);
		close(sc.sv[1]);
	}
	ck_assert_int_eq(rouse_executor_free(ex), 0);
	test_runner_free(&ru);
}
END_TEST

static Suite *sched_suite(void)
{
	Suite *s = suite_create("sched");
	TCase *tc = tcase_create("schedulers");

	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	tcase_add_test(tc, ct_woken_task_not_starved);
	tcase_add_test(tc, mt_injected_not_starved);
	tcase_add_test(tc, lifo_slot_is_capped);
	tcase_add_test(tc, idle_worker_steals);
	tcase_add_loop_test(tc, driven_reactor_parks, 0, 2);
	tcase_add_test(tc, shutdown_while_spinning);
	tcase_add_test(tc, default_worker_count);
	tcase_add_test(tc, mt_block_on_current);
	tcase_add_test(tc, failing_parker_falls_back);
	tcase_add_loop_test(tc, free_refused_during_block_on, 0, 2);
	tcase_add_loop_test(tc, busy_root_does_not_starve_reactor, 0, 5);
	tcase_add_test(tc, stuck_worker_does_not_hold_reactor);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(sched_suite());
}
