// SPDX-License-Identifier: MIT
/*
 * examples/echo-server.c - a TCP echo server on the reactor.
 *
 *   examples/echo-server PORT [ADDRESS]     default address 127.0.0.1
 *   nc 127.0.0.1 PORT                       type; every line comes back
 *
 * One future serves every connection: it awaits an accept and, for each
 * connection, a read and then the writes that echo what was read.  All of
 * them share the one waker of rouse_block_on(), so each wake polls them
 * all again; a pending operation costs nothing until its fd is ready (its
 * poll is a cached-readiness check or one EAGAIN), and the reactor runs
 * driven by the same thread: rouse_block_on_with() parks in the reactor's
 * epoll_wait, and readiness reaches the future with no thread hop.
 *
 * Stop it with SIGINT or SIGTERM; it stops through a user event notified
 * from the signal handler, and closes everything on the way out.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rouse/executor.h>
#include <rouse/reactor.h>

#define BUF_SIZE 65536

struct conn {
	int fd;
	struct rouse_io *io;
	bool writing;			/* echoing buf[off..len) */
	size_t len, off;
	struct rouse_io_rw op;		/* the read or write in flight */
	bool op_live;
	char buf[BUF_SIZE];
};

struct server {
	struct rouse_future base;
	struct rouse_reactor *reactor;
	struct rouse_io *listen_io;
	struct rouse_io_accept accept;
	struct rouse_event_wait stop;	/* notified by the signal handler */
	struct conn **conns;
	size_t nconns, cap;
	unsigned long served;
};

static struct rouse_event *stop_event;

static void on_signal(int sig)
{
	(void)sig;
	rouse_event_notify(stop_event);	/* async-signal-safe */
}

static void conn_close(struct server *s, size_t i)
{
	struct conn *c = s->conns[i];

	if (c->op_live)
		rouse_future_drop(&c->op.op.base);
	rouse_io_deregister(c->io);
	close(c->fd);
	free(c);
	s->conns[i] = s->conns[--s->nconns];
}

/* Move one connection as far as it can go; false when it is finished. */
static bool conn_drive(struct conn *c, struct rouse_context *cx)
{
	for (;;) {
		if (!c->op_live) {
			if (c->writing)
				rouse_io_write_init(&c->op, c->io,
						    c->buf + c->off,
						    c->len - c->off);
			else
				rouse_io_read_init(&c->op, c->io, c->buf,
						   sizeof(c->buf));
			c->op_live = true;
		}
		if (rouse_future_poll(&c->op.op.base, cx) == ROUSE_PENDING)
			return true;
		rouse_future_drop(&c->op.op.base);
		c->op_live = false;
		if (c->op.result <= 0)
			return false;	/* end of file, or an error */
		if (c->writing) {
			c->off += (size_t)c->op.result;
			if (c->off == c->len)
				c->writing = false;
		} else {
			c->len = (size_t)c->op.result;
			c->off = 0;
			c->writing = true;
		}
	}
}

static void server_accept(struct server *s, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (c == NULL || rouse_io_register(s->reactor, fd, &c->io) < 0) {
		free(c);
		close(fd);
		return;
	}
	if (s->nconns == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct conn **v = realloc(s->conns, cap * sizeof(*v));

		if (v == NULL) {
			rouse_io_deregister(c->io);
			free(c);
			close(fd);
			return;
		}
		s->conns = v;
		s->cap = cap;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	s->conns[s->nconns++] = c;
	s->served++;
}

static enum rouse_poll server_poll(struct rouse_future *f,
				   struct rouse_context *cx)
{
	struct server *s = (struct server *)f;
	size_t i;

	if (rouse_future_poll(&s->stop.op.base, cx) == ROUSE_READY)
		return ROUSE_READY;
	while (rouse_future_poll(&s->accept.op.base, cx) == ROUSE_READY) {
		int fd = s->accept.result;

		rouse_future_drop(&s->accept.op.base);
		rouse_io_accept_init(&s->accept, s->listen_io);
		if (fd < 0) {
			fprintf(stderr, "echo-server: accept: %s\n",
				strerror(-fd));
			continue;
		}
		server_accept(s, fd);
	}
	for (i = 0; i < s->nconns;) {
		if (conn_drive(s->conns[i], cx))
			i++;
		else
			conn_close(s, i);	/* swaps the last one in */
	}
	return ROUSE_PENDING;
}

static void server_drop(struct rouse_future *f)
{
	struct server *s = (struct server *)f;

	while (s->nconns > 0)
		conn_close(s, 0);
	free(s->conns);
	rouse_future_drop(&s->accept.op.base);
	rouse_future_drop(&s->stop.op.base);
}

static const struct rouse_future_vtable server_vtable = {
	.poll = server_poll,
	.drop = server_drop,
};

int main(int argc, char **argv)
{
	struct server s = { .base.vtable = &server_vtable };
	struct sockaddr_in addr = { .sin_family = AF_INET };
	struct rouse_parker parker;
	socklen_t len = sizeof(addr);
	int lfd, one = 1, err;
	char *end;
	long port;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s PORT [ADDRESS]\n", argv[0]);
		return 2;
	}
	port = strtol(argv[1], &end, 10);
	if (*end != '\0' || port < 0 || port > 65535 ||
	    inet_pton(AF_INET, argc == 3 ? argv[2] : "127.0.0.1",
		      &addr.sin_addr) != 1) {
		fprintf(stderr, "echo-server: bad port or address\n");
		return 2;
	}
	addr.sin_port = htons((uint16_t)port);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(lfd, 128) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&addr, &len) < 0) {
		perror("echo-server: listen");
		return 1;
	}

	err = rouse_reactor_new(&s.reactor, 0);
	if (err == 0)
		err = rouse_io_register(s.reactor, lfd, &s.listen_io);
	if (err == 0)
		err = rouse_event_new(s.reactor, &stop_event);
	if (err < 0) {
		fprintf(stderr, "echo-server: reactor: %s\n", strerror(-err));
		return 1;
	}
	rouse_io_accept_init(&s.accept, s.listen_io);
	rouse_event_wait_init(&s.stop, stop_event);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);

	printf("echo-server: listening on %s:%u\n", inet_ntoa(addr.sin_addr),
	       ntohs(addr.sin_port));
	fflush(stdout);
	rouse_reactor_parker(s.reactor, &parker);
	err = rouse_block_on_with(&s.base, &parker);
	printf("echo-server: stopping after %lu connections\n", s.served);
	rouse_future_drop(&s.base);
	rouse_event_free(stop_event);
	rouse_io_deregister(s.listen_io);
	close(lfd);
	rouse_reactor_free(s.reactor);
	return err < 0 ? 1 : 0;
}
