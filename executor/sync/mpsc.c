// SPDX-License-Identifier: MIT
/*
 * executor/sync/mpsc.c - a channel of fixed-size elements from many
 * senders to one receiver, bounded (back-pressure) or unbounded.  It
 * calls sync-internal.h (the waiter queues, the wake batch), lib/ and
 * pthreads.
 *
 * The elements are copied into a ring buffer, which an unbounded channel
 * grows by doubling.  A bounded send that finds the channel full queues
 * up; a receive that frees a slot reserves it for the oldest queued send
 * (GRANTED, counted in reserved) and wakes it, and the send copies its
 * element in at its next poll.  So a send that is dropped while pending
 * never inserted its element, and a dropped send that had been granted a
 * slot hands the slot on.  Nobody else takes a free slot while sends are
 * queued, so sends complete in the order in which they queued.
 *
 * Receives wait in a queue too: a send wakes the oldest (GRANTED); one
 * that is dropped before it looked passes the wake on if there is
 * something to take.  Elements are only copied out by a poll that answers
 * ready, so dropping a receive loses nothing.
 *
 * refs counts the sender references, the receiver, and a hold for each
 * call that wakes in batches with the lock dropped, so that the object
 * outlives such a loop; the last to let go frees it.
 */
#include <stdlib.h>
#include <string.h>

#include "sync-internal.h"

struct rouse_mpsc {
	pthread_mutex_t lock;
	size_t elem_size;
	size_t capacity;	/* 0: unbounded */
	unsigned char *buf;	/* slots elements, a ring from head */
	size_t slots;
	size_t head;
	size_t len;
	size_t reserved;	/* slots granted to queued sends */
	size_t senders;		/* sender references */
	size_t refs;		/* see above */
	bool closed;		/* by close or free: sends fail */
	bool receiver_gone;
	struct rouse_link send_waiters;
	struct rouse_link recv_waiters;
	unsigned long recv_pending;	/* receives queued or granted */
};

#define MPSC_MIN_SLOTS 8

ROUSE__PUBLIC int rouse_mpsc_new(size_t elem_size, size_t capacity,
				 struct rouse_mpsc **out)
{
	struct rouse_mpsc *m;

	if (out == NULL)
		return -EINVAL;
	if (elem_size > 0 && capacity > SIZE_MAX / 2 / elem_size)
		return -EINVAL;
	m = rouse__malloc(sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	m->buf = NULL;
	m->slots = capacity;
	if (capacity > 0 && elem_size > 0) {
		m->buf = rouse__malloc(capacity * elem_size);
		if (m->buf == NULL) {
			rouse__free(m);
			return -ENOMEM;
		}
	}
	pthread_mutex_init(&m->lock, NULL);
	m->elem_size = elem_size;
	m->capacity = capacity;
	m->head = 0;
	m->len = 0;
	m->reserved = 0;
	m->senders = 1;
	m->refs = 2;
	m->closed = false;
	m->receiver_gone = false;
	rouse__list_init(&m->send_waiters);
	rouse__list_init(&m->recv_waiters);
	m->recv_pending = 0;
	*out = m;
	return 0;
}

/* Drop one reference, with the lock held; true: the caller frees m. */
static bool mpsc_unref_locked(struct rouse_mpsc *m)
{
	return --m->refs == 0;
}

static void mpsc_destroy(struct rouse_mpsc *m)
{
	pthread_mutex_destroy(&m->lock);
	rouse__free(m->buf);
	rouse__free(m);
}

/* Room for one more element in an unbounded ring; 0 or -ENOMEM. */
static int mpsc_grow(struct rouse_mpsc *m)
{
	size_t slots = m->slots > 0 ? m->slots * 2 : MPSC_MIN_SLOTS;
	size_t first, es = m->elem_size;
	unsigned char *buf;

	if (m->len < m->slots)
		return 0;
	if (es == 0) {
		m->slots = slots;
		return 0;
	}
	if (slots > SIZE_MAX / es)
		return -ENOMEM;
	buf = rouse__malloc(slots * es);
	if (buf == NULL)
		return -ENOMEM;
	/* Unwrap the ring: its elements go to the start, in order. */
	first = m->slots - m->head;
	if (first > m->len)
		first = m->len;
	if (m->len > 0) {
		memcpy(buf, m->buf + m->head * es, first * es);
		memcpy(buf + first * es, m->buf, (m->len - first) * es);
	}
	rouse__free(m->buf);
	m->buf = buf;
	m->slots = slots;
	m->head = 0;
	return 0;
}

/*
 * Append *value (there is room, or the ring grows) and wake the oldest
 * queued receive.  0 or -ENOMEM; with the lock held.
 */
static int mpsc_push_locked(struct rouse_mpsc *m, const void *value,
			    struct sync_batch *b)
{
	size_t es = m->elem_size;

