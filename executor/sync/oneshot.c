// SPDX-License-Identifier: MIT
/*
 * executor/sync/oneshot.c - a channel for one value.  It calls
 * sync-internal.h (the waiter queue, the wake batch), lib/ and pthreads.
 *
 * One allocation holds the state and room for the value.  It has two
 * ends, the sender (released by send or close) and the receiver (released
 * by free); whichever goes last frees it.  refs counts the ends; a send
 * gives up its end only after it has woken the receives, in batches with
 * the lock dropped between them, so the object outlives that loop.
 *
 * The value stays in the object until a receive copies it out, so a
 * receive that is dropped while pending loses nothing.  Several receives
 * may wait at once (they are futures on the one receiver end); the first
 * to be polled after the send takes the value, the others then report
 * -EPIPE.
 */
#include <stdlib.h>
#include <string.h>

#include "sync-internal.h"

struct rouse_oneshot {
	pthread_mutex_t lock;
	size_t elem_size;
	bool full;		/* a value is in value[], not taken yet */
	bool sender_gone;	/* sent or closed: nothing more will come */
	bool receiver_gone;	/* free was called: sends fail */
	unsigned int refs;	/* see above */
	struct rouse_link waiters;
	unsigned long pending;	/* queued or granted receives */
	unsigned char value[];
};

ROUSE__PUBLIC int rouse_oneshot_new(size_t elem_size,
				    struct rouse_oneshot **out)
{
	struct rouse_oneshot *o;

	if (out == NULL || elem_size > SIZE_MAX - sizeof(*o))
		return -EINVAL;
	o = rouse__malloc(sizeof(*o) + elem_size);
	if (o == NULL)
		return -ENOMEM;
	pthread_mutex_init(&o->lock, NULL);
	o->elem_size = elem_size;
	o->full = false;
	o->sender_gone = false;
	o->receiver_gone = false;
	o->refs = 2;
	rouse__list_init(&o->waiters);
	o->pending = 0;
	*out = o;
	return 0;
}

static void oneshot_destroy(struct rouse_oneshot *o)
{
	pthread_mutex_destroy(&o->lock);
	rouse__free(o);
}

/*
 * The sender's last act: a send stores value (elem_size bytes), a close
 * stores nothing; then wake every waiting receive and release the sender
 * end.
 */
static int oneshot_finish(struct rouse_oneshot *o, bool send,
			  const void *value)
{
	struct sync_batch b;
	bool more, destroy;
	int err = 0;

	sync_batch_init(&b);
	sync_lock(&o->lock);
	if (o->sender_gone) {
		/* A second send or close, caught while the receiver lives. */
		sync_unlock(&o->lock);
		return -EINVAL;
	}
	if (o->receiver_gone) {
		err = send ? -EPIPE : 0;
	} else if (send) {
		if (o->elem_size > 0)
			memcpy(o->value, value, o->elem_size);
		o->full = true;
	}
	o->sender_gone = true;
	do {
		while (!sync_batch_full(&b) &&
		       sync_queue_hand_head(&o->waiters, SYNC_GRANTED, &b))
			;
		more = !rouse__list_empty(&o->waiters);
		if (more) {
			sync_unlock(&o->lock);
			sync_batch_wake(&b);
			sync_lock(&o->lock);
		}
	} while (more);
	destroy = --o->refs == 0;
	sync_unlock(&o->lock);
	sync_batch_wake(&b);
	if (destroy)
		oneshot_destroy(o);
	return err;
}

ROUSE__PUBLIC int rouse_oneshot_send(struct rouse_oneshot *o,
				     const void *value)
{
	if (o == NULL || (value == NULL && o->elem_size > 0))
		return -EINVAL;
	return oneshot_finish(o, true, value);
}

ROUSE__PUBLIC int rouse_oneshot_close(struct rouse_oneshot *o)
{
	if (o == NULL)
		return -EINVAL;
	return oneshot_finish(o, false, NULL);
}

