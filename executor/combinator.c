// SPDX-License-Identifier: MIT
/*
 * executor/combinator.c - join (all of N) and select (the first of N).
 *
 * A combinator of two or more futures gives each of them a waker of its
 * own, so that a wake polls only the future that was woken: a join of n
 * futures that complete one per wake costs O(n) polls in all, not
 * O(n^2).  The wakers live in one block, allocated at the first poll
 * (the structs are the caller's and have no room for them) and freed
 * when the combinator and every clone of a child's waker have let go of
 * it: a child may keep a clone as long as it likes, and a wake on another
 * thread may come after the combinator is gone, so the block cannot be
 * the caller's memory.
 *
 * The block (struct fan) holds one record per child and a stack of the
 * children woken since the combinator's last poll.  A child's wake pushes
 * its record, unless it is queued already, and wakes the combinator's
 * task when the stack was empty: whoever pushed onto an empty stack
 * wakes, and the poll takes the whole stack at once, so every push is
 * seen by a poll that follows a wake.  The task's waker is kept in an
 * atomic waker slot (sync/atomic_waker.c), registered at each poll before
 * the stack is taken, so that a wake between the two is not lost.
 *
 * Without the block (one future, or no memory for it) the combinator
 * polls every unfinished future with its own context, as before: O(n) per
 * wake, but correct; the next poll tries the allocation again, and the
 * poll that gets the block polls every unfinished future once with its
 * new waker, so a wake that went to the task's waker meanwhile is not
 * lost either.  yield is in the header.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rouse/combinator.h>
#include <rouse/sync.h>

#include "../lib/internal.h"

/* The union that replaced n keeps the 0.1.0 layout of both structs. */
_Static_assert(sizeof(struct rouse_join) == 5 * sizeof(void *),
	       "struct rouse_join keeps its size");
_Static_assert(sizeof(struct rouse_select) == 5 * sizeof(void *),
	       "struct rouse_select keeps its size");

/* The sub-futures must be pollable, or the poll would crash later. */
static bool futures_valid(struct rouse_future *const *futures, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct rouse_future *f = futures[i];

		if (f == NULL || f->vtable == NULL || f->vtable->poll == NULL)
			return false;
	}
	return true;
}

/* ---- a waker per child ------------------------------------------------ */

/*
 * One child's record; its address is the data of the child's waker.
 * queued is 0 while the child waits for a wake that has not come: the
 * next wake sets it and pushes the record.  It is 1 while the record is
 * on the stack or in the batch a poll took from it (until the poll gets
 * to it and clears it, just before polling the child), and for good once
 * the child has completed, so that a wake has nothing left to do.
 */
struct fan_child {
	struct fan_child *next;	/* atomic: the stack's link */
	uint32_t queued;	/* atomic */
	uint32_t index;		/* in the combinator's array */
};

struct fan {
	/* Atomic: the combinator's reference and one per waker clone. */
	size_t refs;
	/* Atomic: the children woken since the last poll, newest first. */
	struct fan_child *ready;
	/* The waker of the task polling the combinator. */
	struct rouse_atomic_waker parent;
	struct rouse_future *const *futures;
	size_t n;
	struct fan_child kids[];
};

static struct fan *fan_of(struct fan_child *c)
{
	return rouse__container_of(c - c->index, struct fan, kids);
}

static struct fan_child *kid_next(struct fan_child *c)
{
	return __atomic_load_n(&c->next, __ATOMIC_RELAXED);
}

static void kid_set_next(struct fan_child *c, struct fan_child *next)
{
	__atomic_store_n(&c->next, next, __ATOMIC_RELAXED);
}

static void fan_unref(struct fan *f)
{
	if (__atomic_fetch_sub(&f->refs, 1, __ATOMIC_ACQ_REL) == 1) {
		rouse_atomic_waker_destroy(&f->parent);
		rouse__free(f);
	}
}

static const struct rouse_waker_vtable kid_vtable;

static struct rouse_waker kid_clone(void *data)
{
	struct rouse_waker w = { data, &kid_vtable };

