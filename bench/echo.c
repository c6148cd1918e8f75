// SPDX-License-Identifier: MIT
/*
 * bench/echo.c - the echo benchmark: TCP ping-pong over 127.0.0.1,
 * clients and server on one driven reactor, per-connection wakers.
 * Calls only rouse, the harness (bench.h) and the leaf wakers (leaf.h).
 *
 * Clients and server sides are the 2 * conns "sides" of one driven
 * reactor, each with a qwaker (clients 0..conns-1, servers after).  Every
 * side always has a read future pending into the shared 64 KiB buffer
 * (its data is consumed before anything else is polled); a write is a
 * write future, ready at once unless the socket is full.  The root future
 * drives the queued sides only.  The secs timer is a sleep future with a
 * waker of its own that marks the end and wakes the root.
 *
 * A client sends its message, reads the echo into place (byte for byte
 * equal to what it sent), and sends the next one.  A server side echoes
 * what it read; output the socket does not take at once is copied to the
 * side's own buffer, and the side reads no more until it is flushed.
 *
 * Extra key via=io|stream (default io): what the sides read and write
 * with.  io: the fd futures of <rouse/reactor.h> (rouse_io_read_init,
 * rouse_io_write_init) on a registration the benchmark made.  stream: the
 * stream futures of <rouse/net.h> (rouse_stream_read_init,
 * rouse_stream_write_init) on a struct rouse_stream that owns the socket:
 * a server side's accepted socket is adopted with rouse_stream_open at
 * once, a client's once its connect future (which needs a registration
 * of its own) has completed.  The logic is the same in both; only the
 * calls differ, so the difference between the two is the cost of the
 * stream layer.  The result line says via= either way.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rouse/executor.h>
#include <rouse/net.h>
#include <rouse/reactor.h>

#include "bench.h"
#include "leaf.h"

/*
 * Bounds that keep the arithmetic in range: the 2 * conns sides' indexes
 * fit the ready queue's 32 bits, durations stay far from overflowing
 * int64_t nanoseconds, and a message fits in memory.
 */
#define CONNS_MAX (UINT64_C(1) << 28)
#define SECS_MAX (UINT64_C(1) << 31)
#define SIZE_MAX_ECHO (UINT64_C(1) << 30)

#define ECHO_BUF 65536

/* The values of via=, in the order of its choices. */
enum { VIA_IO, VIA_STREAM };

/* A read or write future of either kind; ex->via says which. */
union echo_rw {
	struct rouse_io_rw io;		/* via=io */
	struct rouse_stream_rw st;	/* via=stream */
};

struct echo_side {
	struct qwaker qw;
	struct rouse_io *io;		/* via=io (a client's during setup) */
	struct rouse_stream *stream;	/* via=stream: owns fd */
	int fd;
	bool client;
	uint32_t conn;
	union echo_rw rd, wr;
	bool rd_live, wr_live;
	uint8_t *msg;		/* client: the message in flight */
	size_t sent;		/* client: bytes of msg written */
	size_t got;		/* client: bytes of its echo read */
	bool slow;		/* client: this message had to wait */
	uint8_t *out;		/* server: echo the socket did not take */
	size_t out_len, out_off, out_cap;
};

struct echo_stop {
	struct rouse_waker *root;
	bool fired;
	struct mark at;
};

static struct echo_bench {
	struct rouse_reactor *reactor;
	struct readyq q;
	struct echo_side *side;	/* 2 * conns */
	uint64_t conns;
	size_t size;
	uint64_t secs;
	uint64_t via;
	uint64_t rt;		/* round trips completed */
	uint64_t slow_writes;	/* writes the socket did not take at once */
	bool started;
	struct rouse_sleep timer;
	struct echo_stop stop;
	struct mark m0;
	uint8_t rbuf[ECHO_BUF];
} *ex;

static const struct rouse_waker_vtable stop_waker_vtable;

static struct rouse_waker stop_waker_clone(void *data)
{
	struct rouse_waker w = { data, &stop_waker_vtable };

	return w;
}

static void stop_waker_wake(void *data)
{
	struct echo_stop *st = data;

	if (!st->fired) {
		st->at = mark_end();
		st->fired = true;
	}
	rouse_waker_wake_by_ref(st->root);
}

static const struct rouse_waker_vtable stop_waker_vtable = {
	.clone = stop_waker_clone,
	.wake = stop_waker_wake,
	.wake_by_ref = stop_waker_wake,
	.drop = waker_drop_nothing,
};

static struct rouse_future *rw_future(union echo_rw *f)
{
	return ex->via == VIA_STREAM ? &f->st.base : &f->io.op.base;
}

