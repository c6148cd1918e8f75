// SPDX-License-Identifier: MIT
/*
 * executor/sync/notify.c - wake one waiter (or keep one permit), or wake
 * all current waiters.  It calls sync-internal.h (the waiter queue, the
 * wake batch), lib/ and pthreads.
 *
 * notify_one hands its notification to the oldest waiter (GRANTED with
 * aux NOTIFY_ONE); a waiter dropped before seeing it passes it on, to the
 * next waiter or into the permit, so a notify_one is never lost to a
 * cancelled wait.  notify_all bumps the epoch: a wait whose init saw an
 * older epoch is ready at its first poll, as in tokio, and queued waiters
 * are woken in batches.  The queue is in registration order, and a waiter
 * registers with the epoch current at that moment, so the waiters that a
 * notify_all must wake are exactly the ones at the head with an older
 * epoch, even when later waiters join between batches.
 */
#include <stdlib.h>

#include "sync-internal.h"

struct rouse_notify {
	pthread_mutex_t lock;
	bool permit;		/* a notify_one that found no waiter */
	uint64_t epoch;		/* notify_all calls; atomic for wait_init */
	struct rouse_link waiters;
	unsigned long pending;	/* queued or granted futures */
};

/* aux of a GRANTED waiter: which call woke it. */
#define NOTIFY_ONE 1
#define NOTIFY_ALL 2

ROUSE__PUBLIC int rouse_notify_new(struct rouse_notify **out)
{
	struct rouse_notify *n;

	if (out == NULL)
		return -EINVAL;
	n = rouse__malloc(sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	pthread_mutex_init(&n->lock, NULL);
	n->permit = false;
	n->epoch = 0;
	rouse__list_init(&n->waiters);
	n->pending = 0;
	*out = n;
	return 0;
}

ROUSE__PUBLIC int rouse_notify_free(struct rouse_notify *n)
{
	bool busy;

	if (n == NULL)
		return -EINVAL;
	sync_lock(&n->lock);
	busy = n->pending > 0;
	sync_unlock(&n->lock);
	if (busy)
		return -EBUSY;
	pthread_mutex_destroy(&n->lock);
	rouse__free(n);
	return 0;
}

/* notify_one with the lock held. */
static void notify_one_locked(struct rouse_notify *n, struct sync_batch *b)
{
	struct rouse_sync_waiter *w;

	w = sync_queue_hand_head(&n->waiters, SYNC_GRANTED, b);
	if (w != NULL)
		w->aux = NOTIFY_ONE;
	else
		n->permit = true;
}

ROUSE__PUBLIC int rouse_notify_one(struct rouse_notify *n)
{
	struct sync_batch b;

	if (n == NULL)
		return -EINVAL;
	sync_batch_init(&b);
	sync_lock(&n->lock);
	notify_one_locked(n, &b);
	sync_unlock(&n->lock);
	sync_batch_wake(&b);
	return 0;
}

ROUSE__PUBLIC int rouse_notify_all(struct rouse_notify *n)
{
	struct rouse_sync_waiter *w;
	struct sync_batch b;
	uint64_t epoch;
	bool more;

	if (n == NULL)
		return -EINVAL;
	sync_batch_init(&b);
	sync_lock(&n->lock);
	epoch = n->epoch + 1;
	__atomic_store_n(&n->epoch, epoch, __ATOMIC_RELEASE);
	/* Counted as pending between batches: a free fails meanwhile. */
	n->pending++;
	do {
		more = false;
		while ((w = sync_queue_head(&n->waiters)) != NULL &&
		       w->aux < epoch) {
			if (sync_batch_full(&b)) {
				more = true;
				break;
			}
			w->aux = NOTIFY_ALL;
			sync_queue_hand_head(&n->waiters, SYNC_GRANTED, &b);
		}
		if (!more)
			n->pending--;
		sync_unlock(&n->lock);
		sync_batch_wake(&b);
		if (more)
			sync_lock(&n->lock);
	} while (more);
	return 0;
}

static enum rouse_poll notify_wait_poll(struct rouse_future *f,
					struct rouse_context *cx)
{
	struct rouse_notify_wait *nw = (struct rouse_notify_wait *)f;
	struct rouse_notify *n = nw->notify;
	struct rouse_waker old = { NULL, NULL };
	enum rouse_poll r = ROUSE_READY;

	sync_lock(&n->lock);
	switch (sync_state(&nw->node)) {
	case SYNC_IDLE:
		if (n->epoch != nw->node.aux) {
			/* A notify_all came after the init. */
			sync_set_state(&nw->node, SYNC_DONE);
			break;
		}
		if (n->permit) {
			n->permit = false;
			sync_set_state(&nw->node, SYNC_DONE);
			break;
		}
		rouse_waker_clone(cx->waker, &nw->node.waker);
		sync_queue_push(&n->waiters, &nw->node);
		sync_set_state(&nw->node, SYNC_WAITING);
		n->pending++;
		r = ROUSE_PENDING;
		break;
	case SYNC_WAITING:
		sync_waiter_set_waker(&nw->node, cx, &old);
		r = ROUSE_PENDING;
		break;
	case SYNC_GRANTED:
		sync_set_state(&nw->node, SYNC_DONE);
		n->pending--;
		break;
	default:
		break;
	}
	sync_unlock(&n->lock);
	rouse_waker_drop(&old);
	return r;
}

static void notify_wait_drop(struct rouse_future *f)
{
	struct rouse_notify_wait *nw = (struct rouse_notify_wait *)f;
	struct rouse_notify *n = nw->notify;
	struct sync_batch b;

	if (sync_waiter_settled(&nw->node))
		return;
	sync_batch_init(&b);
	sync_lock(&n->lock);
	if (sync_state(&nw->node) == SYNC_WAITING)
		sync_queue_unlink(&nw->node);
	else if (nw->node.aux == NOTIFY_ONE)
		notify_one_locked(n, &b);	/* pass it on */
	n->pending--;
	sync_drop_finish(&n->lock, &nw->node, &b);
}

static const struct rouse_future_vtable notify_wait_vtable = {
	notify_wait_poll, notify_wait_drop,
};

ROUSE__PUBLIC int rouse_notify_wait_init(struct rouse_notify_wait *f,
					 struct rouse_notify *n)
{
	if (f == NULL || n == NULL)
		return -EINVAL;
	f->base.vtable = &notify_wait_vtable;
	f->notify = n;
	sync_waiter_init(&f->node);
	/* The epoch of now: a notify_all from here on wakes this wait. */
	f->node.aux = __atomic_load_n(&n->epoch, __ATOMIC_ACQUIRE);
	return 0;
}
