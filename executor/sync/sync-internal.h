/* SPDX-License-Identifier: MIT */
/*
 * executor/sync/sync-internal.h - what the primitives of sync.h share: the
 * intrusive waiter queue and the batch of wakers woken after unlocking.
 * It calls lib/ (the list) and the wakers of future.h.
 *
 * Every primitive guards its state and its queues with one pthread mutex.
 * Wakers are never woken, and never dropped, with that mutex held: a wake
 * may poll inline and re-enter the same object on this thread.  So a
 * waiter that is handed something has its waker moved into a wake batch
 * under the lock, and the batch is woken after the unlock; from then on
 * the node's memory is the future's own again, and may be gone.
 */
#ifndef ROUSE_SYNC_INTERNAL_H
#define ROUSE_SYNC_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <rouse/sync.h>

#include "../../lib/internal.h"
#include "../../lib/list.h"

/* The states of a struct rouse_sync_waiter. */
enum {
	SYNC_IDLE = 0,	/* initialised, never queued */
	SYNC_WAITING,	/* queued; holds a waker clone */
	SYNC_GRANTED,	/* dequeued and handed the resource, not yet seen */
	SYNC_DONE,	/* its poll answered ready (or it was closed) */
};

/*
 * A waiter's state is written under its object's lock, but a drop peeks
 * at it without the lock: IDLE and DONE are final as far as other threads
 * go (they only move WAITING to GRANTED or DONE), so a drop that sees
 * either needs no lock, and may even come after the object is freed.
 * Hence atomic accesses; the lock orders everything else.
 */
static inline int sync_state(const struct rouse_sync_waiter *w)
{
	return __atomic_load_n(&w->state, __ATOMIC_ACQUIRE);
}

static inline void sync_set_state(struct rouse_sync_waiter *w, int state)
{
	__atomic_store_n(&w->state, state, __ATOMIC_RELEASE);
}

/* Whether a drop has nothing to do in the object (see above). */
static inline bool sync_waiter_settled(const struct rouse_sync_waiter *w)
{
	int s = sync_state(w);

	return s == SYNC_IDLE || s == SYNC_DONE;
}

/*
 * A queue is a list (lib/list.h) of waiters through their links, oldest
 * first; its head is a struct rouse_link in the object, made empty with
 * rouse__list_init().
 */

/* The oldest waiter, or NULL. */
static inline struct rouse_sync_waiter *sync_queue_head(struct rouse_link *q)
{
	struct rouse_link *l = rouse__list_first(q);

	return l == NULL ? NULL
			 : rouse__list_entry(l, struct rouse_sync_waiter, link);
}

static inline void sync_queue_push(struct rouse_link *q,
				   struct rouse_sync_waiter *w)
{
	rouse__list_push_back(q, &w->link);
}

static inline void sync_queue_unlink(struct rouse_sync_waiter *w)
{
	rouse__list_remove(&w->link);
}

static inline void sync_waiter_init(struct rouse_sync_waiter *w)
{
	rouse__link_init(&w->link);
	w->waker.data = NULL;
	w->waker.vtable = NULL;
	w->aux = 0;
	sync_set_state(w, SYNC_IDLE);
}

/* Wakers to wake once the lock is released. */
#define SYNC_BATCH 16

struct sync_batch {
	unsigned int n;
	struct rouse_waker w[SYNC_BATCH];
};

static inline void sync_batch_init(struct sync_batch *b)
{
	b->n = 0;
}

static inline bool sync_batch_full(const struct sync_batch *b)
{
	return b->n == SYNC_BATCH;
}

/* Move w's waker (if any) into b; b must not be full. */
static inline void sync_batch_take(struct sync_batch *b,
				   struct rouse_sync_waiter *w)
{
	if (w->waker.vtable != NULL)
		b->w[b->n++] = w->waker;
	w->waker.vtable = NULL;
}

/* Wake everything in b; call without the lock. */
static inline void sync_batch_wake(struct sync_batch *b)
{
	unsigned int i;

	for (i = 0; i < b->n; i++)
		rouse_waker_wake(&b->w[i]);
	b->n = 0;
}

/*
 * Unlink the oldest waiter of q, give it state, and move its waker to b.
 * Returns it, or NULL when q is empty.
 */
static inline struct rouse_sync_waiter *
sync_queue_hand_head(struct rouse_link *q, int state, struct sync_batch *b)
{
	struct rouse_sync_waiter *w = sync_queue_head(q);

	if (w == NULL)
		return NULL;
	sync_queue_unlink(w);
	sync_batch_take(b, w);
	/* Last: a drop that sees DONE does not wait for us (see above). */
	sync_set_state(w, state);
	return w;
}

/*
 * Make node's stored waker one for the task of cx, with the lock held.
 * The clone is cheap and cannot re-enter us; a replaced waker is moved to
 * *old, for the caller to drop after the unlock.
 */
static inline void sync_waiter_set_waker(struct rouse_sync_waiter *w,
					 const struct rouse_context *cx,
					 struct rouse_waker *old)
{
	old->vtable = NULL;
	if (rouse_waker_will_wake(&w->waker, cx->waker))
		return;
	*old = w->waker;
	rouse_waker_clone(cx->waker, &w->waker);
}

#define sync_lock(m) pthread_mutex_lock(m)
#define sync_unlock(m) pthread_mutex_unlock(m)

/*
 * The end of every drop that found its future queued or granted, with
 * lock held and w already out of the queue: w becomes DONE, the lock is
 * released, and only then are w's own waker dropped and the wakers that
 * the drop handed something to (b, or NULL) woken.
 */
static inline void sync_drop_finish(pthread_mutex_t *lock,
				    struct rouse_sync_waiter *w,
				    struct sync_batch *b)
{
	sync_set_state(w, SYNC_DONE);
	sync_unlock(lock);
	rouse_waker_drop(&w->waker);
	if (b != NULL)
		sync_batch_wake(b);
}

#endif /* ROUSE_SYNC_INTERNAL_H */
