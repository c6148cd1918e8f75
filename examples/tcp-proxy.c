// SPDX-License-Identifier: MIT
/*
 * examples/tcp-proxy.c - a TCP proxy: each connection to LISTEN is joined
 * to a new connection to UPSTREAM, both ways, until both ends are done.
 *
 *   examples/tcp-proxy LISTEN UPSTREAM     e.g. 127.0.0.1:8080 localhost:80
 *   examples/tcp-proxy 127.0.0.1:0 [::1]:7 port 0: the kernel picks one
 *
 * LISTEN is a numeric address as rouse_addr_parse(3) reads it (IPv4, or
 * IPv6 in brackets).  UPSTREAM is HOST:PORT, split at its last colon:
 * HOST a name ("localhost") or a numeric address (IPv6 in brackets), PORT
 * a number or a service name ("http").  The first line of output says
 * where it listens, the port included.
 *
 * Everything but the name lookups runs on one thread: a current-thread
 * executor whose parker is the reactor's, so the thread parks in
 * epoll_wait and readiness reaches the tasks with no thread hop.  The root
 * future accepts; every connection gets a task of its own, an async
 * function that connects upstream and awaits the bidirectional copy.  The
 * connect looks HOST up, on the reactor library's resolver threads (so a
 * slow name server holds up no other connection), and tries its addresses
 * in turn; each connection looks it up again, so a change of address is
 * followed.  The copy passes a half-close on each way (a client that
 * sends a request and shuts down its writing half still gets the whole
 * answer) and ends both ways on a reset.
 *
 * Stop it with SIGINT or SIGTERM: the signal handler notifies a user
 * event that the root future waits on; the tasks still running are
 * dropped by rouse_executor_free(), which closes their connections.
 */
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <rouse/async.h>
#include <rouse/executor.h>
#include <rouse/net.h>

/* One connection: an async function, moved into a task of its own. */
struct conn {
	struct rouse_future base;
	struct rouse_async co;
	struct rouse_reactor *reactor;
	const char *host, *port;	/* upstream */
	unsigned long id;
	struct rouse_stream *client, *server;
	struct rouse_tcp_connect_host connect;
	struct rouse_copy_bidi copy;
};

static enum rouse_poll conn_poll(struct rouse_future *f,
				 struct rouse_context *cx)
{
	struct conn *c = (struct conn *)f;
	char peer[ROUSE_ADDR_STRLEN];
	int err;

	ROUSE_ASYNC_BEGIN(&c->co, cx);
	err = rouse_tcp_connect_host_init(&c->connect, c->reactor, c->host,
					  c->port);
	if (err < 0) {
		fprintf(stderr, "tcp-proxy: connection %lu: connect: %s\n",
			c->id, strerror(-err));
		ROUSE_ASYNC_RETURN();	/* the drop closes the client */
	}
	ROUSE_AWAIT(&c->connect.base);
	err = c->connect.result;
	c->server = c->connect.stream;
	rouse_future_drop(&c->connect.base);
	if (err < 0 && c->connect.attempts == 0) {
		/* The lookup failed: getaddrinfo's words are the clearer. */
		fprintf(stderr, "tcp-proxy: connection %lu: upstream %s: %s\n",
			c->id, c->host, c->connect.gai_error != 0 ?
			gai_strerror(c->connect.gai_error) : strerror(-err));
		ROUSE_ASYNC_RETURN();
	}
	if (err < 0) {
		rouse_addr_format(&c->connect.peer, peer, sizeof(peer));
		fprintf(stderr, "tcp-proxy: connection %lu: upstream %s: "
			"%d address%s tried, the last %s: %s\n", c->id,
			c->host, c->connect.attempts,
			c->connect.attempts == 1 ? "" : "es", peer,
			strerror(-err));
		ROUSE_ASYNC_RETURN();
	}
	rouse_stream_set_nodelay(c->client, 1);
	rouse_stream_set_nodelay(c->server, 1);
	err = rouse_copy_bidirectional_init(&c->copy, c->client, c->server);
	if (err < 0) {
		fprintf(stderr, "tcp-proxy: connection %lu: %s\n", c->id,
			strerror(-err));
		ROUSE_ASYNC_RETURN();
	}
	ROUSE_AWAIT(&c->copy.base);
	if (c->copy.result < 0)
		fprintf(stderr, "tcp-proxy: connection %lu: %s after %llu "
			"bytes up, %llu down\n", c->id,
			strerror(-c->copy.result),
			(unsigned long long)c->copy.a_to_b,
			(unsigned long long)c->copy.b_to_a);
	rouse_future_drop(&c->copy.base);
	ROUSE_ASYNC_END();
}

/*
 * A task's future is dropped when it completes, or when the executor is
 * freed before that: either way the connections close here.  A future
 * that was dropped already, or never initialised (zeroed), has a NULL
 * vtable, and rouse_future_drop() does nothing with it.
 */
static void conn_drop(struct rouse_future *f)
{
	struct conn *c = (struct conn *)f;

	rouse_future_drop(&c->connect.base);
	rouse_future_drop(&c->copy.base);
	if (c->server != NULL)
		rouse_stream_close(c->server);
	if (c->client != NULL)
		rouse_stream_close(c->client);
}

static const struct rouse_future_vtable conn_vtable = {
	.poll = conn_poll,
	.drop = conn_drop,
};

/* The root future: accepts until the stop event comes. */
struct server {
	struct rouse_future base;
	struct rouse_executor *ex;
	struct rouse_reactor *reactor;
	struct rouse_tcp_listener *listener;
	const char *host, *port;	/* upstream */
	struct rouse_tcp_accept accept;
	struct rouse_event_wait stop;
	unsigned long accepted;
};

