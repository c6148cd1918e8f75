// SPDX-License-Identifier: MIT
/*
 * executor/combinator.c - join (all of N) and select (the first of N).
 *
 * Both poll their sub-futures with the context they are polled with, so a
 * sub-future's wake is the task's wake and nothing is allocated: no waker
 * per sub-future, hence the O(n) scan per poll, which is fine for the
 * handful of futures these are meant for.  yield is in the header.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rouse/combinator.h>

#include "../lib/internal.h"

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

/* ---- join ----------------------------------------------------------- */

static enum rouse_poll join_poll(struct rouse_future *self,
				 struct rouse_context *cx)
{
	struct rouse_join *j = (struct rouse_join *)self;
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

/* The finished ones are the caller's; the rest are cancelled here. */
static void join_drop(struct rouse_future *self)
{
	struct rouse_join *j = (struct rouse_join *)self;
	size_t i;

	for (i = 0; i < j->n && j->remaining > 0; i++) {
		if (j->done[i])
			continue;
		rouse_future_drop(j->futures[i]);
		j->remaining--;
	}
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
static void select_drop_except(struct rouse_select *s, size_t keep)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (i != keep)
			rouse_future_drop(s->futures[i]);
}

static enum rouse_poll select_poll(struct rouse_future *self,
				   struct rouse_context *cx)
{
	struct rouse_select *s = (struct rouse_select *)self;
	size_t k, i;

	if (s->index != SIZE_MAX)
		return ROUSE_READY;
	i = s->start;
	for (k = 0; k < s->n; k++) {
		struct rouse_future *f = s->futures[i];

		if (f->vtable->poll(f, cx) == ROUSE_READY) {
			s->index = i;
			select_drop_except(s, i);
			return ROUSE_READY;
		}
		if (++i == s->n)
			i = 0;
	}
	return ROUSE_PENDING;
}

static void select_drop(struct rouse_future *self)
{
	struct rouse_select *s = (struct rouse_select *)self;

	/* After a win the losers are gone and the winner is the caller's. */
	if (s->index == SIZE_MAX)
		select_drop_except(s, SIZE_MAX);
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
