// SPDX-License-Identifier: MIT
/*
 * executor/sync/rwlock.c - a read-write lock for tasks: many readers or
 * one writer, granted in FIFO order.  It calls sync-internal.h (the
 * waiter queue, the wake batch), lib/ and pthreads.
 *
 * Readers and writers wait in one queue, a waiter's aux saying which it
 * is.  Nobody takes the lock past a queued waiter: a reader that finds a
 * writer queued queues behind it even while other readers hold the lock,
 * so a stream of readers cannot starve a writer.  When the lock is
 * released, the queue is granted from its head: a writer if nothing is
 * held, or the run of readers at the head (up to the next writer) while
 * no writer holds it.  Granted waiters hold the lock on their behalf
 * (GRANTED), as the mutex does.
 *
 * A queued waiter that is dropped leaves the queue and the head is
 * granted again, since the waiter that left may have been the one that
 * held the others back (a writer at the head, behind readers that hold
 * the lock, keeps the readers behind it waiting; when it goes, they are
 * let through).  A granted waiter dropped before its poll saw the grant
 * releases what it was granted, the same way.
 */
#include <stdlib.h>

#include "sync-internal.h"

struct rouse_rwlock {
	pthread_mutex_t lock;
	size_t readers;		/* holding it for reading, granted included */
	bool writer;		/* held for writing, granted included */
	struct rouse_link waiters;
	/* Futures queued or granted and not yet done: free waits for 0. */
	unsigned long pending;
};

/* aux of a queued waiter. */
#define RW_READ 1
#define RW_WRITE 2

ROUSE__PUBLIC int rouse_rwlock_new(struct rouse_rwlock **out)
{
	struct rouse_rwlock *l;

	if (out == NULL)
		return -EINVAL;
	l = rouse__malloc(sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	pthread_mutex_init(&l->lock, NULL);
	l->readers = 0;
	l->writer = false;
	rouse__list_init(&l->waiters);
	l->pending = 0;
	*out = l;
	return 0;
}

ROUSE__PUBLIC int rouse_rwlock_free(struct rouse_rwlock *l)
{
	bool busy;

	if (l == NULL)
		return -EINVAL;
	sync_lock(&l->lock);
	busy = l->pending > 0;
	sync_unlock(&l->lock);
	if (busy)
		return -EBUSY;
	pthread_mutex_destroy(&l->lock);
	rouse__free(l);
	return 0;
}

/* Whether a newcomer may take it for reading now; with the lock held. */
static bool rw_read_free(const struct rouse_rwlock *l)
{
	return !l->writer && rouse__list_empty(&l->waiters);
}

/* And for writing. */
static bool rw_write_free(const struct rouse_rwlock *l)
{
	return !l->writer && l->readers == 0 &&
	       rouse__list_empty(&l->waiters);
}

/*
 * Grant the lock to the head of the queue, with the lock held: a writer
 * when nothing is held, or readers up to the first writer while no
 * writer holds it.  Returns true when it stopped because b is full and
 * more may be granted: the caller wakes b without the lock and calls
 * again.
 */
static bool rw_grant_locked(struct rouse_rwlock *l, struct sync_batch *b)
{
	struct rouse_sync_waiter *w;

	while ((w = sync_queue_head(&l->waiters)) != NULL && !l->writer) {
		if (w->aux == RW_WRITE && l->readers > 0)
			break;
		if (sync_batch_full(b))
			return true;
		if (w->aux == RW_WRITE)
			l->writer = true;
		else
			l->readers++;
		sync_queue_hand_head(&l->waiters, SYNC_GRANTED, b);
	}
	return false;
}

/*
 * Grant what can be granted, waking in batches without the lock; returns
 * with the lock held and b holding the last wakers to wake.  The caller
 * counts itself in pending meanwhile, so that a free fails.
 */
static void rw_hand_out(struct rouse_rwlock *l, struct sync_batch *b)
{
	while (rw_grant_locked(l, b)) {
		sync_unlock(&l->lock);
		sync_batch_wake(b);
		sync_lock(&l->lock);
	}
}

ROUSE__PUBLIC int rouse_rwlock_try_read(struct rouse_rwlock *l)
{
	int err = -EBUSY;

	if (l == NULL)
		return -EINVAL;
	sync_lock(&l->lock);
	if (rw_read_free(l)) {
		l->readers++;
		err = 0;
	}
	sync_unlock(&l->lock);
	return err;
}

ROUSE__PUBLIC int rouse_rwlock_try_write(struct rouse_rwlock *l)
{
	int err = -EBUSY;

	if (l == NULL)
		return -EINVAL;
	sync_lock(&l->lock);
	if (rw_write_free(l)) {
		l->writer = true;
		err = 0;
	}
	sync_unlock(&l->lock);
	return err;
}

/* Release a read (write false) or the write hold; hand the lock on. */
static int rw_release(struct rouse_rwlock *l, bool write)
{
	struct sync_batch b;

	sync_batch_init(&b);
	sync_lock(&l->lock);
	if (write ? !l->writer : l->readers == 0) {
		sync_unlock(&l->lock);
		return -EPERM;
	}
	if (write)
		l->writer = false;
	else
		l->readers--;
	l->pending++;
	rw_hand_out(l, &b);
	l->pending--;
	sync_unlock(&l->lock);
	sync_batch_wake(&b);
	return 0;
}

ROUSE__PUBLIC int rouse_rwlock_read_unlock(struct rouse_rwlock *l)
{
	if (l == NULL)
		return -EINVAL;
	return rw_release(l, false);
}

ROUSE__PUBLIC int rouse_rwlock_write_unlock(struct rouse_rwlock *l)
{
	if (l == NULL)
		return -EINVAL;
	return rw_release(l, true);
}

/* The poll of both futures; kind is RW_READ or RW_WRITE. */
static enum rouse_poll rw_poll(struct rouse_rwlock *l,
			       struct rouse_sync_waiter *node, int kind,
			       struct rouse_context *cx)
{
	struct rouse_waker old = { NULL, NULL };
	enum rouse_poll r = ROUSE_READY;

	sync_lock(&l->lock);
	switch (sync_state(node)) {
	case SYNC_IDLE:
		if (kind == RW_READ ? rw_read_free(l) : rw_write_free(l)) {
			if (kind == RW_READ)
				l->readers++;
			else
				l->writer = true;
			sync_set_state(node, SYNC_DONE);
			break;
		}
		node->aux = kind;
		rouse_waker_clone(cx->waker, &node->waker);
		sync_queue_push(&l->waiters, node);
		sync_set_state(node, SYNC_WAITING);
		l->pending++;
		r = ROUSE_PENDING;
		break;
	case SYNC_WAITING:
		sync_waiter_set_waker(node, cx, &old);
		r = ROUSE_PENDING;
		break;
	case SYNC_GRANTED:
		sync_set_state(node, SYNC_DONE);
		l->pending--;
		break;
	default:
		break;
	}
	sync_unlock(&l->lock);
	rouse_waker_drop(&old);
	return r;
}

/* The drop of both futures. */
static void rw_drop(struct rouse_rwlock *l, struct rouse_sync_waiter *node)
{
	struct sync_batch b;

	if (sync_waiter_settled(node))
		return;
	sync_batch_init(&b);
	sync_lock(&l->lock);
	if (sync_state(node) == SYNC_WAITING) {
		sync_queue_unlink(node);
	} else if (node->aux == RW_WRITE) {
		l->writer = false;	/* granted, never seen */
	} else {
		l->readers--;
	}
	/*
	 * Hand out even after a queued waiter left: it may have been the
	 * writer at the head that held the readers behind it back.  Still
	 * pending meanwhile, so that the lock cannot be freed under the
	 * batches; node is out of the queue, so no other thread looks at
	 * its state meanwhile.
	 */
	rw_hand_out(l, &b);
	l->pending--;
	sync_drop_finish(&l->lock, node, &b);
}

static enum rouse_poll rw_read_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct rouse_rwlock_read *r = (struct rouse_rwlock_read *)f;

	return rw_poll(r->lock, &r->node, RW_READ, cx);
}

