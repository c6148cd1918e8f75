/* SPDX-License-Identifier: MIT */
/* reactor/reactor-internal.h - shared between the reactor's sources. */
#ifndef ROUSE_REACTOR_INTERNAL_H
#define ROUSE_REACTOR_INTERNAL_H

#include <rouse/reactor.h>

#include "../lib/internal.h"

struct rouse_reactor {
	int epfd;	/* epoll, close-on-exec */
	int tfd;	/* timerfd on CLOCK_MONOTONIC, absolute deadlines */
	int efd;	/* eventfd: wakes a thread blocked in epoll_wait */
};

#endif /* ROUSE_REACTOR_INTERNAL_H */
