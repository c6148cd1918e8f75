// SPDX-License-Identifier: MIT
/*
 * bench/echo-mt.c - the echo-mt benchmark (issue 13; not in the peers'
 * contract): echo over 127.0.0.1 with one task per side of every
 * connection, on an executor whose workers drive the one reactor.
 * Calls only rouse and the harness (bench.h).
 *
 * echo runs every connection on one thread; this one asks what the same
 * work costs spread over workers=N worker threads (0: a current-thread
 * executor), which take turns in the reactor's parker (cfg.parker).
 *
 * Setup (untimed): conns connected TCP pairs made with plain sockets,
 * TCP_NODELAY on, each side adopted with rouse_stream_open.  A server
 * task reads into its buffer and writes it all back until the end of the
 * stream.  A client task writes size bytes, reads exactly size bytes back
 * (equal to what it sent), counts the round trip, and repeats until the
 * shared stop flag is set.  The root future sleeps secs on the reactor,
 * sets stop and joins the clients; the client streams are then closed so
 * that the servers see the end and finish, and are joined too.
 *
 * Measured phase: from the spawns to the stop; ops are the round trips
 * completed in it.  Extras: rtt_per_s, workers, and with workers > 0 each
 * worker's driver turns (parks in the reactor's parker).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rouse/async.h>
#include <rouse/executor.h>
#include <rouse/net.h>
#include <rouse/reactor.h>

#include "bench.h"

#define CONNS_MAX (UINT64_C(1) << 20)
#define SECS_MAX (UINT64_C(1) << 20)
#define SIZE_MAX_ECHO (UINT64_C(1) << 24)
#define WORKERS_MAX 1024

#define SERVER_BUF 16384

static atomic_bool stop;

struct server_task {
	struct rouse_future base;
	struct rouse_async co;
	struct rouse_stream *s;
	struct rouse_stream_rw io;
	uint8_t buf[SERVER_BUF];
};

static enum rouse_poll server_poll(struct rouse_future *f,
				   struct rouse_context *cx)
{
	struct server_task *t = (struct server_task *)f;

	ROUSE_ASYNC_BEGIN(&t->co, cx);
	for (;;) {
		check_rouse("rouse_stream_read_init",
			    rouse_stream_read_init(&t->io, t->s, t->buf,
						   sizeof(t->buf)));
		ROUSE_AWAIT(&t->io.base);
		rouse_future_drop(&t->io.base);
		if (t->io.result == 0)
			break;		/* the client closed: done */
		if (t->io.result < 0)
			fail("server read: %s", strerror((int)-t->io.result));
		check_rouse("rouse_stream_write_all_init",
			    rouse_stream_write_all_init(&t->io, t->s, t->buf,
							(size_t)t->io.result));
		ROUSE_AWAIT(&t->io.base);
		rouse_future_drop(&t->io.base);
		if (t->io.result < 0)
			fail("server write: %s", strerror((int)-t->io.result));
	}
	ROUSE_ASYNC_END();
}

static const struct rouse_future_vtable server_vt = { server_poll, NULL };

struct client_task {
	struct rouse_future base;
	struct rouse_async co;
	struct rouse_stream *s;
	struct rouse_stream_rw io;
	uint8_t *msg;		/* size bytes, the message */
	uint8_t *back;		/* size bytes, its echo */
	size_t size;
	uint64_t conn;
	uint64_t rt;		/* output: round trips before the stop */
};

static enum rouse_poll client_poll(struct rouse_future *f,
				   struct rouse_context *cx)
{
	struct client_task *t = (struct client_task *)f;

	ROUSE_ASYNC_BEGIN(&t->co, cx);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		check_rouse("rouse_stream_write_all_init",
			    rouse_stream_write_all_init(&t->io, t->s, t->msg,
							t->size));
		ROUSE_AWAIT(&t->io.base);
		rouse_future_drop(&t->io.base);
		if (t->io.result < 0)
			fail("client %" PRIu64 " write: %s", t->conn,
			     strerror((int)-t->io.result));
		check_rouse("rouse_stream_read_exact_init",
			    rouse_stream_read_exact_init(&t->io, t->s, t->back,
							 t->size));
		ROUSE_AWAIT(&t->io.base);
		rouse_future_drop(&t->io.base);
		if (t->io.result < 0)
			fail("client %" PRIu64 " read: %s", t->conn,
			     strerror((int)-t->io.result));
		if (memcmp(t->msg, t->back, t->size) != 0)
			fail("connection %" PRIu64 ": the echo differs from "
			     "what was sent", t->conn);
		/* A round trip that ends after the stop is not measured. */
		if (!atomic_load_explicit(&stop, memory_order_relaxed))
			t->rt++;
		t->msg[0]++;
	}
	ROUSE_ASYNC_END();
}

