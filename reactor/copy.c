// SPDX-License-Identifier: MIT
/*
 * reactor/copy.c - copies that never pass through user memory: sendfile
 * from a file to a stream, splice from a stream to a stream, and the
 * bidirectional copy (a TCP proxy in one future) built on two splices.
 *
 * One job: moving bytes between descriptors inside the kernel.  It makes
 * its own system calls on the streams' descriptors and, on EAGAIN, clears
 * the readiness it used and waits on a readiness future of io.c, as
 * stream.c's readv and writev do; from stream.c it takes only a stream's
 * fd, its registration and the fork check (stream.h), and the write
 * side's shutdown.  Nothing calls it back.
 *
 * splice(2) needs a pipe on one side, so a splice keeps a pipe of its
 * own between the two streams: in -> pipe, then pipe -> out.  With the
 * pipe empty, an EAGAIN of the first call can only mean that in has
 * nothing; with bytes in the pipe, one of the second that out has no
 * room.  So each wait is on the one descriptor that blocked.
 *
 * Neither sendfile nor splice has MSG_NOSIGNAL, and both raise SIGPIPE
 * when the peer of a socket they write to has gone.  A signal a system
 * call raises is sent to the calling thread, so each such call runs with
 * SIGPIPE blocked in the thread, and a SIGPIPE it left pending is taken
 * back before the mask is restored (unless one was pending before, which
 * is the program's and stays).  Three cheap system calls per transfer,
 * against a SIGPIPE that would end a program that did not ignore it.
 *
 * A copy makes at most COPY_BUDGET transfers per poll and then yields
 * (wakes itself and answers pending), so that a copy between two fast
 * descriptors cannot keep the thread from its other tasks.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rouse/net.h>

#include "../lib/internal.h"
#include "stream.h"

#define ROUSE__LOG_MODULE "copy"

/* Transfers per poll before a copy lets the thread's other work run. */
#define COPY_BUDGET 16

/* The most one sendfile(2) or splice(2) moves (what Linux caps it at). */
#define COPY_CHUNK ((size_t)0x7ffff000)

/*
 * What a copy waits for: nothing, in readable, out writable; or it has
 * ended, and a poll answers ready with the result it has.
 */
enum { WAIT_NONE, WAIT_IN, WAIT_OUT, WAIT_ENDED };

/* ---- SIGPIPE ------------------------------------------------------------- */

struct pipe_guard {
	sigset_t old;
	bool pending;		/* a SIGPIPE was pending before the call */
};

static void pipe_guard_begin(struct pipe_guard *g)
{
	sigset_t set, pend;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
	g->pending = sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE);
}

/* After the call; failed says it failed with EPIPE.  Keeps errno. */
static void pipe_guard_end(struct pipe_guard *g, bool epipe)
{
	int saved = errno;

	if (epipe && !g->pending) {
		static const struct timespec zero = { 0, 0 };
		sigset_t set;

		sigemptyset(&set);
		sigaddset(&set, SIGPIPE);
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
	errno = saved;
}

/* ---- waiting between system calls ------------------------------------- */

/*
 * The call on s said EAGAIN: clear the readiness it used (io.c keeps an
 * edge that came meanwhile) and start a readiness future on s.
 */
static void wait_start(struct rouse_io_ready *ready, struct rouse_stream *s,
		       bool writing)
{
	struct rouse_io *io = rouse__stream_io(s);

	rouse_io_clear(io, writing ? ROUSE_IO_WRITABLE : ROUSE_IO_READABLE);
	if (writing)
		rouse_io_writable_init(ready, io);
	else
		rouse_io_readable_init(ready, io);
}

/*
 * Poll the readiness future in flight.  Returns 1 when it is over (0 or
 * -errno in *err), 0 when still pending.
 */
static int wait_poll(struct rouse_io_ready *ready, int *waiting,
		     struct rouse_context *cx, int *err)
{
	if (rouse_future_poll(&ready->op.base, cx) == ROUSE_PENDING)
		return 0;
	*err = ready->result;
	rouse_future_drop(&ready->op.base);
	*waiting = WAIT_NONE;
	return 1;
}

/* The budget of this poll is spent: be polled again, after the others. */
static enum rouse_poll yield(struct rouse_context *cx)
{
	rouse__trace("%d transfers in one poll: yield", COPY_BUDGET);
	rouse_waker_wake_by_ref(cx->waker);
	return ROUSE_PENDING;
}

static size_t chunk(uint64_t count, uint64_t done)
{
	if (count == 0 || count - done > COPY_CHUNK)
		return COPY_CHUNK;
	return (size_t)(count - done);
}

/* ---- sendfile ------------------------------------------------------------ */

static enum rouse_poll sendfile_poll(struct rouse_future *self,
				     struct rouse_context *cx)
{
	struct rouse_sendfile *f = (struct rouse_sendfile *)self;
	struct pipe_guard g;
	int budget = COPY_BUDGET, err;
	ssize_t n;

	if (f->waiting == WAIT_ENDED)
		return ROUSE_READY;
	for (;;) {
		if (f->waiting != WAIT_NONE) {
			if (!wait_poll(&f->ready, &f->waiting, cx, &err))
				return ROUSE_PENDING;
			if (err < 0)
				goto fail;
		}
		if (f->count != 0 && f->done == f->count)
			break;
		if (budget-- == 0)
			return yield(cx);
		err = rouse__stream_refused(f->out);
		if (err < 0)
			goto fail;
		pipe_guard_begin(&g);
		n = sendfile(rouse_stream_fd(f->out), f->in_fd, &f->offset,
			     chunk(f->count, f->done));
		pipe_guard_end(&g, n < 0 && errno == EPIPE);
		if (n > 0) {
			f->done += (uint64_t)n;
			continue;
		}
		if (n == 0)
			break;		/* the end of the file */
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			err = -errno;
			goto fail;
		}
		wait_start(&f->ready, f->out, true);
		f->waiting = WAIT_OUT;
	}
	f->result = (int64_t)f->done;
	f->waiting = WAIT_ENDED;
	return ROUSE_READY;
fail:
	f->result = err;
	f->waiting = WAIT_ENDED;
	return ROUSE_READY;
}

