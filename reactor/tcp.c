// SPDX-License-Identifier: MIT
/*
 * reactor/tcp.c - TCP listeners, and the accept and connect futures that
 * make streams.
 *
 * One job: TCP sockets up to the point where they are streams.  It calls
 * the public fd futures of io.c, addr.c, and stream.c's
 * rouse__stream_wrap() and rouse_stream_open().  tcp_host.c calls its
 * connect future; nothing calls it back.
 *
 * Running out of descriptors: accept4() then fails with EMFILE (or
 * ENFILE) while the connection stays queued, and an accept loop that
 * tries again at once would spin.  So a listener keeps one descriptor in
 * reserve; on EMFILE it lets it go, accepts the connection that is
 * waiting and closes it at once (the peer sees a reset, not a hang), and
 * takes the reserve back.  The accept reports the error once, and the
 * listener goes on working when descriptors are free again.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include <rouse/net.h>

#include "reactor-internal.h"
#include "stream.h"

#define ROUSE__LOG_MODULE "tcp"

struct rouse_tcp_listener {
	struct rouse_reactor *reactor;
	struct rouse_io *io;
	int fd;
	int reserve;		/* a spare descriptor for EMFILE, or -1 */
};

static int reserve_open(void)
{
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* The family of an IPv4 or IPv6 address that fits its struct, or -1. */
static int inet_family(const struct rouse_addr *a)
{
	if (a == NULL || a->len == 0 || a->len > sizeof(a->u))
		return -1;
	if (a->u.sa.sa_family != AF_INET && a->u.sa.sa_family != AF_INET6)
		return -1;
	return a->u.sa.sa_family;
}

ROUSE__PUBLIC int rouse_tcp_listen(struct rouse_reactor *r,
				   const struct rouse_addr *addr,
				   unsigned int flags, int backlog,
				   struct rouse_tcp_listener **out)
{
	struct rouse_tcp_listener *l;
	int family = inet_family(addr), one = 1, v6only, err;

	if (r == NULL || out == NULL || family < 0 ||
	    (flags & ~(unsigned int)(ROUSE_TCP_REUSEPORT | ROUSE_TCP_V6ONLY)))
		return -EINVAL;
	l = rouse__malloc(sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	l->reactor = r;
	l->fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		err = -errno;
		goto fail;
	}
	/* Rebind at once after a restart, past connections in TIME_WAIT. */
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if ((flags & ROUSE_TCP_REUSEPORT) &&
	    setsockopt(l->fd, SOL_SOCKET, SO_REUSEPORT, &one,
		       sizeof(one)) < 0)
		goto fail_errno;
	if (family == AF_INET6) {
		/* Dual-stack unless asked otherwise, whatever the sysctl. */
		v6only = (flags & ROUSE_TCP_V6ONLY) != 0;
		if (setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
			       sizeof(v6only)) < 0)
			goto fail_errno;
	}
	if (bind(l->fd, &addr->u.sa, addr->len) < 0 ||
	    listen(l->fd, backlog > 0 ? backlog : SOMAXCONN) < 0)
		goto fail_errno;
	l->reserve = reserve_open();
	if (l->reserve < 0)
		goto fail_errno;
	err = rouse_io_register(r, l->fd, &l->io);
	if (err < 0) {
		close(l->reserve);
		goto fail;
	}
	*out = l;
	return 0;
fail_errno:
	err = -errno;
fail:
	if (l->fd >= 0)
		close(l->fd);
	rouse__free(l);
	return err;
}

ROUSE__PUBLIC int rouse_tcp_listener_close(struct rouse_tcp_listener *l)
{
	int err;

	if (l == NULL)
		return -EINVAL;
	err = rouse_io_deregister(l->io);
	if (err < 0)
		return err;
	close(l->fd);
	if (l->reserve >= 0)
		close(l->reserve);
	rouse__free(l);
	return 0;
}

ROUSE__PUBLIC int rouse_tcp_listener_fd(const struct rouse_tcp_listener *l)
{
	return l != NULL ? l->fd : -EINVAL;
}

