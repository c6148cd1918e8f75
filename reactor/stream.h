/* SPDX-License-Identifier: MIT */
/*
 * reactor/stream.h - what the socket files may ask of stream.c: a stream
 * around a source they registered themselves.
 */
#ifndef ROUSE_REACTOR_STREAM_H
#define ROUSE_REACTOR_STREAM_H

#include <rouse/net.h>

#include "../lib/internal.h"

#define rouse__stream_wrap ROUSE__NS(stream_wrap)

/* A stream that owns fd and io (registered on fd); -ENOMEM leaves both. */
int rouse__stream_wrap(struct rouse_io *io, int fd, struct rouse_stream **out);

#endif /* ROUSE_REACTOR_STREAM_H */
