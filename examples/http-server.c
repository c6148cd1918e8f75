// SPDX-License-Identifier: MIT
/*
 * examples/http-server.c - an HTTP/1.1 server: keep-alive, pipelining, a
 * fixed body on GET /, and the errors a real server owes its clients.
 *
 *   examples/http-server [--workers N] [--timeout MS] [--work US]
 *                        PORT [ADDRESS]
 *   curl http://127.0.0.1:PORT/
 *
 * One task per connection, on a current-thread executor whose thread
 * drives the reactor; with --workers N, on a multi-thread executor of N
 * workers.  A connection answers every complete request in its buffer
 * with one write (pipelining), 400 and closes on a malformed request, 431
 * when the headers pass 8 KiB, 408 when a request stays incomplete for
 * --timeout milliseconds (default 10000).  SIGINT or SIGTERM stops it
 * gracefully: the root cancels the server's token and stops accepting;
 * each connection sees the token, finishes the request it is in and
 * closes once idle; rouse_executor_shutdown() gives them --timeout to do
 * so; and it exits 0, printing each worker's counters
 * (rouse_executor_worker_metrics(3)) on stderr.  --work US makes every
 * GET / compute for US microseconds first, for benchmarks of scaling.
 */
#include <ctype.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <rouse/executor.h>
#include <rouse/net.h>
#include <rouse/signal.h>
#include <rouse/sync.h>

#define HEAD_MAX 8192			/* request line and headers */
#define OUT_MAX 8192			/* answers of one batch */

static const char OK[] = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n"
			 "Content-Type: text/plain\r\n\r\nHello, world!";

struct server {
	struct rouse_reactor *reactor;
	struct rouse_cancel_token *stop;	/* cancelled: the server stops */
	int64_t timeout_ns;
	int64_t work_ns;		/* --work: compute per GET / */
};

struct conn {
	struct rouse_future base;
	struct server *srv;
	struct rouse_stream *s;
	struct rouse_stream_rw rd, wr;	/* vtable NULL when not in flight */
	struct rouse_sleep timer;	/* a request that stalls: 408 */
	struct rouse_cancel_token_wait stop;
	bool writing, closing, timing, watching, stopped;
	size_t have, out_len;
	char in[HEAD_MAX];
	char out[OUT_MAX];
};

static void put(struct conn *c, const char *text, size_t len)
{
	memcpy(c->out + c->out_len, text, len);
	c->out_len += len;
}

/* An answer with no body. */
static void empty(struct conn *c, const char *status, bool closing)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "HTTP/1.1 %s\r\nContent-Length: 0"
			 "\r\n%s\r\n", status,
			 closing ? "Connection: close\r\n" : "");

	put(c, line, (size_t)n);
}

/* An error answer, after which the connection closes. */
static void fail(struct conn *c, const char *status)
{
	empty(c, status, true);
	c->closing = true;
	c->have = 0;
}

static bool header_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

/* Stand-in for a handler's real work: the CPU busy for ns. */
static void compute(int64_t ns)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000000000 + (t.tv_nsec - t0.tv_nsec) <
	       ns);
}

/*
 * Answer the request at the start of c->in, whose head ends at head_end
 * (just after its empty line).  Returns its length with any body, 0 when
 * its body is not all here yet, or -1 after an error answer.
 */
static long answer(struct conn *c, const char *head_end)
{
	const char *p = c->in, *eol = memchr(p, '\r', (size_t)(head_end - p));
	const char *sp1 = memchr(p, ' ', (size_t)(eol - p)), *sp2;
	bool get, head, keep = true;
	unsigned long body = 0;

	for (sp2 = eol; sp1 != NULL && sp2 > sp1 + 1 && sp2[-1] != ' '; sp2--)
		;
	if (sp1 == NULL || sp1 == p || sp2 <= sp1 + 1 || eol[1] != '\n' ||
	    eol - sp2 != 8 || memcmp(sp2, "HTTP/1.", 7) != 0 ||
	    (sp2[7] != '0' && sp2[7] != '1')) {
		fail(c, "400 Bad Request");
		return -1;
	}
	if (sp2[7] == '0')
		keep = false;
	for (p = eol + 2; p < head_end - 2; p = eol + 2) {
		eol = memmem(p, (size_t)(head_end - p), "\r\n", 2);
		if (memchr(p, ':', (size_t)(eol - p)) == NULL) {
			fail(c, "400 Bad Request");
			return -1;
		}
		if (header_is(p, (size_t)(eol - p), "connection"))
			keep = memmem(p, (size_t)(eol - p), "close", 5) == NULL &&
			       (keep || memmem(p, (size_t)(eol - p),
					       "eep-alive", 9) != NULL);
		else if (header_is(p, (size_t)(eol - p), "content-length"))
			body = strtoul(p + 15, NULL, 10);
		else if (header_is(p, (size_t)(eol - p), "transfer-encoding")) {
			fail(c, "501 Not Implemented");
			return -1;
		}
	}
	if (body > sizeof(c->in) - (size_t)(head_end - c->in)) {
		fail(c, "413 Content Too Large");
		return -1;
	}
	if ((size_t)(head_end - c->in) + body > c->have)
		return 0;
	get = sp1 - c->in == 3 && memcmp(c->in, "GET", 3) == 0;
	head = sp1 - c->in == 4 && memcmp(c->in, "HEAD", 4) == 0;
	if (!get && !head)
		empty(c, "405 Method Not Allowed", !keep);
	else if (sp2 - sp1 != 3 || sp1[1] != '/')
		empty(c, "404 Not Found", !keep);
	else
		put(c, OK, head ? sizeof(OK) - 14 : sizeof(OK) - 1);
	if (get && c->srv->work_ns > 0)
		compute(c->srv->work_ns);
	if (!keep)
		c->closing = true;
	return (head_end - c->in) + (long)body;
}

