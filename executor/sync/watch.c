// SPDX-License-Identifier: MIT
/*
 * executor/sync/watch.c - one value, replaced by its sender, and news of
 * each replacement for its receivers.  It calls sync-internal.h (the
 * waiter queue, the wake batch), lib/ and pthreads.
 *
 * The value lives in the object with a version number, which every send
 * moves on by one.  A receiver remembers the version it last saw; its
 * changed future is ready when the channel's version is newer, so sends
 * that come faster than a receiver looks merge into the latest, and no
 * receiver is ever behind by more than "there is something new".
 *
 * A changed future that has to wait queues with the version of that
 * moment in aux.  A send wakes (GRANTED) the waiters at the head of the
 * queue whose version is older than the new one, in batches with the lock
 * dropped between them; a waiter that queues meanwhile has the new version
 * and is not woken by this send, so the loop ends even when woken tasks
 * poll inline and queue again.  A granted waiter only looks again at its
 * next poll: it takes nothing, so dropping it passes nothing on.
 *
 * refs counts the sender end, the receivers, and a hold for each send or
 * close that wakes in batches with the lock dropped, so that the object
 * outlives such a loop; the last to let go frees it.
 */
#include <stdlib.h>
#include <string.h>

#include "sync-internal.h"

struct rouse_watch {
	pthread_mutex_t lock;
	size_t elem_size;
	uint64_t version;	/* of value[]: sends so far */
	bool closed;		/* the sender end is released */
	size_t refs;		/* see above */
	struct rouse_link waiters;
	unsigned char value[];
};

ROUSE__PUBLIC int rouse_watch_new(size_t elem_size, const void *initial,
				  struct rouse_watch **out)
{
	struct rouse_watch *w;

	if (out == NULL || (initial == NULL && elem_size > 0) ||
	    elem_size > SIZE_MAX - sizeof(*w))
		return -EINVAL;
	w = rouse__malloc(sizeof(*w) + elem_size);
	if (w == NULL)
		return -ENOMEM;
	pthread_mutex_init(&w->lock, NULL);
	w->elem_size = elem_size;
	w->version = 0;
	w->closed = false;
	w->refs = 1;
	rouse__list_init(&w->waiters);
	if (elem_size > 0)
		memcpy(w->value, initial, elem_size);
	*out = w;
	return 0;
}

static void watch_destroy(struct rouse_watch *w)
{
	pthread_mutex_destroy(&w->lock);
	rouse__free(w);
}

/*
 * Wake the waiters that saw a version older than the current one (all of
 * them when the channel is closed), in batches without the lock.  The
 * caller holds a reference; returns with the lock held.
 */
static void watch_wake_locked(struct rouse_watch *w, struct sync_batch *b)
{
	struct rouse_sync_waiter *n;

	for (;;) {
		while (!sync_batch_full(b) &&
		       (n = sync_queue_head(&w->waiters)) != NULL &&
		       (w->closed || n->aux < w->version))
			sync_queue_hand_head(&w->waiters, SYNC_GRANTED, b);
		n = sync_queue_head(&w->waiters);
		if (n == NULL || !(w->closed || n->aux < w->version))
			return;
		sync_unlock(&w->lock);
		sync_batch_wake(b);
		sync_lock(&w->lock);
	}
}

/* Release one reference with the lock held; true: the caller frees w. */
static bool watch_unref_locked(struct rouse_watch *w)
{
	return --w->refs == 0;
}

ROUSE__PUBLIC int rouse_watch_send(struct rouse_watch *w, const void *value)
{
	struct sync_batch b;
	bool destroy;

	if (w == NULL || (value == NULL && w->elem_size > 0))
		return -EINVAL;
	sync_batch_init(&b);
	sync_lock(&w->lock);
	if (w->closed) {
		sync_unlock(&w->lock);
		return -EPIPE;
	}
	if (w->elem_size > 0)
		memcpy(w->value, value, w->elem_size);
	w->version++;
	w->refs++;
	watch_wake_locked(w, &b);
	destroy = watch_unref_locked(w);
	sync_unlock(&w->lock);
	sync_batch_wake(&b);
	if (destroy)
		watch_destroy(w);	/* a close came between batches */
	return 0;
}

ROUSE__PUBLIC int rouse_watch_close(struct rouse_watch *w)
{
	struct sync_batch b;
	bool destroy;

	if (w == NULL)
		return -EINVAL;
	sync_batch_init(&b);
	sync_lock(&w->lock);
	if (w->closed) {
		sync_unlock(&w->lock);
		return -EINVAL;
	}
	w->closed = true;
	watch_wake_locked(w, &b);
	destroy = watch_unref_locked(w);
	sync_unlock(&w->lock);
	sync_batch_wake(&b);
	if (destroy)
		watch_destroy(w);
	return 0;
}

ROUSE__PUBLIC int rouse_watch_subscribe(struct rouse_watch *w,
					struct rouse_watch_receiver *rx)
{
	if (w == NULL || rx == NULL)
		return -EINVAL;
	sync_lock(&w->lock);
	rx->chan = w;
	rx->seen = w->version;
	rx->pending = 0;
	w->refs++;
	sync_unlock(&w->lock);
	return 0;
}

