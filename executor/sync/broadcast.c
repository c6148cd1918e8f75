// SPDX-License-Identifier: MIT
/*
 * executor/sync/broadcast.c - a channel of fixed-size values from any
 * number of senders to every one of its receivers.  It calls
 * sync-internal.h (the waiter queue, the wake batch), lib/ and pthreads.
 *
 * The values sit in a ring of capacity slots.  Each value has a position,
 * the number of values sent before it; the channel keeps the position of
 * the next one (tail), and the ring holds the last capacity values, those
 * from tail - capacity on.  A send never waits: it writes slot tail %
 * capacity, over the oldest value, whoever has or has not read it.  A
 * receiver is only a position, next; it reads slot next % capacity while
 * next is still in the window, and one that fell out of it learns how
 * many values it missed and moves to the oldest one kept (-EOVERFLOW).
 * So no per-slot count of readers is needed: values are copied out, and
 * a slot is never "released", only overwritten.
 *
 * A receive that finds nothing queues with the tail of that moment in
 * aux.  A send wakes (GRANTED) the queued receives whose aux is older
 * than the new tail, oldest first, in batches with the lock dropped in
 * between; a receive that queues meanwhile has the new tail in aux and is
 * not woken again by this send, so the loop ends even when a woken task
 * polls inline and queues again.  A granted receive only looks at its
 * next poll, and only a poll that answers ready copies a value out and
 * moves its receiver on, so dropping a receive loses nothing.
 *
 * refs counts the sender references, the receivers, and a hold for each
 * call that wakes in batches with the lock dropped, so that the object
 * outlives such a loop; the last to let go frees it.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "sync-internal.h"

struct rouse_broadcast {
	pthread_mutex_t lock;
	size_t elem_size;
	size_t capacity;
	unsigned char *buf;	/* capacity slots of elem_size bytes */
	uint64_t tail;		/* position of the next value sent */
	size_t senders;		/* sender references */
	size_t receivers;	/* subscribed */
	size_t refs;		/* see above */
	struct rouse_link waiters;
};

ROUSE__PUBLIC int rouse_broadcast_new(size_t elem_size, size_t capacity,
				      struct rouse_broadcast **out)
{
	struct rouse_broadcast *b;

	if (out == NULL || capacity == 0)
		return -EINVAL;
	if (elem_size > 0 && capacity > SIZE_MAX / elem_size)
		return -EINVAL;
	b = rouse__malloc(sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	b->buf = NULL;
	if (elem_size > 0) {
		b->buf = rouse__malloc(capacity * elem_size);
		if (b->buf == NULL) {
			rouse__free(b);
			return -ENOMEM;
		}
	}
	pthread_mutex_init(&b->lock, NULL);
	b->elem_size = elem_size;
	b->capacity = capacity;
	b->tail = 0;
	b->senders = 1;
	b->receivers = 0;
	b->refs = 1;
	rouse__list_init(&b->waiters);
	*out = b;
	return 0;
}

static void broadcast_destroy(struct rouse_broadcast *b)
{
	pthread_mutex_destroy(&b->lock);
	rouse__free(b->buf);
	rouse__free(b);
}

/* Release one reference with the lock held; true: the caller frees b. */
static bool broadcast_unref_locked(struct rouse_broadcast *b)
{
	return --b->refs == 0;
}

/*
 * Wake the receives queued before the latest send (all of them once the
 * senders are gone), in batches without the lock.  The caller holds a
 * reference; returns with the lock held.
 */
static void broadcast_wake_locked(struct rouse_broadcast *b,
				  struct sync_batch *batch)
{
	struct rouse_sync_waiter *w;