	__atomic_fetch_add(&fan_of(data)->refs, 1, __ATOMIC_RELAXED);
	return w;
}

/*
 * Push the child and, when it found the stack empty, wake the task.  A
 * push onto a stack that has records has nothing to wake: whoever pushed
 * the oldest of them woke the task, whose next poll takes them all.
 */
static void kid_wake_by_ref(void *data)
{
	struct fan_child *c = data;
	struct fan *f = fan_of(c);
	struct fan_child *head;

	if (__atomic_exchange_n(&c->queued, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	head = __atomic_load_n(&f->ready, __ATOMIC_RELAXED);
	do {
		kid_set_next(c, head);
	} while (!__atomic_compare_exchange_n(&f->ready, &head, c, true,
					      __ATOMIC_RELEASE,
					      __ATOMIC_RELAXED));
	if (head == NULL)
		rouse_atomic_waker_wake(&f->parent);
}

static void kid_drop(void *data)
{
	fan_unref(fan_of(data));
}

static void kid_wake(void *data)
{
	kid_wake_by_ref(data);
	kid_drop(data);
}

static const struct rouse_waker_vtable kid_vtable = {
	kid_clone, kid_wake, kid_wake_by_ref, kid_drop,
};

/*
 * The block for n futures, each child queued (its first poll is the
 * combinator's first), or NULL when n is too large to index in 32 bits
 * or there is no memory: the caller then scans.
 */
static struct fan *fan_new(struct rouse_future *const *futures, size_t n)
{
	struct fan *f;
	size_t i;

	if (n > UINT32_MAX)
		return NULL;
	f = rouse__malloc(sizeof(*f) + n * sizeof(f->kids[0]));
	if (f == NULL)
		return NULL;
	f->refs = 1;
	f->ready = NULL;
	rouse_atomic_waker_init(&f->parent);
	f->futures = futures;
	f->n = n;
	for (i = 0; i < n; i++) {
		f->kids[i].next = NULL;
		f->kids[i].queued = 1;
		f->kids[i].index = (uint32_t)i;
	}
	return f;
}

/* The combinator lets go: of the task's waker, and of its reference. */
static void fan_release(struct fan *f)
{
	struct rouse_waker w;

	if (rouse_atomic_waker_take(&f->parent, &w) > 0)
		rouse_waker_drop(&w);
	fan_unref(f);
}

/*
 * Take every child woken since the last poll, newest first.  The task's
 * waker was registered just before: a wake after this takes wakes it.
 */
static struct fan_child *fan_take(struct fan *f)
{
	return __atomic_exchange_n(&f->ready, NULL, __ATOMIC_ACQUIRE);
}

/*
 * Poll child c with its own waker.  Its queued flag is cleared first, so
 * that a wake from now on, during the poll included, queues it again.
 * Returns the child's answer; a child that completed stays queued for
 * good.
 */
static enum rouse_poll fan_poll_kid(struct fan *f, struct fan_child *c)
{
	struct rouse_waker w = { c, &kid_vtable };
	struct rouse_context cx = { &w };
	struct rouse_future *fut = f->futures[c->index];

	__atomic_exchange_n(&c->queued, 0, __ATOMIC_ACQ_REL);
	if (fut->vtable->poll(fut, &cx) != ROUSE_READY)
		return ROUSE_PENDING;
	__atomic_store_n(&c->queued, 1, __ATOMIC_RELAXED);
	return ROUSE_READY;
}

/* ---- join ----------------------------------------------------------- */

/* Without wakers of its own: every future not done, with cx. */
static enum rouse_poll join_scan(struct rouse_join *j, struct rouse_context *cx)
{
	size_t i;

	for (i = 0; i < j->n && j->remaining > 0; i++) {
		struct rouse_future *f = j->futures[i];

		if (j->done[i])
			continue;
		if (f->vtable->poll(f, cx) == ROUSE_READY) {
			j->done[i] = true;
			j->remaining--;
		}
	}
	return j->remaining == 0 ? ROUSE_READY : ROUSE_PENDING;
}

static void join_poll_kid(struct rouse_join *j, struct fan *f,
			  struct fan_child *c)
{
	if (j->done[c->index])
		return;		/* a wake that came after its completion */
	if (fan_poll_kid(f, c) == ROUSE_READY) {
		j->done[c->index] = true;
		j->remaining--;
	}
}

static enum rouse_poll join_poll(struct rouse_future *self,
				 struct rouse_context *cx)
{
	struct rouse_join *j = (struct rouse_join *)self;
	struct fan_child *batch, *c, *fifo;
	struct fan *f;
	size_t i;

	if (j->remaining == 0)
		return ROUSE_READY;
	if (j->futures != NULL) {
		/* The first poll, or every poll since an allocation failed. */
		f = j->n >= 2 ? fan_new(j->futures, j->n) : NULL;
		if (f == NULL)
			return join_scan(j, cx);
		j->futures = NULL;
		j->wakers = f;
		rouse_atomic_waker_register(&f->parent, cx->waker);
		for (i = 0; i < f->n; i++)
			join_poll_kid(j, f, &f->kids[i]);
	} else {
		f = j->wakers;
		rouse_atomic_waker_register(&f->parent, cx->waker);
		/* Oldest wake first. */
		fifo = NULL;
		for (batch = fan_take(f); batch != NULL; batch = c) {
			c = kid_next(batch);
			kid_set_next(batch, fifo);
			fifo = batch;
		}
		while (fifo != NULL) {
			c = fifo;
			fifo = kid_next(c);	/* before a wake re-queues c */
			join_poll_kid(j, f, c);
		}
	}
	if (j->remaining > 0)
		return ROUSE_PENDING;
	/* Done: the block goes once the children's clones have. */
	j->wakers = NULL;
	fan_release(f);
	return ROUSE_READY;
}

/* The finished ones are the caller's; the rest are cancelled here. */
static void join_drop(struct rouse_future *self)
{
	struct rouse_join *j = (struct rouse_join *)self;
	struct rouse_future *const *futures = j->futures;
	struct fan *f = NULL;
	size_t i, n = j->n;

	if (j->remaining == 0)
		return;
	if (futures == NULL) {
		f = j->wakers;
		futures = f->futures;
		n = f->n;
	}
	for (i = 0; i < n && j->remaining > 0; i++) {
		if (j->done[i])
			continue;
		rouse_future_drop(futures[i]);
		j->remaining--;
	}
	if (f != NULL)
		fan_release(f);
}

static const struct rouse_future_vtable join_vtable = {
	.poll = join_poll,
	.drop = join_drop,
};

ROUSE__PUBLIC int rouse_join_init(struct rouse_join *j,
				  struct rouse_future *const *futures,
				  bool *done, size_t n)
{
	size_t i;

	if (j == NULL || futures == NULL || done == NULL ||
	    !futures_valid(futures, n))
		return -EINVAL;
	for (i = 0; i < n; i++)
		done[i] = false;
	j->base.vtable = &join_vtable;
	j->futures = futures;
	j->done = done;
	j->n = n;
	j->remaining = n;
	return 0;
}

/* ---- select --------------------------------------------------------- */

/* Where the next fair select on this thread starts its rounds. */
static __thread size_t fair_next;

/* Everything but the winner is cancelled: it has not completed. */
static void drop_except(struct rouse_future *const *futures, size_t n,
			size_t keep)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (i != keep)
			rouse_future_drop(futures[i]);
}

/* Without wakers of its own: a round of polls with cx, from start. */
static enum rouse_poll select_scan(struct rouse_select *s,
				   struct rouse_context *cx)
{
	size_t k, i;

	i = s->start;
	for (k = 0; k < s->n; k++) {
		struct rouse_future *f = s->futures[i];

		if (f->vtable->poll(f, cx) == ROUSE_READY) {
			s->index = i;
			drop_except(s->futures, s->n, i);
			return ROUSE_READY;
		}
		if (++i == s->n)
			i = 0;
	}
	return ROUSE_PENDING;
}

/* Child c wins if it is ready: the others go, and so does the block. */
static bool select_poll_kid(struct rouse_select *s, struct fan *f,
			    struct fan_child *c)
{
	if (fan_poll_kid(f, c) != ROUSE_READY)
		return false;
	s->index = c->index;
	s->wakers = NULL;
	drop_except(f->futures, f->n, c->index);
	fan_release(f);
	return true;
}

/* How far after the select's start child c comes in a round. */
static size_t round_pos(const struct fan_child *c, size_t start, size_t n)
{
	return c->index >= start ? c->index - start : c->index + n - start;
}

/* Merge sort of a batch by round_pos, so ties go as the rounds say. */
static struct fan_child *sort_batch(struct fan_child *list, size_t start,
				    size_t n)
{
	struct fan_child *slow, *fast, *b, head, *tail;

	if (list == NULL || kid_next(list) == NULL)
		return list;
	slow = list;
	fast = kid_next(list);
	while (fast != NULL && kid_next(fast) != NULL) {
		slow = kid_next(slow);
		fast = kid_next(kid_next(fast));
	}
	b = kid_next(slow);
	kid_set_next(slow, NULL);
	list = sort_batch(list, start, n);
	b = sort_batch(b, start, n);
	tail = &head;
	while (list != NULL && b != NULL) {
		struct fan_child **from =
			round_pos(list, start, n) <= round_pos(b, start, n) ?
				&list : &b;

		kid_set_next(tail, *from);
		tail = *from;
		*from = kid_next(*from);
	}
	kid_set_next(tail, list != NULL ? list : b);
	return kid_next(&head);
}

static enum rouse_poll select_poll(struct rouse_future *self,
				   struct rouse_context *cx)
{
	struct rouse_select *s = (struct rouse_select *)self;
	struct fan_child *batch, *c;
	struct fan *f;
	size_t k, i;

	if (s->index != SIZE_MAX)
		return ROUSE_READY;
	if (s->futures != NULL) {
		f = s->n >= 2 ? fan_new(s->futures, s->n) : NULL;
		if (f == NULL)
			return select_scan(s, cx);
		s->futures = NULL;
		s->wakers = f;
		rouse_atomic_waker_register(&f->parent, cx->waker);
		i = s->start;
		for (k = 0; k < f->n; k++) {
			if (select_poll_kid(s, f, &f->kids[i]))
				return ROUSE_READY;
			if (++i == f->n)
				i = 0;
		}
		return ROUSE_PENDING;
	}
	f = s->wakers;
	rouse_atomic_waker_register(&f->parent, cx->waker);
	batch = sort_batch(fan_take(f), s->start, f->n);
	while (batch != NULL) {
		c = batch;
		batch = kid_next(c);	/* before the poll re-queues c */
		if (select_poll_kid(s, f, c))
			return ROUSE_READY;
	}
	return ROUSE_PENDING;
}

static void select_drop(struct rouse_future *self)
{
	struct rouse_select *s = (struct rouse_select *)self;
	struct fan *f;

	/* After a win the losers are gone and the winner is the caller's. */
	if (s->index != SIZE_MAX)
		return;
	if (s->futures != NULL) {
		drop_except(s->futures, s->n, SIZE_MAX);
		return;
	}
	f = s->wakers;
	drop_except(f->futures, f->n, SIZE_MAX);
	fan_release(f);
}

static const struct rouse_future_vtable select_vtable = {
	.poll = select_poll,
	.drop = select_drop,
};

ROUSE__PUBLIC int rouse_select_init(struct rouse_select *s,
				    struct rouse_future *const *futures,
				    size_t n, unsigned int flags)
{
	if (s == NULL || futures == NULL || n == 0 || n == SIZE_MAX ||
	    (flags & ~ROUSE_SELECT_FAIR) != 0 || !futures_valid(futures, n))
		return -EINVAL;
	s->base.vtable = &select_vtable;
	s->futures = futures;
	s->n = n;
	s->start = 0;
	if (flags & ROUSE_SELECT_FAIR)
		s->start = fair_next++ % n;
	s->index = SIZE_MAX;
	return 0;
}