static ssize_t rw_result(const union echo_rw *f)
{
	return ex->via == VIA_STREAM ? f->st.result : f->io.result;
}

static void echo_read_init(struct echo_side *s)
{
	if (ex->via == VIA_STREAM)
		check_rouse("rouse_stream_read_init",
			    rouse_stream_read_init(&s->rd.st, s->stream,
						   ex->rbuf, ECHO_BUF));
	else
		check_rouse("rouse_io_read_init",
			    rouse_io_read_init(&s->rd.io, s->io, ex->rbuf,
					       ECHO_BUF));
	s->rd_live = true;
}

static void echo_write_init(struct echo_side *s, const void *buf, size_t len)
{
	if (ex->via == VIA_STREAM)
		check_rouse("rouse_stream_write_init",
			    rouse_stream_write_init(&s->wr.st, s->stream, buf,
						    len));
	else
		check_rouse("rouse_io_write_init",
			    rouse_io_write_init(&s->wr.io, s->io, buf, len));
	s->wr_live = true;
}

/* Poll side s's read; its result once it is ready, else -EAGAIN. */
static ssize_t echo_read(struct echo_side *s, const struct rouse_waker *w)
{
	ssize_t n;

	if (poll_with(rw_future(&s->rd), w) == ROUSE_PENDING)
		return -EAGAIN;
	n = rw_result(&s->rd);
	rouse_future_drop(rw_future(&s->rd));
	echo_read_init(s);
	if (n == 0)
		fail("%s %" PRIu32 ": unexpected end of file",
		     s->client ? "client" : "server", s->conn);
	if (n < 0)
		fail("%s %" PRIu32 ": read: %s", s->client ? "client" :
		     "server", s->conn, strerror((int)-n));
	return n;
}

/* Poll side s's write; its result once it is ready, else -EAGAIN. */
static ssize_t echo_write(struct echo_side *s, const struct rouse_waker *w)
{
	ssize_t n;

	if (poll_with(rw_future(&s->wr), w) == ROUSE_PENDING)
		return -EAGAIN;
	n = rw_result(&s->wr);
	rouse_future_drop(rw_future(&s->wr));
	s->wr_live = false;
	if (n < 0)
		fail("%s %" PRIu32 ": write: %s", s->client ? "client" :
		     "server", s->conn, strerror((int)-n));
	return n;
}

/* Client: write what is left of the message while the socket takes it. */
static void client_send(struct echo_side *c, const struct rouse_waker *w)
{
	ssize_t n;

	while (c->sent < ex->size) {
		if (!c->wr_live)
			echo_write_init(c, c->msg + c->sent,
					ex->size - c->sent);
		n = echo_write(c, w);
		if (n < 0) {
			if (!c->slow)
				ex->slow_writes++;
			c->slow = true;
			return;
		}
		c->sent += (size_t)n;
	}
}

static void client_drive(struct echo_side *c)
{
	struct rouse_waker w = qwaker_of(&c->qw);
	ssize_t n;

	client_send(c, &w);
	while ((n = echo_read(c, &w)) > 0) {
		if (c->got + (size_t)n > ex->size ||
		    memcmp(ex->rbuf, c->msg + c->got, (size_t)n) != 0)
			fail("connection %" PRIu32 ": the echo differs from "
			     "what was sent", c->conn);
		c->got += (size_t)n;
		if (c->got < ex->size)
			continue;
		ex->rt++;
		c->got = 0;
		c->sent = 0;
		c->slow = false;
		c->msg[0]++;
		client_send(c, &w);
	}
}

/* Server: flush buffered echo; true when nothing is left to write. */
static bool server_flush(struct echo_side *s, const struct rouse_waker *w)
{
	ssize_t n;

	while (s->out_off < s->out_len) {
		if (!s->wr_live)
			echo_write_init(s, s->out + s->out_off,
					s->out_len - s->out_off);
		n = echo_write(s, w);
		if (n < 0)
			return false;
		s->out_off += (size_t)n;
	}
	s->out_off = s->out_len = 0;
	return true;
}

/* Server: keep bytes the socket did not take (the read buffer is shared). */
static void server_keep(struct echo_side *s, const uint8_t *data, size_t len)
{
	if (len > s->out_cap) {
		s->out = realloc(s->out, len);
		if (s->out == NULL)
			fail("out of memory");
		s->out_cap = len;
	}
	memcpy(s->out, data, len);
	s->out_off = 0;
	s->out_len = len;
	ex->slow_writes++;
}