static void sendfile_drop(struct rouse_future *self)
{
	struct rouse_sendfile *f = (struct rouse_sendfile *)self;

	if (f->waiting == WAIT_IN || f->waiting == WAIT_OUT)
		rouse_future_drop(&f->ready.op.base);
	f->waiting = WAIT_ENDED;
}

static const struct rouse_future_vtable sendfile_vt = {
	.poll = sendfile_poll,
	.drop = sendfile_drop,
};

ROUSE__PUBLIC int rouse_sendfile_init(struct rouse_sendfile *f,
				      struct rouse_stream *out, int in_fd,
				      off_t offset, size_t count)
{
	struct stat st;

	if (f == NULL || out == NULL || offset < 0)
		return -EINVAL;
	if (in_fd < 0)
		return -EBADF;
	if (fstat(in_fd, &st) < 0)
		return -errno;
	/* Anything else could say EAGAIN for itself, not for out. */
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return -EINVAL;
	f->base.vtable = &sendfile_vt;
	f->out = out;
	f->in_fd = in_fd;
	f->waiting = WAIT_NONE;
	f->count = count;
	f->offset = offset;
	f->done = 0;
	f->result = 0;
	return 0;
}

/* ---- splice -------------------------------------------------------------- */

/* in -> the pipe: at most what is left of count; the pipe is empty. */
static ssize_t splice_in(struct rouse_splice *f)
{
	return splice(rouse_stream_fd(f->in), NULL, f->pipe[1], NULL,
		      chunk(f->count, f->done),
		      SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

/* The pipe -> out: what the pipe holds. */
static ssize_t splice_out(struct rouse_splice *f)
{
	struct pipe_guard g;
	ssize_t n;

	pipe_guard_begin(&g);
	n = splice(f->pipe[0], NULL, rouse_stream_fd(f->out), NULL,
		   f->pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	pipe_guard_end(&g, n < 0 && errno == EPIPE);
	return n;
}

static enum rouse_poll splice_poll(struct rouse_future *self,
				   struct rouse_context *cx)
{
	struct rouse_splice *f = (struct rouse_splice *)self;
	int budget = COPY_BUDGET, err;
	bool out;
	ssize_t n;

	if (f->waiting == WAIT_ENDED)
		return ROUSE_READY;
	for (;;) {
		if (f->waiting != WAIT_NONE) {
			if (!wait_poll(&f->ready, &f->waiting, cx, &err))
				return ROUSE_PENDING;
			if (err < 0)
				goto fail;
		}
		out = f->pending > 0;
		if (!out && (f->ended ||
			     (f->count != 0 && f->done == f->count)))
			break;
		if (budget-- == 0)
			return yield(cx);
		err = rouse__stream_refused(out ? f->out : f->in);
		if (err < 0)
			goto fail;
		n = out ? splice_out(f) : splice_in(f);
		if (n > 0) {
			if (out) {
				f->pending -= (size_t)n;
				f->done += (uint64_t)n;
			} else {
				f->pending = (size_t)n;
			}
			continue;
		}
		if (n == 0) {
			if (out) {
				/* Cannot happen with bytes in the pipe. */
				err = -EIO;
				goto fail;
			}
			f->ended = 1;	/* the end of in */
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			err = -errno;
			goto fail;
		}
		wait_start(&f->ready, out ? f->out : f->in, out);
		f->waiting = out ? WAIT_OUT : WAIT_IN;
	}
	f->result = (int64_t)f->done;
	f->waiting = WAIT_ENDED;
	return ROUSE_READY;
fail:
	f->result = err;
	f->waiting = WAIT_ENDED;
	return ROUSE_READY;
}

static void splice_drop(struct rouse_future *self)
{
	struct rouse_splice *f = (struct rouse_splice *)self;

	if (f->waiting == WAIT_IN || f->waiting == WAIT_OUT)
		rouse_future_drop(&f->ready.op.base);
	f->waiting = WAIT_ENDED;
	if (f->pending > 0)
		rouse__debug("splice dropped with %zu bytes in its pipe",
			     f->pending);
	close(f->pipe[0]);
	close(f->pipe[1]);
	f->pipe[0] = f->pipe[1] = -1;
}

static const struct rouse_future_vtable splice_vt = {
	.poll = splice_poll,
	.drop = splice_drop,
};

ROUSE__PUBLIC int rouse_splice_init(struct rouse_splice *f,
				    struct rouse_stream *out,
				    struct rouse_stream *in, size_t count)
{
	if (f == NULL || out == NULL || in == NULL)
		return -EINVAL;
	if (pipe2(f->pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	f->base.vtable = &splice_vt;
	f->out = out;
	f->in = in;
	f->pending = 0;
	f->count = count;
	f->waiting = WAIT_NONE;
	f->ended = 0;
	f->done = 0;
	f->result = 0;
	return 0;
}

/* ---- the bidirectional copy ---------------------------------------------- */

/* Stop both directions: a splice still running is dropped. */
static enum rouse_poll bidi_end(struct rouse_copy_bidi *f, int result)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (f->running[i])
			rouse_future_drop(&f->dir[i].base);
		f->running[i] = 0;
	}
	f->a_to_b = f->dir[0].done;
	f->b_to_a = f->dir[1].done;
	f->result = result;
	return ROUSE_READY;
}

/*
 * Each direction runs until its reader sees the end; then the end is
 * passed on to its writer's peer as a half-close, and the direction's
 * splice (and its pipe) goes.  An error in either ends both.
 */
static enum rouse_poll bidi_poll(struct rouse_future *self,
				 struct rouse_context *cx)
{
	struct rouse_copy_bidi *f = (struct rouse_copy_bidi *)self;
	int i, err;

	if (!f->running[0] && !f->running[1])
		return ROUSE_READY;	/* polled again: the outputs stay */
	for (i = 0; i < 2; i++) {
		struct rouse_splice *d = &f->dir[i];

		if (!f->running[i] ||
		    rouse_future_poll(&d->base, cx) == ROUSE_PENDING)
			continue;
		if (d->result < 0) {
			rouse__debug("copy %s: %s", i ? "b to a" : "a to b",
				     strerror((int)-d->result));
			return bidi_end(f, (int)d->result);
		}
		/* A peer that reset is not connected: nothing to tell it. */
		err = rouse_stream_shutdown(d->out, SHUT_WR);
		if (err < 0 && err != -ENOTCONN)
			return bidi_end(f, err);
		rouse__debug("copy %s: ended after %llu bytes; half-closed",
			     i ? "b to a" : "a to b",
			     (unsigned long long)d->done);
		rouse_future_drop(&d->base);
		f->running[i] = 0;
	}
	f->a_to_b = f->dir[0].done;
	f->b_to_a = f->dir[1].done;
	if (f->running[0] || f->running[1])
		return ROUSE_PENDING;
	f->result = 0;
	return ROUSE_READY;
}

/* Dropped: the directions still running go; the outputs stay as they are. */
static void bidi_drop(struct rouse_future *self)
{
	struct rouse_copy_bidi *f = (struct rouse_copy_bidi *)self;
	int i;

	for (i = 0; i < 2; i++) {
		if (f->running[i])
			rouse_future_drop(&f->dir[i].base);
		f->running[i] = 0;
	}
}

static const struct rouse_future_vtable bidi_vt = {
	.poll = bidi_poll,
	.drop = bidi_drop,
};

/* 0 when s is a socket (a half-close can be passed on to it), or -errno. */
static int is_socket(struct rouse_stream *s)
{
	int type;
	socklen_t len = sizeof(type);

	if (getsockopt(rouse_stream_fd(s), SOL_SOCKET, SO_TYPE, &type,
		       &len) < 0)
		return -errno;
	return 0;
}

ROUSE__PUBLIC int rouse_copy_bidirectional_init(struct rouse_copy_bidi *f,
						struct rouse_stream *a,
						struct rouse_stream *b)
{
	int err;

	if (f == NULL || a == NULL || b == NULL || a == b)
		return -EINVAL;
	err = is_socket(a);
	if (err == 0)
		err = is_socket(b);
	if (err < 0)
		return err;
	err = rouse_splice_init(&f->dir[0], b, a, 0);
	if (err < 0)
		return err;
	err = rouse_splice_init(&f->dir[1], a, b, 0);
	if (err < 0) {
		rouse_future_drop(&f->dir[0].base);
		return err;
	}
	f->base.vtable = &bidi_vt;
	f->running[0] = f->running[1] = 1;
	f->a_to_b = 0;
	f->b_to_a = 0;
	f->result = 0;
	return 0;
}
