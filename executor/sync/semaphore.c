// SPDX-License-Identifier: MIT
/*
 * executor/sync/semaphore.c - counted permits, handed out in FIFO order.
 * It calls sync-internal.h (the waiter queue, the wake batch), lib/ and
 * pthreads.
 *
 * A waiter's aux counts the permits it still lacks.  Released permits go
 * to the oldest waiter first, even when they cover only part of what it
 * asked for, so a large request collects permits as they come and is not
 * starved by a stream of small ones; nobody takes free permits while a
 * waiter is queued.  A waiter dropped while queued (holding part of its
 * request) or granted (holding all of it) gives its permits back through
 * the same path, so they reach the next waiters.
 */
#include <limits.h>
#include <stdlib.h>

#include "sync-internal.h"

struct rouse_semaphore {
	pthread_mutex_t lock;
	size_t available;
	struct rouse_link waiters;
	/* Futures queued or granted and not yet done: free waits for 0. */
	unsigned long pending;
};

/* The most permits a semaphore holds, so that a count fits a long. */
#define SEM_MAX ((size_t)LONG_MAX)

ROUSE__PUBLIC int rouse_semaphore_new(size_t permits,
				      struct rouse_semaphore **out)
{
	struct rouse_semaphore *s;

	if (out == NULL || permits > SEM_MAX)
		return -EINVAL;
	s = rouse__malloc(sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->available = permits;
	rouse__list_init(&s->waiters);
	s->pending = 0;
	*out = s;
	return 0;
}

ROUSE__PUBLIC int rouse_semaphore_free(struct rouse_semaphore *s)
{
	bool busy;

	if (s == NULL)
		return -EINVAL;
	sync_lock(&s->lock);
	busy = s->pending > 0;
	sync_unlock(&s->lock);
	if (busy)
		return -EBUSY;
	pthread_mutex_destroy(&s->lock);
	rouse__free(s);
	return 0;
}

ROUSE__PUBLIC int rouse_semaphore_try_acquire(struct rouse_semaphore *s,
					      size_t n)
{
	int err = -EAGAIN;

	if (s == NULL || n == 0 || n > SEM_MAX)
		return -EINVAL;
	sync_lock(&s->lock);
	if (rouse__list_empty(&s->waiters) && s->available >= n) {
		s->available -= n;
		err = 0;
	}
	sync_unlock(&s->lock);
	return err;
}

/*
 * Hand free permits to the queue, oldest first, with the lock held.
 * Returns true when it stopped because b is full and more may be granted:
 * the caller wakes b without the lock and calls again.
 */
static bool sem_grant_locked(struct rouse_semaphore *s, struct sync_batch *b)
{
	struct rouse_sync_waiter *w;

	while ((w = sync_queue_head(&s->waiters)) != NULL) {
		if (w->aux > s->available) {
			/* The head keeps what there is, towards its request. */
			w->aux -= s->available;
			s->available = 0;
			break;
		}
		if (sync_batch_full(b))
			return true;
		s->available -= w->aux;
		w->aux = 0;
		sync_queue_hand_head(&s->waiters, SYNC_GRANTED, b);
	}
	return false;
}

/*
 * Hand out the free permits with the lock held, waking in batches without
 * it; returns with the lock held and b holding the last wakers to wake.
 */
static void sem_hand_out(struct rouse_semaphore *s, struct sync_batch *b)
{
	while (sem_grant_locked(s, b)) {
		sync_unlock(&s->lock);
		sync_batch_wake(b);
		sync_lock(&s->lock);
	}
}

/* Add n permits, unless the count would pass SEM_MAX; hand them out. */
static int sem_give(struct rouse_semaphore *s, size_t n)
{
	struct sync_batch b;

	sync_batch_init(&b);
	sync_lock(&s->lock);
	/* available passes SEM_MAX only by permits that came back. */
	if (s->available > SEM_MAX || n > SEM_MAX - s->available) {
		sync_unlock(&s->lock);
		return -EOVERFLOW;
	}
	s->available += n;
	/* Counted as pending between batches: a free fails meanwhile. */
	s->pending++;
	sem_hand_out(s, &b);
	s->pending--;
	sync_unlock(&s->lock);
	sync_batch_wake(&b);
	return 0;
}

ROUSE__PUBLIC int rouse_semaphore_release(struct rouse_semaphore *s,
					  size_t n)
{
	if (s == NULL)
		return -EINVAL;
	if (n == 0)
		return 0;
	return sem_give(s, n);
}

ROUSE__PUBLIC long rouse_semaphore_available(struct rouse_semaphore *s)
{
	size_t n;

	if (s == NULL)
		return -EINVAL;
	sync_lock(&s->lock);
	n = s->available;
	sync_unlock(&s->lock);
	return n > SEM_MAX ? LONG_MAX : (long)n;
}

static enum rouse_poll sem_acquire_poll(struct rouse_future *f,
					struct rouse_context *cx)
{
	struct rouse_semaphore_acquire *a = (struct rouse_semaphore_acquire *)f;
	struct rouse_semaphore *s = a->sem;
	struct rouse_waker old = { NULL, NULL };
	enum rouse_poll r = ROUSE_READY;

