// SPDX-License-Identifier: MIT
/*
 * examples/echo-server.c - a TCP echo server: one task per connection.
 *
 *   examples/echo-server PORT [ADDRESS]     default address 127.0.0.1
 *   nc 127.0.0.1 PORT                       type; every line comes back
 *
 * SIGINT or SIGTERM stops it; the executor then drops the connections.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <rouse/async.h>
#include <rouse/executor.h>
#include <rouse/net.h>
#include <rouse/signal.h>

struct conn {			/* a task: echo until the peer is done */
	struct rouse_future base;
	struct rouse_async co;
	struct rouse_stream *s;
	struct rouse_stream_rw io;
	char buf[16384];
};

static enum rouse_poll conn_poll(struct rouse_future *f,
				 struct rouse_context *cx)
{
	struct conn *c = (struct conn *)f;

	ROUSE_ASYNC_BEGIN(&c->co, cx);
	for (;;) {
		rouse_stream_read_init(&c->io, c->s, c->buf, sizeof(c->buf));
		ROUSE_AWAIT(&c->io.base);
		rouse_future_drop(&c->io.base);
		if (c->io.result <= 0)	/* the end of the stream, or an error */
			break;
		rouse_stream_write_all_init(&c->io, c->s, c->buf,
					    (size_t)c->io.result);
		ROUSE_AWAIT(&c->io.base);
		rouse_future_drop(&c->io.base);
		if (c->io.result < 0)
			break;
	}
	ROUSE_ASYNC_END();
}

static void conn_drop(struct rouse_future *f)
{
	struct conn *c = (struct conn *)f;

	rouse_future_drop(&c->io.base);	/* -EINVAL if none is in flight */
	rouse_stream_close(c->s);
}

static const struct rouse_future_vtable conn_vt = { conn_poll, conn_drop };

struct server {			/* the root: accept until a signal */
	struct rouse_future base;
	struct rouse_tcp_listener *listener;
	struct rouse_tcp_accept accept;
	struct rouse_signal_wait stop[2];
	unsigned long served;
};

static enum rouse_poll server_poll(struct rouse_future *f,
				   struct rouse_context *cx)
{
	struct server *sv = (struct server *)f;

	if (rouse_future_poll(&sv->stop[0].base, cx) == ROUSE_READY ||
	    rouse_future_poll(&sv->stop[1].base, cx) == ROUSE_READY)
		return ROUSE_READY;
	while (rouse_future_poll(&sv->accept.base, cx) == ROUSE_READY) {
		struct conn c = { .base = { &conn_vt }, .s = sv->accept.stream };

		if (sv->accept.result == 0 && rouse_spawn(NULL, &c.base,
							  sizeof(c), NULL) < 0)
			rouse_stream_close(c.s);
		sv->served += sv->accept.result == 0;
		rouse_future_drop(&sv->accept.base);
		rouse_tcp_accept_init(&sv->accept, sv->listener);
	}
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable server_vt = { server_poll, NULL };

int main(int argc, char **argv)
{
	struct server sv = { .base = { &server_vt } };
	struct rouse_executor_config cfg;
	struct rouse_executor *ex;
	struct rouse_reactor *r;
	struct rouse_signal *sig[2];
	struct rouse_parker parker;
	struct rouse_addr addr;
	char text[ROUSE_ADDR_STRLEN];
	int i, err;

	snprintf(text, sizeof(text), "%s:%s", argc > 2 ? argv[2] : "127.0.0.1",
		 argc > 1 ? argv[1] : "");
	if (argc < 2 || argc > 3 || rouse_addr_parse(&addr, text) < 0) {
		fprintf(stderr, "usage: %s PORT [ADDRESS]\n", argv[0]);
		return 2;
	}
	/* The executor's thread drives the reactor: no thread hop. */
	rouse_executor_config_init(&cfg);
	cfg.parker = &parker;
	if ((err = rouse_reactor_new(&r, 0)) < 0 ||
	    (err = rouse_reactor_parker(r, &parker)) < 0 ||
	    (err = rouse_executor_new(&cfg, &ex)) < 0 ||
	    (err = rouse_tcp_listen(r, &addr, 0, 0, &sv.listener)) < 0 ||
	    (err = rouse_signal_new(r, SIGINT, &sig[0])) < 0 ||
	    (err = rouse_signal_new(r, SIGTERM, &sig[1])) < 0) {
		fprintf(stderr, "echo-server: %s\n", strerror(-err));
		return 1;
	}
	rouse_tcp_listener_addr(sv.listener, &addr);
	rouse_addr_format(&addr, text, sizeof(text));
	printf("echo-server: listening on %s\n", text);
	fflush(stdout);
	rouse_tcp_accept_init(&sv.accept, sv.listener);
	for (i = 0; i < 2; i++)
		rouse_signal_wait_init(&sv.stop[i], sig[i]);
	rouse_executor_block_on(ex, &sv.base);
	printf("echo-server: stopping after %lu connections\n", sv.served);
	rouse_future_drop(&sv.accept.base);
	rouse_executor_free(ex);	/* drops the connections still open */
	for (i = 0; i < 2; i++) {
		rouse_future_drop(&sv.stop[i].base);
		rouse_signal_free(sig[i]);
	}
	rouse_tcp_listener_close(sv.listener);
	rouse_reactor_free(r);
	return 0;
}
