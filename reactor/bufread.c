// SPDX-License-Identifier: MIT
/*
 * reactor/bufread.c - a buffered reader over a stream: read_until a
 * delimiter, read_line with a cap, and plain reads that drain the buffer
 * first.
 *
 * One job: struct rouse_bufreader, a window [start, end) of buffered
 * bytes in a buffer the caller owns.  It fills the buffer with the public
 * read future of stream.c (and names the stream's fd in its log) and
 * calls no other file of the reactor; nothing calls it back.  So the
 * readiness rules, -ECHILD in a child of fork() and the end of the
 * stream all come from stream.c and io.c.
 *
 * A line is handed out in place, as a pointer into the buffer: taking it
 * only moves start, and the bytes stay where they are until a later
 * operation reads into the buffer or moves the window to its front
 * (which happens only when the window has reached the buffer's end).
 * That is why the pointer is good until the next operation, and why a
 * line can be no longer than the buffer.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <rouse/net.h>

#include "../lib/internal.h"

#define ROUSE__LOG_MODULE "bufread"

enum { BR_UNTIL, BR_LINE, BR_READ };

ROUSE__PUBLIC int rouse_bufreader_init(struct rouse_bufreader *b,
				       struct rouse_stream *s, void *buf,
				       size_t size)
{
	if (b == NULL || s == NULL || buf == NULL || size == 0 ||
	    size > SSIZE_MAX)
		return -EINVAL;
	b->stream = s;
	b->buf = buf;
	b->size = size;
	b->start = 0;
	b->end = 0;
	b->eof = 0;
	b->busy = 0;
	return 0;
}

ROUSE__PUBLIC ssize_t rouse_bufreader_buffered(const struct rouse_bufreader *b,
					       const void **data)
{
	if (b == NULL)
		return -EINVAL;
	if (data != NULL)
		*data = b->buf + b->start;
	return (ssize_t)(b->end - b->start);
}

/* Take n buffered bytes; an empty window goes back to the front. */
static void take(struct rouse_bufreader *b, size_t n)
{
	b->start += n;
	if (b->start == b->end)
		b->start = b->end = 0;
}

ROUSE__PUBLIC int rouse_bufreader_consume(struct rouse_bufreader *b,
					  size_t n)
{
	if (b == NULL || n > b->end - b->start)
		return -EINVAL;
	if (b->busy)
		return -EBUSY;
	take(b, n);
	return 0;
}

/* The operation is over: the reader is free for the next one. */
static enum rouse_poll finish(struct rouse_bufreader_op *f, ssize_t result)
{
	f->result = result;
	f->reader->busy = 0;
	f->reader = NULL;
	return ROUSE_READY;
}

/*
 * One read of the stream into dst (len bytes), across polls.  Returns 1
 * when it is done, with the byte count or -errno in *n; 0 when pending.
 */
static int read_step(struct rouse_bufreader_op *f, struct rouse_context *cx,
		     void *dst, size_t len, ssize_t *n)
{
	if (!f->reading) {
		rouse_stream_read_init(&f->rd, f->reader->stream, dst, len);
		f->reading = 1;
	}
	if (rouse_future_poll(&f->rd.base, cx) == ROUSE_PENDING)
		return 0;
	*n = f->rd.result;
	rouse_future_drop(&f->rd.base);
	f->reading = 0;
	if (*n == 0)
		f->reader->eof = 1;	/* for good: no read after the end */
	return 1;
}

/*
 * Read more into the buffer, behind what it holds.  When the window has
 * reached the buffer's end it moves to the front first; the callers only
 * fill while the window is shorter than the buffer, so there is room then.
 */
static int fill(struct rouse_bufreader_op *f, struct rouse_context *cx,
		ssize_t *n)
{
	struct rouse_bufreader *b = f->reader;

	if (!f->reading && b->end == b->size) {
		memmove(b->buf, b->buf + b->start, b->end - b->start);
		b->end -= b->start;
		b->start = 0;
	}
	if (!read_step(f, cx, b->buf + b->end, b->size - b->end, n))
		return 0;
	if (*n > 0)
		b->end += (size_t)*n;
	return 1;
}

/* Hand out the first n buffered bytes as the line. */
static enum rouse_poll take_line(struct rouse_bufreader_op *f, size_t n)
{
	struct rouse_bufreader *b = f->reader;

	f->data = (const char *)b->buf + b->start;
	f->len = n;
	if (f->mode == BR_LINE && n > 0 && f->data[n - 1] == '\n') {
		f->len--;
		if (f->len > 0 && f->data[f->len - 1] == '\r')
			f->len--;
	}
	take(b, n);
	return finish(f, (ssize_t)n);
}

/*
 * read_until and read_line: look for the delimiter in the first max
 * buffered bytes (scanned: how many were looked at already, counted from
 * start, which stays valid when the window moves), and read more while
 * there are fewer than max and the stream goes on.
 */
