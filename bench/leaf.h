// SPDX-License-Identifier: MIT
/*
 * bench/leaf.h - a root future and its leaves: polling a leaf with a
 * waker of its own, keeping the root's waker, and the ready queue that
 * fds and echo feed their leaves' wakes into.  leaf.c calls only rouse
 * and the harness (bench.h); echo, fds, inject, sleeps, timers and yield
 * call it.
 */
#ifndef ROUSE_BENCH_LEAF_H
#define ROUSE_BENCH_LEAF_H

#include <stdbool.h>
#include <stdint.h>

#include <rouse/future.h>

/* Poll f with the context of waker w (a leaf polled by a root future). */
enum rouse_poll poll_with(struct rouse_future *f, const struct rouse_waker *w);

/* The slow half of root_waker_keep(): the first poll's clone. */
void root_waker_clone(struct rouse_waker *slot, struct rouse_context *cx);

/*
 * Keep a clone of the root future's waker in *slot (once), for its
 * leaves.  Inline: the root calls it on every poll.
 */
static inline void root_waker_keep(struct rouse_waker *slot,
				   struct rouse_context *cx)
{
	if (slot->vtable == NULL)
		root_waker_clone(slot, cx);
}

/* Drop the clone, if root_waker_keep() made one. */
void root_waker_release(struct rouse_waker *slot);

/* The drop of a waker that owns nothing: it does nothing. */
void waker_drop_nothing(void *data);

/*
 * A FIFO of leaf indexes, each at most once.  A leaf's waker is a struct
 * qwaker (its data points at it): waking it queues the leaf and, when the
 * queue was empty, wakes the root future, which then polls exactly the
 * queued leaves.  The wakers own no resource, so clone returns the same
 * record and drop does nothing; the records outlive every future that
 * holds them.
 */
struct readyq {
	uint32_t *ring;
	uint8_t *queued;		/* per leaf: already in the ring */
	uint32_t cap, head, len;
	struct rouse_waker root;	/* clone of the root's waker */
};

struct qwaker {
	struct readyq *q;
	uint32_t idx;
};

void readyq_init(struct readyq *q, uint32_t cap);
void readyq_free(struct readyq *q);

/*
 * The two calls made once per event are inline, so that the root's loop
 * over the queue costs what it did when it and the queue were one file.
 */

/* The next queued leaf into *idx; false when the queue is empty. */
static inline bool readyq_pop(struct readyq *q, uint32_t *idx)
{
	if (q->len == 0)
		return false;
	*idx = q->ring[q->head];
	q->queued[*idx] = 0;
	if (++q->head == q->cap)
		q->head = 0;
	q->len--;
	return true;
}

extern const struct rouse_waker_vtable qwaker_vtable;

/* The waker of qw's leaf. */
static inline struct rouse_waker qwaker_of(struct qwaker *qw)
{
	struct rouse_waker w = { qw, &qwaker_vtable };

	return w;
}

#endif