static struct rouse_event *stop_event;

static void on_signal(int sig)
{
	(void)sig;
	rouse_event_notify(stop_event);	/* async-signal-safe */
}

static void server_spawn(struct server *s, struct rouse_stream *client)
{
	struct conn c;
	int err;

	memset(&c, 0, sizeof(c));	/* co at its start, no live futures */
	c.base.vtable = &conn_vtable;
	c.reactor = s->reactor;
	c.host = s->host;
	c.port = s->port;
	c.id = s->accepted;
	c.client = client;
	/* Moved into the task, detached: it cleans up after itself. */
	err = rouse_spawn(s->ex, &c.base, sizeof(c), NULL);
	if (err < 0) {
		fprintf(stderr, "tcp-proxy: spawn: %s\n", strerror(-err));
		rouse_stream_close(client);
	}
}

static enum rouse_poll server_poll(struct rouse_future *f,
				   struct rouse_context *cx)
{
	struct server *s = (struct server *)f;

	if (rouse_future_poll(&s->stop.op.base, cx) == ROUSE_READY)
		return ROUSE_READY;
	while (rouse_future_poll(&s->accept.base, cx) == ROUSE_READY) {
		int err = s->accept.result;
		struct rouse_stream *client = s->accept.stream;

		rouse_future_drop(&s->accept.base);
		rouse_tcp_accept_init(&s->accept, s->listener);
		if (err < 0) {
			fprintf(stderr, "tcp-proxy: accept: %s\n",
				strerror(-err));
			continue;
		}
		s->accepted++;
		server_spawn(s, client);
	}
	return ROUSE_PENDING;
}

static void server_drop(struct rouse_future *f)
{
	struct server *s = (struct server *)f;

	rouse_future_drop(&s->accept.base);
	rouse_future_drop(&s->stop.op.base);
}

static const struct rouse_future_vtable server_vtable = {
	.poll = server_poll,
	.drop = server_drop,
};

/*
 * Split text, "HOST:PORT", at its last colon into *host and *port (in
 * text itself): "localhost:80" and "[::1]:80" give "localhost" and "::1",
 * and "80".  An IPv6 address takes brackets, so that its own colons are
 * not read as the one before the port.  Returns -1 when a part is empty,
 * a bracket has no pair, or HOST has a colon outside brackets.
 */
static int split_host_port(char *text, char **host, char **port)
{
	char *colon = strrchr(text, ':');
	size_t len;

	if (colon == NULL || colon[1] == '\0')
		return -1;
	*colon = '\0';
	*port = colon + 1;
	len = strlen(text);
	if (text[0] == '[') {
		if (len < 3 || text[len - 1] != ']')
			return -1;
		text[len - 1] = '\0';
		text++;
	} else if (len == 0 || strpbrk(text, ":[]") != NULL) {
		return -1;
	}
	*host = text;
	return 0;
}

int main(int argc, char **argv)
{
	struct server s = { .base.vtable = &server_vtable };
	struct rouse_executor_config cfg;
	struct rouse_parker parker;
	struct rouse_addr listen_at;
	char text[ROUSE_ADDR_STRLEN], *host, *port;
	int err;

	if (argc != 3) {
		fprintf(stderr, "usage: %s LISTEN UPSTREAM\n", argv[0]);
		return 2;
	}
	if (rouse_addr_parse(&listen_at, argv[1]) < 0) {
		fprintf(stderr, "tcp-proxy: LISTEN is a numeric address, as "
			"127.0.0.1:8080 or [::1]:8080\n");
		return 2;
	}
	if (split_host_port(argv[2], &host, &port) < 0) {
		fprintf(stderr, "tcp-proxy: UPSTREAM is HOST:PORT, as "
			"localhost:8080, 127.0.0.1:http or [::1]:8080\n");
		return 2;
	}
	s.host = host;
	s.port = port;

	err = rouse_reactor_new(&s.reactor, 0);
	if (err == 0)
		err = rouse_reactor_parker(s.reactor, &parker);
	if (err == 0) {
		rouse_executor_config_init(&cfg);
		/* Current-thread (the default), parking in the reactor. */
		cfg.parker = &parker;
		err = rouse_executor_new(&cfg, &s.ex);
	}
	if (err == 0)
		err = rouse_event_new(s.reactor, &stop_event);
	if (err < 0) {
		fprintf(stderr, "tcp-proxy: %s\n", strerror(-err));
		return 1;
	}
	err = rouse_tcp_listen(s.reactor, &listen_at, 0, 0, &s.listener);
	if (err == 0)
		err = rouse_tcp_listener_addr(s.listener, &listen_at);
	if (err == 0)
		err = rouse_addr_format(&listen_at, text, sizeof(text));
	if (err < 0) {
		fprintf(stderr, "tcp-proxy: listen on %s: %s\n", argv[1],
			strerror(-err));
		return 1;
	}
	rouse_tcp_accept_init(&s.accept, s.listener);
	rouse_event_wait_init(&s.stop, stop_event);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	printf("tcp-proxy: listening on %s\n", text);
	fflush(stdout);
	err = rouse_executor_block_on(s.ex, &s.base);
	printf("tcp-proxy: stopping after %lu connections\n", s.accepted);
	rouse_future_drop(&s.base);
	rouse_tcp_listener_close(s.listener);
	rouse_executor_free(s.ex);	/* drops the connections' tasks */
	rouse_event_free(stop_event);
	rouse_reactor_free(s.reactor);
	return err < 0 ? 1 : 0;
}
