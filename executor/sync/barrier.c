// SPDX-License-Identifier: MIT
/*
 * executor/sync/barrier.c - parties tasks meet; the last to arrive lets
 * all of them go on, and is their leader.  It calls sync-internal.h (the
 * waiter queue, the wake batch), lib/ and pthreads.
 *
 * A wait arrives at its first poll.  The first parties - 1 arrivals of a
 * generation queue up, with the generation in aux; the arrival that makes
 * parties is ready at once, as the leader, and starts the next generation
 * before it wakes the others (GRANTED), so the barrier can be used again
 * at once: an arrival from then on counts towards the new generation and
 * queues behind the ones being released.  The release wakes in batches
 * with the lock dropped in between; a released wait still in the queue
 * is told from a new one by its older generation.
 *
 * A queued wait that is dropped before the release takes its arrival
 * back: the barrier then needs another party in its place.  (The other
 * choice, counting it, would let the others go on with a party missing.)
 * One dropped after the release changes nothing: its generation is over.
 */
#include <stdlib.h>

#include "sync-internal.h"

struct rouse_barrier {
	pthread_mutex_t lock;
	size_t parties;
	size_t arrived;		/* queued arrivals of this generation */
	uint64_t generation;
	struct rouse_link waiters;
	/* Futures queued or granted, and releases going on: free waits. */
	unsigned long pending;
};

ROUSE__PUBLIC int rouse_barrier_new(size_t parties, struct rouse_barrier **out)
{
	struct rouse_barrier *b;

	if (out == NULL || parties == 0)
		return -EINVAL;
	b = rouse__malloc(sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	pthread_mutex_init(&b->lock, NULL);
	b->parties = parties;
	b->arrived = 0;
	b->generation = 0;
	rouse__list_init(&b->waiters);
	b->pending = 0;
	*out = b;
	return 0;
}

ROUSE__PUBLIC int rouse_barrier_free(struct rouse_barrier *b)
{
	bool busy;

	if (b == NULL)
		return -EINVAL;
	sync_lock(&b->lock);
	busy = b->pending > 0;
	sync_unlock(&b->lock);
	if (busy)
		return -EBUSY;
	pthread_mutex_destroy(&b->lock);
	rouse__free(b);
	return 0;
}

/*
 * The leader arrived: start the next generation and hand the queued waits
 * of the one that ends to batch, waking full batches without the lock.
 * Called and returns with the lock held, batch holding the last wakers.
 */
static void barrier_release_locked(struct rouse_barrier *b,
				   struct sync_batch *batch)
{
	struct rouse_sync_waiter *w;

	b->generation++;
	b->arrived = 0;
	/*
	 * Every wait queued with an older generation is released: the
	 * queue is in arrival order, so they are the ones at its head.
	 * Older, not just the one that ends: while this loop has the lock
	 * dropped, the next generation may fill up and its leader release
	 * too; whichever loop comes first wakes the waits of both.
	 *
	 * Counted as pending between batches: a free fails meanwhile.
	 */
	b->pending++;
	while ((w = sync_queue_head(&b->waiters)) != NULL &&
	       w->aux < b->generation) {
		if (sync_batch_full(batch)) {
			sync_unlock(&b->lock);
			sync_batch_wake(batch);
			sync_lock(&b->lock);
			continue;
		}
		sync_queue_hand_head(&b->waiters, SYNC_GRANTED, batch);
	}
	b->pending--;
}

static enum rouse_poll barrier_wait_poll(struct rouse_future *f,
					 struct rouse_context *cx)
{
	struct rouse_barrier_wait *bw = (struct rouse_barrier_wait *)f;
	struct rouse_barrier *b = bw->barrier;
	struct rouse_waker old = { NULL, NULL };
	enum rouse_poll r = ROUSE_READY;
	struct sync_batch batch;

	sync_batch_init(&batch);
	sync_lock(&b->lock);
	switch (sync_state(&bw->node)) {
	case SYNC_IDLE:
		if (b->arrived + 1 == b->parties) {
			bw->leader = 1;
			sync_set_state(&bw->node, SYNC_DONE);
			barrier_release_locked(b, &batch);
			break;
		}
		b->arrived++;
		bw->node.aux = b->generation;
		rouse_waker_clone(cx->waker, &bw->node.waker);
		sync_queue_push(&b->waiters, &bw->node);
		sync_set_state(&bw->node, SYNC_WAITING);
		b->pending++;
		r = ROUSE_PENDING;
		break;
	case SYNC_WAITING:
		if (bw->node.aux == b->generation) {
			sync_waiter_set_waker(&bw->node, cx, &old);
			r = ROUSE_PENDING;
			break;
		}
		/* Released, and polled before its batch came: done. */
		sync_queue_unlink(&bw->node);
		old = bw->node.waker;
		bw->node.waker.vtable = NULL;
		sync_set_state(&bw->node, SYNC_DONE);
		b->pending--;
		break;
	case SYNC_GRANTED:
		sync_set_state(&bw->node, SYNC_DONE);
		b->pending--;
		break;
	default:
		break;
	}
	sync_unlock(&b->lock);
	rouse_waker_drop(&old);
	sync_batch_wake(&batch);
	return r;
}

static void barrier_wait_drop(struct rouse_future *f)
{
	struct rouse_barrier_wait *bw = (struct rouse_barrier_wait *)f;
	struct rouse_barrier *b = bw->barrier;

	if (sync_waiter_settled(&bw->node))
		return;
	sync_lock(&b->lock);
	if (sync_state(&bw->node) == SYNC_WAITING) {
		sync_queue_unlink(&bw->node);
		/* Not released yet: its arrival is taken back. */
		if (bw->node.aux == b->generation)
			b->arrived--;
	}
	b->pending--;
	sync_drop_finish(&b->lock, &bw->node, NULL);
}

static const struct rouse_future_vtable barrier_wait_vtable = {
	barrier_wait_poll, barrier_wait_drop,
};

ROUSE__PUBLIC int rouse_barrier_wait_init(struct rouse_barrier_wait *f,
					  struct rouse_barrier *b)
{
	if (f == NULL || b == NULL)
		return -EINVAL;
	f->base.vtable = &barrier_wait_vtable;
	f->barrier = b;
	sync_waiter_init(&f->node);
	f->leader = 0;
	return 0;
}
