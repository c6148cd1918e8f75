// SPDX-License-Identifier: MIT
/*
 * bench/join.c - the join benchmark: one rouse_join of n sleeps with
 * distinct deadlines, run to its end; the CPU it costs per sleep.
 *
 *   rouse-bench join [n=10000] [step_ns=1000] [clock=test|real]
 *                    [reactor=local|shared]
 *
 * This is not one of the contract's benchmarks (the peers have no
 * combinators); it measures one thing about rouse: what a join costs per
 * child as the number of children grows.  A join that re-polls every
 * child on any wake costs O(n) per completion and O(n^2) in all; one
 * with a waker per child costs O(1) per completion, so its cost per child
 * stays flat from a hundred children to a hundred thousand.
 *
 * Sleep i is due at base + (rank[i] + 1) * step_ns, where rank is a fixed
 * pseudo-random permutation of 0..n-1: the deadlines are distinct, and
 * the order in which the sleeps complete is not their order in the join.
 * Each sleep sits in a small wrapper that counts its polls, so the result
 * line says how many polls the join made in all (child_polls=) and per
 * child (polls_per_child=): n^2/2 or so for a scanning join, 2 for one
 * with per-child wakers (the first poll, and the one after its wake).
 *
 * clock=test (the default): the reactor's clock is paused, and the root
 * future, each time the join answers pending, advances it by step_ns,
 * which fires exactly one sleep on the calling thread; its wake reaches
 * the root's waker inside the root's own poll, so rouse_block_on() polls
 * again without parking.  One wake per completion, no system call of the
 * executor, and the same work whatever the load of the machine: this is
 * the mode to run under `valgrind --tool=callgrind
 * --toggle-collect=join_measured` for instruction counts.
 * clock=real: the deadlines are on the real clock, 1 ms after setup plus
 * the ranks' steps, and the root runs in rouse_block_on_with() on the
 * reactor's parker; a reactor turn fires every sleep that is due, so
 * several may complete per wake.
 *
 * Measured phase: from just before the first poll of the join (which
 * polls every sleep once, arming its timer) to its completion.
 * ops = n, ns_per_op = cpu_ns / n (CPU per child, as for the timers
 * benchmark), wall_ns and cpu_ns as in the contract.  Check: the join
 * completed every sleep, each with result 0, and with the test clock
 * each advance fired exactly one sleep.
 *
 * It calls the harness (bench.h) and the public API; the harness calls
 * it through bench_join.  join_measured() keeps its name for callgrind.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rouse/combinator.h>
#include <rouse/executor.h>
#include <rouse/reactor.h>

#include "bench.h"

/* ---- the benchmark ---------------------------------------------------- */

/* Largest n: the ranks are 32-bit, and n sleeps must fit in memory. */
#define JOIN_MAX (UINT64_C(1) << 26)

/* A sleep that counts its polls. */
struct counted_sleep {
	struct rouse_future base;
	uint64_t *polls;
	struct rouse_sleep sleep;
};

static enum rouse_poll counted_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct counted_sleep *c = (struct counted_sleep *)f;

	(*c->polls)++;
	return c->sleep.base.vtable->poll(&c->sleep.base, cx);
}

static void counted_drop(struct rouse_future *f)
{
	struct counted_sleep *c = (struct counted_sleep *)f;

	rouse_future_drop(&c->sleep.base);
}

static const struct rouse_future_vtable counted_vtable = {
	.poll = counted_poll,
	.drop = counted_drop,
};

static struct join_bench {
	struct rouse_reactor *reactor;
	struct counted_sleep *sleeps;
	struct rouse_future **futures;
	bool *done;
	struct rouse_join join;
	uint64_t n, step_ns, polls, advances;
	bool test_clock;
} jb;

/*
 * The root of block_on: the join, and with the test clock the hand that
 * moves time on by one step whenever the join waits.
 */
static enum rouse_poll join_root_poll(struct rouse_future *f,
				      struct rouse_context *cx)
{
	int fired;

