// SPDX-License-Identifier: MIT
/*
 * reactor/stream.c - a connected byte stream and its transfer futures:
 * read, write, read_exact, write_all, readv, writev, shutdown.
 *
 * One job: struct rouse_stream, an fd the library owns together with its
 * registration.  It is built on the public fd futures of io.c (read,
 * write, readiness) and calls nothing else of the reactor but addr.c, so
 * all the readiness rules live in io.c alone; tcp.c and unix.c make
 * streams through rouse__stream_wrap(), and copy.c and unix.c's message
 * futures ask for a stream's registration (rouse__stream_io()) to wait on
 * it between their own system calls.  bufread.c and process.c call only
 * its public functions.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#include <rouse/net.h>

#include "reactor-internal.h"
#include "stream.h"

#define ROUSE__LOG_MODULE "stream"

struct rouse_stream {
	struct rouse_io *io;
	int fd;
	bool socket;		/* send with MSG_NOSIGNAL, never SIGPIPE */
};

int rouse__stream_wrap(struct rouse_io *io, int fd, struct rouse_stream **out)
{
	struct rouse_stream *s = rouse__malloc(sizeof(*s));
	int type;
	socklen_t len = sizeof(type);

	if (s == NULL)
		return -ENOMEM;
	s->io = io;
	s->fd = fd;
	s->socket = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
	*out = s;
	return 0;
}

struct rouse_io *rouse__stream_io(const struct rouse_stream *s)
{
	return s->io;
}

int rouse__stream_refused(const struct rouse_stream *s)
{
	return rouse__inherited(s->io->reactor->fork_gen) ? -ECHILD : 0;
}

ROUSE__PUBLIC int rouse_stream_open(struct rouse_reactor *r, int fd,
				    struct rouse_stream **out)
{
	struct rouse_io *io;
	int flags, err;

	if (r == NULL || out == NULL)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0)
		return -errno;
	if (!(flags & O_NONBLOCK) &&
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	err = rouse_io_register(r, fd, &io);
	if (err < 0)
		return err;
	err = rouse__stream_wrap(io, fd, out);
	if (err < 0)
		rouse_io_deregister(io);
	return err;
}

ROUSE__PUBLIC int rouse_stream_close(struct rouse_stream *s)
{
	int err;

	if (s == NULL)
		return -EINVAL;
	err = rouse_io_deregister(s->io);
	if (err < 0)
		return err;	/* -ECHILD: the parent's, left alone */
	close(s->fd);
	rouse__free(s);
	return 0;
}

ROUSE__PUBLIC int rouse_stream_fd(const struct rouse_stream *s)
{
	return s != NULL ? s->fd : -EINVAL;
}

ROUSE__PUBLIC int rouse_stream_shutdown(struct rouse_stream *s, int how)
{
	if (s == NULL ||
	    (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR))
		return -EINVAL;
	return shutdown(s->fd, how) < 0 ? -errno : 0;
}

static int set_opt(struct rouse_stream *s, int level, int name, int on)
{
	int v = on != 0;

	if (s == NULL)
		return -EINVAL;
	return setsockopt(s->fd, level, name, &v, sizeof(v)) < 0 ? -errno
								  : 0;
}

ROUSE__PUBLIC int rouse_stream_set_nodelay(struct rouse_stream *s, int on)
{
	return set_opt(s, IPPROTO_TCP, TCP_NODELAY, on);
}

ROUSE__PUBLIC int rouse_stream_set_keepalive(struct rouse_stream *s, int on)
{
	return set_opt(s, SOL_SOCKET, SO_KEEPALIVE, on);
}

static int sock_name(const struct rouse_stream *s, struct rouse_addr *out,
		     bool peer)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int err;

	if (s == NULL || out == NULL)
		return -EINVAL;
	err = peer ? getpeername(s->fd, (struct sockaddr *)&ss, &len)
		   : getsockname(s->fd, (struct sockaddr *)&ss, &len);
	if (err < 0)
		return -errno;
	return rouse_addr_from_sockaddr(out, (struct sockaddr *)&ss, len);
}

ROUSE__PUBLIC int rouse_stream_local_addr(const struct rouse_stream *s,
					  struct rouse_addr *out)
{
	return sock_name(s, out, false);
}

ROUSE__PUBLIC int rouse_stream_peer_addr(const struct rouse_stream *s,
					 struct rouse_addr *out)
{
	return sock_name(s, out, true);
}

