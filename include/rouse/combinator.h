/* SPDX-License-Identifier: MIT */
/*
 * rouse/combinator.h - futures made of futures: yield, join (all of N) and
 * select (the first of N).
 *
 * The combinators live in caller-owned structs, like every rouse future,
 * and point at sub-futures that stay in the caller's memory, where their
 * outputs are read.  Ownership of the sub-futures, in one rule: a
 * sub-future that completed (answered ROUSE_READY) belongs to the caller,
 * who reads its output and drops it; one that did not complete belongs to
 * the combinator, which drops it (select: when another one wins; both:
 * when the combinator is dropped).
 *
 * yield is header-only; join and select are in librouse-executor.
 */
#ifndef ROUSE_COMBINATOR_H
#define ROUSE_COMBINATOR_H

#include <stdbool.h>
#include <stddef.h>

#include <rouse/future.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- yield ---------------------------------------------------------- */

/* Pending once (after waking its task), then ready: lets others run. */
struct rouse_yield {
	struct rouse_future base;
	int yielded;	/* private: 1 once the first poll has woken */
};

/*
 * The poll of a yield.  It is visible so that a hot loop may call it
 * directly; the first poll wakes cx's waker by reference and answers
 * pending, every later one answers ready.
 */
static inline enum rouse_poll rouse_yield_poll(struct rouse_future *f,
					       struct rouse_context *cx)
{
	struct rouse_yield *y = (struct rouse_yield *)f;

	if (y->yielded)
		return ROUSE_READY;
	y->yielded = 1;
	cx->waker->vtable->wake_by_ref(cx->waker->data);
	return ROUSE_PENDING;
}

/* One vtable per translation unit is fine: nothing compares them. */
static inline const struct rouse_future_vtable *rouse__yield_vtable(void)
{
	static const struct rouse_future_vtable vt = { rouse_yield_poll, NULL };

	return &vt;
}

/* Make y a yield that has not yielded; cheap enough to redo in a loop. */
static inline int rouse_yield_init(struct rouse_yield *y)
{
	if (y == NULL)
		return -EINVAL;
	y->base.vtable = rouse__yield_vtable();
	y->yielded = 0;
	return 0;
}

/* ---- join: all of N ------------------------------------------------- */

/*
 * Ready when all n futures are.  The first poll polls each of them; with
 * two or more, each gets a waker of its own, and a later poll polls only
 * those woken since the one before (O(1) per wake; one allocation, at the
 * first poll).  done[i] is set when futures[i] answers ready; futures[i]
 * is not polled after that.
 */
struct rouse_join {
	struct rouse_future base;
	struct rouse_future *const *futures;	/* private */
	bool *done;		/* output: the caller's array of n flags */
	union {			/* private: the count, then the wakers */
		size_t n;
		void *wakers;
	};
	size_t remaining;	/* output: futures not done yet */
};

int rouse_join_init(struct rouse_join *j, struct rouse_future *const *futures,
		    bool *done, size_t n);

/* ---- select: the first of N ----------------------------------------- */

/* Start each select's round of polls one place further (per thread). */
#define ROUSE_SELECT_FAIR 0x1u

/*
 * Ready when one of the n futures is: the first to answer ready in a
 * poll's round (index order, lowest first, unless ROUSE_SELECT_FAIR)
 * wins, its index is stored in index, and every other one is dropped
 * there and then.  As for join, a round after the first polls only the
 * futures woken since the last one.
 */
struct rouse_select {
	struct rouse_future base;
	struct rouse_future *const *futures;	/* private */
	union {			/* private: the count, then the wakers */
		size_t n;
		void *wakers;
	};
	size_t start;		/* private: where each round begins */
	size_t index;		/* output: the winner; SIZE_MAX until then */
};

int rouse_select_init(struct rouse_select *s,
		      struct rouse_future *const *futures, size_t n,
		      unsigned int flags);

#ifdef __cplusplus
}
#endif

#endif /* ROUSE_COMBINATOR_H */