	if (m->capacity == 0) {
		int err = mpsc_grow(m);

		if (err < 0)
			return err;
	}
	if (es > 0)
		memcpy(m->buf + ((m->head + m->len) % m->slots) * es, value,
		       es);
	m->len++;
	sync_queue_hand_head(&m->recv_waiters, SYNC_GRANTED, b);
	return 0;
}

/* A bounded slot is free: reserve it for the oldest queued send. */
static void mpsc_grant_send_locked(struct rouse_mpsc *m, struct sync_batch *b)
{
	if (m->capacity == 0 || m->closed ||
	    m->len + m->reserved >= m->capacity)
		return;
	if (sync_queue_hand_head(&m->send_waiters, SYNC_GRANTED, b) != NULL)
		m->reserved++;
}

/* Take the oldest element into out; there is one. */
static void mpsc_pop_locked(struct rouse_mpsc *m, void *out,
			    struct sync_batch *b)
{
	size_t es = m->elem_size;

	if (es > 0)
		memcpy(out, m->buf + m->head * es, es);
	m->head = (m->head + 1) % m->slots;
	m->len--;
	mpsc_grant_send_locked(m, b);
}

/* Whether a receive that finds nothing is done: -EPIPE. */
static bool mpsc_finished_locked(const struct rouse_mpsc *m)
{
	return m->len == 0 && (m->closed || m->senders == 0);
}

/*
 * Wake every queued waiter of q, in batches without the lock.  Sends are
 * told -EPIPE and done; receives are granted a look.  The caller holds a
 * reference, so m stays; returns with the lock held.
 */
static void mpsc_wake_all_locked(struct rouse_mpsc *m,
				 struct rouse_link *q, bool sends,
				 struct sync_batch *b)
{
	struct rouse_sync_waiter *w;