	sync_lock(&s->lock);
	switch (sync_state(&a->node)) {
	case SYNC_IDLE:
		if (rouse__list_empty(&s->waiters) &&
		    s->available >= a->permits) {
			s->available -= a->permits;
			sync_set_state(&a->node, SYNC_DONE);
			break;
		}
		/* Queue up, keeping what is free towards the request. */
		a->node.aux = a->permits;
		if (rouse__list_empty(&s->waiters)) {
			a->node.aux -= s->available;
			s->available = 0;
		}
		rouse_waker_clone(cx->waker, &a->node.waker);
		sync_queue_push(&s->waiters, &a->node);
		sync_set_state(&a->node, SYNC_WAITING);
		s->pending++;
		r = ROUSE_PENDING;
		break;
	case SYNC_WAITING:
		sync_waiter_set_waker(&a->node, cx, &old);
		r = ROUSE_PENDING;
		break;
	case SYNC_GRANTED:
		sync_set_state(&a->node, SYNC_DONE);
		s->pending--;
		break;
	default:
		break;
	}
	sync_unlock(&s->lock);
	rouse_waker_drop(&old);
	return r;
}

static void sem_acquire_drop(struct rouse_future *f)
{
	struct rouse_semaphore_acquire *a = (struct rouse_semaphore_acquire *)f;
	struct rouse_semaphore *s = a->sem;
	struct sync_batch b;

	if (sync_waiter_settled(&a->node))
		return;
	sync_batch_init(&b);
	sync_lock(&s->lock);
	if (sync_state(&a->node) == SYNC_WAITING)
		sync_queue_unlink(&a->node);
	/* What it holds comes back: all of it if granted (aux is 0 then). */
	s->available += a->permits - a->node.aux;
	/*
	 * Hand out even when nothing came back: a head that leaves may let
	 * the waiters behind it through.  Still pending meanwhile, so that
	 * the semaphore cannot be freed under the batches.  (a is out of
	 * the queue, so no other thread looks at its state meanwhile.)
	 */
	sem_hand_out(s, &b);
	s->pending--;
	sync_drop_finish(&s->lock, &a->node, &b);
}

static const struct rouse_future_vtable sem_acquire_vtable = {
	sem_acquire_poll, sem_acquire_drop,
};

ROUSE__PUBLIC int
rouse_semaphore_acquire_init(struct rouse_semaphore_acquire *f,
			     struct rouse_semaphore *s, size_t n)
{
	if (f == NULL || s == NULL || n == 0 || n > SEM_MAX)
		return -EINVAL;
	f->base.vtable = &sem_acquire_vtable;
	f->sem = s;
	f->permits = n;
	sync_waiter_init(&f->node);
	return 0;
}
