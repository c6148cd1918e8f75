// SPDX-License-Identifier: MIT
/*
 * bench/fds.c - the fds benchmark: libevent's bench.c ring on a driven
 * reactor, a read future per socketpair, per-fd wakers feeding a ready
 * queue.  Calls only rouse, the harness (bench.h) and the leaf wakers
 * (leaf.h).
 *
 * Every read end is registered and has a read future, polled with the
 * pair's own qwaker; the reactor's wake of pair i queues i, and the root
 * future polls the read futures of the queued pairs only.  A read that
 * returns its bytes passes the tokens on (one send into the next pair per
 * byte while writes remain) and the pair's next read future is polled at
 * once: it takes more bytes if some are there, or leaves the waker with
 * the reactor.
 *
 * Extra key read_bytes= (default 64): the length of each read future.
 * A read takes every byte that is there, and each byte read passes one
 * token on (the contract allows it); ops stay bytes.  An edge-triggered
 * reactor learns that a socket is empty from a short read; a read of
 * exactly one byte is never short, so read_bytes=1 costs an extra EAGAIN
 * read per event, which the level-triggered peers do not need.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rouse/executor.h>
#include <rouse/reactor.h>

#include "bench.h"
#include "leaf.h"

/* Most pairs: their indexes fit the ready queue's 32 bits. */
#define FDS_MAX (UINT64_C(1) << 28)
#define FDS_READ_MAX 65536

struct fd_pair {
	struct rouse_io_rw rd;	/* the read in flight */
	struct rouse_io *io;
	struct qwaker qw;
	int rfd, wfd;
};

static struct fds_bench {
	struct rouse_reactor *reactor;
	struct readyq q;
	struct fd_pair *pair;
	uint64_t n;
	uint64_t writes_left;
	uint64_t written;	/* bytes written, the initial tokens too */
	uint64_t read;		/* bytes read */
	uint64_t failures;	/* failed reads and writes */
	size_t read_len;
	char *buf;		/* shared: each read is consumed at once */
} fx;

static void fds_read_init(struct fd_pair *p)
{
	check_rouse("rouse_io_read_init",
		    rouse_io_read_init(&p->rd, p->io, fx.buf, fx.read_len));
}

/* Drive pair i until its read is pending again. */
static void fds_drive(uint32_t i)
{
	struct fd_pair *p = &fx.pair[i];
	struct rouse_waker w = qwaker_of(&p->qw);

	while (poll_with(&p->rd.op.base, &w) == ROUSE_READY) {
		ssize_t got = p->rd.result;
		uint32_t next = i + 1 == fx.n ? 0 : i + 1;

		rouse_future_drop(&p->rd.op.base);
		fds_read_init(p);
		if (got <= 0) {
			/* EOF or an error: the pair is broken for good. */
			fx.failures++;
			return;
		}
		fx.read += (uint64_t)got;
		/* One token on per byte read, while writes remain. */
		while (got-- > 0 && fx.writes_left > 0) {
			if (send(fx.pair[next].wfd, "e", 1, 0) != 1) {
				fx.failures++;
				break;
			}
			fx.writes_left--;
			fx.written++;
		}
	}
}

static enum rouse_poll fds_poll(struct rouse_future *self,
				struct rouse_context *cx)
{
	uint32_t i;

