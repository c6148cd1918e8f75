// SPDX-License-Identifier: MIT
/*
 * executor/sync/mutex.c - an async mutex, FIFO fair.  It calls
 * sync-internal.h (the waiter queue, the wake batch), lib/ and pthreads.
 *
 * unlock never lets the mutex go free while someone waits: it hands it to
 * the oldest waiter (GRANTED) and leaves "locked" set, so a try_lock or a
 * newcomer's first poll cannot overtake the queue.  A granted waiter that
 * is dropped before its poll saw the grant unlocks in its turn, which
 * hands the mutex on to the next one.
 */
#include <stdlib.h>

#include "sync-internal.h"

struct rouse_mutex {
	pthread_mutex_t lock;
	bool locked;
	struct rouse_link waiters;
	/* Futures queued or granted and not yet done: free waits for 0. */
	unsigned long pending;
};

ROUSE__PUBLIC int rouse_mutex_new(struct rouse_mutex **out)
{
	struct rouse_mutex *m;

	if (out == NULL)
		return -EINVAL;
	m = rouse__malloc(sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	m->locked = false;
	rouse__list_init(&m->waiters);
	m->pending = 0;
	*out = m;
	return 0;
}

ROUSE__PUBLIC int rouse_mutex_free(struct rouse_mutex *m)
{
	bool busy;

	if (m == NULL)
		return -EINVAL;
	sync_lock(&m->lock);
	busy = m->pending > 0;
	sync_unlock(&m->lock);
	if (busy)
		return -EBUSY;
	pthread_mutex_destroy(&m->lock);
	rouse__free(m);
	return 0;
}

ROUSE__PUBLIC int rouse_mutex_try_lock(struct rouse_mutex *m)
{
	int err = 0;

	if (m == NULL)
		return -EINVAL;
	sync_lock(&m->lock);
	if (m->locked)
		err = -EBUSY;
	else
		m->locked = true;
	sync_unlock(&m->lock);
	return err;
}

/* Release with the lock held: to the oldest waiter, or free. */
static void mutex_release_locked(struct rouse_mutex *m, struct sync_batch *b)
{
	if (sync_queue_hand_head(&m->waiters, SYNC_GRANTED, b) == NULL)
		m->locked = false;
}

ROUSE__PUBLIC int rouse_mutex_unlock(struct rouse_mutex *m)
{
	struct sync_batch b;

	if (m == NULL)
		return -EINVAL;
	sync_batch_init(&b);
	sync_lock(&m->lock);
	if (!m->locked) {
		sync_unlock(&m->lock);
		return -EPERM;
	}
	mutex_release_locked(m, &b);
	sync_unlock(&m->lock);
	sync_batch_wake(&b);
	return 0;
}

static enum rouse_poll mutex_lock_poll(struct rouse_future *f,
				       struct rouse_context *cx)
{
	struct rouse_mutex_lock *l = (struct rouse_mutex_lock *)f;
	struct rouse_mutex *m = l->mutex;
	struct rouse_waker old = { NULL, NULL };
	enum rouse_poll r = ROUSE_READY;

	sync_lock(&m->lock);
	switch (sync_state(&l->node)) {
	case SYNC_IDLE:
		if (!m->locked) {
			m->locked = true;
			sync_set_state(&l->node, SYNC_DONE);
			break;
		}
		rouse_waker_clone(cx->waker, &l->node.waker);
		sync_queue_push(&m->waiters, &l->node);
		sync_set_state(&l->node, SYNC_WAITING);
		m->pending++;
		r = ROUSE_PENDING;
		break;
	case SYNC_WAITING:
		sync_waiter_set_waker(&l->node, cx, &old);
		r = ROUSE_PENDING;
		break;
	case SYNC_GRANTED:
		sync_set_state(&l->node, SYNC_DONE);
		m->pending--;
		break;
	default:
		break;
	}
	sync_unlock(&m->lock);
	rouse_waker_drop(&old);
	return r;
}

static void mutex_lock_drop(struct rouse_future *f)
{
	struct rouse_mutex_lock *l = (struct rouse_mutex_lock *)f;
	struct rouse_mutex *m = l->mutex;
	struct sync_batch b;

	if (sync_waiter_settled(&l->node))
		return;
	sync_batch_init(&b);
	sync_lock(&m->lock);
	if (sync_state(&l->node) == SYNC_WAITING)
		sync_queue_unlink(&l->node);
	else
		mutex_release_locked(m, &b);	/* granted, never seen */
	m->pending--;
	sync_drop_finish(&m->lock, &l->node, &b);
}

static const struct rouse_future_vtable mutex_lock_vtable = {
	mutex_lock_poll, mutex_lock_drop,
};

ROUSE__PUBLIC int rouse_mutex_lock_init(struct rouse_mutex_lock *f,
					struct rouse_mutex *m)
{
	if (f == NULL || m == NULL)
		return -EINVAL;
	f->base.vtable = &mutex_lock_vtable;
	f->mutex = m;
	sync_waiter_init(&f->node);
	return 0;
}
