// SPDX-License-Identifier: MIT
/*
 * executor/group.c - task groups, on the public API of the executor only:
 * rouse_spawn(), join handles, rouse_join_handle_abort(), block_on.
 *
 * A member is a task of the group: a small record that holds the task's
 * join handle.  The handle is polled with a waker whose data is the
 * member, so that the task's completion wakes the member and nothing
 * else.  That wake pushes the member on the group's ready stack (a
 * lock-free stack, each member at most once) and, when the stack was
 * empty, wakes the one future that waits on the group (its waker is kept
 * in an atomic waker slot).  The waiting future takes the stack, polls
 * the handles of the members on it, oldest wake first, and takes out the
 * first that is ready.  So a completion costs O(1) however many tasks
 * the group holds: nothing ever walks the members, except abort-all and
 * free, which are about all of them.
 *
 * Locking.  Everything about membership (the list, the count, the
 * handles, the batch of members taken from the stack and not yet polled,
 * which future may poll) is under the group's mutex; every call on a
 * handle (spawn, poll, abort, drop) is made with it held, which is what
 * keeps a handle's calls from racing (rouse_spawn(3): race:h).  The
 * member's waker takes no lock: it may be woken from any thread, inside
 * an executor or inside one of those calls (a handle's poll clones it,
 * a task's end wakes it).  No user code runs under the mutex: handles,
 * aborts and drops of handles run none (a task's future is dropped by its
 * executor), and the waiting future's waker is woken by the members'
 * wakes, or by spawn and free once they have released the mutex; only a
 * waiting future wakes its own task under it (to yield, when its budget
 * of polls is spent).
 *
 * Lifetimes.  The group's memory has a reference count: the owner's (till
 * rouse_group_free() is done), one per member record, one per next or
 * join-all future not yet done.  A member record's count: the group's
 * while it is a member, one while it is on the ready stack or in the
 * batch, one per clone of its waker, which the task keeps after the
 * record has left the group (until the handle, moved into a next future,
 * is dropped) and may even wake late.  When the group is freed its ready
 * stack is closed: a late wake then finds it closed and leaves, so the
 * stack never holds a reference nobody will release.
 *
 * One waiter.  The next and join-all futures of a group take turns: the
 * one that polled first may poll the members' handles until it is ready
 * or dropped, and any other answers -EBUSY at once.  Free takes the turn
 * from whoever has it (that one answers -ECANCELED when it looks again).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rouse/executor.h>
#include <rouse/group.h>
#include <rouse/sync.h>

#include "../lib/internal.h"

#define ROUSE__LOG_MODULE "group"

/* Handle polls a waiting future makes per poll before it yields. */
#define GROUP_POLL_BUDGET 128

/* The ready stack of a group that was freed: a push leaves. */
#define STACK_CLOSED ((struct member *)(uintptr_t)1)

struct member {
	/* Under the group's mutex. */
	struct member *prev, *next;	/* the group's list, while in it */
	struct rouse_join_handle handle;	/* while in the group */
	struct rouse_executor *ex;	/* where the task runs */
	uint64_t id;
	bool in_group;
	/* Atomic: the ready stack's link; then the batch's, under the mutex. */
	struct member *ready_next;
	/*
	 * Atomic.  1 from a wake until the waiting future clears it, just
	 * before it polls the handle (a wake meanwhile is the same wake);
	 * 0 while a wake would have to queue the member.
	 */
	uint32_t queued;
	size_t refs;			/* atomic */
	struct rouse_group *g;
};

struct rouse_group {
	pthread_mutex_t lock;
	struct member *head;		/* members, newest first */
	size_t len;			/* written locked, read atomically */
	struct member *batch;		/* taken, not polled yet, in order */
	const void *poller;		/* the future whose turn it is */
	bool closed;			/* spawns and waiters are refused */
	bool freeing;			/* a rouse_group_free() runs */
	uint64_t spawned, taken, polls;
	/* Lock-free. */
	uint64_t wakes;			/* atomic */
	struct member *ready;		/* atomic; STACK_CLOSED once freed */
	struct rouse_atomic_waker waiter;
	size_t refs;			/* atomic */
};

/* ---- memory -------------------------------------------------------------- */

static void group_ref(struct rouse_group *g)
{
	__atomic_fetch_add(&g->refs, 1, __ATOMIC_RELAXED);
}

