// SPDX-License-Identifier: MIT
/*
 * reactor/dgram.c - a datagram socket and its futures: send_to,
 * recv_from, sendmmsg, recvmmsg.
 *
 * One job: struct rouse_dgram, a datagram socket of any family that the
 * library owns together with its registration.  It calls the public fd
 * futures of io.c and addr.c, nothing else of the reactor.  udp.c and
 * unix.c make the sockets (through rouse__dgram_wrap()); nothing here
 * knows UDP from Unix.
 *
 * Every future makes its system call first and waits only when it says
 * EAGAIN (dgram.h).  A datagram socket's readiness says "one or more
 * datagrams", never how many, so a receive that took fewer than it could
 * proves nothing, and only EAGAIN clears the readable bit.  Received
 * descriptors are always close-on-exec (MSG_CMSG_CLOEXEC), also in the
 * control buffers a caller hands to recvmmsg.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include <rouse/net.h>

#include "dgram.h"

#define ROUSE__LOG_MODULE "dgram"

int rouse__dgram_wrap(struct rouse_io *io, int fd, int family,
		      struct rouse_dgram **out)
{
	struct rouse_dgram *d = rouse__malloc(sizeof(*d));

	if (d == NULL)
		return -ENOMEM;
	d->io = io;
	d->fd = fd;
	d->family = family;
	*out = d;
	return 0;
}

ROUSE__PUBLIC int rouse_dgram_open(struct rouse_reactor *r, int fd,
				   struct rouse_dgram **out)
{
	struct rouse_io *io;
	int type, family, flags, err;
	socklen_t len = sizeof(type);

	if (r == NULL || out == NULL)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -errno;		/* -ENOTSOCK, -EBADF */
	if (type != SOCK_DGRAM)
		return -EINVAL;
	len = sizeof(family);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) < 0)
		return -errno;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0)
		return -errno;
	if (!(flags & O_NONBLOCK) &&
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	err = rouse_io_register(r, fd, &io);
	if (err < 0)
		return err;
	err = rouse__dgram_wrap(io, fd, family, out);
	if (err < 0)
		rouse_io_deregister(io);
	return err;
}

ROUSE__PUBLIC int rouse_dgram_close(struct rouse_dgram *d)
{
	int err;

	if (d == NULL)
		return -EINVAL;
	err = rouse_io_deregister(d->io);
	if (err < 0)
		return err;	/* -ECHILD: the parent's, left alone */
	close(d->fd);
	rouse__free(d);
	return 0;
}

ROUSE__PUBLIC int rouse_dgram_fd(const struct rouse_dgram *d)
{
	return d != NULL ? d->fd : -EINVAL;
}

ROUSE__PUBLIC int rouse_dgram_connect(struct rouse_dgram *d,
				      const struct rouse_addr *addr)
{
	/* AF_UNSPEC: the kernel's way, for UDP and Unix alike, to undo it. */
	struct sockaddr unspec = { .sa_family = AF_UNSPEC };
	int err;

	if (d == NULL || (addr != NULL && (addr->len == 0 ||
					   addr->len > sizeof(addr->u))))
		return -EINVAL;
	/* A datagram connect only records the peer: it never waits. */
	do {
		err = addr != NULL ? connect(d->fd, &addr->u.sa, addr->len)
				   : connect(d->fd, &unspec, sizeof(unspec));
	} while (err < 0 && errno == EINTR);
	return err < 0 ? -errno : 0;
}

static int sock_name(const struct rouse_dgram *d, struct rouse_addr *out,
		     bool peer)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int err;

	if (d == NULL || out == NULL)
		return -EINVAL;
	err = peer ? getpeername(d->fd, (struct sockaddr *)&ss, &len)
		   : getsockname(d->fd, (struct sockaddr *)&ss, &len);
	if (err < 0)
		return -errno;
	return rouse_addr_from_sockaddr(out, (struct sockaddr *)&ss, len);
}

ROUSE__PUBLIC int rouse_dgram_local_addr(const struct rouse_dgram *d,
					 struct rouse_addr *out)
{
	return sock_name(d, out, false);
}

ROUSE__PUBLIC int rouse_dgram_peer_addr(const struct rouse_dgram *d,
					struct rouse_addr *out)
{
	return sock_name(d, out, true);
}

/* ---- send_to and recv_from ----------------------------------------------- */

static ssize_t dgram_send(struct rouse_dgram_rw *f)
{
	return sendto(f->dgram->fd, f->buf, f->len, MSG_NOSIGNAL,
		      f->addr.len ? &f->addr.u.sa : NULL, f->addr.len);
}

/*
 * One recvmsg(2).  MSG_TRUNC makes it return the datagram's whole length,
 * so a cut is seen on every family that supports it, and the MSG_TRUNC
 * of msg_flags on any other.  A sender with no address (an unbound Unix
 * socket) leaves msg_namelen 0: addr.len 0.
 */