/* ---- read, write, read_exact, write_all ------------------------------- */

enum { RW_READ, RW_WRITE, RW_READ_EXACT, RW_WRITE_ALL };

/*
 * Each step is one fd future of io.c over what is left of the buffer;
 * the exact and all modes start the next step until the length is done.
 */
static enum rouse_poll stream_rw_poll(struct rouse_future *self,
				      struct rouse_context *cx)
{
	struct rouse_stream_rw *f = (struct rouse_stream_rw *)self;
	bool reading = f->mode == RW_READ || f->mode == RW_READ_EXACT;
	ssize_t n;

	for (;;) {
		if (f->op.op.base.vtable == NULL) {
			if (reading)
				rouse_io_read_init(&f->op, f->stream->io,
						   f->buf + f->done,
						   f->len - f->done);
			else
				rouse_io_write_init(&f->op, f->stream->io,
						    f->buf + f->done,
						    f->len - f->done);
		}
		if (rouse_future_poll(&f->op.op.base, cx) == ROUSE_PENDING)
			return ROUSE_PENDING;
		n = f->op.result;
		rouse_future_drop(&f->op.op.base);
		if (n < 0) {
			f->result = n;
			return ROUSE_READY;
		}
		f->done += (size_t)n;
		if (f->mode == RW_READ || f->mode == RW_WRITE) {
			f->result = n;
			return ROUSE_READY;
		}
		if (f->done == f->len) {
			f->result = (ssize_t)f->len;
			return ROUSE_READY;
		}
		if (n == 0 && reading) {
			f->result = -EPIPE;	/* the end came first */
			return ROUSE_READY;
		}
	}
}

static void stream_rw_drop(struct rouse_future *self)
{
	struct rouse_stream_rw *f = (struct rouse_stream_rw *)self;

	if (f->op.op.base.vtable != NULL)
		rouse_future_drop(&f->op.op.base);
}

static const struct rouse_future_vtable stream_rw_vt = {
	.poll = stream_rw_poll,
	.drop = stream_rw_drop,
};

static enum rouse_poll done_poll(struct rouse_future *self,
				 struct rouse_context *cx)
{
	return ROUSE_READY;
}

/* A zero-length exact transfer: ready at once, with 0. */
static const struct rouse_future_vtable stream_done_vt = {
	.poll = done_poll,
};

static int stream_rw_init(struct rouse_stream_rw *f, struct rouse_stream *s,
			  const void *buf, size_t len, int mode)
{
	if (f == NULL || s == NULL || (buf == NULL && len > 0) ||
	    len > SSIZE_MAX)
		return -EINVAL;
	f->base.vtable = &stream_rw_vt;
	f->op.op.base.vtable = NULL;
	f->stream = s;
	f->buf = (unsigned char *)buf;
	f->len = len;
	f->mode = mode;
	f->done = 0;
	f->result = 0;
	if (len == 0 && (mode == RW_READ_EXACT || mode == RW_WRITE_ALL))
		f->base.vtable = &stream_done_vt;
	return 0;
}

ROUSE__PUBLIC int rouse_stream_read_init(struct rouse_stream_rw *f,
					 struct rouse_stream *s, void *buf,
					 size_t len)
{
	return stream_rw_init(f, s, buf, len, RW_READ);
}

ROUSE__PUBLIC int rouse_stream_write_init(struct rouse_stream_rw *f,
					  struct rouse_stream *s,
					  const void *buf, size_t len)
{
	return stream_rw_init(f, s, buf, len, RW_WRITE);
}

ROUSE__PUBLIC int rouse_stream_read_exact_init(struct rouse_stream_rw *f,
					       struct rouse_stream *s,
					       void *buf, size_t len)
{
	return stream_rw_init(f, s, buf, len, RW_READ_EXACT);
}

ROUSE__PUBLIC int rouse_stream_write_all_init(struct rouse_stream_rw *f,
					      struct rouse_stream *s,
					      const void *buf, size_t len)
{
	return stream_rw_init(f, s, buf, len, RW_WRITE_ALL);
}

/* ---- readv and writev --------------------------------------------------- */

/*
 * The part of the caller's vector after skip bytes, in tmp (at most
 * IOV_MAX entries, checked at init).  Returns the entry count.
 */
static int iov_rest(const struct iovec *iov, int iovcnt, size_t skip,
		    struct iovec *tmp)
{
	int i, n = 0;