	(void)self;
	root_waker_keep(&fx.q.root, cx);
	while (readyq_pop(&fx.q, &i))
		fds_drive(i);
	if (fx.failures != 0 ||
	    (fx.writes_left == 0 && fx.read == fx.written))
		return ROUSE_READY;
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable fds_vtable = {
	.poll = fds_poll,
};

static void run_fds(const struct args *a)
{
	struct rouse_future root = { &fds_vtable };
	struct rouse_parker parker;
	uint64_t n = arg(a, "fds"), active = arg(a, "active");
	uint64_t writes = arg(a, "writes"), space, i, k;
	struct mark m0, m1;
	int woken;

	need_fds(2 * n + 64);
	memset(&fx, 0, sizeof(fx));
	fx.n = n;
	fx.writes_left = writes;
	fx.read_len = (size_t)arg(a, "read_bytes");
	fx.buf = xcalloc(fx.read_len, 1);
	fx.pair = xcalloc(n, sizeof(*fx.pair));
	readyq_init(&fx.q, (uint32_t)n);
	fx.reactor = driven_reactor(a, &parker);
	for (i = 0; i < n; i++) {
		struct fd_pair *p = &fx.pair[i];
		struct rouse_waker w;
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
			       SOCK_CLOEXEC, 0, sv) != 0)
			fail("socketpair #%" PRIu64 ": %s", i,
			     strerror(errno));
		p->rfd = sv[0];
		p->wfd = sv[1];
		p->qw.q = &fx.q;
		p->qw.idx = (uint32_t)i;
		check_rouse("rouse_io_register",
			    rouse_io_register(fx.reactor, p->rfd, &p->io));
		fds_read_init(p);
		w = qwaker_of(&p->qw);
		if (poll_with(&p->rd.op.base, &w) == ROUSE_READY)
			fail("pair %" PRIu64 " had data before the run", i);
	}
	/* One non-blocking pass: the registrations' first events. */
	woken = rouse_reactor_turn(fx.reactor, 0);
	check_rouse("rouse_reactor_turn", woken < 0 ? woken : 0);
	if (woken != 0 || fx.q.len != 0)
		fail("a read end was readable before the run");
	space = n / active;
	for (k = 0; k < active; k++) {
		if (send(fx.pair[k * space].wfd, "e", 1, 0) != 1)
			fail_err("send (initial token)", errno);
		fx.written++;
	}

	m0 = mark_begin();
	check_rouse("rouse_block_on_with", rouse_block_on_with(&root, &parker));
	m1 = mark_end();

	if (fx.failures != 0)
		fail("%" PRIu64 " failed reads/writes", fx.failures);
	if (fx.read != active + writes || fx.written != fx.read)
		fail("handled %" PRIu64 " events, wrote %" PRIu64 ", expected %"
		     PRIu64, fx.read, fx.written, active + writes);
	for (i = 0; i < n; i++) {
		char ch;

		if (recv(fx.pair[i].rfd, &ch, 1, MSG_DONTWAIT) >= 0 ||
		    (errno != EAGAIN && errno != EWOULDBLOCK))
			fail("socketpair %" PRIu64 " still holds data after "
			     "the run", i);
	}

	for (i = 0; i < n; i++) {
		rouse_future_drop(&fx.pair[i].rd.op.base);
		check_rouse("rouse_io_deregister",
			    rouse_io_deregister(fx.pair[i].io));
		close(fx.pair[i].rfd);
		close(fx.pair[i].wfd);
	}
	readyq_free(&fx.q);
	rouse_reactor_free(fx.reactor);
	free(fx.pair);
	free(fx.buf);

	print_phase(fx.read, m0, m1);
	printf(" read_bytes=%zu", fx.read_len);
	print_end();
}

/* active > fds is a bad parameter (exit 2), as the contract says. */
static const char *check_fds(const struct args *a)
{
	static char msg[96];

	if (arg(a, "active") <= arg(a, "fds"))
		return NULL;
	snprintf(msg, sizeof(msg), "active=%" PRIu64 " exceeds fds=%" PRIu64,
		 arg(a, "active"), arg(a, "fds"));
	return msg;
}

const struct bench bench_fds = {
	"fds",
	{ { "fds", "1000", 2, FDS_MAX, NULL }, COUNT("active", "100"),
	  { "writes", "100000", 0, COUNT_MAX, NULL },
	  { "read_bytes", "64", 1, FDS_READ_MAX, NULL }, REACTOR },
	check_fds, run_fds,
};
