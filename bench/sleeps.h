// SPDX-License-Identifier: MIT
/*
 * bench/sleeps.h - the array of sleep futures that timers and timeout
 * start from inside one root future, each polled with a waker that
 * counts its expiry.  sleeps.c calls only rouse, the harness (bench.h)
 * and leaf.h.
 */
#ifndef ROUSE_BENCH_SLEEPS_H
#define ROUSE_BENCH_SLEEPS_H

#include <stdbool.h>
#include <stdint.h>

#include <rouse/reactor.h>

#include "bench.h"

/*
 * Most sleeps in one run: indexes fit in 32 bits, and delays stay far
 * from overflowing int64_t nanoseconds.
 */
#define SLEEPS_MAX (UINT64_C(1) << 31)

struct sleep_set {
	struct rouse_reactor *reactor;
	struct rouse_sleep *s;
	uint8_t *fired;		/* per sleep: expiries seen */
	uint64_t n;
	uint64_t expired;	/* wakes, and sleeps ready at once */
	uint64_t clones, drops;	/* of the sleeps' wakers */
	uint64_t twice;		/* wakes of a sleep that had fired */
	uint64_t immediate;	/* timers: sleeps ready at their first poll */
	struct rouse_waker root; /* woken by the last expiry, if kept */
	struct mark m0, m1, m2;	/* m2: the last expiry */
};

/*
 * The one set of sleeps, a global as the peers' handle arrays are: the
 * benchmarks' loops over it then load its fields straight from memory.
 */
extern struct sleep_set sleeps;

/*
 * Make the n sleeps, their memory touched before the measured phase, on
 * a new driven_reactor() that *parker drives.
 */
void sleeps_setup(const struct args *a, uint64_t n,
		  struct rouse_parker *parker);
/*
 * Start sleep i for deadline: initialise it and poll it once.  Returns
 * whether it was ready at once (a deadline the reactor knows has passed),
 * which counts as its expiry.
 */
bool sleeps_start(uint64_t i, int64_t deadline);
/* Drop the sleeps still live, the root's waker, the reactor, the memory. */
void sleeps_teardown(void);

#endif
