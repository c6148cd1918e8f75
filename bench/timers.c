// SPDX-License-Identifier: MIT
/*
 * bench/timers.c - the timers benchmark: n sleep futures started and
 * polled once from inside one root future on a driven reactor, each with
 * a waker of its own; the CPU per start and per expiry.  Calls only rouse,
 * the harness (bench.h) and the sleeps (sleeps.h, leaf.h).
 *
 * The root runs in rouse_block_on_with() on the reactor's parker.  Its
 * first poll starts every sleep (one clock reading, as the peers use
 * their loop's time); the last expiry wakes it, and it is ready.
 */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include <rouse/executor.h>
#include <rouse/reactor.h>

#include "bench.h"
#include "leaf.h"
#include "sleeps.h"

#define SPREAD_MAX (UINT64_C(1) << 32)	/* keeps delays far from overflow */

static uint64_t spread_ms;
static bool started;

/*
 * The contract's timer delays: splitmix64 of the index, reduced to whole
 * milliseconds in [0, spread_ms].  Stateless, so every implementation
 * arms the same delays in the same order.
 */
static uint64_t splitmix64(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static uint64_t timer_delay_ms(uint64_t i, uint64_t spread)
{
	return splitmix64(i) % (spread + 1);
}

/*
 * The check: the last expiry may come no earlier than the longest
 * delay, less 2 ms and one tick of CLOCK_MONOTONIC_COARSE (the slack the
 * contract grants every implementation alike).
 */
static void check_not_early(uint64_t elapsed_ns, uint64_t max_delay_ms)
{
	struct timespec res = { 0, 0 };
	uint64_t slack = 2000000;

	if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0)
		slack += (uint64_t)res.tv_sec * 1000000000u +
			 (uint64_t)res.tv_nsec;
	if (elapsed_ns + slack < max_delay_ms * 1000000)
		fail("all timers expired after %.3f ms, the longest delay is %"
		     PRIu64 " ms", (double)elapsed_ns / 1e6, max_delay_ms);
}

static enum rouse_poll timers_poll(struct rouse_future *self,
				   struct rouse_context *cx)
{
	uint64_t i;
	int64_t now;

	(void)self;
	if (!started) {
		started = true;
		root_waker_keep(&sleeps.root, cx);
		now = rouse_reactor_now(sleeps.reactor);
		if (now < 0)
			fail_err("rouse_reactor_now", (int)-now);
		sleeps.m0 = mark_begin();
		for (i = 0; i < sleeps.n; i++)
			sleeps.immediate += sleeps_start(i, now + (int64_t)
				timer_delay_ms(i, spread_ms) * 1000000);
		sleeps.m1 = mark_end();
		/* All were due at once: the phase ends with the starts. */
		if (sleeps.expired == sleeps.n)
			sleeps.m2 = sleeps.m1;
	}
	return sleeps.expired == sleeps.n ? ROUSE_READY : ROUSE_PENDING;
}

static const struct rouse_future_vtable timers_vtable = {
	.poll = timers_poll,
};

static void run_timers(const struct args *a)
{
	struct rouse_future root = { &timers_vtable };
	struct rouse_parker parker;
	uint64_t n = arg(a, "n"), i, max_delay = 0, cpu, wall;

	sleeps_setup(a, n, &parker);
	started = false;
	spread_ms = arg(a, "spread_ms");
	for (i = 0; i < n; i++) {
		uint64_t d = timer_delay_ms(i, spread_ms);

		if (d > max_delay)
			max_delay = d;
	}

	check_rouse("rouse_block_on_with", rouse_block_on_with(&root, &parker));

	if (sleeps.expired != n || sleeps.twice != 0)
		fail("%" PRIu64 " expiries of %" PRIu64 " timers (%" PRIu64
		     " of a timer that had fired)", sleeps.expired, n,
		     sleeps.twice);
	for (i = 0; i < n; i++) {
		if (sleeps.fired[i] != 1)
			fail("timer %" PRIu64 " fired %u times", i,
			     sleeps.fired[i]);
		if (sleeps.s[i].result != 0)
			fail("timer %" PRIu64 " has result %d", i,
			     sleeps.s[i].result);
	}
	if (sleeps.clones + sleeps.immediate != n || sleeps.drops != 0)
		fail("%" PRIu64 " waker clones and %" PRIu64 " drops for %"
		     PRIu64 " timers (%" PRIu64 " ready at once)",
		     sleeps.clones, sleeps.drops, n, sleeps.immediate);
	wall = sleeps.m2.wall - sleeps.m0.wall;
	check_not_early(wall, max_delay);
	cpu = sleeps.m2.cpu - sleeps.m0.cpu;
	sleeps_teardown();

	print_head(n, wall, cpu, (double)cpu / n);
	printf(" start_ns_per_op=%.2f expire_ns_per_op=%.2f bytes_per_timer=%zu"
	       " future_bytes=%zu", (double)(sleeps.m1.cpu - sleeps.m0.cpu) / n,
	       (double)(sleeps.m2.cpu - sleeps.m1.cpu) / n,
	       sizeof(struct rouse_timer_entry) + sizeof(struct rouse_waker),
	       sizeof(struct rouse_sleep));
	print_end();
}

const struct bench bench_timers = {
	"timers",
	{ { "n", "1000000", 1, SLEEPS_MAX, NULL },
	  { "spread_ms", "1000", 0, SPREAD_MAX, NULL }, REACTOR },
	NULL, run_timers,
};
