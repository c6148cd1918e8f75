/* SPDX-License-Identifier: MIT */
/*
 * executor/executor-internal.h - shared between the executor's sources:
 * parker.c's counters, which public.c reads, and block_on.c's
 * rouse__block_on_until() and thread flag, which current.c, multi.c and
 * executor.c use.  It includes lib/internal.h and calls nothing itself.
 */
#ifndef ROUSE_EXECUTOR_INTERNAL_H
#define ROUSE_EXECUTOR_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <rouse/executor.h>

#include "../lib/internal.h"

#define rouse__exec_stat_parks ROUSE__NS(stat_parks)
#define rouse__exec_stat_eventfd_writes ROUSE__NS(stat_eventfd_writes)
#define rouse__in_block_on ROUSE__NS(in_block_on)

/* Counted on the slow paths only: each one is next to a system call. */
extern atomic_uint_fast64_t rouse__exec_stat_parks;
extern atomic_uint_fast64_t rouse__exec_stat_eventfd_writes;

#define rouse__block_on_until ROUSE__NS(block_on_until)
/*
 * rouse_block_on_with(), giving up with -ETIMEDOUT once the monotonic
 * clock reaches deadline (nanoseconds; -1: never).
 */
int rouse__block_on_until(struct rouse_future *f,
			  const struct rouse_parker *parker, int64_t deadline);

/* True while this thread is inside rouse_block_on(). */
extern ROUSE__TLS bool rouse__in_block_on;

#endif /* ROUSE_EXECUTOR_INTERNAL_H */