static const struct rouse_future_vtable client_vt = { client_poll, NULL };

/* Await the join handles h[0..n) in turn (their results checked later). */
struct join_all {
	struct rouse_future base;
	struct rouse_async co;
	struct rouse_join_handle *h;
	uint64_t n, k;
};

static enum rouse_poll join_all_poll(struct rouse_future *f,
				     struct rouse_context *cx)
{
	struct join_all *j = (struct join_all *)f;

	ROUSE_ASYNC_BEGIN(&j->co, cx);
	for (j->k = 0; j->k < j->n; j->k++)
		ROUSE_AWAIT(&j->h[j->k].base);
	ROUSE_ASYNC_END();
}

static const struct rouse_future_vtable join_all_vt = { join_all_poll, NULL };

/* The root: sleep secs, mark the end, set stop, join the clients. */
struct echo_root {
	struct rouse_future base;
	struct rouse_async co;
	struct rouse_reactor *reactor;
	uint64_t secs;
	struct rouse_sleep sleep;
	struct mark end;
	struct join_all clients;
};

static enum rouse_poll root_poll(struct rouse_future *f,
				 struct rouse_context *cx)
{
	struct echo_root *r = (struct echo_root *)f;

	ROUSE_ASYNC_BEGIN(&r->co, cx);
	check_rouse("rouse_sleep_init",
		    rouse_sleep_init(&r->sleep, r->reactor,
				     (int64_t)r->secs * 1000000000));
	ROUSE_AWAIT(&r->sleep.base);
	rouse_future_drop(&r->sleep.base);
	r->end = mark_end();
	atomic_store(&stop, true);
	ROUSE_AWAIT(&r->clients.base);
	ROUSE_ASYNC_END();
}

static const struct rouse_future_vtable root_vt = { root_poll, NULL };

static void set_nodelay_nonblock(int fd)
{
	int one = 1, fl;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		fail_err("setsockopt(TCP_NODELAY)", errno);
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
		fail_err("fcntl(O_NONBLOCK)", errno);
}

static void check_joined(const char *what, struct rouse_join_handle *h,
			 uint64_t n)
{
	for (uint64_t k = 0; k < n; k++)
		if (h[k].result != 0)
			fail("%s task %" PRIu64 ": %s", what, k,
			     strerror(-h[k].result));
}