static void server_drive(struct echo_side *s)
{
	struct rouse_waker w = qwaker_of(&s->qw);
	ssize_t n, put;

	if (!server_flush(s, &w))
		return;
	while ((n = echo_read(s, &w)) > 0) {
		echo_write_init(s, ex->rbuf, (size_t)n);
		put = echo_write(s, &w);
		if (put == n)
			continue;
		if (put < 0) {
			/* Pending on the shared buffer: retry on a copy. */
			rouse_future_drop(rw_future(&s->wr));
			s->wr_live = false;
			put = 0;
		}
		server_keep(s, ex->rbuf + put, (size_t)(n - put));
		if (!server_flush(s, &w))
			return;
	}
}

static enum rouse_poll echo_poll(struct rouse_future *self,
				 struct rouse_context *cx)
{
	uint32_t i;
	uint64_t k;

	(void)self;
	if (!ex->started) {
		struct rouse_waker w = stop_waker_clone(&ex->stop);

		ex->started = true;
		root_waker_keep(&ex->q.root, cx);
		ex->stop.root = &ex->q.root;
		ex->m0 = mark_begin();
		check_rouse("rouse_sleep_init",
			    rouse_sleep_init(&ex->timer, ex->reactor,
					     (int64_t)ex->secs * 1000000000));
		if (poll_with(&ex->timer.base, &w) == ROUSE_READY)
			fail("the %" PRIu64 " s timer was ready at once",
			     ex->secs);
		for (k = 0; k < ex->conns; k++)
			client_drive(&ex->side[k]);
	}
	while (!ex->stop.fired && readyq_pop(&ex->q, &i)) {
		if (ex->side[i].client)
			client_drive(&ex->side[i]);
		else
			server_drive(&ex->side[i]);
	}
	return ex->stop.fired ? ROUSE_READY : ROUSE_PENDING;
}

static const struct rouse_future_vtable echo_vtable = {
	.poll = echo_poll,
};

/*
 * Setup (untimed): the clients' connect futures and the listener's accept
 * future, all polled on every wake (a few hundred polls at most) until
 * every connection is up on both sides.
 */
struct echo_setup {
	struct rouse_future base;
	struct rouse_io *listen_io;
	struct rouse_io_accept accept;
	struct rouse_io_connect *connect;
	bool *connected;
	uint64_t nconnected, accepted;
};

static void echo_side_start(struct echo_side *s, int fd, bool client,
			    uint32_t conn, uint32_t idx)
{
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		fail_err("setsockopt(TCP_NODELAY)", errno);
	s->fd = fd;
	s->client = client;
	s->conn = conn;
	s->qw.q = &ex->q;
	s->qw.idx = idx;
}

/*
 * via=stream: side s's connected socket becomes a stream, which owns it
 * from then on (a client's setup registration is given back first).
 */
static void echo_side_adopt(struct echo_side *s)
{
	if (s->io != NULL) {
		check_rouse("rouse_io_deregister", rouse_io_deregister(s->io));
		s->io = NULL;
	}
	check_rouse("rouse_stream_open",
		    rouse_stream_open(ex->reactor, s->fd, &s->stream));
}

static enum rouse_poll echo_setup_poll(struct rouse_future *self,
				       struct rouse_context *cx)
{
	struct echo_setup *st = (struct echo_setup *)self;
	uint64_t k;