	(void)f;
	if (rouse_future_poll(&jb.join.base, cx) == ROUSE_READY)
		return ROUSE_READY;
	if (jb.test_clock) {
		fired = rouse_reactor_clock_advance(jb.reactor,
						    (int64_t)jb.step_ns);
		check_rouse("rouse_reactor_clock_advance", fired);
		if (fired != 1)
			fail("an advance fired %d sleeps, not 1", fired);
		jb.advances++;
	}
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable join_root_vtable = {
	.poll = join_root_poll,
};

/*
 * The measured phase, in a function of its own so that callgrind can
 * count it alone (--toggle-collect=join_measured).
 */
__attribute__((noinline))
void join_measured(struct rouse_future *root, struct rouse_parker *parker);

__attribute__((noinline))
void join_measured(struct rouse_future *root, struct rouse_parker *parker)
{
	if (parker != NULL)
		check_rouse("rouse_block_on_with",
			    rouse_block_on_with(root, parker));
	else
		check_rouse("rouse_block_on", rouse_block_on(root));
}

static uint64_t mix64(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static void run_join(const struct args *a)
{
	struct rouse_future root = { &join_root_vtable };
	struct rouse_parker parker;
	struct mark m0, m1;
	uint32_t *rank;
	uint64_t i;
	int64_t base;

	memset(&jb, 0, sizeof(jb));
	jb.n = arg(a, "n");
	jb.step_ns = arg(a, "step_ns");
	jb.test_clock = arg(a, "clock") == 0;
	jb.reactor = driven_reactor(a, &parker);
	if (jb.test_clock)
		check_rouse("rouse_reactor_clock_pause",
			    rouse_reactor_clock_pause(jb.reactor));

	/* A fixed shuffle of the deadlines (Fisher-Yates on splitmix64). */
	rank = xcalloc(jb.n, sizeof(*rank));
	for (i = 0; i < jb.n; i++)
		rank[i] = (uint32_t)i;
	for (i = jb.n - 1; i > 0; i--) {
		uint64_t k = mix64(i) % (i + 1);
		uint32_t t = rank[i];

		rank[i] = rank[k];
		rank[k] = t;
	}

	jb.sleeps = xcalloc(jb.n, sizeof(*jb.sleeps));
	jb.futures = xcalloc(jb.n, sizeof(*jb.futures));
	jb.done = xcalloc(jb.n, sizeof(*jb.done));
	base = rouse_reactor_now(jb.reactor);
	check_rouse("rouse_reactor_now", (int)(base < 0 ? base : 0));
	if (!jb.test_clock)
		base += 1000000;
	for (i = 0; i < jb.n; i++) {
		struct counted_sleep *c = &jb.sleeps[i];

		c->base.vtable = &counted_vtable;
		c->polls = &jb.polls;
		check_rouse("rouse_sleep_until_init",
			    rouse_sleep_until_init(&c->sleep, jb.reactor,
				    base + (int64_t)((rank[i] + 1) *
						     jb.step_ns)));
		jb.futures[i] = &c->base;
	}
	free(rank);
	check_rouse("rouse_join_init",
		    rouse_join_init(&jb.join, jb.futures, jb.done, jb.n));

	m0 = mark_begin();
	join_measured(&root, jb.test_clock ? NULL : &parker);
	m1 = mark_end();

	if (jb.join.remaining != 0)
		fail("the join ended with %zu sleeps left", jb.join.remaining);
	for (i = 0; i < jb.n; i++) {
		if (!jb.done[i] || jb.sleeps[i].sleep.result != 0)
			fail("sleep %" PRIu64 ": done %d, result %d", i,
			     jb.done[i], jb.sleeps[i].sleep.result);
		rouse_future_drop(&jb.sleeps[i].base);
	}
	if (jb.test_clock && jb.advances != jb.n)
		fail("%" PRIu64 " advances for %" PRIu64 " sleeps",
		     jb.advances, jb.n);
	rouse_future_drop(&jb.join.base);

	print_head(jb.n, m1.wall - m0.wall, m1.cpu - m0.cpu,
		   (double)(m1.cpu - m0.cpu) / (double)jb.n);
	printf(" child_polls=%" PRIu64 " polls_per_child=%.2f clock=%s",
	       jb.polls, (double)jb.polls / (double)jb.n,
	       jb.test_clock ? "test" : "real");
	print_end();

	rouse_reactor_free(jb.reactor);
	free(jb.sleeps);
	free(jb.futures);
	free(jb.done);
}

const struct bench bench_join = {
	"join",
	{ { "n", "10000", 1, JOIN_MAX, NULL },
	  { "step_ns", "1000", 1, UINT64_C(1) << 20, NULL },
	  { "clock", "test", 0, 1, "test|real" },
	  REACTOR },
	NULL, run_join,
};