static ssize_t dgram_recv(struct rouse_dgram_rw *f)
{
	struct sockaddr_storage from;
	struct iovec iov = { .iov_base = f->buf, .iov_len = f->len };
	struct msghdr mh = {
		.msg_name = &from,
		.msg_namelen = sizeof(from),
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	ssize_t n = recvmsg(f->dgram->fd, &mh, MSG_TRUNC | MSG_CMSG_CLOEXEC);

	if (n < 0)
		return n;
	f->truncated = (size_t)n > f->len || (mh.msg_flags & MSG_TRUNC);
	if ((size_t)n > f->len)
		n = (ssize_t)f->len;
	if (mh.msg_namelen == 0 ||
	    rouse_addr_from_sockaddr(&f->addr, (struct sockaddr *)&from,
				     mh.msg_namelen) < 0)
		memset(&f->addr, 0, sizeof(f->addr));
	return n;
}

static enum rouse_poll dgram_rw_poll(struct rouse_future *self,
				     struct rouse_context *cx)
{
	struct rouse_dgram_rw *f = (struct rouse_dgram_rw *)self;
	ssize_t n;
	int err;

	for (;;) {
		if (rouse__sock_wait(&f->ready, &f->waiting, cx, &err) ==
		    ROUSE_PENDING)
			return ROUSE_PENDING;
		if (err < 0) {
			f->result = err;
			return ROUSE_READY;
		}
		n = f->writing ? dgram_send(f) : dgram_recv(f);
		if (n >= 0) {
			f->result = n;
			return ROUSE_READY;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			f->result = -errno;
			return ROUSE_READY;
		}
		rouse__sock_wait_start(&f->ready, &f->waiting, f->dgram->io,
				       f->writing);
	}
}

static void dgram_rw_drop(struct rouse_future *self)
{
	struct rouse_dgram_rw *f = (struct rouse_dgram_rw *)self;

	rouse__sock_wait_drop(&f->ready, &f->waiting);
}

static const struct rouse_future_vtable dgram_rw_vt = {
	.poll = dgram_rw_poll,
	.drop = dgram_rw_drop,
};

static int dgram_rw_init(struct rouse_dgram_rw *f, struct rouse_dgram *d,
			 const void *buf, size_t len, int writing)
{
	if (f == NULL || d == NULL || (buf == NULL && len > 0) ||
	    len > SSIZE_MAX)
		return -EINVAL;
	f->base.vtable = &dgram_rw_vt;
	f->dgram = d;
	f->buf = (void *)buf;
	f->len = len;
	f->writing = writing;
	f->waiting = 0;
	f->truncated = 0;
	f->result = 0;
	memset(&f->addr, 0, sizeof(f->addr));
	return 0;
}

ROUSE__PUBLIC int rouse_dgram_send_to_init(struct rouse_dgram_rw *f,
					   struct rouse_dgram *d,
					   const void *buf, size_t len,
					   const struct rouse_addr *to)
{
	int err;

	if (to != NULL && (to->len == 0 || to->len > sizeof(to->u)))
		return -EINVAL;
	err = dgram_rw_init(f, d, buf, len, 1);
	if (err == 0 && to != NULL)
		f->addr = *to;
	return err;
}

ROUSE__PUBLIC int rouse_dgram_recv_from_init(struct rouse_dgram_rw *f,
					     struct rouse_dgram *d,
					     void *buf, size_t len)
{
	return dgram_rw_init(f, d, buf, len, 0);
}

/* ---- sendmmsg and recvmmsg ----------------------------------------------- */

static enum rouse_poll dgram_mmsg_poll(struct rouse_future *self,
				       struct rouse_context *cx)
{
	struct rouse_dgram_mmsg *f = (struct rouse_dgram_mmsg *)self;
	int n, err;

	for (;;) {
		if (rouse__sock_wait(&f->ready, &f->waiting, cx, &err) ==
		    ROUSE_PENDING)
			return ROUSE_PENDING;
		if (err < 0) {
			f->result = err;
			return ROUSE_READY;
		}
		/*
		 * Both stop at the first message that fails, and report it
		 * only when it is the first: an error after a few messages
		 * is the next call's.
		 */
		n = f->writing ? sendmmsg(f->dgram->fd, f->msgs, f->vlen,
					  MSG_NOSIGNAL)
			       : recvmmsg(f->dgram->fd, f->msgs, f->vlen,
					  MSG_CMSG_CLOEXEC, NULL);
		if (n >= 0) {
			f->result = n;
			return ROUSE_READY;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			f->result = -errno;
			return ROUSE_READY;
		}
		rouse__sock_wait_start(&f->ready, &f->waiting, f->dgram->io,
				       f->writing);
	}
}

static void dgram_mmsg_drop(struct rouse_future *self)
{
	struct rouse_dgram_mmsg *f = (struct rouse_dgram_mmsg *)self;

	rouse__sock_wait_drop(&f->ready, &f->waiting);
}

static const struct rouse_future_vtable dgram_mmsg_vt = {
	.poll = dgram_mmsg_poll,
	.drop = dgram_mmsg_drop,
};

static int dgram_mmsg_init(struct rouse_dgram_mmsg *f, struct rouse_dgram *d,
			   struct mmsghdr *msgs, unsigned int vlen,
			   int writing)
{
	/* Over UIO_MAXIOV the kernel takes the first UIO_MAXIOV alone. */
	if (f == NULL || d == NULL || msgs == NULL || vlen == 0 ||
	    vlen > INT_MAX)
		return -EINVAL;
	f->base.vtable = &dgram_mmsg_vt;
	f->dgram = d;
	f->msgs = msgs;
	f->vlen = vlen;
	f->writing = writing;
	f->waiting = 0;
	f->result = 0;
	return 0;
}

ROUSE__PUBLIC int rouse_dgram_sendmmsg_init(struct rouse_dgram_mmsg *f,
					    struct rouse_dgram *d,
					    struct mmsghdr *msgs,
					    unsigned int vlen)
{
	return dgram_mmsg_init(f, d, msgs, vlen, 1);
}

ROUSE__PUBLIC int rouse_dgram_recvmmsg_init(struct rouse_dgram_mmsg *f,
					    struct rouse_dgram *d,
					    struct mmsghdr *msgs,
					    unsigned int vlen)
{
	return dgram_mmsg_init(f, d, msgs, vlen, 0);
}
