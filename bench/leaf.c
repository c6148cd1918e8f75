// SPDX-License-Identifier: MIT
/*
 * bench/leaf.c - the wakers of leaf futures that one root future owns:
 * the benchmarks on a driven reactor give every leaf (a sleep, a read, a
 * write) a waker of its own, so that a wake queues or counts that leaf
 * and the root never re-polls the others.  Calls only rouse and the
 * harness (bench.h); echo, fds, inject, sleeps, timers and yield call it.
 */
#include <stdlib.h>

#include <rouse/future.h>

#include "bench.h"
#include "leaf.h"

enum rouse_poll poll_with(struct rouse_future *f, const struct rouse_waker *w)
{
	struct rouse_context cx = { w };
	int ret = rouse_future_poll(f, &cx);

	if (ret < 0)
		fail_err("rouse_future_poll", -ret);
	return (enum rouse_poll)ret;
}

/* The slow half of root_waker_keep(): the first poll's clone. */
void root_waker_clone(struct rouse_waker *slot, struct rouse_context *cx)
{
	check_rouse("rouse_waker_clone", rouse_waker_clone(cx->waker, slot));
}

void root_waker_release(struct rouse_waker *slot)
{
	if (slot->vtable != NULL)
		rouse_waker_drop(slot);
}

void waker_drop_nothing(void *data)
{
	(void)data;
}

/* ---- the ready queue ---------------------------------------------- */

void readyq_init(struct readyq *q, uint32_t cap)
{
	q->ring = xcalloc(cap, sizeof(*q->ring));
	q->queued = xcalloc(cap, sizeof(*q->queued));
	q->cap = cap;
	q->head = q->len = 0;
	q->root.data = NULL;
	q->root.vtable = NULL;
}

void readyq_free(struct readyq *q)
{
	root_waker_release(&q->root);
	free(q->ring);
	free(q->queued);
}

static void readyq_push(struct readyq *q, uint32_t idx)
{
	uint32_t tail;

	if (q->queued[idx])
		return;
	q->queued[idx] = 1;
	tail = q->head + q->len;
	if (tail >= q->cap)
		tail -= q->cap;
	q->ring[tail] = idx;
	if (q->len++ == 0 && q->root.vtable != NULL)
		rouse_waker_wake_by_ref(&q->root);
}

static struct rouse_waker qwaker_clone(void *data)
{
	return qwaker_of(data);
}

static void qwaker_wake(void *data)
{
	struct qwaker *qw = data;

	readyq_push(qw->q, qw->idx);
}

const struct rouse_waker_vtable qwaker_vtable = {
	.clone = qwaker_clone,
	.wake = qwaker_wake,
	.wake_by_ref = qwaker_wake,
	.drop = waker_drop_nothing,
};
