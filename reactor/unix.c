// SPDX-License-Identifier: MIT
/*
 * reactor/unix.c - Unix sockets: stream listeners, accept and connect,
 * socket pairs, datagram sockets, and the sendmsg and recvmsg futures
 * that pass descriptors and credentials.
 *
 * One job: what is Unix-only about Unix sockets.  It calls the public fd
 * futures of io.c, addr.c, rouse__stream_wrap(), rouse__stream_io() and
 * the public functions of stream.c, and rouse__dgram_wrap() and
 * rouse_dgram_close() of dgram.c; nothing calls it back.
 * Once made, a Unix stream is a stream like any other and a Unix
 * datagram socket a datagram socket: stream.c and dgram.c move their
 * bytes.
 *
 * Descriptors in flight are the hard part, and the rule is that none is
 * ever left open without the caller knowing it:
 *
 * - recvmsg(2) always has MSG_CMSG_CLOEXEC, so a descriptor is never open
 *   without close-on-exec, not even for a moment a fork+exec on another
 *   thread could see.
 * - The control buffer is sized for the caller's max_fds.  What does not
 *   fit, the kernel closes itself and says so with MSG_CTRUNC; what fits
 *   the buffer but not the caller's array (the room for credentials was
 *   unused) is closed here; either way ctrunc is set.
 * - A descriptor that arrives in anything but SCM_RIGHTS (an SCM_PIDFD,
 *   when the caller set SO_PASSPIDFD on the socket) is closed: nobody
 *   asked for it.
 * - A receive that got descriptors is READY in the same poll, so a drop
 *   can never come between the kernel's installing them and the caller's
 *   seeing them.
 *
 * A read(2) of a Unix stream stops after a message that carried
 * descriptors, and the descriptors of a message read with plain read(2)
 * are closed by the kernel: a stream that may receive them should be read
 * with rouse_unix_recvmsg_init() throughout.
 *
 * Running out of descriptors at accept is handled as tcp.c does: see
 * there.  The listener keeps one descriptor in reserve.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <rouse/net.h>

#include "dgram.h"
#include "stream.h"

#define ROUSE__LOG_MODULE "unix"

/* Linux 6.5; older headers lack it, and an older kernel never sends it. */
#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

_Static_assert(sizeof(struct ucred) == sizeof(struct rouse_unix_cred),
	       "struct rouse_unix_cred is struct ucred");

struct rouse_unix_listener {
	struct rouse_reactor *reactor;
	struct rouse_io *io;
	int fd;
	int reserve;		/* a spare descriptor for EMFILE, or -1 */
};

/* A Unix address: a path, an abstract name, or (family alone) autobind. */
static bool unix_addr_ok(const struct rouse_addr *a)
{
	return a != NULL && a->len >= sizeof(sa_family_t) &&
	       a->len <= sizeof(struct sockaddr_un) &&
	       a->u.sa.sa_family == AF_UNIX;
}