	for (;;) {
		while (!sync_batch_full(batch) &&
		       (w = sync_queue_head(&b->waiters)) != NULL &&
		       (b->senders == 0 || w->aux < b->tail))
			sync_queue_hand_head(&b->waiters, SYNC_GRANTED, batch);
		w = sync_queue_head(&b->waiters);
		if (w == NULL || !(b->senders == 0 || w->aux < b->tail))
			return;
		sync_unlock(&b->lock);
		sync_batch_wake(batch);
		sync_lock(&b->lock);
	}
}

ROUSE__PUBLIC int rouse_broadcast_sender_clone(struct rouse_broadcast *b)
{
	int err = 0;

	if (b == NULL)
		return -EINVAL;
	sync_lock(&b->lock);
	if (b->senders == 0) {
		err = -EPIPE;	/* the stream ended: it stays ended */
	} else {
		b->senders++;
		b->refs++;
	}
	sync_unlock(&b->lock);
	return err;
}

ROUSE__PUBLIC int rouse_broadcast_sender_release(struct rouse_broadcast *b)
{
	struct sync_batch batch;
	bool destroy;

	if (b == NULL)
		return -EINVAL;
	sync_batch_init(&batch);
	sync_lock(&b->lock);
	if (b->senders == 0) {
		sync_unlock(&b->lock);
		return -EINVAL;
	}
	if (--b->senders == 0)
		broadcast_wake_locked(b, &batch);
	destroy = broadcast_unref_locked(b);
	sync_unlock(&b->lock);
	sync_batch_wake(&batch);
	if (destroy)
		broadcast_destroy(b);
	return 0;
}

ROUSE__PUBLIC int rouse_broadcast_send(struct rouse_broadcast *b,
				       const void *value)
{
	struct sync_batch batch;
	size_t receivers;
	bool destroy;

	if (b == NULL || (value == NULL && b->elem_size > 0))
		return -EINVAL;
	sync_batch_init(&batch);
	sync_lock(&b->lock);
	if (b->senders == 0) {
		sync_unlock(&b->lock);
		return -EPIPE;
	}
	if (b->elem_size > 0)
		memcpy(b->buf + (b->tail % b->capacity) * b->elem_size, value,
		       b->elem_size);
	b->tail++;
	receivers = b->receivers;
	b->refs++;
	broadcast_wake_locked(b, &batch);
	destroy = broadcast_unref_locked(b);
	sync_unlock(&b->lock);
	sync_batch_wake(&batch);
	if (destroy)
		broadcast_destroy(b);	/* released between batches */
	return receivers > INT_MAX ? INT_MAX : (int)receivers;
}

ROUSE__PUBLIC int rouse_broadcast_subscribe(struct rouse_broadcast *b,
					    struct rouse_broadcast_receiver *rx)
{
	if (b == NULL || rx == NULL)
		return -EINVAL;
	sync_lock(&b->lock);
	rx->chan = b;
	rx->next = b->tail;
	rx->pending = 0;
	b->receivers++;
	b->refs++;
	sync_unlock(&b->lock);
	return 0;
}

ROUSE__PUBLIC int
rouse_broadcast_unsubscribe(struct rouse_broadcast_receiver *rx)
{
	struct rouse_broadcast *b;
	bool destroy;

	if (rx == NULL || rx->chan == NULL)
		return -EINVAL;
	b = rx->chan;
	sync_lock(&b->lock);
	if (rx->pending > 0) {
		sync_unlock(&b->lock);
		return -EBUSY;
	}
	rx->chan = NULL;
	b->receivers--;
	destroy = broadcast_unref_locked(b);
	sync_unlock(&b->lock);
	if (destroy)
		broadcast_destroy(b);
	return 0;
}

/*
 * The next value for rx, with the lock held: 0 (copied to out), or
 * -EOVERFLOW (rx moved to the oldest value kept, *missed set), -EPIPE
 * or -EAGAIN.
 */
static int broadcast_take_locked(struct rouse_broadcast *b,
				 struct rouse_broadcast_receiver *rx,
				 void *out, uint64_t *missed)
{
	uint64_t oldest = 0;

	if (b->tail > b->capacity)
		oldest = b->tail - b->capacity;
	if (rx->next < oldest) {
		*missed = oldest - rx->next;
		rx->next = oldest;
		return -EOVERFLOW;
	}
	if (rx->next < b->tail) {
		if (b->elem_size > 0)
			memcpy(out, b->buf + (rx->next % b->capacity) *
			       b->elem_size, b->elem_size);
		rx->next++;
		return 0;
	}
	return b->senders == 0 ? -EPIPE : -EAGAIN;
}

ROUSE__PUBLIC int rouse_broadcast_try_recv(struct rouse_broadcast_receiver *rx,
					   void *out, uint64_t *missed)
{
	struct rouse_broadcast *b;
	uint64_t lost = 0;
	int err;

	if (rx == NULL || rx->chan == NULL)
		return -EINVAL;
	b = rx->chan;
	if (out == NULL && b->elem_size > 0)
		return -EINVAL;
	sync_lock(&b->lock);
	err = broadcast_take_locked(b, rx, out, &lost);
	sync_unlock(&b->lock);
	if (missed != NULL)
		*missed = lost;
	return err;
}

static enum rouse_poll broadcast_recv_poll(struct rouse_future *f,
					   struct rouse_context *cx)
{
	struct rouse_broadcast_recv *r = (struct rouse_broadcast_recv *)f;
	struct rouse_broadcast_receiver *rx = r->rx;
	struct rouse_broadcast *b = rx->chan;
	struct rouse_waker old = { NULL, NULL };
	int state, err;

