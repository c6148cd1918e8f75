/* SPDX-License-Identifier: MIT */
/*
 * lib/list.h - the intrusive lists of both libraries.  Header-only; it
 * calls nothing.  None of it is thread-safe: every list is guarded by its
 * owner's lock, or touched by one thread.
 *
 * Two shapes, each with its node embedded in the struct it links, and
 * rouse__list_entry() (container_of) to get from the node back to it:
 *
 *   - a list: circular and doubly linked through struct rouse_link, its
 *     head a link of the same type that belongs to no element.  Push at
 *     either end, unlink any element, all in O(1) and without a branch;
 *     the head is the only "end" there is.  The link is declared in
 *     <rouse/future.h>, because some caller-owned structs embed one
 *     (struct rouse_sync_waiter).
 *
 *   - a FIFO: singly linked through struct rouse__slink, with head and
 *     tail pointers.  Push at the tail, pop at the head; no unlink from
 *     the middle.  One pointer per element, for structs that cannot
 *     spare two.
 *
 * A list head must be initialised (rouse__list_init() or
 * ROUSE__LIST_INIT) and then stays where it is: its elements point at it.
 * An element's link is "in no list" when it is all zeroes, or after
 * rouse__link_init() or rouse__list_remove(); rouse__link_linked() tells.
 * Elements can therefore be copied and moved while in no list.
 * A FIFO of all zeroes (ROUSE__FIFO_INIT) is empty, and may be copied.
 */
#ifndef ROUSE_LIB_LIST_H
#define ROUSE_LIB_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include <rouse/future.h>	/* struct rouse_link */

#include "internal.h"		/* rouse__container_of() */

/* The struct of type that embeds the link l as its member. */
#define rouse__list_entry(l, type, member) \
	rouse__container_of(l, type, member)

/* ---- the list ------------------------------------------------------ */

/* An empty list head, for a static definition: ROUSE__LIST_INIT(name). */
#define ROUSE__LIST_INIT(name) { &(name), &(name) }

static inline void rouse__list_init(struct rouse_link *head)
{
	head->next = head;
	head->prev = head;
}

static inline bool rouse__list_empty(const struct rouse_link *head)
{
	return head->next == head;
}

/* Make the element link l "in no list", as all zeroes is. */
static inline void rouse__link_init(struct rouse_link *l)
{
	l->next = NULL;
	l->prev = NULL;
}

/* Whether the element link l is in a list (a head always is). */
static inline bool rouse__link_linked(const struct rouse_link *l)
{
	return l->next != NULL;
}

/* Put l between prev and next, which are adjacent. */
static inline void rouse__list_insert(struct rouse_link *l,
				      struct rouse_link *prev,
				      struct rouse_link *next)
{
	l->prev = prev;
	l->next = next;
	prev->next = l;
	next->prev = l;
}

/* Append l: it becomes the last element. */
static inline void rouse__list_push_back(struct rouse_link *head,
					 struct rouse_link *l)
{
	rouse__list_insert(l, head->prev, head);
}

/* Prepend l: it becomes the first element. */
static inline void rouse__list_push_front(struct rouse_link *head,
					  struct rouse_link *l)
{
	rouse__list_insert(l, head, head->next);
}

/* Unlink l from whatever list it is in; it is then in none. */
static inline void rouse__list_remove(struct rouse_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->next = NULL;
	l->prev = NULL;
}

/* The first element's link, or NULL when the list is empty. */
static inline struct rouse_link *
rouse__list_first(const struct rouse_link *head)
{
	return head->next == head ? NULL : head->next;
}

/* Unlink the first element and return its link; NULL when empty. */
static inline struct rouse_link *rouse__list_pop_front(struct rouse_link *head)
{
	struct rouse_link *l = rouse__list_first(head);

	if (l != NULL)
		rouse__list_remove(l);
	return l;
}

/*
 * Move every element of from to the end of to, in order; from is left
 * empty.  O(1): for taking a whole queue out under a lock.
 */
static inline void rouse__list_splice_back(struct rouse_link *to,
					   struct rouse_link *from)
{
	if (rouse__list_empty(from))
		return;
	from->next->prev = to->prev;
	to->prev->next = from->next;
	from->prev->next = to;
	to->prev = from->prev;
	rouse__list_init(from);
}

/*
 * Walk the list: l takes each element's link in turn, first to last.  The
 * body must not unlink l (it may unlink l and leave the loop at once).
 */
#define rouse__list_for_each(l, head) \
	for ((l) = (head)->next; (l) != (head); (l) = (l)->next)

/* ---- the FIFO ------------------------------------------------------ */

struct rouse__slink {
	struct rouse__slink *next;
};

struct rouse__fifo {
	struct rouse__slink *head;	/* popped next; NULL when empty */
	struct rouse__slink *tail;	/* pushed last; stale when empty */
};

#define ROUSE__FIFO_INIT { NULL, NULL }

static inline void rouse__fifo_init(struct rouse__fifo *q)
{
	q->head = NULL;
	q->tail = NULL;
}

static inline bool rouse__fifo_empty(const struct rouse__fifo *q)
{
	return q->head == NULL;
}

static inline void rouse__fifo_push(struct rouse__fifo *q,
				    struct rouse__slink *l)
{
	l->next = NULL;
	if (q->head == NULL)
		q->head = l;
	else
		q->tail->next = l;
	q->tail = l;
}

/* Unlink the oldest element and return its link; NULL when empty. */
static inline struct rouse__slink *rouse__fifo_pop(struct rouse__fifo *q)
{
	struct rouse__slink *l = q->head;

	if (l != NULL)
		q->head = l->next;
	return l;
}

/* Walk the FIFO, oldest first; the body must not pop or push. */
#define rouse__fifo_for_each(l, q) \
	for ((l) = (q)->head; (l) != NULL; (l) = (l)->next)

#endif /* ROUSE_LIB_LIST_H */