	for (;;) {
		while (!sync_batch_full(b) &&
		       (w = sync_queue_head(q)) != NULL) {
			/* The result before the state: DONE frees the send. */
			if (sends)
				rouse__container_of(w, struct rouse_mpsc_send,
						    node)->result = -EPIPE;
			sync_queue_hand_head(q, sends ? SYNC_DONE :
					     SYNC_GRANTED, b);
		}
		if (rouse__list_empty(q))
			return;
		sync_unlock(&m->lock);
		sync_batch_wake(b);
		sync_lock(&m->lock);
	}
}

ROUSE__PUBLIC int rouse_mpsc_sender_clone(struct rouse_mpsc *m)
{
	int err = 0;

	if (m == NULL)
		return -EINVAL;
	sync_lock(&m->lock);
	if (m->senders == 0) {
		err = -EPIPE;	/* every sender is gone: stays closed */
	} else {
		m->senders++;
		m->refs++;
	}
	sync_unlock(&m->lock);
	return err;
}

ROUSE__PUBLIC int rouse_mpsc_sender_release(struct rouse_mpsc *m)
{
	struct sync_batch b;
	bool destroy;

	if (m == NULL)
		return -EINVAL;
	sync_batch_init(&b);
	sync_lock(&m->lock);
	if (m->senders == 0) {
		sync_unlock(&m->lock);
		return -EINVAL;
	}
	if (--m->senders == 0)
		mpsc_wake_all_locked(m, &m->recv_waiters, false, &b);
	destroy = mpsc_unref_locked(m);
	sync_unlock(&m->lock);
	sync_batch_wake(&b);
	if (destroy)
		mpsc_destroy(m);
	return 0;
}

/* Close with the lock held: fail the queued sends, wake the receives. */
static void mpsc_close_locked(struct rouse_mpsc *m, struct sync_batch *b)
{
	if (m->closed)
		return;
	m->closed = true;
	mpsc_wake_all_locked(m, &m->send_waiters, true, b);
	mpsc_wake_all_locked(m, &m->recv_waiters, false, b);
}

ROUSE__PUBLIC int rouse_mpsc_close(struct rouse_mpsc *m)
{
	struct sync_batch b;

	if (m == NULL)
		return -EINVAL;
	sync_batch_init(&b);
	sync_lock(&m->lock);
	mpsc_close_locked(m, &b);
	sync_unlock(&m->lock);
	sync_batch_wake(&b);
	return 0;
}

ROUSE__PUBLIC int rouse_mpsc_free(struct rouse_mpsc *m)
{
	struct sync_batch b;
	bool destroy;

	if (m == NULL)
		return -EINVAL;
	sync_batch_init(&b);
	sync_lock(&m->lock);
	if (m->receiver_gone || m->recv_pending > 0) {
		sync_unlock(&m->lock);
		return m->receiver_gone ? -EINVAL : -EBUSY;
	}
	m->receiver_gone = true;
	mpsc_close_locked(m, &b);
	m->len = 0;	/* the queued elements are discarded */
	destroy = mpsc_unref_locked(m);
	sync_unlock(&m->lock);
	sync_batch_wake(&b);
	if (destroy)
		mpsc_destroy(m);
	return 0;
}

ROUSE__PUBLIC int rouse_mpsc_try_send(struct rouse_mpsc *m, const void *value)
{
	struct sync_batch b;
	int err;

	if (m == NULL || (value == NULL && m->elem_size > 0))
		return -EINVAL;
	sync_batch_init(&b);
	sync_lock(&m->lock);
	if (m->closed)
		err = -EPIPE;
	else if (m->capacity > 0 &&
		 (!rouse__list_empty(&m->send_waiters) ||
		  m->len + m->reserved >= m->capacity))
		err = -EAGAIN;
	else
		err = mpsc_push_locked(m, value, &b);
	sync_unlock(&m->lock);
	sync_batch_wake(&b);
	return err;
}

ROUSE__PUBLIC int rouse_mpsc_try_recv(struct rouse_mpsc *m, void *out)
{
	struct sync_batch b;
	int err = 0;

	if (m == NULL || (out == NULL && m->elem_size > 0))
		return -EINVAL;
	sync_batch_init(&b);
	sync_lock(&m->lock);
	if (m->len > 0)
		mpsc_pop_locked(m, out, &b);
	else
		err = mpsc_finished_locked(m) ? -EPIPE : -EAGAIN;
	sync_unlock(&m->lock);
	sync_batch_wake(&b);
	return err;
}

/* ---- the send future ------------------------------------------------ */

static enum rouse_poll mpsc_send_poll(struct rouse_future *f,
				      struct rouse_context *cx)
{
	struct rouse_mpsc_send *s = (struct rouse_mpsc_send *)f;
	struct rouse_mpsc *m = s->mpsc;
	struct rouse_waker old = { NULL, NULL };
	struct sync_batch b;
	int state;

	sync_batch_init(&b);
	sync_lock(&m->lock);
	state = sync_state(&s->node);
	switch (state) {
	case SYNC_IDLE:
		if (m->closed) {
			s->result = -EPIPE;
		} else if (m->capacity > 0 &&
			   (!rouse__list_empty(&m->send_waiters) ||
			    m->len + m->reserved >= m->capacity)) {
			rouse_waker_clone(cx->waker, &s->node.waker);
			sync_queue_push(&m->send_waiters, &s->node);
			sync_set_state(&s->node, SYNC_WAITING);
			sync_unlock(&m->lock);
			return ROUSE_PENDING;
		} else {
			s->result = mpsc_push_locked(m, s->value, &b);
		}
		break;
	case SYNC_WAITING:
		sync_waiter_set_waker(&s->node, cx, &old);
		sync_unlock(&m->lock);
		rouse_waker_drop(&old);
		return ROUSE_PENDING;
	case SYNC_GRANTED:
		m->reserved--;
		if (m->closed)
			s->result = -EPIPE;
		else
			s->result = mpsc_push_locked(m, s->value, &b);
		break;
	default:
		sync_unlock(&m->lock);
		return ROUSE_READY;
	}
	sync_set_state(&s->node, SYNC_DONE);
	sync_unlock(&m->lock);
	sync_batch_wake(&b);
	return ROUSE_READY;
}

static void mpsc_send_drop(struct rouse_future *f)
{
	struct rouse_mpsc_send *s = (struct rouse_mpsc_send *)f;
	struct rouse_mpsc *m = s->mpsc;
	struct sync_batch b;

	if (sync_waiter_settled(&s->node))
		return;
	sync_batch_init(&b);
	sync_lock(&m->lock);
	if (sync_state(&s->node) == SYNC_WAITING) {
		sync_queue_unlink(&s->node);
	} else if (sync_state(&s->node) == SYNC_GRANTED) {
		/* Granted a slot it never filled: it goes to the next. */
		m->reserved--;
		mpsc_grant_send_locked(m, &b);
	}
	/*
	 * Otherwise a close failed it (DONE) between the peek above and
	 * the lock: it holds no slot.
	 */
	sync_drop_finish(&m->lock, &s->node, &b);
}

static const struct rouse_future_vtable mpsc_send_vtable = {
	mpsc_send_poll, mpsc_send_drop,
};

ROUSE__PUBLIC int rouse_mpsc_send_init(struct rouse_mpsc_send *f,
				       struct rouse_mpsc *m,
				       const void *value)
{
	if (f == NULL || m == NULL || (value == NULL && m->elem_size > 0))
		return -EINVAL;
	f->base.vtable = &mpsc_send_vtable;
	f->mpsc = m;
	f->value = value;
	sync_waiter_init(&f->node);
	f->result = 0;
	return 0;
}

/* ---- the receive future --------------------------------------------- */

static enum rouse_poll mpsc_recv_poll(struct rouse_future *f,
				      struct rouse_context *cx)
{
	struct rouse_mpsc_recv *r = (struct rouse_mpsc_recv *)f;
	struct rouse_mpsc *m = r->mpsc;
	struct rouse_waker old = { NULL, NULL };
	struct sync_batch b;
	int state;

