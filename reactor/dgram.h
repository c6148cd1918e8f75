/* SPDX-License-Identifier: MIT */
/*
 * reactor/dgram.h - what the socket files share about datagram sockets:
 * the object itself, so that udp.c and unix.c can make one and unix.c can
 * send descriptors through one, and the wait between two tries of a
 * nonblocking socket call.  dgram.c defines the first, which udp.c and
 * unix.c call; the wait is inline, for dgram.c and unix.c, and calls
 * io.c's public readiness futures.
 */
#ifndef ROUSE_REACTOR_DGRAM_H
#define ROUSE_REACTOR_DGRAM_H

#include <stdbool.h>

#include <rouse/net.h>

#include "../lib/internal.h"

#define rouse__dgram_wrap ROUSE__NS(dgram_wrap)

struct rouse_dgram {
	struct rouse_io *io;
	int fd;
	int family;		/* AF_INET, AF_INET6, AF_UNIX, ... */
};

/* A datagram socket that owns fd and io (registered on fd). */
int rouse__dgram_wrap(struct rouse_io *io, int fd, int family,
		      struct rouse_dgram **out);

/*
 * The wait of a socket future, as stream.c's readv and writev take it:
 * the system call first; on EAGAIN, clear the readiness it used (io.c
 * keeps an edge that came meanwhile) and wait on a readiness future.
 * A future keeps the readiness future and a waiting flag, and calls
 * rouse__sock_wait() before each try.
 */
static inline void rouse__sock_wait_start(struct rouse_io_ready *ready,
					  int *waiting, struct rouse_io *io,
					  bool writing)
{
	/* An inherited reactor refuses both; the readiness future says so. */
	rouse_io_clear(io, writing ? ROUSE_IO_WRITABLE : ROUSE_IO_READABLE);
	if (writing)
		rouse_io_writable_init(ready, io);
	else
		rouse_io_readable_init(ready, io);
	*waiting = 1;
}

/*
 * PENDING while the wait goes on; READY when there is none or it is over,
 * with *err 0 (make the call) or -errno (the source is gone, or -ECHILD).
 */
static inline enum rouse_poll rouse__sock_wait(struct rouse_io_ready *ready,
					       int *waiting,
					       struct rouse_context *cx,
					       int *err)
{
	*err = 0;
	if (!*waiting)
		return ROUSE_READY;
	if (rouse_future_poll(&ready->op.base, cx) == ROUSE_PENDING)
		return ROUSE_PENDING;
	rouse_future_drop(&ready->op.base);
	*waiting = 0;
	*err = ready->result;
	return ROUSE_READY;
}

/* Drop the wait, if one is going on. */
static inline void rouse__sock_wait_drop(struct rouse_io_ready *ready,
					 int *waiting)
{
	if (*waiting)
		rouse_future_drop(&ready->op.base);
	*waiting = 0;
}

#endif /* ROUSE_REACTOR_DGRAM_H */