static void group_unref(struct rouse_group *g)
{
	if (__atomic_fetch_sub(&g->refs, 1, __ATOMIC_ACQ_REL) != 1)
		return;
	rouse_atomic_waker_destroy(&g->waiter);
	pthread_mutex_destroy(&g->lock);
	rouse__free(g);
}

static void member_ref(struct member *m)
{
	__atomic_fetch_add(&m->refs, 1, __ATOMIC_RELAXED);
}

static void member_unref(struct member *m)
{
	struct rouse_group *g = m->g;

	if (__atomic_fetch_sub(&m->refs, 1, __ATOMIC_ACQ_REL) != 1)
		return;
	rouse__free(m);
	group_unref(g);
}

/* ---- the member's waker -------------------------------------------------- */

static const struct rouse_waker_vtable member_vtable;

static struct rouse_waker member_clone(void *data)
{
	struct rouse_waker w = { data, &member_vtable };

	member_ref(data);
	return w;
}

/*
 * Queue the member, once, and wake the waiting future when the stack was
 * empty: a push onto a stack that has members has been announced by the
 * push of the oldest of them, and the waiting future takes them all.
 */
static void member_wake_by_ref(void *data)
{
	struct member *m = data;
	struct rouse_group *g = m->g;
	struct member *head;

	if (__atomic_exchange_n(&m->queued, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	member_ref(m);			/* the stack's */
	head = __atomic_load_n(&g->ready, __ATOMIC_RELAXED);
	do {
		if (head == STACK_CLOSED) {
			member_unref(m);
			return;
		}
		__atomic_store_n(&m->ready_next, head, __ATOMIC_RELAXED);
	} while (!__atomic_compare_exchange_n(&g->ready, &head, m, true,
					      __ATOMIC_RELEASE,
					      __ATOMIC_RELAXED));
	if (head == NULL)
		rouse_atomic_waker_wake(&g->waiter);
	/* Counted last: a count seen means queued, and the waiter woken. */
	__atomic_fetch_add(&g->wakes, 1, __ATOMIC_RELEASE);
}

static void member_drop(void *data)
{
	member_unref(data);
}

static void member_wake(void *data)
{
	member_wake_by_ref(data);
	member_unref(data);
}

static const struct rouse_waker_vtable member_vtable = {
	member_clone, member_wake, member_wake_by_ref, member_drop,
};

/* Poll m's handle with m's waker (the mutex held). */
static enum rouse_poll member_poll(struct rouse_group *g, struct member *m)
{
	struct rouse_waker w = { m, &member_vtable };
	struct rouse_context cx = { &w };

	g->polls++;
	return (enum rouse_poll)rouse_future_poll(&m->handle.base, &cx);
}

/* Take m out of g's list (the mutex held); the caller has its handle. */
static void member_unlink(struct rouse_group *g, struct member *m)
{
	if (m->prev != NULL)
		m->prev->next = m->next;
	else
		g->head = m->next;
	if (m->next != NULL)
		m->next->prev = m->prev;
	m->prev = m->next = NULL;
	m->in_group = false;
	__atomic_store_n(&g->len, g->len - 1, __ATOMIC_RELAXED);
	g->taken++;
}

/* ---- taking completions -------------------------------------------------- */

enum take {
	TAKE_ONE,	/* *out: a member that finished, out of the group */
	TAKE_EMPTY,	/* the group has no member */
	TAKE_PENDING,	/* none finished yet; a wake will come */
};

/*
 * The mutex held, by the future whose turn it is, which registered its
 * waker before the call.  Polls the queued members, oldest wake first,
 * up to *budget of them, and takes out the first that finished; the
 * members after it stay in the batch for the next call.  With the budget
 * spent, the caller's task is woken to come back.  The member returned
 * has left the group; its record keeps the group's reference, which the
 * caller drops once it has moved or dropped the handle.
 */
static enum take group_take(struct rouse_group *g, struct rouse_context *cx,
			    unsigned int *budget, struct member **out)
{
	struct member *m, *stack, *next;

	for (;;) {
		if (g->len == 0)
			return TAKE_EMPTY;
		if (g->batch == NULL) {
			stack = __atomic_exchange_n(&g->ready, NULL,
						    __ATOMIC_ACQUIRE);
			if (stack == NULL)
				return TAKE_PENDING;
			/* Newest first on the stack: the batch is reversed. */
			for (m = NULL; stack != NULL; stack = next) {
				next = __atomic_load_n(&stack->ready_next,
						       __ATOMIC_RELAXED);
				__atomic_store_n(&stack->ready_next, m,
						 __ATOMIC_RELAXED);
				m = stack;
			}
			g->batch = m;
		}
		if (*budget == 0) {
			rouse_waker_wake_by_ref(cx->waker);
			return TAKE_PENDING;
		}
		m = g->batch;
		g->batch = __atomic_load_n(&m->ready_next, __ATOMIC_RELAXED);
		__atomic_exchange_n(&m->queued, 0, __ATOMIC_ACQ_REL);
		if (!m->in_group) {
			/* Taken before: a late wake. */
			member_unref(m);
			continue;
		}
		(*budget)--;
		if (member_poll(g, m) == ROUSE_READY) {
			member_unlink(g, m);
			member_unref(m);	/* the stack's ref */
			*out = m;
			return TAKE_ONE;
		}
		member_unref(m);
	}
}

/* The waiting future gives the turn back (the mutex held). */
static void group_leave(struct rouse_group *g, const void *who)
{
	struct rouse_waker w;

	if (g->poller != who)
		return;
	g->poller = NULL;
	if (rouse_atomic_waker_take(&g->waiter, &w) > 0)
		rouse_waker_drop(&w);
}

/*
 * Whether who may poll the members now (the mutex held): its turn, or
 * nobody's, which makes it its turn.  Otherwise *err says why not.
 */
static bool group_enter(struct rouse_group *g, const void *who, int *err)
{
	if (g->closed) {
		*err = -ECANCELED;
		return false;
	}
	if (g->poller != NULL && g->poller != who) {
		*err = -EBUSY;
		return false;
	}
	g->poller = who;
	return true;
}

/* A member taken out whose completion nobody reads: let it all go. */
static void member_discard(struct member *m)
{
	rouse_future_drop(&m->handle.base);
	member_unref(m);
}

/* ---- the group ----------------------------------------------------------- */

ROUSE__PUBLIC int rouse_group_new(struct rouse_group **out)
{
	struct rouse_group *g;

	if (out == NULL)
		return -EINVAL;
	g = rouse__malloc(sizeof(*g));
	if (g == NULL)
		return -ENOMEM;
	pthread_mutex_init(&g->lock, NULL);
	g->head = NULL;
	g->len = 0;
	g->batch = NULL;
	g->poller = NULL;
	g->closed = false;
	g->freeing = false;
	g->spawned = g->taken = g->polls = 0;
	g->wakes = 0;
	g->ready = NULL;
	rouse_atomic_waker_init(&g->waiter);
	g->refs = 1;
	*out = g;
	rouse__debug("group %p: new", (void *)g);
	return 0;
}

ROUSE__PUBLIC int rouse_group_spawn(struct rouse_group *g,
				    struct rouse_executor *ex,
				    const struct rouse_future *f, size_t size,
				    uint64_t *id)
{
	struct member *m;
	bool done;
	int err;

	if (g == NULL || f == NULL || f->vtable == NULL ||
	    f->vtable->poll == NULL)
		return -EINVAL;
	if (ex == NULL) {
		ex = rouse_executor_current();
		if (ex == NULL)
			return -ESRCH;
	}
	m = rouse__malloc(sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	m->prev = m->next = NULL;
	m->ex = ex;
	m->in_group = false;
	m->ready_next = NULL;
	m->queued = 0;
	m->refs = 1;			/* the group's */
	m->g = g;

	pthread_mutex_lock(&g->lock);
	if (g->closed) {
		pthread_mutex_unlock(&g->lock);
		rouse__free(m);
		return -ECANCELED;
	}
	err = rouse_spawn(ex, f, size, &m->handle);
	if (err < 0) {
		pthread_mutex_unlock(&g->lock);
		rouse__free(m);
		return err;
	}
	group_ref(g);			/* the member's */
	m->id = rouse_join_handle_id(&m->handle);
	m->in_group = true;
	m->next = g->head;
	if (g->head != NULL)
		g->head->prev = m;
	g->head = m;
	__atomic_store_n(&g->len, g->len + 1, __ATOMIC_RELAXED);
	g->spawned++;
	/*
	 * Poll the handle once now, so that the task holds the member's
	 * waker before anyone waits: completions are then queued in the
	 * order they happen, waited for or not.  A task that finished
	 * already is queued as if it had woken the member, once the mutex
	 * is released (a wake of the waiting future runs no code of ours
	 * under it).
	 */
	done = member_poll(g, m) == ROUSE_READY;
	if (done)
		member_ref(m);
	if (id != NULL)
		*id = m->id;
	rouse__trace("group %p: task %llu spawned", (void *)g,
		     (unsigned long long)m->id);
	pthread_mutex_unlock(&g->lock);
	if (done) {
		member_wake_by_ref(m);
		member_unref(m);
	}
	return 0;
}

ROUSE__PUBLIC int rouse_group_abort_all(struct rouse_group *g)
{
	struct member *m;

	if (g == NULL)
		return -EINVAL;
	pthread_mutex_lock(&g->lock);
	for (m = g->head; m != NULL; m = m->next)
		rouse_join_handle_abort(&m->handle);
	pthread_mutex_unlock(&g->lock);
	return 0;
}

ROUSE__PUBLIC long rouse_group_len(const struct rouse_group *g)
{
	if (g == NULL)
		return -EINVAL;
	return (long)__atomic_load_n(&g->len, __ATOMIC_RELAXED);
}

ROUSE__PUBLIC int rouse_group_get_stats(struct rouse_group *g,
					struct rouse_group_stats *out)
{
	if (g == NULL || out == NULL)
		return -EINVAL;
	pthread_mutex_lock(&g->lock);
	out->spawned = g->spawned;
	out->taken = g->taken;
	out->polls = g->polls;
	out->wakes = __atomic_load_n(&g->wakes, __ATOMIC_ACQUIRE);
	pthread_mutex_unlock(&g->lock);
	return 0;
}

/* ---- next ---------------------------------------------------------------- */

/* Ready without a task: id 0 and why (the mutex held; it is released). */
static enum rouse_poll next_finish(struct rouse_group_next *f, int result)
{
	struct rouse_group *g = f->group;

	group_leave(g, f);
	pthread_mutex_unlock(&g->lock);
	f->group = NULL;
	group_unref(g);
	f->id = 0;
	f->result = result;
	f->output = NULL;
	return ROUSE_READY;
}

static enum rouse_poll next_poll(struct rouse_future *self,
				 struct rouse_context *cx)
{
	struct rouse_group_next *f = (struct rouse_group_next *)self;
	struct rouse_group *g = f->group;
	unsigned int budget = GROUP_POLL_BUDGET;
	struct member *m;
	int err;

	if (g == NULL)
		return ROUSE_READY;
	pthread_mutex_lock(&g->lock);
	if (!group_enter(g, f, &err))
		return next_finish(f, err);
	rouse_atomic_waker_register(&g->waiter, cx->waker);
	switch (group_take(g, cx, &budget, &m)) {
	case TAKE_PENDING:
		pthread_mutex_unlock(&g->lock);
		return ROUSE_PENDING;
	case TAKE_EMPTY:
		return next_finish(f, -ENOENT);
	case TAKE_ONE:
		break;
	}
	/* The handle moves here; the record may outlive the group. */
	f->handle = m->handle;
	m->handle.base.vtable = NULL;
	member_unref(m);
	next_finish(f, f->handle.result);
	f->id = rouse_join_handle_id(&f->handle);
	f->output = f->handle.output;
	return ROUSE_READY;
}

static void next_drop(struct rouse_future *self)
{
	struct rouse_group_next *f = (struct rouse_group_next *)self;
	struct rouse_group *g = f->group;

	if (g != NULL) {
		pthread_mutex_lock(&g->lock);
		group_leave(g, f);
		pthread_mutex_unlock(&g->lock);
		f->group = NULL;
		group_unref(g);
	}
	/* The completion's memory, output included, goes with the handle. */
	if (f->handle.base.vtable != NULL)
		rouse_future_drop(&f->handle.base);
}

static const struct rouse_future_vtable next_vtable = {
	.poll = next_poll,
	.drop = next_drop,
};

ROUSE__PUBLIC int rouse_group_next_init(struct rouse_group_next *f,
					struct rouse_group *g)
{
	if (f == NULL || g == NULL)
		return -EINVAL;
	group_ref(g);
	f->base.vtable = &next_vtable;
	f->group = g;
	f->handle.base.vtable = NULL;
	f->handle.task = NULL;
	f->handle.result = 0;
	f->handle.output = NULL;
	f->id = 0;
	f->result = 0;
	f->output = NULL;
	return 0;
}

/* ---- join-all ------------------------------------------------------------ */

static enum rouse_poll join_all_finish(struct rouse_group_join_all *f,
				       int result)
{
	struct rouse_group *g = f->group;

	group_leave(g, f);
	pthread_mutex_unlock(&g->lock);
	f->group = NULL;
	group_unref(g);
	f->result = result;
	return ROUSE_READY;
}

static enum rouse_poll join_all_poll(struct rouse_future *self,
				     struct rouse_context *cx)
{
	struct rouse_group_join_all *f = (struct rouse_group_join_all *)self;
	struct rouse_group *g = f->group;
	unsigned int budget = GROUP_POLL_BUDGET;
	struct member *m;
	int err;

	if (g == NULL)
		return ROUSE_READY;
	pthread_mutex_lock(&g->lock);
	if (!group_enter(g, f, &err))
		return join_all_finish(f, err);
	rouse_atomic_waker_register(&g->waiter, cx->waker);
	for (;;) {
		switch (group_take(g, cx, &budget, &m)) {
		case TAKE_PENDING:
			pthread_mutex_unlock(&g->lock);
			return ROUSE_PENDING;
		case TAKE_EMPTY:
			return join_all_finish(f, 0);
		case TAKE_ONE:
			if (m->handle.result == 0)
				f->completed++;
			else
				f->cancelled++;
			member_discard(m);
			break;
		}
	}
}

static void join_all_drop(struct rouse_future *self)
{
	struct rouse_group_join_all *f = (struct rouse_group_join_all *)self;
	struct rouse_group *g = f->group;

	if (g == NULL)
		return;
	pthread_mutex_lock(&g->lock);
	group_leave(g, f);
	pthread_mutex_unlock(&g->lock);
	f->group = NULL;
	group_unref(g);
}

static const struct rouse_future_vtable join_all_vtable = {
	.poll = join_all_poll,
	.drop = join_all_drop,
};

ROUSE__PUBLIC int rouse_group_join_all_init(struct rouse_group_join_all *f,
					    struct rouse_group *g)
{
	if (f == NULL || g == NULL)
		return -EINVAL;
	group_ref(g);
	f->base.vtable = &join_all_vtable;
	f->group = g;
	f->completed = 0;
	f->cancelled = 0;
	f->result = 0;
	return 0;
}

/* ---- free ---------------------------------------------------------------- */

/*
 * Free's own waiting future: it takes completions (and discards them)
 * until no member of ex is left; left counts them.
 */
struct drain {
	struct rouse_future base;
	struct rouse_group *g;
	struct rouse_executor *ex;
	size_t left;
};

static enum rouse_poll drain_poll(struct rouse_future *self,
				  struct rouse_context *cx)
{
	struct drain *d = (struct drain *)self;
	struct rouse_group *g = d->g;
	unsigned int budget = GROUP_POLL_BUDGET;
	enum rouse_poll ret = ROUSE_PENDING;
	struct member *m;

	pthread_mutex_lock(&g->lock);
	rouse_atomic_waker_register(&g->waiter, cx->waker);
	while (d->left > 0) {
		enum take t = group_take(g, cx, &budget, &m);

		if (t == TAKE_PENDING)
			break;
		if (t == TAKE_EMPTY) {
			d->left = 0;
			break;
		}
		if (m->ex == d->ex)
			d->left--;
		member_discard(m);
	}
	if (d->left == 0)
		ret = ROUSE_READY;
	pthread_mutex_unlock(&g->lock);
	return ret;
}

static const struct rouse_future_vtable drain_vtable = {
	.poll = drain_poll,
};

/* Ready at once: whether this thread may block (rouse_block_on says). */
static enum rouse_poll probe_poll(struct rouse_future *self,
				  struct rouse_context *cx)
{
	(void)self;
	(void)cx;
	return ROUSE_READY;
}

static const struct rouse_future_vtable probe_vtable = {
	.poll = probe_poll,
};

/*
 * Whether every member has finished (the mutex held): a poll of each
 * handle, which a finished task answers at once, and which leaves the
 * member's waker with the others, as it was.
 */
static bool all_finished(struct rouse_group *g)
{
	struct rouse_waker w;
	struct rouse_context cx = { &w };
	struct member *m;

	w.vtable = &member_vtable;
	for (m = g->head; m != NULL; m = m->next) {
		w.data = m;
		if (rouse_future_poll(&m->handle.base, &cx) != ROUSE_READY)
			return false;
	}
	return true;
}

/* Let go of every member of ex that is left (NULL: every one). */
static void let_go(struct rouse_group *g, struct rouse_executor *ex)
{
	struct member *m, *next;

	for (m = g->head; m != NULL; m = next) {
		next = m->next;
		if (ex != NULL && m->ex != ex)
			continue;
		member_unlink(g, m);
		member_discard(m);
	}
}

/* Close the ready stack and let go of what it and the batch hold. */
static void close_ready(struct rouse_group *g)
{
	struct member *m, *next;

	m = __atomic_exchange_n(&g->ready, STACK_CLOSED, __ATOMIC_ACQUIRE);
	for (; m != NULL; m = next) {
		next = __atomic_load_n(&m->ready_next, __ATOMIC_RELAXED);
		member_unref(m);
	}
	for (m = g->batch; m != NULL; m = next) {
		next = __atomic_load_n(&m->ready_next, __ATOMIC_RELAXED);
		member_unref(m);
	}
	g->batch = NULL;
}

/*
 * Close g to spawns and waiters (the mutex held).  A next or join-all
 * future that waits loses its turn; its waker is left in *w, for the
 * caller to wake once the mutex is released, so that it polls again and
 * answers -ECANCELED.
 */
static void group_close(struct rouse_group *g, struct rouse_waker *w)
{
	g->closed = true;
	w->vtable = NULL;
	if (g->poller != NULL) {
		g->poller = NULL;
		rouse_atomic_waker_take(&g->waiter, w);
	}
}

/* Nothing left to wait for (the mutex held, and released): the end. */
static int group_end(struct rouse_group *g)
{
	struct rouse_waker w;

	let_go(g, NULL);
	close_ready(g);
	group_close(g, &w);
	pthread_mutex_unlock(&g->lock);
	rouse_waker_wake(&w);		/* -EINVAL when nobody waited */
	rouse__debug("group %p: freed", (void *)g);
	group_unref(g);
	return 0;
}

/*
 * Wait on this thread until no member of ex is left.  A current-thread
 * executor that no thread runs is run here, so that it drops the aborted
 * futures; one that another thread runs (-EBUSY) drops them there.  An
 * executor being freed (or inherited through fork) drops them itself, in
 * its free, or never: its members are let go without waiting.
 */
static int drain_executor(struct rouse_group *g, struct rouse_executor *ex)
{
	struct drain d = { { &drain_vtable }, g, ex, 0 };
	struct member *m;
	int err;

	pthread_mutex_lock(&g->lock);
	for (m = g->head; m != NULL; m = m->next)
		d.left += m->ex == ex;
	g->poller = &d;
	pthread_mutex_unlock(&g->lock);
	err = rouse_executor_block_on(ex, &d.base);
	if (err == -ECANCELED || err == -ECHILD) {
		pthread_mutex_lock(&g->lock);
		let_go(g, ex);
		pthread_mutex_unlock(&g->lock);
		return 0;
	}
	if (err < 0)
		err = rouse_block_on(&d.base);
	return err;
}

ROUSE__PUBLIC int rouse_group_free(struct rouse_group *g)
{
	struct rouse_future probe = { &probe_vtable };
	struct rouse_waker w = { NULL, NULL };
	struct member *m;
	int err;

	if (g == NULL)
		return -EINVAL;
	pthread_mutex_lock(&g->lock);
	if (g->freeing) {
		/* From a drop that the free in progress made run. */
		pthread_mutex_unlock(&g->lock);
		return -EBUSY;
	}
	g->freeing = true;
	if (all_finished(g))
		return group_end(g);
	pthread_mutex_unlock(&g->lock);

	/* Waiting blocks: refused inside a poll, nothing changed. */
	err = rouse_block_on(&probe);
	if (err < 0) {
		pthread_mutex_lock(&g->lock);
		g->freeing = false;
		pthread_mutex_unlock(&g->lock);
		return err;
	}

	pthread_mutex_lock(&g->lock);
	group_close(g, &w);
	for (m = g->head; m != NULL; m = m->next)
		rouse_join_handle_abort(&m->handle);
	pthread_mutex_unlock(&g->lock);
	rouse_waker_wake(&w);		/* -EINVAL when nobody waited */

	for (;;) {
		struct rouse_executor *ex;

		pthread_mutex_lock(&g->lock);
		if (g->head == NULL)
			break;
		ex = g->head->ex;
		pthread_mutex_unlock(&g->lock);
		err = drain_executor(g, ex);
		if (err < 0) {
			/* The group stays, closed; free may be called again. */
			pthread_mutex_lock(&g->lock);
			group_leave(g, g->poller);
			g->freeing = false;
			pthread_mutex_unlock(&g->lock);
			return err;
		}
	}
	group_leave(g, g->poller);	/* the last drain's turn */
	return group_end(g);
}