	for (k = 0; k < ex->conns; k++) {
		struct rouse_io_connect *c = &st->connect[k];

		if (st->connected[k] ||
		    poll_with(&c->op.base, cx->waker) == ROUSE_PENDING)
			continue;
		if (c->result < 0)
			fail("connect: %s", strerror(-c->result));
		rouse_future_drop(&c->op.base);
		if (ex->via == VIA_STREAM)
			echo_side_adopt(&ex->side[k]);
		st->connected[k] = true;
		st->nconnected++;
	}
	while (st->accepted < ex->conns &&
	       poll_with(&st->accept.op.base, cx->waker) == ROUSE_READY) {
		struct echo_side *s = &ex->side[ex->conns + st->accepted];
		int fd = st->accept.result;

		if (fd < 0)
			fail("accept: %s", strerror(-fd));
		rouse_future_drop(&st->accept.op.base);
		check_rouse("rouse_io_accept_init",
			    rouse_io_accept_init(&st->accept, st->listen_io));
		echo_side_start(s, fd, false, (uint32_t)st->accepted,
				(uint32_t)(ex->conns + st->accepted));
		if (ex->via == VIA_STREAM)
			echo_side_adopt(s);
		else
			check_rouse("rouse_io_register",
				    rouse_io_register(ex->reactor, fd, &s->io));
		st->accepted++;
	}
	if (st->nconnected == ex->conns && st->accepted == ex->conns)
		return ROUSE_READY;
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable echo_setup_vtable = {
	.poll = echo_setup_poll,
};

static void run_echo(const struct args *a)
{
	struct rouse_future root = { &echo_vtable };
	struct echo_setup st = { .base = { &echo_setup_vtable } };
	struct sockaddr_in addr;
	struct rouse_parker parker;
	uint64_t k, rt, wall;
	char via[8];
	int lfd;

	ex = xcalloc(1, sizeof(*ex));
	ex->conns = arg(a, "conns");
	ex->secs = arg(a, "secs");
	ex->size = (size_t)arg(a, "size");
	ex->via = arg(a, "via");
	need_fds(2 * ex->conns + 64);
	ex->side = xcalloc(2 * ex->conns, sizeof(*ex->side));
	readyq_init(&ex->q, (uint32_t)(2 * ex->conns));
	ex->reactor = driven_reactor(a, &parker);

	lfd = listen_loopback(SOCK_NONBLOCK, &addr);
	check_rouse("rouse_io_register",
		    rouse_io_register(ex->reactor, lfd, &st.listen_io));
	check_rouse("rouse_io_accept_init",
		    rouse_io_accept_init(&st.accept, st.listen_io));
	st.connect = xcalloc(ex->conns, sizeof(*st.connect));
	st.connected = xcalloc(ex->conns, sizeof(*st.connected));
	for (k = 0; k < ex->conns; k++) {
		struct echo_side *c = &ex->side[k];
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
				SOCK_CLOEXEC, 0);

		if (fd < 0)
			fail_err("socket", errno);
		check_rouse("rouse_io_register",
			    rouse_io_register(ex->reactor, fd, &c->io));
		echo_side_start(c, fd, true, (uint32_t)k, (uint32_t)k);
		c->msg = xcalloc(ex->size, 1);
		for (size_t j = 0; j < ex->size; j++)
			c->msg[j] = (uint8_t)(k * 31 + j);
		check_rouse("rouse_io_connect_init",
			    rouse_io_connect_init(&st.connect[k], c->io,
						  (struct sockaddr *)&addr,
						  sizeof(addr)));
	}
	check_rouse("rouse_block_on_with (setup)",
		    rouse_block_on_with(&st.base, &parker));
	rouse_future_drop(&st.accept.op.base);
	free(st.connect);
	free(st.connected);
	/* Every side's read is pending before the measured phase. */
	for (k = 0; k < 2 * ex->conns; k++) {
		struct echo_side *s = &ex->side[k];
		struct rouse_waker w = qwaker_of(&s->qw);

		echo_read_init(s);
		if (poll_with(rw_future(&s->rd), &w) == ROUSE_READY)
			fail("data on connection %" PRIu32 " before the run",
			     s->conn);
	}

	check_rouse("rouse_block_on_with", rouse_block_on_with(&root, &parker));

	rt = ex->rt;
	wall = ex->stop.at.wall - ex->m0.wall;
	if (rt == 0)
		fail("no round trip completed");
	print_phase(rt, ex->m0, ex->stop.at);
	printf(" rtt_per_s=%.2f slow_writes=%" PRIu64 " via=%s",
	       (double)rt * 1e9 / (double)wall, ex->slow_writes,
	       arg_word(a, "via", via, sizeof(via)));
	print_end();

	rouse_future_drop(&ex->timer.base);
	for (k = 0; k < 2 * ex->conns; k++) {
		struct echo_side *s = &ex->side[k];

		if (s->rd_live)
			rouse_future_drop(rw_future(&s->rd));
		if (s->wr_live)
			rouse_future_drop(rw_future(&s->wr));
		if (s->stream != NULL) {
			check_rouse("rouse_stream_close",
				    rouse_stream_close(s->stream));
		} else {
			check_rouse("rouse_io_deregister",
				    rouse_io_deregister(s->io));
			close(s->fd);
		}
		free(s->msg);
		free(s->out);
	}
	check_rouse("rouse_io_deregister", rouse_io_deregister(st.listen_io));
	close(lfd);
	readyq_free(&ex->q);
	rouse_reactor_free(ex->reactor);
	free(ex->side);
	free(ex);
}

const struct bench bench_echo = {
	"echo",
	{ { "conns", "1", 1, CONNS_MAX, NULL },
	  { "secs", "3", 1, SECS_MAX, NULL },
	  { "size", "64", 1, SIZE_MAX_ECHO, NULL },
	  { "via", "io", 0, 1, "io|stream" }, REACTOR },
	NULL, run_echo,
};
