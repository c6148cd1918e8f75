/* SPDX-License-Identifier: MIT */
/*
 * reactor/timer.h - the reactor's timer set: a hierarchical wheel for far
 * deadlines and a pairing heap for the ones in the current tick.
 *
 * Not thread-safe: the reactor holds its lock around every call.  No call
 * allocates; every node lives in its caller's struct (a timer future).
 * timer.c defines it; reactor.c, sleep.c and clock.c call it.
 */
#ifndef ROUSE_REACTOR_TIMER_H
#define ROUSE_REACTOR_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rouse/reactor.h>

#include "../lib/internal.h"

/* A tick is 2^20 ns (about 1.05 ms): the width of a level-0 wheel slot. */
#define ROUSE__TICK_SHIFT 20
#define ROUSE__WHEEL_BITS 6
#define ROUSE__WHEEL_SLOTS (1 << ROUSE__WHEEL_BITS)
/* 8 levels of 64 slots span 2^48 ticks, more than int64_t nanoseconds. */
#define ROUSE__WHEEL_LEVELS 8
/*
 * Each slot is this many lists, filled in turn, so that a cascade walks
 * several independent chains at once: their cache misses overlap instead
 * of waiting for one another (one list is one miss after another).
 */
#define ROUSE__WHEEL_CHAINS 8

/*
 * struct rouse_timer_entry (in <rouse/reactor.h>) is one pending timer.  In
 * the wheel, next/prev link the slot's list and child is unused; in the
 * heap, child is the first child, next the next sibling and prev the
 * previous sibling (or the parent, for a first child).  where says which.
 */
enum {
	ROUSE__TIMER_NONE = 0xffffffffu,	/* in no structure */
	ROUSE__TIMER_HEAP = 0xfffffffeu,	/* in the current-tick heap */
};

struct rouse__timers {
	int64_t elapsed;	/* in ticks: everything before it is done */
	uint64_t seq;
	size_t count;
	struct rouse_timer_entry *heap;	/* root of the current-tick heap */
	uint64_t occupied[ROUSE__WHEEL_LEVELS];	/* bit s: slot s non-empty */
	/* No timer in the slot is due before this (ns); may be too early. */
	int64_t slot_min[ROUSE__WHEEL_LEVELS][ROUSE__WHEEL_SLOTS];
	uint32_t next_chain;	/* the chain of a slot the next insert takes */
	struct rouse_timer_entry *slot[ROUSE__WHEEL_LEVELS][ROUSE__WHEEL_SLOTS]
				  [ROUSE__WHEEL_CHAINS];
};

#define rouse__timers_init ROUSE__NS(timers_init)
#define rouse__timers_insert ROUSE__NS(timers_insert)
#define rouse__timers_remove ROUSE__NS(timers_remove)
#define rouse__timers_pop_expired ROUSE__NS(timers_pop_expired)
#define rouse__timers_next_wakeup ROUSE__NS(timers_next_wakeup)

void rouse__timers_init(struct rouse__timers *ts, int64_t now);
/* Add t, whose deadline is set; a deadline in the past fires next. */
void rouse__timers_insert(struct rouse__timers *ts, struct rouse_timer_entry *t);
/* Take t out; a no-op when it is in no structure. */
void rouse__timers_remove(struct rouse__timers *ts, struct rouse_timer_entry *t);
/*
 * The pending timer with the earliest (deadline, seq) if its deadline is
 * at or before now, taken out of the set; NULL when none is due.  Call it
 * until NULL to fire everything due, in deadline order.
 */
struct rouse_timer_entry *rouse__timers_pop_expired(struct rouse__timers *ts,
					       int64_t now);
/*
 * The earliest time at which pop_expired may have work: the earliest
 * deadline of the current tick, or the start of the next wheel slot to
 * cascade.  INT64_MAX when the set is empty.
 */
int64_t rouse__timers_next_wakeup(const struct rouse__timers *ts);

static inline bool rouse__timer_pending(const struct rouse_timer_entry *t)
{
	return t->where != ROUSE__TIMER_NONE;
}

#endif /* ROUSE_REACTOR_TIMER_H */