static int reserve_open(void)
{
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* A new Unix socket of type, registered on r, in *fd and *io. */
static int unix_socket(struct rouse_reactor *r, int type,
		       const struct rouse_addr *bind_to, int *fd,
		       struct rouse_io **io)
{
	int err;

	*fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return -errno;
	if (bind_to != NULL && bind(*fd, &bind_to->u.sa, bind_to->len) < 0) {
		err = -errno;
		goto fail;
	}
	err = rouse_io_register(r, *fd, io);
	if (err == 0)
		return 0;
fail:
	close(*fd);
	*fd = -1;
	return err;
}

ROUSE__PUBLIC int rouse_unix_listen(struct rouse_reactor *r,
				    const struct rouse_addr *addr,
				    int backlog,
				    struct rouse_unix_listener **out)
{
	struct rouse_unix_listener *l;
	int err;

	if (r == NULL || out == NULL || !unix_addr_ok(addr))
		return -EINVAL;
	l = rouse__malloc(sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	l->reactor = r;
	l->reserve = reserve_open();
	if (l->reserve < 0) {
		err = -errno;
		goto fail;
	}
	/*
	 * Bind, then listen, then register: a failure after the bind leaves
	 * the path behind, which the caller may remove; it is theirs now.
	 */
	l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		err = -errno;
		goto fail_reserve;
	}
	if (bind(l->fd, &addr->u.sa, addr->len) < 0 ||
	    listen(l->fd, backlog > 0 ? backlog : SOMAXCONN) < 0) {
		err = -errno;
		goto fail_fd;
	}
	err = rouse_io_register(r, l->fd, &l->io);
	if (err < 0)
		goto fail_fd;
	*out = l;
	return 0;
fail_fd:
	close(l->fd);
fail_reserve:
	close(l->reserve);
fail:
	rouse__free(l);
	return err;
}

ROUSE__PUBLIC int rouse_unix_listener_close(struct rouse_unix_listener *l)
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

ROUSE__PUBLIC int rouse_unix_listener_fd(const struct rouse_unix_listener *l)
{
	return l != NULL ? l->fd : -EINVAL;
}

ROUSE__PUBLIC int
rouse_unix_listener_addr(const struct rouse_unix_listener *l,
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
static void shed_with_reserve(struct rouse_unix_listener *l)
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

static enum rouse_poll unix_accept_poll(struct rouse_future *self,
					struct rouse_context *cx)
{
	struct rouse_unix_accept *f = (struct rouse_unix_accept *)self;
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
	/* A client that never bound has a family and no name: len 2. */
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

static void unix_accept_drop(struct rouse_future *self)
{
	struct rouse_unix_accept *f = (struct rouse_unix_accept *)self;

	if (f->op.op.base.vtable != NULL)
		rouse_future_drop(&f->op.op.base);
}

static const struct rouse_future_vtable unix_accept_vt = {
	.poll = unix_accept_poll,
	.drop = unix_accept_drop,
};

ROUSE__PUBLIC int rouse_unix_accept_init(struct rouse_unix_accept *f,
					 struct rouse_unix_listener *l)
{
	if (f == NULL || l == NULL)
		return -EINVAL;
	rouse_io_accept_init(&f->op, l->io);
	f->base.vtable = &unix_accept_vt;
	f->listener = l;
	f->stream = NULL;
	memset(&f->peer, 0, sizeof(f->peer));
	f->result = 0;
	return 0;
}

/* ---- connect ------------------------------------------------------------- */

static void connect_release(struct rouse_unix_connect *f)
{
	if (f->op.op.base.vtable != NULL)
		rouse_future_drop(&f->op.op.base);
	f->op.op.base.vtable = NULL;
	if (f->io != NULL)
		rouse_io_deregister(f->io);
	if (f->fd >= 0)
		close(f->fd);
	f->io = NULL;
	f->fd = -1;
}

/*
 * A Unix connect never says EINPROGRESS: the kernel answers at once,
 * connected or refused (or EAGAIN, the listener's queue being full, which
 * no readiness of this socket would end).  io.c's connect future makes
 * the call and reports it.
 */
static enum rouse_poll unix_connect_poll(struct rouse_future *self,
					 struct rouse_context *cx)
{
	struct rouse_unix_connect *f = (struct rouse_unix_connect *)self;
	int err;

	if (f->io == NULL)
		return ROUSE_READY;	/* polled again after the answer */
	if (rouse_future_poll(&f->op.op.base, cx) == ROUSE_PENDING)
		return ROUSE_PENDING;
	err = f->op.result;
	rouse_future_drop(&f->op.op.base);
	f->op.op.base.vtable = NULL;
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

static void unix_connect_drop(struct rouse_future *self)
{
	connect_release((struct rouse_unix_connect *)self);
}

static const struct rouse_future_vtable unix_connect_vt = {
	.poll = unix_connect_poll,
	.drop = unix_connect_drop,
};

ROUSE__PUBLIC int rouse_unix_connect_init(struct rouse_unix_connect *f,
					  struct rouse_reactor *r,
					  const struct rouse_addr *addr)
{
	int err;

	if (f == NULL || r == NULL || !unix_addr_ok(addr) ||
	    addr->len == sizeof(sa_family_t))
		return -EINVAL;
	f->stream = NULL;
	f->result = 0;
	f->io = NULL;
	f->op.op.base.vtable = NULL;
	err = unix_socket(r, SOCK_STREAM, NULL, &f->fd, &f->io);
	if (err < 0)
		return err;
	rouse_io_connect_init(&f->op, f->io, &addr->u.sa, addr->len);
	f->base.vtable = &unix_connect_vt;
	return 0;
}

/* ---- pairs and datagram sockets ----------------------------------------- */

/* socketpair(2) of type, both ends registered on r. */
static int pair_make(struct rouse_reactor *r, int type, int sv[2],
		     struct rouse_io *io[2])
{
	int err;

	if (socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) <
	    0)
		return -errno;
	err = rouse_io_register(r, sv[0], &io[0]);
	if (err < 0)
		goto fail;
	err = rouse_io_register(r, sv[1], &io[1]);
	if (err == 0)
		return 0;
	rouse_io_deregister(io[0]);
fail:
	close(sv[0]);
	close(sv[1]);
	return err;
}

ROUSE__PUBLIC int rouse_unix_stream_pair(struct rouse_reactor *r,
					 struct rouse_stream *out[2])
{
	struct rouse_stream *s[2];
	struct rouse_io *io[2];
	int sv[2], err;

	if (r == NULL || out == NULL)
		return -EINVAL;
	err = pair_make(r, SOCK_STREAM, sv, io);
	if (err < 0)
		return err;
	err = rouse__stream_wrap(io[0], sv[0], &s[0]);
	if (err < 0)
		goto fail_both;
	err = rouse__stream_wrap(io[1], sv[1], &s[1]);
	if (err < 0) {
		rouse_stream_close(s[0]);	/* its io and fd with it */
		goto fail_one;
	}
	out[0] = s[0];
	out[1] = s[1];
	return 0;
fail_both:
	rouse_io_deregister(io[0]);
	close(sv[0]);
fail_one:
	rouse_io_deregister(io[1]);
	close(sv[1]);
	return err;
}

ROUSE__PUBLIC int rouse_unix_dgram_pair(struct rouse_reactor *r,
					struct rouse_dgram *out[2])
{
	struct rouse_dgram *d[2];
	struct rouse_io *io[2];
	int sv[2], err;

	if (r == NULL || out == NULL)
		return -EINVAL;
	err = pair_make(r, SOCK_DGRAM, sv, io);
	if (err < 0)
		return err;
	err = rouse__dgram_wrap(io[0], sv[0], AF_UNIX, &d[0]);
	if (err < 0)
		goto fail_both;
	err = rouse__dgram_wrap(io[1], sv[1], AF_UNIX, &d[1]);
	if (err < 0) {
		rouse_dgram_close(d[0]);
		goto fail_one;
	}
	out[0] = d[0];
	out[1] = d[1];
	return 0;
fail_both:
	rouse_io_deregister(io[0]);
	close(sv[0]);
fail_one:
	rouse_io_deregister(io[1]);
	close(sv[1]);
	return err;
}

ROUSE__PUBLIC int rouse_unix_dgram_bind(struct rouse_reactor *r,
					const struct rouse_addr *addr,
					struct rouse_dgram **out)
{
	struct rouse_io *io;
	int fd, err;

	if (r == NULL || out == NULL || (addr != NULL && !unix_addr_ok(addr)))
		return -EINVAL;
	err = unix_socket(r, SOCK_DGRAM, addr, &fd, &io);
	if (err < 0)
		return err;
	err = rouse__dgram_wrap(io, fd, AF_UNIX, out);
	if (err < 0) {
		rouse_io_deregister(io);
		close(fd);
	}
	return err;
}

/* 0 when fd is a Unix socket, -EAFNOSUPPORT for another, or -ENOTSOCK. */
static int unix_only(int fd)
{
	int domain;
	socklen_t len = sizeof(domain);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
		return -errno;
	return domain == AF_UNIX ? 0 : -EAFNOSUPPORT;
}

ROUSE__PUBLIC int rouse_unix_set_passcred(int fd, int on)
{
	int v = on != 0, err;

	if (fd < 0)
		return -EBADF;
	err = unix_only(fd);
	if (err < 0)
		return err;
	return setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &v, sizeof(v)) < 0
		       ? -errno
		       : 0;
}

/* ---- sendmsg and recvmsg ------------------------------------------------- */

enum { MSG_STREAM_SEND, MSG_STREAM_RECV, MSG_DGRAM_SEND, MSG_DGRAM_RECV };

static bool msg_sending(const struct rouse_unix_msg *f)
{
	return f->kind == MSG_STREAM_SEND || f->kind == MSG_DGRAM_SEND;
}

/* Descriptors a cmsghdr carries. */
static int cmsg_fd_count(const struct cmsghdr *c)
{
	return (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
}

/*
 * Hand what the control buffer holds to the caller: the descriptors that
 * fit the array, the credentials; close every other descriptor.
 */
static void take_control(struct rouse_unix_msg *f, struct msghdr *mh)
{
	struct cmsghdr *c;

	if (mh->msg_flags & MSG_CTRUNC)
		f->ctrunc = 1;
	for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
		int i, n, fd;

		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_CREDENTIALS &&
		    c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
			memcpy(&f->cred, CMSG_DATA(c), sizeof(f->cred));
			f->has_cred = 1;
			continue;
		}
		if (c->cmsg_type != SCM_RIGHTS && c->cmsg_type != SCM_PIDFD)
			continue;
		n = cmsg_fd_count(c);
		for (i = 0; i < n; i++) {
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (c->cmsg_type == SCM_RIGHTS &&
			    f->nfds < f->max_fds) {
				f->fds[f->nfds++] = fd;
				continue;
			}
			close(fd);
			if (c->cmsg_type == SCM_RIGHTS)
				f->ctrunc = 1;
		}
	}
}

static ssize_t msg_send(struct rouse_unix_msg *f)
{
	struct iovec iov = {
		.iov_base = f->buf + f->done,
		.iov_len = f->len - f->done,
	};
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (f->to.len != 0) {
		mh.msg_name = &f->to.u;
		mh.msg_namelen = f->to.len;
	}
	if (f->controllen != 0) {
		mh.msg_control = f->control.buf;
		mh.msg_controllen = f->controllen;
	}
	return sendmsg(f->fd, &mh, MSG_NOSIGNAL);
}

static ssize_t msg_recv(struct rouse_unix_msg *f)
{
	struct sockaddr_storage from;
	struct iovec iov = { .iov_base = f->buf, .iov_len = f->len };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = f->control.buf,
		.msg_controllen = f->controllen,
	};
	bool dgram = f->kind == MSG_DGRAM_RECV;
	ssize_t n;

	if (dgram) {
		mh.msg_name = &from;
		mh.msg_namelen = sizeof(from);
	}
	/* MSG_TRUNC on a stream would throw the bytes away: datagrams only. */
	n = recvmsg(f->fd, &mh, MSG_CMSG_CLOEXEC | (dgram ? MSG_TRUNC : 0));
	if (n < 0)
		return n;
	take_control(f, &mh);
	if (dgram) {
		f->truncated = (size_t)n > f->len || (mh.msg_flags & MSG_TRUNC);
		if ((size_t)n > f->len)
			n = (ssize_t)f->len;
		if (mh.msg_namelen == 0 ||
		    rouse_addr_from_sockaddr(&f->from,
					     (struct sockaddr *)&from,
					     mh.msg_namelen) < 0)
			memset(&f->from, 0, sizeof(f->from));
	}
	return n;
}