ROUSE__PUBLIC int rouse_watch_unsubscribe(struct rouse_watch_receiver *rx)
{
	struct rouse_watch *w;
	bool destroy;

	if (rx == NULL || rx->chan == NULL)
		return -EINVAL;
	w = rx->chan;
	sync_lock(&w->lock);
	if (rx->pending > 0) {
		sync_unlock(&w->lock);
		return -EBUSY;
	}
	rx->chan = NULL;
	destroy = watch_unref_locked(w);
	sync_unlock(&w->lock);
	if (destroy)
		watch_destroy(w);
	return 0;
}

/* Copy the value to out (if not NULL) and make it seen; lock held. */
static void watch_take_locked(struct rouse_watch *w,
			      struct rouse_watch_receiver *rx, void *out)
{
	if (out != NULL && w->elem_size > 0)
		memcpy(out, w->value, w->elem_size);
	rx->seen = w->version;
}

ROUSE__PUBLIC int rouse_watch_read(struct rouse_watch_receiver *rx, void *out)
{
	struct rouse_watch *w;
	int news;

	if (rx == NULL || rx->chan == NULL)
		return -EINVAL;
	w = rx->chan;
	sync_lock(&w->lock);
	news = rx->seen != w->version;
	watch_take_locked(w, rx, out);
	sync_unlock(&w->lock);
	return news;
}

/* 1: news for rx; -EPIPE: none will come; -EAGAIN: wait.  Lock held. */
static int watch_check_locked(const struct rouse_watch *w,
			      const struct rouse_watch_receiver *rx)
{
	if (rx->seen != w->version)
		return 1;
	return w->closed ? -EPIPE : -EAGAIN;
}

ROUSE__PUBLIC int rouse_watch_has_changed(struct rouse_watch_receiver *rx)
{
	struct rouse_watch *w;
	int r;

	if (rx == NULL || rx->chan == NULL)
		return -EINVAL;
	w = rx->chan;
	sync_lock(&w->lock);
	r = watch_check_locked(w, rx);
	sync_unlock(&w->lock);
	return r == -EAGAIN ? 0 : r;
}

static enum rouse_poll watch_changed_poll(struct rouse_future *f,
					  struct rouse_context *cx)
{
	struct rouse_watch_changed *c = (struct rouse_watch_changed *)f;
	struct rouse_watch_receiver *rx = c->rx;
	struct rouse_watch *w = rx->chan;
	struct rouse_waker old = { NULL, NULL };
	int state, r;

	sync_lock(&w->lock);
	state = sync_state(&c->node);
	if (state == SYNC_DONE) {
		sync_unlock(&w->lock);
		return ROUSE_READY;
	}
	r = watch_check_locked(w, rx);
	if (r == -EAGAIN) {
		if (state == SYNC_WAITING) {
			sync_waiter_set_waker(&c->node, cx, &old);
		} else {
			/* New, or woken but another future took the news. */
			c->node.aux = w->version;
			rouse_waker_clone(cx->waker, &c->node.waker);
			sync_queue_push(&w->waiters, &c->node);
			sync_set_state(&c->node, SYNC_WAITING);
			if (state == SYNC_IDLE)
				rx->pending++;
		}
		sync_unlock(&w->lock);
		rouse_waker_drop(&old);
		return ROUSE_PENDING;
	}
	if (r == 1) {
		c->version = w->version;
		watch_take_locked(w, rx, c->out);
		c->result = 0;
	} else {
		c->result = r;
	}
	if (state == SYNC_WAITING) {
		sync_queue_unlink(&c->node);
		old = c->node.waker;
		c->node.waker.vtable = NULL;
	}
	if (state != SYNC_IDLE)
		rx->pending--;
	sync_set_state(&c->node, SYNC_DONE);
	sync_unlock(&w->lock);
	rouse_waker_drop(&old);
	return ROUSE_READY;
}

static void watch_changed_drop(struct rouse_future *f)
{
	struct rouse_watch_changed *c = (struct rouse_watch_changed *)f;
	struct rouse_watch *w = c->rx->chan;

	if (sync_waiter_settled(&c->node))
		return;
	sync_lock(&w->lock);
	/* Granted, it took nothing: there is nothing to pass on. */
	if (sync_state(&c->node) == SYNC_WAITING)
		sync_queue_unlink(&c->node);
	c->rx->pending--;
	sync_drop_finish(&w->lock, &c->node, NULL);
}

static const struct rouse_future_vtable watch_changed_vtable = {
	watch_changed_poll, watch_changed_drop,
};

ROUSE__PUBLIC int rouse_watch_changed_init(struct rouse_watch_changed *f,
					   struct rouse_watch_receiver *rx,
					   void *out)
{
	if (f == NULL || rx == NULL || rx->chan == NULL)
		return -EINVAL;
	f->base.vtable = &watch_changed_vtable;
	f->rx = rx;
	f->out = out;
	sync_waiter_init(&f->node);
	f->result = 0;
	f->version = 0;
	return 0;
}