/* Answer every complete request in the buffer: pipelining in one write. */
static void answer_all(struct conn *c)
{
	while (c->have > 0 && !c->closing &&
	       c->out_len + sizeof(OK) + 128 <= sizeof(c->out)) {
		char *end = memmem(c->in, c->have, "\r\n\r\n", 4);
		long used;

		if (end == NULL) {
			if (c->have == sizeof(c->in))
				fail(c, "431 Request Header Fields Too Large");
			return;
		}
		used = answer(c, end + 4);
		if (used <= 0)
			return;
		c->have -= (size_t)used;
		memmove(c->in, c->in + used, c->have);
	}
}

static enum rouse_poll conn_poll(struct rouse_future *f,
				 struct rouse_context *cx)
{
	struct conn *c = (struct conn *)f;
	struct server *srv = c->srv;

	for (;;) {
		if (c->writing) {
			if (rouse_future_poll(&c->wr.base, cx) == ROUSE_PENDING)
				return ROUSE_PENDING;
			rouse_future_drop(&c->wr.base);
			c->writing = false;
			c->out_len = 0;
			if (c->wr.result < 0 || c->closing)
				return ROUSE_READY;
		}
		answer_all(c);
		if (c->out_len > 0) {
			rouse_stream_write_all_init(&c->wr, c->s, c->out,
						    c->out_len);
			c->writing = true;
			continue;
		}
		/* Woken when the server stops, to close if idle (below). */
		if (!c->watching && !c->stopped) {
			rouse_cancel_token_wait_init(&c->stop, srv->stop);
			c->watching = true;
		}
		if (c->watching &&
		    rouse_future_poll(&c->stop.base, cx) == ROUSE_READY) {
			rouse_future_drop(&c->stop.base);
			c->watching = false;
			c->stopped = true;
		}
		/* Half a request: it has until the timer to come whole. */
		if (c->have > 0 && !c->timing) {
			rouse_sleep_init(&c->timer, srv->reactor,
					 srv->timeout_ns);
			c->timing = true;
		} else if (c->have == 0 && c->timing) {
			rouse_future_drop(&c->timer.base);
			c->timing = false;
		}
		if (c->timing &&
		    rouse_future_poll(&c->timer.base, cx) == ROUSE_READY) {
			fail(c, "408 Request Timeout");
			continue;
		}
		if (c->rd.base.vtable == NULL)
			rouse_stream_read_init(&c->rd, c->s, c->in + c->have,
					       sizeof(c->in) - c->have);
		if (rouse_future_poll(&c->rd.base, cx) == ROUSE_PENDING) {
			/*
			 * Nothing more has come.  A stopping server closes a
			 * connection that is idle between requests; one with
			 * half a request waits for the rest.
			 */
			if (c->have == 0 && c->stopped)
				return ROUSE_READY;
			return ROUSE_PENDING;
		}
		rouse_future_drop(&c->rd.base);
		if (c->rd.result <= 0)
			return ROUSE_READY;	/* the client is done */
		c->have += (size_t)c->rd.result;
	}
}

static void conn_drop(struct rouse_future *f)
{
	struct conn *c = (struct conn *)f;

	rouse_future_drop(&c->rd.base);	/* each -EINVAL if not in flight */
	rouse_future_drop(&c->wr.base);
	if (c->timing)
		rouse_future_drop(&c->timer.base);
	if (c->watching)
		rouse_future_drop(&c->stop.base);
	rouse_stream_close(c->s);
}

static const struct rouse_future_vtable conn_vt = { conn_poll, conn_drop };

/* The root: accept until a signal, then cancel the server's token. */
struct root {
	struct rouse_future base;
	struct server *srv;
	struct rouse_tcp_listener *listener;
	struct rouse_tcp_accept accept;
	struct rouse_signal_wait sig[2];
};

static enum rouse_poll root_poll(struct rouse_future *f,
				 struct rouse_context *cx)
{
	struct root *rt = (struct root *)f;
	struct server *srv = rt->srv;

