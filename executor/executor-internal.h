/* SPDX-License-Identifier: MIT */
/* executor/executor-internal.h - shared between the executor's sources. */
#ifndef ROUSE_EXECUTOR_INTERNAL_H
#define ROUSE_EXECUTOR_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>

#include <rouse/executor.h>

#include "../lib/internal.h"

#define rouse__exec_stat_parks ROUSE__NS(stat_parks)
#define rouse__exec_stat_eventfd_writes ROUSE__NS(stat_eventfd_writes)
#define rouse__in_block_on ROUSE__NS(in_block_on)

/* Counted on the slow paths only: each one is next to a system call. */
extern atomic_uint_fast64_t rouse__exec_stat_parks;
extern atomic_uint_fast64_t rouse__exec_stat_eventfd_writes;

/* True while this thread is inside rouse_block_on(). */
extern ROUSE__TLS bool rouse__in_block_on;

#endif /* ROUSE_EXECUTOR_INTERNAL_H */