static void rw_read_drop(struct rouse_future *f)
{
	struct rouse_rwlock_read *r = (struct rouse_rwlock_read *)f;

	rw_drop(r->lock, &r->node);
}

static enum rouse_poll rw_write_poll(struct rouse_future *f,
				     struct rouse_context *cx)
{
	struct rouse_rwlock_write *w = (struct rouse_rwlock_write *)f;

	return rw_poll(w->lock, &w->node, RW_WRITE, cx);
}

static void rw_write_drop(struct rouse_future *f)
{
	struct rouse_rwlock_write *w = (struct rouse_rwlock_write *)f;

	rw_drop(w->lock, &w->node);
}

static const struct rouse_future_vtable rw_read_vtable = {
	rw_read_poll, rw_read_drop,
};

static const struct rouse_future_vtable rw_write_vtable = {
	rw_write_poll, rw_write_drop,
};

ROUSE__PUBLIC int rouse_rwlock_read_init(struct rouse_rwlock_read *f,
					 struct rouse_rwlock *l)
{
	if (f == NULL || l == NULL)
		return -EINVAL;
	f->base.vtable = &rw_read_vtable;
	f->lock = l;
	sync_waiter_init(&f->node);
	return 0;
}

ROUSE__PUBLIC int rouse_rwlock_write_init(struct rouse_rwlock_write *f,
					  struct rouse_rwlock *l)
{
	if (f == NULL || l == NULL)
		return -EINVAL;
	f->base.vtable = &rw_write_vtable;
	f->lock = l;
	sync_waiter_init(&f->node);
	return 0;
}