/*
 * A stream send goes on until the whole buffer is written; its control
 * message rides on the first call that writes anything, and no later
 * one.  A datagram is sent, or received, whole in one call.
 */
static enum rouse_poll unix_msg_poll(struct rouse_future *self,
				     struct rouse_context *cx)
{
	struct rouse_unix_msg *f = (struct rouse_unix_msg *)self;
	bool sending = msg_sending(f);
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
		n = sending ? msg_send(f) : msg_recv(f);
		if (n >= 0) {
			f->done += (size_t)n;
			if (f->kind != MSG_STREAM_SEND) {
				f->result = n;
				return ROUSE_READY;
			}
			if (n > 0)
				f->controllen = 0;	/* sent with them */
			if (f->done == f->len) {
				f->result = (ssize_t)f->len;
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
		rouse__sock_wait_start(&f->ready, &f->waiting, f->io, sending);
	}
}

static void unix_msg_drop(struct rouse_future *self)
{
	struct rouse_unix_msg *f = (struct rouse_unix_msg *)self;

	rouse__sock_wait_drop(&f->ready, &f->waiting);
}

static const struct rouse_future_vtable unix_msg_vt = {
	.poll = unix_msg_poll,
	.drop = unix_msg_drop,
};

static void msg_setup(struct rouse_unix_msg *f, struct rouse_io *io, int fd,
		      int kind, const void *buf, size_t len)
{
	f->base.vtable = &unix_msg_vt;
	f->io = io;
	f->fd = fd;
	f->kind = kind;
	f->waiting = 0;
	f->buf = (unsigned char *)buf;
	f->len = len;
	f->fds = NULL;
	f->max_fds = 0;
	f->controllen = 0;
	memset(&f->to, 0, sizeof(f->to));
	f->done = 0;
	f->nfds = 0;
	f->ctrunc = 0;
	f->truncated = 0;
	f->has_cred = 0;
	memset(&f->cred, 0, sizeof(f->cred));
	memset(&f->from, 0, sizeof(f->from));
	f->result = 0;
}

/* Write the control message: the credentials, then the descriptors. */
static void build_control(struct rouse_unix_msg *f, const int *fds, int nfds,
			  int send_cred)
{
	size_t used = 0;
	struct cmsghdr *c;

	memset(f->control.buf, 0, sizeof(f->control.buf));
	if (send_cred) {
		/* What the process acts as; the kernel checks them. */
		struct ucred uc = {
			.pid = getpid(), .uid = geteuid(), .gid = getegid(),
		};

		c = (struct cmsghdr *)(void *)f->control.buf;
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_CREDENTIALS;
		c->cmsg_len = CMSG_LEN(sizeof(uc));
		memcpy(CMSG_DATA(c), &uc, sizeof(uc));
		used = CMSG_SPACE(sizeof(uc));
	}
	if (nfds > 0) {
		c = (struct cmsghdr *)(void *)(f->control.buf + used);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
		used += CMSG_SPACE((size_t)nfds * sizeof(int));
	}
	f->controllen = used;
}

static int send_init(struct rouse_unix_msg *f, struct rouse_io *io, int fd,
		     int kind, const void *buf, size_t len, const int *fds,
		     int nfds, int send_cred)
{
	int i;

	if ((buf == NULL && len > 0) || len > SSIZE_MAX || nfds < 0 ||
	    nfds > ROUSE_UNIX_MAX_FDS || (fds == NULL && nfds > 0))
		return -EINVAL;
	/* A stream carries a control message only with a byte. */
	if (kind == MSG_STREAM_SEND && len == 0 && (nfds > 0 || send_cred))
		return -EINVAL;
	for (i = 0; i < nfds; i++)
		if (fds[i] < 0)
			return -EBADF;
	msg_setup(f, io, fd, kind, buf, len);
	build_control(f, fds, nfds, send_cred);
	return 0;
}

static int recv_init(struct rouse_unix_msg *f, struct rouse_io *io, int fd,
		     int kind, void *buf, size_t len, int *fds, int max_fds)
{
	if ((buf == NULL && len > 0) || len > SSIZE_MAX || max_fds < 0 ||
	    max_fds > ROUSE_UNIX_MAX_FDS || (fds == NULL && max_fds > 0))
		return -EINVAL;
	msg_setup(f, io, fd, kind, buf, len);
	f->fds = fds;
	f->max_fds = max_fds;
	/*
	 * Room for max_fds descriptors, the credentials and a pidfd.  When
	 * the credentials do not come, their room fits a few descriptors
	 * more, which take_control() closes.
	 */
	f->controllen = CMSG_SPACE((size_t)max_fds * sizeof(int)) +
			CMSG_SPACE(sizeof(struct ucred)) +
			CMSG_SPACE(sizeof(int));
	return 0;
}

/* The stream's socket, if it is a Unix one. */
static int stream_unix(struct rouse_stream *s)
{
	return unix_only(rouse_stream_fd(s));
}

ROUSE__PUBLIC int rouse_unix_sendmsg_init(struct rouse_unix_msg *f,
					  struct rouse_stream *s,
					  const void *buf, size_t len,
					  const int *fds, int nfds,
					  int send_cred)
{
	int err;

	if (f == NULL || s == NULL)
		return -EINVAL;
	err = stream_unix(s);
	if (err < 0)
		return err;
	return send_init(f, rouse__stream_io(s), rouse_stream_fd(s),
			 MSG_STREAM_SEND, buf, len, fds, nfds, send_cred);
}

ROUSE__PUBLIC int rouse_unix_recvmsg_init(struct rouse_unix_msg *f,
					  struct rouse_stream *s, void *buf,
					  size_t len, int *fds, int max_fds)
{
	int err;

	/* recvmsg(2) of 0 bytes would say 0, the end of the stream. */
	if (f == NULL || s == NULL || len == 0)
		return -EINVAL;
	err = stream_unix(s);
	if (err < 0)
		return err;
	return recv_init(f, rouse__stream_io(s), rouse_stream_fd(s),
			 MSG_STREAM_RECV, buf, len, fds, max_fds);
}

ROUSE__PUBLIC int rouse_unix_dgram_sendmsg_init(struct rouse_unix_msg *f,
						struct rouse_dgram *d,
						const struct rouse_addr *to,
						const void *buf, size_t len,
						const int *fds, int nfds,
						int send_cred)
{
	int err;

	if (f == NULL || d == NULL ||
	    (to != NULL &&
	     (!unix_addr_ok(to) || to->len == sizeof(sa_family_t))))
		return -EINVAL;
	if (d->family != AF_UNIX)
		return -EAFNOSUPPORT;
	err = send_init(f, d->io, d->fd, MSG_DGRAM_SEND, buf, len, fds, nfds,
			send_cred);
	if (err == 0 && to != NULL)
		f->to = *to;
	return err;
}

ROUSE__PUBLIC int rouse_unix_dgram_recvmsg_init(struct rouse_unix_msg *f,
						struct rouse_dgram *d,
						void *buf, size_t len,
						int *fds, int max_fds)
{
	if (f == NULL || d == NULL)
		return -EINVAL;
	if (d->family != AF_UNIX)
		return -EAFNOSUPPORT;
	return recv_init(f, d->io, d->fd, MSG_DGRAM_RECV, buf, len, fds,
			 max_fds);
}