	sync_batch_init(&b);
	sync_lock(&m->lock);
	state = sync_state(&r->node);
	if (state == SYNC_DONE) {
		sync_unlock(&m->lock);
		return ROUSE_READY;
	}
	if (m->len > 0) {
		mpsc_pop_locked(m, r->out, &b);
		r->result = 0;
	} else if (mpsc_finished_locked(m)) {
		r->result = -EPIPE;
	} else {
		if (state == SYNC_WAITING) {
			sync_waiter_set_waker(&r->node, cx, &old);
		} else {
			/* New, or woken but another took the element. */
			rouse_waker_clone(cx->waker, &r->node.waker);
			sync_queue_push(&m->recv_waiters, &r->node);
			sync_set_state(&r->node, SYNC_WAITING);
			if (state == SYNC_IDLE)
				m->recv_pending++;
		}
		sync_unlock(&m->lock);
		rouse_waker_drop(&old);
		return ROUSE_PENDING;
	}
	if (state == SYNC_WAITING) {
		sync_queue_unlink(&r->node);
		old = r->node.waker;
		r->node.waker.vtable = NULL;
	}
	if (state != SYNC_IDLE)
		m->recv_pending--;
	sync_set_state(&r->node, SYNC_DONE);
	sync_unlock(&m->lock);
	rouse_waker_drop(&old);
	sync_batch_wake(&b);
	return ROUSE_READY;
}

static void mpsc_recv_drop(struct rouse_future *f)
{
	struct rouse_mpsc_recv *r = (struct rouse_mpsc_recv *)f;
	struct rouse_mpsc *m = r->mpsc;
	struct sync_batch b;

	if (sync_waiter_settled(&r->node))
		return;
	sync_batch_init(&b);
	sync_lock(&m->lock);
	if (sync_state(&r->node) == SYNC_WAITING)
		sync_queue_unlink(&r->node);
	else if (m->len > 0 || mpsc_finished_locked(m))
		/* Woken and gone without looking: wake the next instead. */
		sync_queue_hand_head(&m->recv_waiters, SYNC_GRANTED, &b);
	m->recv_pending--;
	sync_drop_finish(&m->lock, &r->node, &b);
}

static const struct rouse_future_vtable mpsc_recv_vtable = {
	mpsc_recv_poll, mpsc_recv_drop,
};

ROUSE__PUBLIC int rouse_mpsc_recv_init(struct rouse_mpsc_recv *f,
				       struct rouse_mpsc *m, void *out)
{
	if (f == NULL || m == NULL || (out == NULL && m->elem_size > 0))
		return -EINVAL;
	f->base.vtable = &mpsc_recv_vtable;
	f->mpsc = m;
	f->out = out;
	sync_waiter_init(&f->node);
	f->result = 0;
	return 0;
}