/* Take the value, or learn that none will come; with the lock held. */
static int oneshot_take_locked(struct rouse_oneshot *o, void *out)
{
	if (o->full) {
		if (o->elem_size > 0)
			memcpy(out, o->value, o->elem_size);
		o->full = false;
		return 0;
	}
	return o->sender_gone ? -EPIPE : -EAGAIN;
}

ROUSE__PUBLIC int rouse_oneshot_try_recv(struct rouse_oneshot *o, void *out)
{
	int err;

	if (o == NULL || (out == NULL && o->elem_size > 0))
		return -EINVAL;
	sync_lock(&o->lock);
	err = oneshot_take_locked(o, out);
	sync_unlock(&o->lock);
	return err;
}

ROUSE__PUBLIC int rouse_oneshot_free(struct rouse_oneshot *o)
{
	bool destroy;

	if (o == NULL)
		return -EINVAL;
	sync_lock(&o->lock);
	if (o->pending > 0) {
		sync_unlock(&o->lock);
		return -EBUSY;
	}
	o->receiver_gone = true;
	o->full = false;
	destroy = --o->refs == 0;
	sync_unlock(&o->lock);
	if (destroy)
		oneshot_destroy(o);
	return 0;
}

static enum rouse_poll oneshot_recv_poll(struct rouse_future *f,
					 struct rouse_context *cx)
{
	struct rouse_oneshot_recv *r = (struct rouse_oneshot_recv *)f;
	struct rouse_oneshot *o = r->oneshot;
	struct rouse_waker old = { NULL, NULL };
	int state, err;

	sync_lock(&o->lock);
	state = sync_state(&r->node);
	if (state == SYNC_DONE) {
		sync_unlock(&o->lock);
		return ROUSE_READY;
	}
	err = oneshot_take_locked(o, r->out);
	if (err == -EAGAIN) {
		if (state == SYNC_IDLE) {
			rouse_waker_clone(cx->waker, &r->node.waker);
			sync_queue_push(&o->waiters, &r->node);
			sync_set_state(&r->node, SYNC_WAITING);
			o->pending++;
		} else {
			/* Only WAITING: a grant comes with the end. */
			sync_waiter_set_waker(&r->node, cx, &old);
		}
		sync_unlock(&o->lock);
		rouse_waker_drop(&old);
		return ROUSE_PENDING;
	}
	if (state == SYNC_WAITING) {
		sync_queue_unlink(&r->node);
		old = r->node.waker;
		r->node.waker.vtable = NULL;
	}
	if (state != SYNC_IDLE)
		o->pending--;
	r->result = err;
	sync_set_state(&r->node, SYNC_DONE);
	sync_unlock(&o->lock);
	rouse_waker_drop(&old);
	return ROUSE_READY;
}

static void oneshot_recv_drop(struct rouse_future *f)
{
	struct rouse_oneshot_recv *r = (struct rouse_oneshot_recv *)f;
	struct rouse_oneshot *o = r->oneshot;

	if (sync_waiter_settled(&r->node))
		return;
	sync_lock(&o->lock);
	/* A granted receive took nothing: the value stays for another. */
	if (sync_state(&r->node) == SYNC_WAITING)
		sync_queue_unlink(&r->node);
	o->pending--;
	sync_drop_finish(&o->lock, &r->node, NULL);
}

static const struct rouse_future_vtable oneshot_recv_vtable = {
	oneshot_recv_poll, oneshot_recv_drop,
};

ROUSE__PUBLIC int rouse_oneshot_recv_init(struct rouse_oneshot_recv *f,
					  struct rouse_oneshot *o, void *out)
{
	if (f == NULL || o == NULL || (out == NULL && o->elem_size > 0))
		return -EINVAL;
	f->base.vtable = &oneshot_recv_vtable;
	f->oneshot = o;
	f->out = out;
	sync_waiter_init(&f->node);
	f->result = 0;
	return 0;
}