	if (rouse_future_poll(&rt->sig[0].base, cx) == ROUSE_READY ||
	    rouse_future_poll(&rt->sig[1].base, cx) == ROUSE_READY) {
		rouse_future_drop(&rt->accept.base);
		rouse_tcp_listener_close(rt->listener);
		rouse_cancel_token_cancel(srv->stop);
		return ROUSE_READY;
	}
	while (rouse_future_poll(&rt->accept.base, cx) == ROUSE_READY) {
		struct conn *c = calloc(1, sizeof(*c));

		if (rt->accept.result == 0 && c != NULL) {
			c->base.vtable = &conn_vt;
			c->srv = srv;
			c->s = rt->accept.stream;
			rouse_stream_set_nodelay(c->s, 1);
			if (rouse_spawn(NULL, &c->base, sizeof(*c), NULL) < 0)
				conn_drop(&c->base);
		} else if (rt->accept.result == 0) {
			rouse_stream_close(rt->accept.stream);
		}
		free(c);	/* spawn copied it */
		rouse_future_drop(&rt->accept.base);
		rouse_tcp_accept_init(&rt->accept, rt->listener);
	}
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable root_vt = { root_poll, NULL };

int main(int argc, char **argv)
{
	struct server srv = { .timeout_ns = 10000000000 };
	struct root rt = { .base = { &root_vt }, .srv = &srv };
	struct rouse_executor_config cfg;
	struct rouse_shutdown_report rep;
	struct rouse_executor *ex;
	struct rouse_signal *sig[2];
	struct rouse_parker parker;
	struct rouse_addr addr;
	char text[ROUSE_ADDR_STRLEN];
	unsigned int workers = 0;
	int i = 1, err;

	for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		if (strcmp(argv[i], "--workers") == 0)
			workers = (unsigned int)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--timeout") == 0)
			srv.timeout_ns = atoll(argv[i + 1]) * 1000000;
		else if (strcmp(argv[i], "--work") == 0)
			srv.work_ns = atoll(argv[i + 1]) * 1000;
		else
			break;
	}
	snprintf(text, sizeof(text), "%s:%s",
		 i + 1 < argc ? argv[i + 1] : "127.0.0.1",
		 i < argc ? argv[i] : "");
	if (i >= argc || argc - i > 2 || rouse_addr_parse(&addr, text) < 0) {
		fprintf(stderr, "usage: %s [--workers N] [--timeout MS] "
			"[--work US] PORT [ADDRESS]\n", argv[0]);
		return 2;
	}
	/* The reactor is driven by the executor's thread(s). */
	rouse_executor_config_init(&cfg);
	cfg.parker = &parker;
	if (workers > 0) {
		cfg.kind = ROUSE_EXECUTOR_MULTI_THREAD;
		cfg.workers = workers;
	}
	if ((err = rouse_reactor_new(&srv.reactor, 0)) < 0 ||
	    (err = rouse_reactor_parker(srv.reactor, &parker)) < 0 ||
	    (err = rouse_executor_new(&cfg, &ex)) < 0 ||
	    (err = rouse_cancel_token_new(&srv.stop)) < 0 ||
	    (err = rouse_tcp_listen(srv.reactor, &addr, 0, 0,
				    &rt.listener)) < 0 ||
	    (err = rouse_signal_new(srv.reactor, SIGINT, &sig[0])) < 0 ||
	    (err = rouse_signal_new(srv.reactor, SIGTERM, &sig[1])) < 0) {
		fprintf(stderr, "http-server: %s\n", strerror(-err));
		return 1;
	}
	rouse_tcp_listener_addr(rt.listener, &addr);
	rouse_addr_format(&addr, text, sizeof(text));
	printf("http-server: listening on %s\n", text);
	fflush(stdout);
	rouse_tcp_accept_init(&rt.accept, rt.listener);
	for (i = 0; i < 2; i++)
		rouse_signal_wait_init(&rt.sig[i], sig[i]);
	/* Accept until a signal; then the connections have --timeout. */
	err = rouse_executor_block_on(ex, &rt.base);
	if (err == 0)
		err = rouse_executor_shutdown(ex, srv.timeout_ns, &rep);
	if (err == 0)
		printf("http-server: stopped; %llu connection(s) finished, "
		       "%llu cut\n", (unsigned long long)rep.completed,
		       (unsigned long long)rep.aborted);
	for (i = 0;; i++) {
		struct rouse_worker_metrics m;

		if (rouse_executor_worker_metrics(ex, (unsigned int)i, &m) < 0)
			break;
		fprintf(stderr, "http-server: worker %d: %llu polls, %llu "
			"steals, %llu parks, %llu driver turns\n", i,
			(unsigned long long)m.polls,
			(unsigned long long)m.steals,
			(unsigned long long)m.parks,
			(unsigned long long)m.driver_turns);
	}
	rouse_executor_free(ex);
	for (i = 0; i < 2; i++) {
		rouse_future_drop(&rt.sig[i].base);
		rouse_signal_free(sig[i]);
	}
	rouse_cancel_token_free(srv.stop);
	rouse_reactor_free(srv.reactor);
	return err < 0 ? 1 : 0;
}