static void run_echo_mt(const struct args *a)
{
	uint64_t conns = arg(a, "conns");
	uint64_t secs = arg(a, "secs");
	size_t size = (size_t)arg(a, "size");
	uint64_t workers = arg(a, "workers");
	struct rouse_executor_config cfg;
	struct rouse_executor *ex;
	struct rouse_reactor *reactor;
	struct rouse_parker parker;
	struct rouse_stream **cs, **ss;
	struct rouse_join_handle *ch, *sh;
	struct join_all servers = { .base = { &join_all_vt } };
	struct echo_root root = { .base = { &root_vt } };
	struct sockaddr_in addr;
	struct mark m0;
	uint64_t k, rt = 0, wall;
	int lfd;

	need_fds(2 * conns + 64);
	atomic_store(&stop, false);
	/* Shared (not LOCAL): every worker may drive it and touch it. */
	check_rouse("rouse_reactor_new", rouse_reactor_new(&reactor, 0));
	check_rouse("rouse_reactor_parker",
		    rouse_reactor_parker(reactor, &parker));
	check_rouse("rouse_executor_config_init",
		    rouse_executor_config_init(&cfg));
	cfg.kind = workers ? ROUSE_EXECUTOR_MULTI_THREAD :
		   ROUSE_EXECUTOR_CURRENT_THREAD;
	cfg.workers = (unsigned int)workers;
	cfg.parker = &parker;
	check_rouse("rouse_executor_new", rouse_executor_new(&cfg, &ex));

	/* The connections, with plain blocking calls. */
	lfd = listen_loopback(0, &addr);
	cs = xcalloc(conns, sizeof(*cs));
	ss = xcalloc(conns, sizeof(*ss));
	ch = xcalloc(conns, sizeof(*ch));
	sh = xcalloc(conns, sizeof(*sh));
	for (k = 0; k < conns; k++) {
		int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int sfd;

		if (cfd < 0)
			fail_err("socket", errno);
		if (connect(cfd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
			fail_err("connect", errno);
		sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (sfd < 0)
			fail_err("accept", errno);
		set_nodelay_nonblock(cfd);
		set_nodelay_nonblock(sfd);
		check_rouse("rouse_stream_open",
			    rouse_stream_open(reactor, cfd, &cs[k]));
		check_rouse("rouse_stream_open",
			    rouse_stream_open(reactor, sfd, &ss[k]));
	}
	close(lfd);

	/* Measured: from the spawns to the stop. */
	m0 = mark_begin();
	for (k = 0; k < conns; k++) {
		struct server_task s = { .base = { &server_vt }, .s = ss[k] };

		check_rouse("rouse_spawn",
			    rouse_spawn(ex, &s.base, sizeof(s), &sh[k]));
	}
	for (k = 0; k < conns; k++) {
		struct client_task c = {
			.base = { &client_vt }, .s = cs[k], .size = size,
			.conn = k,
		};

		c.msg = xcalloc(size, 1);
		c.back = xcalloc(size, 1);
		for (size_t j = 0; j < size; j++)
			c.msg[j] = (uint8_t)(k * 31 + j);
		check_rouse("rouse_spawn",
			    rouse_spawn(ex, &c.base, sizeof(c), &ch[k]));
	}
	root.reactor = reactor;
	root.secs = secs;
	root.clients.base.vtable = &join_all_vt;
	root.clients.h = ch;
	root.clients.n = conns;
	check_rouse("rouse_executor_block_on",
		    rouse_executor_block_on(ex, &root.base));
	check_joined("client", ch, conns);
	for (k = 0; k < conns; k++) {
		struct client_task *c = (struct client_task *)ch[k].output;

		rt += c->rt;
		free(c->msg);
		free(c->back);
		rouse_future_drop(&ch[k].base);
		/* The server sees the end of the stream and finishes. */
		check_rouse("rouse_stream_close", rouse_stream_close(cs[k]));
	}
	servers.h = sh;
	servers.n = conns;
	check_rouse("rouse_executor_block_on (servers)",
		    rouse_executor_block_on(ex, &servers.base));
	check_joined("server", sh, conns);

	wall = root.end.wall - m0.wall;
	if (rt == 0)
		fail("no round trip completed");
	print_phase(rt, m0, root.end);
	printf(" rtt_per_s=%.2f workers=%" PRIu64,
	       (double)rt * 1e9 / (double)wall, workers);
	for (unsigned int w = 0; w < workers; w++) {
		struct rouse_worker_metrics wm;

		check_rouse("rouse_executor_worker_metrics",
			    rouse_executor_worker_metrics(ex, w, &wm));
		printf(" driver_turns_w%u=%" PRIu64, w, wm.driver_turns);
	}
	print_end();

	for (k = 0; k < conns; k++) {
		rouse_future_drop(&sh[k].base);
		check_rouse("rouse_stream_close", rouse_stream_close(ss[k]));
	}
	check_rouse("rouse_executor_free", rouse_executor_free(ex));
	rouse_reactor_free(reactor);
	free(cs);
	free(ss);
	free(ch);
	free(sh);
}

const struct bench bench_echo_mt = {
	"echo-mt",
	{ { "conns", "100", 1, CONNS_MAX, NULL },
	  { "secs", "3", 1, SECS_MAX, NULL },
	  { "size", "64", 1, SIZE_MAX_ECHO, NULL },
	  { "workers", "2", 0, WORKERS_MAX, NULL } },
	NULL, run_echo_mt,
};