	for (i = 0; i < iovcnt; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		tmp[n].iov_base = (char *)iov[i].iov_base + skip;
		tmp[n].iov_len = iov[i].iov_len - skip;
		skip = 0;
		n++;
	}
	return n;
}

static ssize_t vec_call(struct rouse_stream_rwv *f)
{
	struct iovec tmp[IOV_MAX];
	int n = iov_rest(f->iov, f->iovcnt, f->done, tmp);

	if (!f->writing)
		return readv(f->stream->fd, tmp, n);
	if (f->stream->socket) {
		struct msghdr mh = { .msg_iov = tmp, .msg_iovlen = (size_t)n };

		return sendmsg(f->stream->fd, &mh, MSG_NOSIGNAL);
	}
	return writev(f->stream->fd, tmp, n);
}

static size_t iov_total(const struct iovec *iov, int iovcnt)
{
	size_t total = 0;
	int i;

	for (i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	return total;
}

/*
 * The system call first; on EAGAIN, clear the readiness it used (io.c
 * keeps an edge that came meanwhile) and wait on a readiness future.
 */
static enum rouse_poll stream_rwv_poll(struct rouse_future *self,
				       struct rouse_context *cx)
{
	struct rouse_stream_rwv *f = (struct rouse_stream_rwv *)self;
	size_t total = iov_total(f->iov, f->iovcnt);
	ssize_t n;

	for (;;) {
		if (f->waiting) {
			if (rouse_future_poll(&f->ready.op.base, cx) ==
			    ROUSE_PENDING)
				return ROUSE_PENDING;
			rouse_future_drop(&f->ready.op.base);
			f->waiting = 0;
			if (f->ready.result < 0) {
				f->result = f->ready.result;
				return ROUSE_READY;
			}
		}
		if (f->done == total) {
			f->result = (ssize_t)total;
			return ROUSE_READY;
		}
		/*
		 * The call is made without an fd future of io.c, so refuse
		 * an inherited reactor here, as they do: in a child of
		 * fork() the fd is the parent's too.  (Not before a wait
		 * that was pending: the source may be gone with its reactor,
		 * and the readiness future has answered for it.)
		 */
		if (rouse__inherited(f->stream->io->reactor->fork_gen)) {
			f->result = -ECHILD;
			return ROUSE_READY;
		}
		n = vec_call(f);
		if (n >= 0) {
			f->done += (size_t)n;
			if (!f->writing) {
				f->result = n;
				return ROUSE_READY;
			}
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			f->result = -errno;
			return ROUSE_READY;
		}
		rouse_io_clear(f->stream->io, f->writing ? ROUSE_IO_WRITABLE
							  : ROUSE_IO_READABLE);
		if (f->writing)
			rouse_io_writable_init(&f->ready, f->stream->io);
		else
			rouse_io_readable_init(&f->ready, f->stream->io);
		f->waiting = 1;
	}
}

static void stream_rwv_drop(struct rouse_future *self)
{
	struct rouse_stream_rwv *f = (struct rouse_stream_rwv *)self;

	if (f->waiting)
		rouse_future_drop(&f->ready.op.base);
	f->waiting = 0;
}

static const struct rouse_future_vtable stream_rwv_vt = {
	.poll = stream_rwv_poll,
	.drop = stream_rwv_drop,
};

static int stream_rwv_init(struct rouse_stream_rwv *f, struct rouse_stream *s,
			   const struct iovec *iov, int iovcnt, int writing)
{
	if (f == NULL || s == NULL || iovcnt < 0 || iovcnt > IOV_MAX ||
	    (iov == NULL && iovcnt > 0) ||
	    iov_total(iov, iovcnt) > SSIZE_MAX)
		return -EINVAL;
	f->base.vtable = &stream_rwv_vt;
	f->stream = s;
	f->iov = iov;
	f->iovcnt = iovcnt;
	f->writing = writing;
	f->waiting = 0;
	f->done = 0;
	f->result = 0;
	return 0;
}

ROUSE__PUBLIC int rouse_stream_readv_init(struct rouse_stream_rwv *f,
					  struct rouse_stream *s,
					  const struct iovec *iov, int iovcnt)
{
	return stream_rwv_init(f, s, iov, iovcnt, 0);
}

ROUSE__PUBLIC int rouse_stream_writev_init(struct rouse_stream_rwv *f,
					   struct rouse_stream *s,
					   const struct iovec *iov,
					   int iovcnt)
{
	return stream_rwv_init(f, s, iov, iovcnt, 1);
}