static enum rouse_poll until_poll(struct rouse_bufreader_op *f,
				  struct rouse_context *cx)
{
	struct rouse_bufreader *b = f->reader;
	ssize_t n;

	for (;;) {
		size_t avail = b->end - b->start;
		size_t lim = avail < f->max ? avail : f->max;

		if (lim > f->scanned) {
			const unsigned char *p = b->buf + b->start;
			const unsigned char *hit =
				memchr(p + f->scanned, f->delim,
				       lim - f->scanned);

			if (hit != NULL)
				return take_line(f, (size_t)(hit - p) + 1);
			f->scanned = lim;
		}
		if (avail >= f->max) {
			rouse__debug("fd %d: no delimiter 0x%02x within %zu "
				     "bytes", rouse_stream_fd(b->stream),
				     f->delim, f->max);
			return finish(f, -EMSGSIZE);	/* nothing taken */
		}
		if (b->eof)
			return take_line(f, avail);	/* 0: the end */
		if (!fill(f, cx, &n))
			return ROUSE_PENDING;
		if (n < 0)
			return finish(f, n);
	}
}

/*
 * read: what is buffered first; with nothing buffered, a read of at least
 * the buffer's size goes straight into the caller's buffer, and a smaller
 * one fills the buffer (so the next reads find their bytes there).
 */
static enum rouse_poll read_poll(struct rouse_bufreader_op *f,
				 struct rouse_context *cx)
{
	struct rouse_bufreader *b = f->reader;
	ssize_t n;

	for (;;) {
		size_t avail = b->end - b->start;

		if (avail > 0 || f->max == 0) {
			n = (ssize_t)(avail < f->max ? avail : f->max);
			if (n > 0)
				memcpy(f->dst, b->buf + b->start, (size_t)n);
			take(b, (size_t)n);
			f->len = (size_t)n;
			return finish(f, n);
		}
		if (b->eof)
			return finish(f, 0);
		if (f->max >= b->size) {
			if (!read_step(f, cx, f->dst, f->max, &n))
				return ROUSE_PENDING;
			if (n > 0)
				f->len = (size_t)n;
			return finish(f, n);
		}
		if (!fill(f, cx, &n))
			return ROUSE_PENDING;
		if (n < 0)
			return finish(f, n);
	}
}

static enum rouse_poll bufreader_op_poll(struct rouse_future *self,
					 struct rouse_context *cx)
{
	struct rouse_bufreader_op *f = (struct rouse_bufreader_op *)self;

	if (f->reader == NULL)
		return ROUSE_READY;	/* polled again after it was ready */
	if (f->mode == BR_READ)
		return read_poll(f, cx);
	return until_poll(f, cx);
}

/*
 * A read in flight is dropped; bytes it had already read were added to
 * the buffer by the poll that read them, so nothing is lost.
 */
static void bufreader_op_drop(struct rouse_future *self)
{
	struct rouse_bufreader_op *f = (struct rouse_bufreader_op *)self;

	if (f->reader == NULL)
		return;
	if (f->reading)
		rouse_future_drop(&f->rd.base);
	f->reading = 0;
	f->reader->busy = 0;
	f->reader = NULL;
}

static const struct rouse_future_vtable bufreader_op_vt = {
	.poll = bufreader_op_poll,
	.drop = bufreader_op_drop,
};

static int op_init(struct rouse_bufreader_op *f, struct rouse_bufreader *b,
		   int mode, int delim, void *dst, size_t max)
{
	if (b->busy)
		return -EBUSY;
	b->busy = 1;
	f->base.vtable = &bufreader_op_vt;
	f->rd.base.vtable = NULL;
	f->reader = b;
	f->dst = dst;
	f->max = max;
	f->scanned = 0;
	f->delim = delim;
	f->mode = mode;
	f->reading = 0;
	f->data = mode == BR_READ ? dst : NULL;
	f->len = 0;
	f->result = 0;
	return 0;
}

ROUSE__PUBLIC int rouse_bufreader_read_until_init(struct rouse_bufreader_op *f,
						  struct rouse_bufreader *b,
						  int delim, size_t max)
{
	if (f == NULL || b == NULL || delim < 0 || delim > UCHAR_MAX ||
	    max == 0 || max > b->size)
		return -EINVAL;
	return op_init(f, b, BR_UNTIL, delim, NULL, max);
}

ROUSE__PUBLIC int rouse_bufreader_read_line_init(struct rouse_bufreader_op *f,
						 struct rouse_bufreader *b,
						 size_t max)
{
	if (f == NULL || b == NULL || max == 0 || max > b->size)
		return -EINVAL;
	return op_init(f, b, BR_LINE, '\n', NULL, max);
}

ROUSE__PUBLIC int rouse_bufreader_read_init(struct rouse_bufreader_op *f,
					    struct rouse_bufreader *b,
					    void *buf, size_t len)
{
	if (f == NULL || b == NULL || (buf == NULL && len > 0) ||
	    len > SSIZE_MAX)
		return -EINVAL;
	return op_init(f, b, BR_READ, 0, buf, len);
}
