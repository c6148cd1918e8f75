/* SPDX-License-Identifier: MIT */
/*
 * reactor/stream.h - what the socket files may ask of stream.c: a stream
 * around a source they registered themselves, and the source of a stream
 * (unix.c's sendmsg and recvmsg futures wait on it).
 */
#ifndef ROUSE_REACTOR_STREAM_H
#define ROUSE_REACTOR_STREAM_H

#include <rouse/net.h>

#include "../lib/internal.h"

#define rouse__stream_wrap ROUSE__NS(stream_wrap)
#define rouse__stream_io ROUSE__NS(stream_io)

/* A stream that owns fd and io (registered on fd); -ENOMEM leaves both. */
int rouse__stream_wrap(struct rouse_io *io, int fd, struct rouse_stream **out);
/* The stream's registration, for a future of its own on the same fd. */
struct rouse_io *rouse__stream_io(const struct rouse_stream *s);

#endif /* ROUSE_REACTOR_STREAM_H */