	sync_lock(&b->lock);
	state = sync_state(&r->node);
	if (state == SYNC_DONE) {
		sync_unlock(&b->lock);
		return ROUSE_READY;
	}
	err = broadcast_take_locked(b, rx, r->out, &r->missed);
	if (err == -EAGAIN) {
		if (state == SYNC_WAITING) {
			sync_waiter_set_waker(&r->node, cx, &old);
		} else {
			/* New, or woken but another future took the value. */
			r->node.aux = b->tail;
			rouse_waker_clone(cx->waker, &r->node.waker);
			sync_queue_push(&b->waiters, &r->node);
			sync_set_state(&r->node, SYNC_WAITING);
			if (state == SYNC_IDLE)
				rx->pending++;
		}
		sync_unlock(&b->lock);
		rouse_waker_drop(&old);
		return ROUSE_PENDING;
	}
	r->result = err;
	if (state == SYNC_WAITING) {
		sync_queue_unlink(&r->node);
		old = r->node.waker;
		r->node.waker.vtable = NULL;
	}
	if (state != SYNC_IDLE)
		rx->pending--;
	sync_set_state(&r->node, SYNC_DONE);
	sync_unlock(&b->lock);
	rouse_waker_drop(&old);
	return ROUSE_READY;
}

static void broadcast_recv_drop(struct rouse_future *f)
{
	struct rouse_broadcast_recv *r = (struct rouse_broadcast_recv *)f;
	struct rouse_broadcast *b = r->rx->chan;

	if (sync_waiter_settled(&r->node))
		return;
	sync_lock(&b->lock);
	/* Granted, it took nothing: the value stays for the receiver. */
	if (sync_state(&r->node) == SYNC_WAITING)
		sync_queue_unlink(&r->node);
	r->rx->pending--;
	sync_drop_finish(&b->lock, &r->node, NULL);
}

static const struct rouse_future_vtable broadcast_recv_vtable = {
	broadcast_recv_poll, broadcast_recv_drop,
};

ROUSE__PUBLIC int
rouse_broadcast_recv_init(struct rouse_broadcast_recv *f,
			  struct rouse_broadcast_receiver *rx, void *out)
{
	if (f == NULL || rx == NULL || rx->chan == NULL ||
	    (out == NULL && rx->chan->elem_size > 0))
		return -EINVAL;
	f->base.vtable = &broadcast_recv_vtable;
	f->rx = rx;
	f->out = out;
	sync_waiter_init(&f->node);
	f->result = 0;
	f->missed = 0;
	return 0;
}
