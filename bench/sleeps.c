// SPDX-License-Identifier: MIT
/*
 * bench/sleeps.c - the sleep futures of timers and timeout.  The n sleeps
 * live in one array, touched before the measured phase (page faults are
 * setup, like the peers' handle arrays), and sleep i is polled with a
 * waker whose data points at fired[i]: its wake counts the expiry there,
 * and the last one marks m2 and wakes the root.  So the root is polled
 * about once per reactor turn and never looks at the sleeps again.  The
 * wakers own nothing: clone hands out the same record, drop only counts.
 * Calls only rouse, the harness (bench.h) and leaf.h.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <rouse/reactor.h>

#include "bench.h"
#include "leaf.h"
#include "sleeps.h"

struct sleep_set sleeps;

static const struct rouse_waker_vtable sl_waker_vtable;

static struct rouse_waker sl_waker_clone(void *data)
{
	struct rouse_waker w = { data, &sl_waker_vtable };

	sleeps.clones++;
	return w;
}

/* Sleep fired[] fired: count it; the last one closes the phase. */
static void sl_expired(uint8_t *fired)
{
	if ((*fired)++ != 0)
		sleeps.twice++;
	if (++sleeps.expired == sleeps.n) {
		sleeps.m2 = mark_end();
		if (sleeps.root.vtable != NULL)
			rouse_waker_wake_by_ref(&sleeps.root);
	}
}

static void sl_waker_wake(void *data)
{
	sl_expired(data);
}

static void sl_waker_drop(void *data)
{
	(void)data;
	sleeps.drops++;
}

static const struct rouse_waker_vtable sl_waker_vtable = {
	.clone = sl_waker_clone,
	.wake = sl_waker_wake,
	.wake_by_ref = sl_waker_wake,
	.drop = sl_waker_drop,
};

bool sleeps_start(uint64_t i, int64_t deadline)
{
	struct rouse_waker w = { &sleeps.fired[i], &sl_waker_vtable };
	int err;

	err = rouse_sleep_until_init(&sleeps.s[i], sleeps.reactor, deadline);
	if (err < 0)
		fail_err("rouse_sleep_until_init", -err);
	if (poll_with(&sleeps.s[i].base, &w) == ROUSE_PENDING)
		return false;
	if (sleeps.s[i].result != 0)
		fail("sleep %" PRIu64 ": result %d", i, sleeps.s[i].result);
	sl_expired(&sleeps.fired[i]);
	return true;
}

void sleeps_setup(const struct args *a, uint64_t n,
		  struct rouse_parker *parker)
{
	memset(&sleeps, 0, sizeof(sleeps));
	sleeps.n = n;
	sleeps.s = xcalloc(n, sizeof(*sleeps.s));
	sleeps.fired = xcalloc(n, sizeof(*sleeps.fired));
	/* calloc may hand out fresh zero pages: fault them in now. */
	memset(sleeps.s, 0xff, n * sizeof(*sleeps.s));
	memset(sleeps.s, 0, n * sizeof(*sleeps.s));
	memset(sleeps.fired, 1, n);
	memset(sleeps.fired, 0, n);
	sleeps.reactor = driven_reactor(a, parker);
}

void sleeps_teardown(void)
{
	uint64_t i;

	for (i = 0; i < sleeps.n; i++)
		if (sleeps.s[i].base.vtable != NULL)
			rouse_future_drop(&sleeps.s[i].base);
	root_waker_release(&sleeps.root);
	rouse_reactor_free(sleeps.reactor);
	free(sleeps.s);
	free(sleeps.fired);
}
