// SPDX-License-Identifier: MIT
/*
 * executor/block_on.c - run one future to completion on the calling thread.
 *
 * The whole executor of this file is the loop: poll; if ready, return;
 * otherwise park until a wake.  Everything subtle lives in the parker.
 *
 * It calls the parker it is given through its table, and parker.c's
 * rouse_thread_parker() when it is given none.  multi.c calls
 * rouse__block_on_until(); current.c, multi.c and executor.c use its
 * thread flag, rouse__in_block_on.
 */
#include <errno.h>
#include <pthread.h>

#include "executor-internal.h"

#define ROUSE__LOG_MODULE "executor"

ROUSE__TLS bool rouse__in_block_on;

ROUSE__PUBLIC int rouse_block_on_with(struct rouse_future *f,
				      const struct rouse_parker *parker)
{
	return rouse__block_on_until(f, parker, -1);
}

/* The same, giving up with -ETIMEDOUT at deadline (monotonic ns; -1: none). */
int rouse__block_on_until(struct rouse_future *f,
			  const struct rouse_parker *parker, int64_t deadline)
{
	struct rouse_context cx;
	struct rouse_waker waker;
	int err, cancel_state;

	if (f == NULL || f->vtable == NULL || f->vtable->poll == NULL ||
	    parker == NULL || parker->vtable == NULL ||
	    parker->vtable->park == NULL || parker->vtable->unpark == NULL ||
	    parker->vtable->waker == NULL)
		return -EINVAL;
	/*
	 * A poll that blocks its own thread would wait for itself: the
	 * outer future can only make progress once this poll returns.
	 */
	if (rouse__in_block_on) {
		rouse__warn("block_on: called inside a poll on this thread");
		return -EDEADLK;
	}
	err = parker->vtable->waker(parker->data, &waker);
	if (err < 0)
		return err;
	cx.waker = &waker;

	/*
	 * A thread cancelled while parked would never drop the waker, and
	 * the flag below would stay set: hold cancellation off until done.
	 */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
	rouse__in_block_on = true;
	for (;;) {
		if (f->vtable->poll(f, &cx) == ROUSE_READY) {
			rouse__trace("poll: ready");
			err = 0;
			break;
		}
		rouse__trace("poll: pending");
		if (deadline >= 0) {
			int64_t left = deadline - rouse__now_ns();

			if (left <= 0) {
				err = -ETIMEDOUT;
				break;
			}
			err = parker->vtable->park(parker->data, left);
		} else {
			err = parker->vtable->park(parker->data, -1);
		}
		if (err < 0 && err != -ETIMEDOUT && err != -EINTR) {
			rouse__error("block_on: park failed: %d", err);
			break;
		}
	}
	rouse__in_block_on = false;
	rouse_waker_drop(&waker);
	pthread_setcancelstate(cancel_state, NULL);
	return err;
}

ROUSE__PUBLIC int rouse_block_on(struct rouse_future *f)
{
	struct rouse_parker parker;
	int err;

	if (f == NULL || f->vtable == NULL || f->vtable->poll == NULL)
		return -EINVAL;
	err = rouse_thread_parker(&parker);
	if (err < 0)
		return err;
	return rouse_block_on_with(f, &parker);
}
