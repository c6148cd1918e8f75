// SPDX-License-Identifier: MIT
/*
 * bench/timeout.c - the timeout benchmark: the root future's one poll
 * starts n sleeps of 10 s (one clock reading), then drops all n oldest
 * first; the CPU per start and per cancel.  Calls only rouse, the harness
 * (bench.h) and the sleeps (sleeps.h).
 *
 * None may fire, and dropping must hand every waker back (drops ==
 * clones == n proves the reactor holds no registration any more).
 */
#include <inttypes.h>
#include <stdio.h>

#include <rouse/executor.h>
#include <rouse/reactor.h>

#include "bench.h"
#include "sleeps.h"


static enum rouse_poll timeout_poll(struct rouse_future *self,
				    struct rouse_context *cx)
{
	int64_t deadline;
	uint64_t i;

	(void)self;
	(void)cx;
	deadline = rouse_reactor_now(sleeps.reactor);
	if (deadline < 0)
		fail_err("rouse_reactor_now", (int)-deadline);
	deadline += INT64_C(10000000000);
	sleeps.m0 = mark_begin();
	for (i = 0; i < sleeps.n; i++)
		if (sleeps_start(i, deadline))
			fail("a sleep of 10 s was ready at its first poll");
	sleeps.m1 = mark_end();
	for (i = 0; i < sleeps.n; i++)
		rouse_future_drop(&sleeps.s[i].base);
	sleeps.m2 = mark_end();
	return ROUSE_READY;
}

static const struct rouse_future_vtable timeout_vtable = {
	.poll = timeout_poll,
};

static void run_timeout(const struct args *a)
{
	struct rouse_future root = { &timeout_vtable };
	struct rouse_parker parker;
	uint64_t n = arg(a, "n"), i, cpu;
	int woken;

	sleeps_setup(a, n, &parker);
	check_rouse("rouse_block_on_with", rouse_block_on_with(&root, &parker));
	/* A turn that would fire anything left over: nothing may come. */
	woken = rouse_reactor_turn(sleeps.reactor, 0);
	check_rouse("rouse_reactor_turn", woken < 0 ? woken : 0);

	if (sleeps.expired != 0 || woken != 0)
		fail("%" PRIu64 " of the cancelled timers fired",
		     sleeps.expired);
	if (sleeps.clones != n || sleeps.drops != n)
		fail("%" PRIu64 " waker clones and %" PRIu64 " drops for %"
		     PRIu64 " cancelled timers: some are still pending",
		     sleeps.clones, sleeps.drops, n);
	for (i = 0; i < n; i++)
		if (sleeps.s[i].base.vtable != NULL || sleeps.fired[i] != 0)
			fail("timer %" PRIu64 " was not cancelled", i);
	cpu = sleeps.m2.cpu - sleeps.m0.cpu;
	sleeps_teardown();

	print_head(n, sleeps.m2.wall - sleeps.m0.wall, cpu, (double)cpu / n);
	printf(" start_ns_per_op=%.2f cancel_ns_per_op=%.2f",
	       (double)(sleeps.m1.cpu - sleeps.m0.cpu) / n,
	       (double)(sleeps.m2.cpu - sleeps.m1.cpu) / n);
	print_end();
}

const struct bench bench_timeout = {
	"timeout",
	{ { "n", "1000000", 1, SLEEPS_MAX, NULL }, REACTOR },
	NULL, run_timeout,
};