ROUSE__PUBLIC int rouse_tcp_listener_addr(const struct rouse_tcp_listener *l,
					  struct rouse_addr *out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (l == NULL || out == NULL)
		return -EINVAL;
	if (getsockname(l->fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	return rouse_addr_from_sockaddr(out, (struct sockaddr *)&ss, len);
}

/* ---- accept -------------------------------------------------------------- */

/* Out of descriptors: shed the waiting connections with the reserve. */
static void shed_with_reserve(struct rouse_tcp_listener *l)
{
	int fd;

	if (l->reserve < 0)
		l->reserve = reserve_open();
	if (l->reserve < 0)
		return;
	close(l->reserve);
	while ((fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(fd);
	l->reserve = reserve_open();
	rouse__warn("listener fd %d: out of descriptors; connections shed",
		    l->fd);
}

static enum rouse_poll tcp_accept_poll(struct rouse_future *self,
				       struct rouse_context *cx)
{
	struct rouse_tcp_accept *f = (struct rouse_tcp_accept *)self;
	int fd, err;

	if (rouse_future_poll(&f->op.op.base, cx) == ROUSE_PENDING)
		return ROUSE_PENDING;
	fd = f->op.result;
	rouse_future_drop(&f->op.op.base);
	if (fd == -EMFILE || fd == -ENFILE)
		shed_with_reserve(f->listener);
	if (fd < 0) {
		f->result = fd;
		return ROUSE_READY;
	}
	rouse_addr_from_sockaddr(&f->peer, (struct sockaddr *)&f->op.addr,
				 f->op.addrlen);
	err = rouse_stream_open(f->listener->reactor, fd, &f->stream);
	if (err < 0) {
		close(fd);
		f->stream = NULL;
	}
	f->result = err;
	return ROUSE_READY;
}

static void tcp_accept_drop(struct rouse_future *self)
{
	struct rouse_tcp_accept *f = (struct rouse_tcp_accept *)self;

	if (f->op.op.base.vtable != NULL)
		rouse_future_drop(&f->op.op.base);
}

static const struct rouse_future_vtable tcp_accept_vt = {
	.poll = tcp_accept_poll,
	.drop = tcp_accept_drop,
};

ROUSE__PUBLIC int rouse_tcp_accept_init(struct rouse_tcp_accept *f,
					struct rouse_tcp_listener *l)
{
	if (f == NULL || l == NULL)
		return -EINVAL;
	rouse_io_accept_init(&f->op, l->io);
	f->base.vtable = &tcp_accept_vt;
	f->listener = l;
	f->stream = NULL;
	memset(&f->peer, 0, sizeof(f->peer));
	f->result = 0;
	return 0;
}

/* ---- connect ----------------------------------------------------------- */

static void connect_release(struct rouse_tcp_connect *f)
{
	/*
	 * A reactor that is freed while the connect waits takes the source
	 * out and frees it itself, and says so by clearing the waiting
	 * operation's io (which nothing else clears): then only the socket
	 * is left to close.
	 */
	bool freed = f->op.op.io == NULL;

	if (f->op.op.base.vtable != NULL)
		rouse_future_drop(&f->op.op.base);
	if (f->io != NULL && !freed)
		rouse_io_deregister(f->io);
	if (f->fd >= 0)
		close(f->fd);
	f->io = NULL;
	f->fd = -1;
}

static enum rouse_poll tcp_connect_poll(struct rouse_future *self,
					struct rouse_context *cx)
{
	struct rouse_tcp_connect *f = (struct rouse_tcp_connect *)self;
	int err;

	if (f->io == NULL)
		return ROUSE_READY;	/* failed at init, or polled again */
	if (rouse_future_poll(&f->op.op.base, cx) == ROUSE_PENDING)
		return ROUSE_PENDING;
	err = f->op.result;
	rouse_future_drop(&f->op.op.base);
	if (err == 0)
		err = rouse__stream_wrap(f->io, f->fd, &f->stream);
	if (err < 0) {
		connect_release(f);
		f->result = err;
		return ROUSE_READY;
	}
	/* The stream owns the socket and its registration now. */
	f->io = NULL;
	f->fd = -1;
	f->result = 0;
	return ROUSE_READY;
}

static void tcp_connect_drop(struct rouse_future *self)
{
	connect_release((struct rouse_tcp_connect *)self);
}

static const struct rouse_future_vtable tcp_connect_vt = {
	.poll = tcp_connect_poll,
	.drop = tcp_connect_drop,
};

ROUSE__PUBLIC int rouse_tcp_connect_init(struct rouse_tcp_connect *f,
					 struct rouse_reactor *r,
					 const struct rouse_addr *addr)
{
	int family = inet_family(addr), err;

	if (f == NULL || r == NULL || family < 0)
		return -EINVAL;
	f->reactor = r;
	f->stream = NULL;
	f->result = 0;
	f->io = NULL;
	f->op.op.base.vtable = NULL;
	f->fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (f->fd < 0)
		return -errno;
	err = rouse_io_register(r, f->fd, &f->io);
	if (err < 0) {
		close(f->fd);
		return err;
	}
	rouse_io_connect_init(&f->op, f->io, &addr->u.sa, addr->len);
	f->base.vtable = &tcp_connect_vt;
	return 0;
}
