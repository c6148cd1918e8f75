/* SPDX-License-Identifier: MIT */
/*
 * reactor/stream.h - what the socket files may ask of stream.c: a stream
 * around a source they registered themselves; and what the files that
 * make their own system calls on a stream (copy.c, unix.c) need: its
 * registration and whether its reactor may be used in this process.
 * Declarations only: stream.c defines them; tcp.c, unix.c and copy.c
 * call them.
 */
#ifndef ROUSE_REACTOR_STREAM_H
#define ROUSE_REACTOR_STREAM_H

#include <rouse/net.h>

#include "../lib/internal.h"

#define rouse__stream_wrap ROUSE__NS(stream_wrap)
#define rouse__stream_io ROUSE__NS(stream_io)
#define rouse__stream_refused ROUSE__NS(stream_refused)

/* A stream that owns fd and io (registered on fd); -ENOMEM leaves both. */
int rouse__stream_wrap(struct rouse_io *io, int fd, struct rouse_stream **out);
/*
 * The registration of s, for the readiness futures and rouse_io_clear()
 * of a file that makes its own system calls on rouse_stream_fd(s).
 */
struct rouse_io *rouse__stream_io(const struct rouse_stream *s);

/*
 * -ECHILD when s's reactor was inherited through fork() and not yet made
 * the child's own, else 0.  Ask before each system call that is not made
 * through an fd future of io.c (in a child the fd is the parent's too);
 * not before a wait that was pending, which its readiness future answers.
 */
int rouse__stream_refused(const struct rouse_stream *s);

#endif /* ROUSE_REACTOR_STREAM_H */
