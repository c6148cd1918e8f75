// SPDX-License-Identifier: MIT
/*
 * executor/public.c - the executor's statistics and log settings.  It
 * reads parker.c's counters and calls lib/log.c; nothing calls it.
 */
#include <errno.h>

#include "executor-internal.h"

ROUSE__PUBLIC int rouse_executor_get_stats(struct rouse_executor_stats *out)
{
	if (out == NULL)
		return -EINVAL;
	out->parks = atomic_load_explicit(&rouse__exec_stat_parks,
					  memory_order_relaxed);
	out->eventfd_writes = atomic_load_explicit(
		&rouse__exec_stat_eventfd_writes, memory_order_relaxed);
	return 0;
}

ROUSE__PUBLIC int rouse_executor_set_log_level(enum rouse_log_level level)
{
	return rouse__log_set_level(level);
}

ROUSE__PUBLIC int rouse_executor_set_log_sink(rouse_log_fn *sink, void *data)
{
	return rouse__log_set_sink(sink, data);
}
