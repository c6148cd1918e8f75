// SPDX-License-Identifier: MIT
/* tests/check_io.c - fd sources and the I/O futures: readiness, TCP, echo. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rouse/executor.h>
#include <rouse/reactor.h>

#include "testutil.h"

/* A pointer no allocation returns: *out must not be touched on failure. */
#define SENTINEL ((struct rouse_io *)(void *)0x5e47)

/* ---- shared scaffolding -------------------------------------------- */

/* Register fd on r; returns its source. */
static struct rouse_io *io_reg(struct rouse_reactor *r, int fd)
{
	struct rouse_io *io = NULL;

	ck_assert_int_eq(rouse_io_register(r, fd, &io), 0);
	ck_assert_ptr_nonnull(io);
	ck_assert_int_eq(rouse_io_fd(io), fd);
	return io;
}

/* A new pair whose first end is registered on r: the source returned. */
static struct rouse_io *pair_reg(struct rouse_reactor *r, int sv[2])
{
	test_pair_make(sv);
	return io_reg(r, sv[0]);
}

/* Deregister io, the source of the pair sv, and close both ends. */
static void pair_unreg(struct rouse_io *io, int sv[2])
{
	ck_assert_int_eq(rouse_io_deregister(io), 0);
	close(sv[0]);
	close(sv[1]);
}

/* The scene of most readiness tests: a reactor, a source, a waker. */
struct io_fixture {
	struct rouse_reactor *r;
	struct counting_waker cw;
	struct rouse_waker w;
	struct rouse_io *io;	/* registered on r: the first end of sv */
	int sv[2];
};

/* Make the reactor, the waker (its first reference) and the source. */
static void io_fixture_init(struct io_fixture *fx)
{
	fx->r = test_reactor_make();
	fx->w = counting_waker(&fx->cw);
	fx->io = pair_reg(fx->r, fx->sv);
}

/* Drop the last reference to the waker; free the source and reactor. */
static void io_fixture_free(struct io_fixture *fx)
{
	counting_waker_drop_last(&fx->w, &fx->cw);
	pair_unreg(fx->io, fx->sv);
	rouse_reactor_free(fx->r);
}

/* Nothing here may die of SIGPIPE: a write to a closed peer is -EPIPE. */
static void setup_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
}

/*
 * Poll f with w; if it is pending, one turn of r without blocking must
 * wake w (the kernel already has the event) and the next poll be ready.
 */
static void ready_after_turn(struct rouse_reactor *r, struct rouse_future *f,
			     struct rouse_waker *w, struct counting_waker *cw)
{
	int wakes = atomic_load(&cw->wakes);

	if (test_poll_with(f, w) == ROUSE_READY)
		return;
	ck_assert_int_ge(rouse_reactor_turn(r, 0), 1);
	ck_assert_int_eq(atomic_load(&cw->wakes), wakes + 1);
	ck_assert_int_eq(test_poll_with(f, w), ROUSE_READY);
}

/* Poll a new readiness future (made by init) on io once with w; drop it. */
static int poll_fresh(int (*init)(struct rouse_io_ready *, struct rouse_io *),
		      struct rouse_io *io, struct rouse_waker *w)
{
	struct rouse_io_ready f;
	int p;

	ck_assert_int_eq(init(&f, io), 0);
	p = test_poll_with(&f.op.base, w);
	ck_assert_int_eq(rouse_future_drop(&f.op.base), 0);
	return p;
}

/* What a new future waiting for io to be readable says to one poll. */
static int poll_readable(struct rouse_io *io, struct rouse_waker *w)
{
	return poll_fresh(rouse_io_readable_init, io, w);
}

/* What a new future waiting for io to be writable says to one poll. */
static int poll_writable(struct rouse_io *io, struct rouse_waker *w)
{
	return poll_fresh(rouse_io_writable_init, io, w);
}

/*
 * op, just set up by a call that returned init_err, must be ready at its
 * first poll with w; it is dropped, and its result returned.
 */
static ssize_t rw_now(struct rouse_io_rw *op, int init_err,
		      struct rouse_waker *w)
{
	ck_assert_int_eq(init_err, 0);
	ck_assert_int_eq(test_poll_with(&op->op.base, w), ROUSE_READY);
	ck_assert_int_eq(rouse_future_drop(&op->op.base), 0);
	return op->result;
}

/* The result of a read into buf from io, ready at its first poll. */
static ssize_t read_now(struct rouse_io *io, void *buf, size_t len,
			struct rouse_waker *w)
{
	struct rouse_io_rw op;

	return rw_now(&op, rouse_io_read_init(&op, io, buf, len), w);
}

/* The result of a write of buf to io, ready at its first poll. */
static ssize_t write_now(struct rouse_io *io, const void *buf, size_t len,
			 struct rouse_waker *w)
{
	struct rouse_io_rw op;

	return rw_now(&op, rouse_io_write_init(&op, io, buf, len), w);
}

/*
 * rd, a read into buf, waits with w, whose counter c has seen no wake yet:
 * once data is written to peer, one turn of r must wake c, and rd be ready
 * with that data.
 */
static void read_arrives(struct rouse_reactor *r, int peer, const char *data,
			 struct rouse_io_rw *rd, char *buf,
			 struct rouse_waker *w, struct counting_waker *c)
{
	size_t n = strlen(data);

	ck_assert_int_eq(write(peer, data, n), n);
	ck_assert_int_eq(rouse_reactor_turn(r, 0), 1);
	ck_assert_int_eq(atomic_load(&c->wakes), 1);
	ck_assert_int_eq(test_poll_with(&rd->op.base, w), ROUSE_READY);
	ck_assert_int_eq(rd->result, n);
	ck_assert_int_eq(memcmp(buf, data, n), 0);
	ck_assert_int_eq(rouse_future_drop(&rd->op.base), 0);
}

/* ---- registering ----------------------------------------------------- */

static int tmpfile_fd(void)
{
	char path[] = "/tmp/rouse-check-io-XXXXXX";
	int fd;

	fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	fd = mkostemp(path, O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	return fd;
}

START_TEST(test_register_errors)
{
	struct rouse_reactor *r;
	struct rouse_io *io, *keep, *other;
	struct counting_waker cw;
	struct rouse_waker w;
	struct rouse_io_rw rd;
	char buf[8];
	int sv[2], sq[2], p[2], file, closed, fds0;

	fds0 = test_count_fds();
	r = test_reactor_make();
	/* A source with a read pending, which nothing below may disturb. */
	keep = pair_reg(r, sv);
	w = counting_waker(&cw);
	ck_assert_int_eq(rouse_io_read_init(&rd, keep, buf, sizeof(buf)), 0);
	ck_assert_int_eq(test_poll_with(&rd.op.base, &w), ROUSE_PENDING);

	io = SENTINEL;
	ck_assert_int_eq(rouse_io_register(r, -1, &io), -EBADF);
	ck_assert_int_eq(rouse_io_register(r, -100, &io), -EBADF);
	ck_assert_ptr_eq(io, SENTINEL);
	/* A number that is not open (any more). */
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	closed = p[1];
	close(p[1]);
	ck_assert_int_eq(rouse_io_register(r, closed, &io), -EBADF);
	ck_assert_ptr_eq(io, SENTINEL);
	/* A regular file: epoll cannot watch it. */
	file = tmpfile_fd();
	ck_assert_int_eq(rouse_io_register(r, file, &io), -EPERM);
	ck_assert_ptr_eq(io, SENTINEL);
	/* Registered twice. */
	other = pair_reg(r, sq);
	ck_assert_int_eq(rouse_io_register(r, sq[0], &io), -EEXIST);
	ck_assert_ptr_eq(io, SENTINEL);
	ck_assert_int_eq(rouse_io_register(r, sv[0], &io), -EEXIST);
	ck_assert_ptr_eq(io, SENTINEL);
	ck_assert_int_eq(counting_waker_total_wakes(&cw), 0);

	/* The pending read is still there and completes. */
	read_arrives(r, sv[1], "hello", &rd, buf, &w, &cw);
	counting_waker_drop_last(&w, &cw);

	/* Deregistered, the fd may be registered again. */
	ck_assert_int_eq(rouse_io_deregister(other), 0);
	other = io_reg(r, sq[0]);
	ck_assert_int_eq(rouse_io_deregister(other), 0);
	ck_assert_int_eq(rouse_io_deregister(keep), 0);
	close(p[0]);
	close(file);
	close(sv[0]);
	close(sv[1]);
	close(sq[0]);
	close(sq[1]);
	rouse_reactor_free(r);
	ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

START_TEST(test_register_many)
{
	enum { N = 1000 };
	static int sv[N][2];
	static struct rouse_io *io[N];
	struct rouse_reactor *r = test_reactor_make();
	int fds0 = test_count_fds();
	int i, round;

	/* Slots are taken, given back and reused across rounds. */
	for (round = 0; round < 3; round++) {
		for (i = 0; i < N / 2; i++)
			io[i] = pair_reg(r, sv[i]);
		for (i = 0; i < N / 2; i += 2)
			ck_assert_int_eq(rouse_io_deregister(io[i]), 0);
		for (i = 0; i < N / 2; i += 2)
			io[i] = io_reg(r, sv[i][0]);
		for (i = N / 2 - 1; i >= 0; i--)
			pair_unreg(io[i], sv[i]);
		ck_assert_int_eq(test_count_fds(), fds0);
	}
	ck_assert_int_eq(rouse_reactor_turn(r, 0), 0);
	rouse_reactor_free(r);
}
END_TEST

/* ---- readiness --------------------------------------------------------- */

START_TEST(test_readable_writable)
{
	struct io_fixture fx;
	struct rouse_io_ready rf, wf;
	char c;

	io_fixture_init(&fx);
	/* Writable from the start. */
	ck_assert_int_eq(rouse_io_writable_init(&wf, fx.io), 0);
	wf.result = 1;
	ready_after_turn(fx.r, &wf.op.base, &fx.w, &fx.cw);
	ck_assert_int_eq(wf.result, 0);
	ck_assert(wf.events & ROUSE_IO_WRITABLE);
	ck_assert(!(wf.events & (ROUSE_IO_READABLE | ROUSE_IO_HANGUP |
				 ROUSE_IO_ERROR)));
	ck_assert_int_eq(rouse_future_drop(&wf.op.base), 0);
	/* Not readable until the peer writes. */
	ck_assert_int_eq(rouse_io_readable_init(&rf, fx.io), 0);
	ck_assert_int_eq(test_poll_with(&rf.op.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(rouse_reactor_turn(fx.r, 0), 0);
	ck_assert_int_eq(test_poll_with(&rf.op.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(write(fx.sv[1], "x", 1), 1);
	ready_after_turn(fx.r, &rf.op.base, &fx.w, &fx.cw);
	ck_assert_int_eq(rf.result, 0);
	ck_assert(rf.events & ROUSE_IO_READABLE);
	ck_assert(!(rf.events & (ROUSE_IO_HANGUP | ROUSE_IO_READ_HANGUP)));
	ck_assert_int_eq(rouse_future_drop(&rf.op.base), 0);
	ck_assert_int_eq(read(fx.sv[0], &c, 1), 1);
	/* Each waiting future took a clone, and gave it back. */
	ck_assert_int_eq(atomic_load(&fx.cw.wakes), 2);
	io_fixture_free(&fx);
}
END_TEST

START_TEST(test_hangup)
{
	struct io_fixture fx;
	struct rouse_io_ready rf, wf;
	struct rouse_io *io;
	char buf[8];
	int sv[2];

	setup_sigpipe();
	/* The peer shuts down its writing side: read hang-up, no hang-up. */
	io_fixture_init(&fx);
	ck_assert_int_eq(rouse_io_readable_init(&rf, fx.io), 0);
	ck_assert_int_eq(rouse_reactor_turn(fx.r, 0), 0);
	ck_assert_int_eq(test_poll_with(&rf.op.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(shutdown(fx.sv[1], SHUT_WR), 0);
	ready_after_turn(fx.r, &rf.op.base, &fx.w, &fx.cw);
	ck_assert_int_eq(rf.result, 0);
	ck_assert(rf.events & ROUSE_IO_READ_HANGUP);
	ck_assert(!(rf.events & ROUSE_IO_HANGUP));
	ck_assert_int_eq(rouse_future_drop(&rf.op.base), 0);
	ck_assert_int_eq(read_now(fx.io, buf, sizeof(buf), &fx.w), 0);

	/* The peer closes: both hang-ups, and end of file. */
	io = pair_reg(fx.r, sv);
	ck_assert_int_eq(rouse_io_readable_init(&rf, io), 0);
	ck_assert_int_eq(rouse_reactor_turn(fx.r, 0), 0);
	ck_assert_int_eq(test_poll_with(&rf.op.base, &fx.w), ROUSE_PENDING);
	close(sv[1]);
	ready_after_turn(fx.r, &rf.op.base, &fx.w, &fx.cw);
	ck_assert_int_eq(rf.result, 0);
	ck_assert(rf.events & ROUSE_IO_READ_HANGUP);
	ck_assert(rf.events & ROUSE_IO_HANGUP);
	ck_assert_int_eq(rouse_future_drop(&rf.op.base), 0);
	/* A hang-up also ends a wait for writability. */
	ck_assert_int_eq(rouse_io_writable_init(&wf, io), 0);
	ck_assert_int_eq(test_poll_with(&wf.op.base, &fx.w), ROUSE_READY);
	ck_assert(wf.events & ROUSE_IO_HANGUP);
	ck_assert_int_eq(rouse_future_drop(&wf.op.base), 0);
	ck_assert_int_eq(read_now(io, buf, sizeof(buf), &fx.w), 0);
	ck_assert_int_eq(write_now(io, "x", 1, &fx.w), -EPIPE);

	ck_assert_int_eq(rouse_io_deregister(io), 0);
	close(sv[0]);
	io_fixture_free(&fx);
}
END_TEST

START_TEST(test_error_bits)
{
	struct test_fixture fx;
	struct rouse_io_ready wf, rf;
	struct rouse_io *wio, *rio;
	char buf[8];
	int p[2], q[2];

	test_fixture_init(&fx);
	setup_sigpipe();
	/* The write end of a pipe whose read end closes: an error. */
	ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	wio = io_reg(fx.r, p[1]);
	ck_assert_int_ge(rouse_reactor_turn(fx.r, 0), 0);
	close(p[0]);
	ck_assert_int_ge(rouse_reactor_turn(fx.r, 0), 0);
	ck_assert_int_eq(rouse_io_writable_init(&wf, wio), 0);
	ck_assert_int_eq(test_poll_with(&wf.op.base, &fx.w), ROUSE_READY);
	ck_assert_int_eq(wf.result, 0);
	ck_assert(wf.events & ROUSE_IO_ERROR);
	ck_assert_int_eq(rouse_future_drop(&wf.op.base), 0);
	ck_assert_int_eq(write_now(wio, "x", 1, &fx.w), -EPIPE);

	/* The read end of a pipe whose write end closes: a hang-up. */
	ck_assert_int_eq(pipe2(q, O_NONBLOCK | O_CLOEXEC), 0);
	rio = io_reg(fx.r, q[0]);
	ck_assert_int_eq(rouse_io_readable_init(&rf, rio), 0);
	ck_assert_int_eq(test_poll_with(&rf.op.base, &fx.w), ROUSE_PENDING);
	close(q[1]);
	ready_after_turn(fx.r, &rf.op.base, &fx.w, &fx.cw);
	ck_assert(rf.events & ROUSE_IO_HANGUP);
	ck_assert_int_eq(rouse_future_drop(&rf.op.base), 0);
	ck_assert_int_eq(read_now(rio, buf, sizeof(buf), &fx.w), 0);

	ck_assert_int_eq(rouse_io_deregister(wio), 0);
	ck_assert_int_eq(rouse_io_deregister(rio), 0);
	close(p[1]);
	close(q[0]);
	test_fixture_free(&fx);
}
END_TEST

START_TEST(test_cache_cleared)
{
	struct io_fixture fx;
	struct rouse_io_ready rf;
	struct rouse_io_rw op;
	char buf[8];

	io_fixture_init(&fx);
	ck_assert_int_eq(write(fx.sv[1], "ab", 2), 2);
	ck_assert_int_ge(rouse_reactor_turn(fx.r, 0), 0);
	/* Known readable and writable: both futures ready at once. */
	ck_assert_int_eq(rouse_io_readable_init(&rf, fx.io), 0);
	ck_assert_int_eq(test_poll_with(&rf.op.base, &fx.w), ROUSE_READY);
	ck_assert(rf.events & ROUSE_IO_READABLE);
	ck_assert(rf.events & ROUSE_IO_WRITABLE);
	ck_assert_int_eq(rouse_future_drop(&rf.op.base), 0);
	ck_assert_int_eq(atomic_load(&fx.cw.live), 1);

	/*
	 * Taking the data with a full read does not clear it: only an
	 * EAGAIN, or a short read of a stream, proves the fd empty.
	 */
	ck_assert_int_eq(read_now(fx.io, buf, 2, &fx.w), 2);
	ck_assert_int_eq(poll_readable(fx.io, &fx.w), ROUSE_READY);
	ck_assert_int_eq(rouse_io_read_init(&op, fx.io, buf, sizeof(buf)), 0);
	ck_assert_int_eq(test_poll_with(&op.op.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(rouse_future_drop(&op.op.base), 0);
	/* The read that hit EAGAIN cleared it. */
	ck_assert_int_eq(poll_readable(fx.io, &fx.w), ROUSE_PENDING);
	/* Writability is untouched by that... */
	ck_assert_int_eq(poll_writable(fx.io, &fx.w), ROUSE_READY);
	/* ...until rouse_io_clear() says otherwise. */
	ck_assert_int_eq(rouse_io_clear(fx.io, ROUSE_IO_WRITABLE), 0);
	ck_assert_int_eq(poll_writable(fx.io, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&fx.cw.live), 1);

	/* Cleared while data is there: the next edge brings it back. */
	ck_assert_int_eq(write(fx.sv[1], "c", 1), 1);
	ck_assert_int_ge(rouse_reactor_turn(fx.r, 0), 0);
	ck_assert_int_eq(poll_readable(fx.io, &fx.w), ROUSE_READY);
	ck_assert_int_eq(rouse_io_clear(fx.io, ROUSE_IO_READABLE), 0);
	ck_assert_int_eq(rouse_io_readable_init(&rf, fx.io), 0);
	ck_assert_int_eq(test_poll_with(&rf.op.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(rouse_reactor_turn(fx.r, 0), 0);
	ck_assert_int_eq(counting_waker_total_wakes(&fx.cw), 0);
	ck_assert_int_eq(write(fx.sv[1], "d", 1), 1);
	ready_after_turn(fx.r, &rf.op.base, &fx.w, &fx.cw);
	ck_assert(rf.events & ROUSE_IO_READABLE);
	ck_assert_int_eq(rouse_future_drop(&rf.op.base), 0);
	/* A read op finds both bytes. */
	ck_assert_int_eq(read_now(fx.io, buf, sizeof(buf), &fx.w), 2);
	ck_assert_int_eq(memcmp(buf, "cd", 2), 0);

	io_fixture_free(&fx);
}
END_TEST

static void eof_pair(bool tcp, int sv[2]);

/*
 * A short read of a TCP stream proves it drained: the next read waits
 * with no system call, and new data (an edge) brings it back.  Not so on
 * a Unix stream socket, whose reads stop short of queued data after a
 * message that carried descriptors, or where the sender's credentials
 * change: there a short read leaves the bit alone.
 */
START_TEST(test_short_read_drains)
{
	struct io_fixture fx;
	struct rouse_io_rw op;
	char buf[8];

	fx.r = test_reactor_make();
	fx.w = counting_waker(&fx.cw);
	eof_pair(true, fx.sv);
	fx.io = io_reg(fx.r, fx.sv[0]);
	ck_assert_int_eq(write(fx.sv[1], "ab", 2), 2);
	ck_assert_int_ge(rouse_reactor_turn(fx.r, 0), 0);
	ck_assert_int_eq(read_now(fx.io, buf, sizeof(buf), &fx.w), 2);
	ck_assert_int_eq(poll_readable(fx.io, &fx.w), ROUSE_PENDING);
	/* Data written meanwhile is not lost: its edge sets the bit. */
	ck_assert_int_eq(rouse_io_read_init(&op, fx.io, buf, sizeof(buf)), 0);
	ck_assert_int_eq(test_poll_with(&op.op.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(write(fx.sv[1], "c", 1), 1);
	ck_assert_int_ge(rouse_reactor_turn(fx.r, 0), 1);
	ck_assert_int_eq(test_poll_with(&op.op.base, &fx.w), ROUSE_READY);
	ck_assert_int_eq(op.result, 1);
	ck_assert_int_eq(buf[0], 'c');
	ck_assert_int_eq(rouse_future_drop(&op.op.base), 0);
	pair_unreg(fx.io, fx.sv);

	/* A Unix stream: the bit stays, and the next read tries. */
	fx.io = pair_reg(fx.r, fx.sv);
	ck_assert_int_eq(write(fx.sv[1], "ab", 2), 2);
	ck_assert_int_ge(rouse_reactor_turn(fx.r, 0), 0);
	ck_assert_int_eq(read_now(fx.io, buf, sizeof(buf), &fx.w), 2);
	ck_assert_int_eq(poll_readable(fx.io, &fx.w), ROUSE_READY);
	io_fixture_free(&fx);
}
END_TEST

/*
 * A pipe written in packet mode (O_DIRECT) reads one write at a time: a
 * short read leaves the next write queued.  The reading end cannot tell
 * packet mode, so a short read of a pipe never clears the readable bit.
 */
START_TEST(test_packet_pipe_short_read)
{
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_io *io;
	char buf[16];
	int p[2];

	ck_assert_int_eq(pipe2(p, O_DIRECT | O_NONBLOCK | O_CLOEXEC), 0);
	io = io_reg(r, p[0]);
	ck_assert_int_eq(write(p[1], "abc", 3), 3);
	ck_assert_int_eq(write(p[1], "def", 3), 3);
	ck_assert_int_ge(rouse_reactor_turn(r, 0), 0);
	ck_assert_int_eq(read_now(io, buf, sizeof(buf), &w), 3);
	ck_assert_int_eq(memcmp(buf, "abc", 3), 0);
	ck_assert_int_eq(read_now(io, buf, sizeof(buf), &w), 3);
	ck_assert_int_eq(memcmp(buf, "def", 3), 0);
	ck_assert_int_eq(rouse_io_deregister(io), 0);
	close(p[0]);
	close(p[1]);
	counting_waker_drop_last(&w, &cw);
	rouse_reactor_free(r);
}
END_TEST

/*
 * Code that reads by itself after a readiness future clears the bit at
 * EAGAIN.  An edge that came after its EAGAIN but before the clear must
 * survive the clear: under edge triggering it will not come again.
 */
START_TEST(test_clear_keeps_later_edge)
{
	struct io_fixture fx;
	struct rouse_io_ready rf;
	char buf[8];

	io_fixture_init(&fx);
	ck_assert_int_eq(write(fx.sv[1], "a", 1), 1);
	ck_assert_int_eq(rouse_io_readable_init(&rf, fx.io), 0);
	ready_after_turn(fx.r, &rf.op.base, &fx.w, &fx.cw);
	ck_assert_int_eq(rouse_future_drop(&rf.op.base), 0);
	/* Its own reads: the data, then EAGAIN. */
	ck_assert_int_eq(read(fx.sv[0], buf, sizeof(buf)), 1);
	ck_assert_int_eq(read(fx.sv[0], buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EAGAIN);
	/* Meanwhile: new data, and the reactor hears of it. */
	ck_assert_int_eq(write(fx.sv[1], "b", 1), 1);
	ck_assert_int_ge(rouse_reactor_turn(fx.r, 0), 0);
	/* The clear comes late: the new edge must not be lost. */
	ck_assert_int_eq(rouse_io_clear(fx.io, ROUSE_IO_READABLE), 0);
	ck_assert_int_eq(rouse_io_readable_init(&rf, fx.io), 0);
	ready_after_turn(fx.r, &rf.op.base, &fx.w, &fx.cw);
	ck_assert(rf.events & ROUSE_IO_READABLE);
	ck_assert_int_eq(rouse_future_drop(&rf.op.base), 0);
	ck_assert_int_eq(read(fx.sv[0], buf, sizeof(buf)), 1);
	ck_assert_int_eq(buf[0], 'b');
	/* With nothing new, the clear takes effect. */
	ck_assert_int_eq(read(fx.sv[0], buf, sizeof(buf)), -1);
	ck_assert_int_eq(rouse_io_clear(fx.io, ROUSE_IO_READABLE), 0);
	ck_assert_int_eq(poll_readable(fx.io, &fx.w), ROUSE_PENDING);
	io_fixture_free(&fx);
}
END_TEST

/* Fill fd's send buffer; returns the bytes written. */
static size_t fill(int fd)
{
	static char junk[65536];
	size_t total = 0;
	ssize_t n;

	while ((n = write(fd, junk, sizeof(junk))) > 0)
		total += (size_t)n;
	ck_assert_int_eq(n, -1);
	ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
	return total;
}

static void drain(int fd, size_t total)
{
	static char junk[65536];
	ssize_t n;

	while (total > 0) {
		n = read(fd, junk, sizeof(junk));
		ck_assert_int_gt(n, 0);
		total -= (size_t)n;
	}
}

/* A zero-length write to a socket shut down for writing raises no SIGPIPE. */
static volatile sig_atomic_t sigpipes;

static void count_sigpipe(int sig)
{
	(void)sig;
	sigpipes++;
}

START_TEST(test_zero_write_no_sigpipe)
{
	struct io_fixture fx;
	void (*old)(int);

	io_fixture_init(&fx);
	old = signal(SIGPIPE, count_sigpipe);
	sigpipes = 0;
	ck_assert_int_eq(shutdown(fx.sv[0], SHUT_WR), 0);
	ck_assert_int_eq(write_now(fx.io, NULL, 0, &fx.w), -EPIPE);
	ck_assert_int_eq(write_now(fx.io, "x", 1, &fx.w), -EPIPE);
	ck_assert_int_eq(sigpipes, 0);
	signal(SIGPIPE, old);
	io_fixture_free(&fx);
}
END_TEST

START_TEST(test_second_op_busy)
{
	struct rouse_reactor *r = test_reactor_make();
	struct counting_waker c1, c2;
	struct rouse_waker w1 = counting_waker(&c1), w2 = counting_waker(&c2);
	struct rouse_io_rw rd1, rd2, wr1, wr2;
	struct rouse_io_ready rf;
	struct rouse_io *io;
	char b1[8], b2[8];
	size_t filled;
	int sv[2];

	io = pair_reg(r, sv);
	ck_assert_int_eq(rouse_io_read_init(&rd1, io, b1, sizeof(b1)), 0);
	ck_assert_int_eq(test_poll_with(&rd1.op.base, &w1), ROUSE_PENDING);
	/* A second reader, while the first waits: -EBUSY, nothing kept. */
	ck_assert_int_eq(rouse_io_read_init(&rd2, io, b2, sizeof(b2)), 0);
	rd2.result = 1;
	ck_assert_int_eq(test_poll_with(&rd2.op.base, &w2), ROUSE_READY);
	ck_assert_int_eq(rd2.result, -EBUSY);
	ck_assert_int_eq(rouse_future_drop(&rd2.op.base), 0);
	ck_assert_int_eq(rouse_io_readable_init(&rf, io), 0);
	rf.result = 1;
	ck_assert_int_eq(test_poll_with(&rf.op.base, &w2), ROUSE_READY);
	ck_assert_int_eq(rf.result, -EBUSY);
	ck_assert_int_eq(rouse_future_drop(&rf.op.base), 0);
	ck_assert_int_eq(atomic_load(&c2.live), 1);

	/* The other direction is free: writers are not readers. */
	filled = fill(sv[0]);
	ck_assert_int_eq(rouse_io_write_init(&wr1, io, "w", 1), 0);
	ck_assert_int_eq(test_poll_with(&wr1.op.base, &w2), ROUSE_PENDING);
	ck_assert_int_eq(rouse_io_write_init(&wr2, io, "v", 1), 0);
	wr2.result = 1;
	ck_assert_int_eq(test_poll_with(&wr2.op.base, &w1), ROUSE_READY);
	ck_assert_int_eq(wr2.result, -EBUSY);
	ck_assert_int_eq(rouse_future_drop(&wr2.op.base), 0);

	/* The first reader still gets its data. */
	read_arrives(r, sv[1], "data", &rd1, b1, &w1, &c1);
	/* And the first writer, once there is room. */
	drain(sv[1], filled);
	ck_assert_int_ge(rouse_reactor_turn(r, 0), 1);
	ck_assert_int_eq(atomic_load(&c2.wakes), 1);
	ck_assert_int_eq(test_poll_with(&wr1.op.base, &w2), ROUSE_READY);
	ck_assert_int_eq(wr1.result, 1);
	ck_assert_int_eq(rouse_future_drop(&wr1.op.base), 0);

	counting_waker_drop_last(&w1, &c1);
	counting_waker_drop_last(&w2, &c2);
	pair_unreg(io, sv);
	rouse_reactor_free(r);
}
END_TEST

START_TEST(test_deregister_pending)
{
	struct io_fixture fx;
	struct rouse_io_rw rd;
	char buf[8];

	/* Deregistered under a pending read: woken, then -ECANCELED. */
	io_fixture_init(&fx);
	ck_assert_int_eq(rouse_io_read_init(&rd, fx.io, buf, sizeof(buf)), 0);
	ck_assert_int_eq(test_poll_with(&rd.op.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(rouse_io_deregister(fx.io), 0);
	ck_assert_int_eq(atomic_load(&fx.cw.wakes), 1);
	rd.result = 1;
	ck_assert_int_eq(test_poll_with(&rd.op.base, &fx.w), ROUSE_READY);
	ck_assert_int_eq(rd.result, -ECANCELED);
	ck_assert_int_eq(rouse_future_drop(&rd.op.base), 0);
	counting_waker_drop_last(&fx.w, &fx.cw);
	/* Data for the fd now goes nowhere. */
	ck_assert_int_eq(write(fx.sv[1], "x", 1), 1);
	ck_assert_int_eq(rouse_reactor_turn(fx.r, 0), 0);
	close(fx.sv[0]);
	close(fx.sv[1]);
	rouse_reactor_free(fx.r);
}
END_TEST

/* ---- generation numbers: stale events are dropped -------------------- */

/* Replace the pair in sv by a new one whose first fd has sv[0]'s number. */
static void pair_reuse_number(int sv[2])
{
	int nv[2];

	close(sv[0]);
	close(sv[1]);
	test_pair_make(nv);
	if (nv[0] != sv[0]) {
		ck_assert_int_eq(dup3(nv[0], sv[0], O_CLOEXEC), sv[0]);
		close(nv[0]);
	}
	sv[1] = nv[1];
}

/*
 * The new source on a reused number: a stale event must not have made it
 * readable, nor woken its reader; real data then works.
 */
static void check_new_source(struct rouse_reactor *r, struct rouse_io *io,
			     int peer)
{
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct rouse_io_rw rd;
	char buf[8];

	ck_assert_int_eq(poll_readable(io, &w), ROUSE_PENDING);
	ck_assert_int_eq(rouse_io_read_init(&rd, io, buf, sizeof(buf)), 0);
	ck_assert_int_eq(test_poll_with(&rd.op.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(rouse_reactor_turn(r, 0), 0);
	ck_assert_int_eq(counting_waker_total_wakes(&cw), 0);
	read_arrives(r, peer, "new", &rd, buf, &w, &cw);
	/* Drained to EAGAIN, which forgets the readiness again. */
	ck_assert_int_eq(rouse_io_read_init(&rd, io, buf, sizeof(buf)), 0);
	ck_assert_int_eq(test_poll_with(&rd.op.base, &w), ROUSE_PENDING);
	ck_assert_int_eq(rouse_future_drop(&rd.op.base), 0);
	counting_waker_drop_last(&w, &cw);
}

START_TEST(test_generation_deregistered)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_io *io;
	int sv[2], fd, fds0 = test_count_fds();

	/* An event queued for a source, which goes before any turn. */
	io = pair_reg(r, sv);
	fd = sv[0];
	ck_assert_int_eq(write(sv[1], "old", 3), 3);
	ck_assert_int_eq(rouse_io_deregister(io), 0);
	pair_reuse_number(sv);
	ck_assert_int_eq(sv[0], fd);
	io = io_reg(r, sv[0]);
	/* The registration's own edge (writable) wakes no reader. */
	check_new_source(r, io, sv[1]);
	pair_unreg(io, sv);
	rouse_reactor_free(r);
	ck_assert_int_eq(test_count_fds(), fds0 - 3);
}
END_TEST

START_TEST(test_generation_dup)
{
	struct rouse_reactor *r = test_reactor_make();
	struct pollfd pfd;
	struct rouse_io *io;
	int sv[2], old_file, old_peer, fd;

	/*
	 * epoll watches open files, not numbers: with a dup of the fd
	 * alive, closing the fd leaves its registration in the epoll set,
	 * still carrying the old source's tag, and the deregister that
	 * follows cannot remove it (the number is closed).  Events for the
	 * old file keep coming with that tag after the number (and the
	 * slot) have gone to a new source.
	 */
	io = pair_reg(r, sv);
	fd = sv[0];
	ck_assert_int_ge(rouse_reactor_turn(r, 0), 0);
	old_file = fcntl(sv[0], F_DUPFD_CLOEXEC, 100);
	ck_assert_int_ge(old_file, 100);
	old_peer = sv[1];
	close(sv[0]);
	ck_assert_int_eq(rouse_io_deregister(io), 0);
	test_pair_make(sv);
	if (sv[0] != fd) {
		ck_assert_int_eq(dup3(sv[0], fd, O_CLOEXEC), fd);
		close(sv[0]);
		sv[0] = fd;
	}
	io = io_reg(r, sv[0]);
	ck_assert_int_ge(rouse_reactor_turn(r, 0), 0);
	/* The old file becomes readable: its stale event is queued... */
	ck_assert_int_eq(write(old_peer, "old", 3), 3);
	pfd.fd = rouse_reactor_fd(r);
	pfd.events = POLLIN;
	ck_assert_int_eq(poll(&pfd, 1, 0), 1);
	/* ...and dropped, not delivered to the new source. */
	check_new_source(r, io, sv[1]);
	ck_assert_int_eq(write(old_peer, "old", 3), 3);
	check_new_source(r, io, sv[1]);
	pair_unreg(io, sv);
	close(old_file);
	close(old_peer);
	rouse_reactor_free(r);
}
END_TEST

/*
 * A source whose fd was closed before it was deregistered, and whose
 * number was then taken by a new source: deregistering the old one must
 * leave the new one's registration alone.
 */
START_TEST(test_closed_before_deregister)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_io *old, *io;
	int sv[2], fd, fds0 = test_count_fds();

	old = pair_reg(r, sv);
	fd = sv[0];
	ck_assert_int_ge(rouse_reactor_turn(r, 0), 0);
	pair_reuse_number(sv);
	ck_assert_int_eq(sv[0], fd);
	io = io_reg(r, sv[0]);
	ck_assert_int_ge(rouse_reactor_turn(r, 0), 0);
	ck_assert_int_eq(rouse_io_deregister(old), 0);
	check_new_source(r, io, sv[1]);
	pair_unreg(io, sv);
	rouse_reactor_free(r);
	ck_assert_int_eq(test_count_fds(), fds0 - 3);
}
END_TEST

/* More wakes than the reactor hands out in one batch. */
#define BATCH_FILL 31

/* One of a batch of readers: a source, and a read of it that waits. */
struct reader {
	struct rouse_io *io;
	int sv[2];
	struct call_waker cb;
	struct rouse_waker w;
	struct rouse_io_rw rd;
	char buf[4];
};

/* Start rr's read, woken through a call_waker that calls fn: pending. */
static void reader_wait(struct reader *rr, call_waker_fn *fn, void *arg)
{
	rr->w = call_waker(&rr->cb, fn, arg);
	ck_assert_int_eq(rouse_io_read_init(&rr->rd, rr->io, rr->buf,
					    sizeof(rr->buf)), 0);
	ck_assert_int_eq(test_poll_with(&rr->rd.op.base, &rr->w),
			 ROUSE_PENDING);
}

/* rr, woken once, reads the 3 bytes its peer wrote; then all of it goes. */
static void reader_done(struct reader *rr)
{
	ck_assert_int_eq(atomic_load(&rr->cb.wakes), 1);
	ck_assert_int_eq(test_poll_with(&rr->rd.op.base, &rr->w),
			 ROUSE_READY);
	ck_assert_int_eq(rr->rd.result, 3);
	ck_assert_int_eq(rouse_future_drop(&rr->rd.op.base), 0);
	ck_assert_int_eq(rouse_waker_drop(&rr->w), 0);
	ck_assert_int_eq(atomic_load(&rr->cb.live), 0);
	pair_unreg(rr->io, rr->sv);
}

struct swap {
	struct rouse_reactor *r;
	struct rouse_io *io;
	int sv[2];
	int fd;
};

/*
 * A call_waker's callback, which acts from inside the reactor's turn,
 * between two batches of wakes of one epoll batch: at the first wake, the
 * source is replaced by a new one on the same number.
 */
static void swap_fn(struct call_waker *c, int nth)
{
	struct swap *s = c->arg;

	if (nth != 0)
		return;
	ck_assert_int_eq(rouse_io_deregister(s->io), 0);
	pair_reuse_number(s->sv);
	ck_assert_int_eq(s->sv[0], s->fd);
	s->io = io_reg(s->r, s->sv[0]);
}

START_TEST(test_generation_in_batch)
{
	struct rouse_reactor *r = test_reactor_make();
	struct reader rr[BATCH_FILL];
	struct swap sw;
	int i, fds0 = test_count_fds();

	/*
	 * One epoll batch: BATCH_FILL readable sources with a reader each,
	 * then the victim.  Waking the readers' wakers happens before the
	 * victim's event is looked at, and the last of them replaces the
	 * victim by a new source on the same fd number (and, most likely,
	 * the same slot).  The victim's event is stale by then.
	 */
	for (i = 0; i < BATCH_FILL; i++)
		rr[i].io = pair_reg(r, rr[i].sv);
	sw.io = pair_reg(r, sw.sv);
	sw.r = r;
	sw.fd = sw.sv[0];
	ck_assert_int_ge(rouse_reactor_turn(r, 0), 0);
	for (i = 0; i < BATCH_FILL; i++)
		reader_wait(&rr[i], i == BATCH_FILL - 1 ? swap_fn : NULL, &sw);
	for (i = 0; i < BATCH_FILL; i++)
		ck_assert_int_eq(write(rr[i].sv[1], "abc", 3), 3);
	ck_assert_int_eq(write(sw.sv[1], "old", 3), 3);
	ck_assert_int_ge(rouse_reactor_turn(r, 0), BATCH_FILL);
	for (i = 0; i < BATCH_FILL; i++)
		reader_done(&rr[i]);
	ck_assert_int_eq(sw.sv[0], sw.fd);
	check_new_source(r, sw.io, sw.sv[1]);
	pair_unreg(sw.io, sw.sv);
	rouse_reactor_free(r);
	ck_assert_int_eq(test_count_fds(), fds0 - 3);
}
END_TEST

/* ---- a source deregistered from inside a wake ------------------------ */

struct victim {
	struct rouse_io *io;
};

/* A call_waker's callback: at the first wake, the victim deregistered. */
static void deregister_fn(struct call_waker *c, int nth)
{
	struct victim *v = c->arg;

	if (nth != 0)
		return;
	ck_assert_int_eq(rouse_io_deregister(v->io), 0);
	v->io = NULL;
}

/*
 * The reactor wakes wakers with its lock dropped, "so that a waker may
 * call back into the reactor".  Here the reader's waker of a source that
 * has both a reader and a writer waiting deregisters that source (as a
 * task woken on another thread may do at that very moment): the writer
 * must then be woken by the deregister, and the reactor must not look at
 * the freed source again.
 */
START_TEST(test_deregister_from_wake)
{
	struct rouse_reactor *r = test_reactor_make();
	struct reader rr[BATCH_FILL - 1];
	struct call_waker vr, vw;
	struct rouse_waker wr, ww;
	struct rouse_io_rw vrd, vwr;
	int vs[2];
	struct victim v;
	char vbuf[4];
	int i;

	setup_sigpipe();
	for (i = 0; i < BATCH_FILL - 1; i++)
		rr[i].io = pair_reg(r, rr[i].sv);
	v.io = pair_reg(r, vs);
	fill(vs[0]);
	ck_assert_int_ge(rouse_reactor_turn(r, 0), 0);
	for (i = 0; i < BATCH_FILL - 1; i++)
		reader_wait(&rr[i], NULL, NULL);
	wr = call_waker(&vr, deregister_fn, &v);
	ww = call_waker(&vw, NULL, NULL);
	ck_assert_int_eq(rouse_io_read_init(&vrd, v.io, vbuf, sizeof(vbuf)),
			 0);
	ck_assert_int_eq(test_poll_with(&vrd.op.base, &wr), ROUSE_PENDING);
	ck_assert_int_eq(rouse_io_write_init(&vwr, v.io, "x", 1), 0);
	ck_assert_int_eq(test_poll_with(&vwr.op.base, &ww), ROUSE_PENDING);
	/* The others readable first, then the victim hangs up. */
	for (i = 0; i < BATCH_FILL - 1; i++)
		ck_assert_int_eq(write(rr[i].sv[1], "abc", 3), 3);
	close(vs[1]);
	ck_assert_int_ge(rouse_reactor_turn(r, 0), BATCH_FILL);

	ck_assert_ptr_null(v.io);
	ck_assert_int_eq(atomic_load(&vr.wakes), 1);
	ck_assert_int_eq(atomic_load(&vw.wakes), 1);
	ck_assert_int_eq(test_poll_with(&vrd.op.base, &wr), ROUSE_READY);
	ck_assert_int_eq(vrd.result, -ECANCELED);
	ck_assert_int_eq(test_poll_with(&vwr.op.base, &ww), ROUSE_READY);
	ck_assert_int_eq(vwr.result, -ECANCELED);
	ck_assert_int_eq(rouse_future_drop(&vrd.op.base), 0);
	ck_assert_int_eq(rouse_future_drop(&vwr.op.base), 0);
	ck_assert_int_eq(rouse_waker_drop(&wr), 0);
	ck_assert_int_eq(rouse_waker_drop(&ww), 0);
	ck_assert_int_eq(atomic_load(&vr.live), 0);
	ck_assert_int_eq(atomic_load(&vw.live), 0);
	for (i = 0; i < BATCH_FILL - 1; i++)
		reader_done(&rr[i]);
	close(vs[0]);
	rouse_reactor_free(r);
}
END_TEST

/* ---- futures running side by side ----------------------------------- */

/* Ready once every one of its futures is. */
#define JOIN_MAX 256

struct join {
	struct rouse_future base;
	struct rouse_future *f[JOIN_MAX];
	bool done[JOIN_MAX];
	int n, left;
};

static enum rouse_poll join_poll(struct rouse_future *self,
				 struct rouse_context *cx)
{
	struct join *j = (struct join *)self;
	int i;

	for (i = 0; i < j->n; i++) {
		if (j->done[i])
			continue;
		if (j->f[i]->vtable->poll(j->f[i], cx) == ROUSE_READY) {
			j->done[i] = true;
			j->left--;
		}
	}
	return j->left == 0 ? ROUSE_READY : ROUSE_PENDING;
}

static const struct rouse_future_vtable join_vtable = { join_poll, NULL };

static void join_init(struct join *j)
{
	j->base.vtable = &join_vtable;
	j->n = j->left = 0;
}

static void join_add(struct join *j, struct rouse_future *f)
{
	ck_assert_int_lt(j->n, JOIN_MAX);
	j->done[j->n] = false;
	j->f[j->n++] = f;
	j->left++;
}

/*
 * Write wlen bytes to wio and read rlen bytes from rio, both at once,
 * each through a chain of read/write futures.  err is the first error;
 * a read of 0 before rlen bytes is -EPIPE.
 */
struct xfer {
	struct rouse_future base;
	struct rouse_io *wio, *rio;
	const unsigned char *wbuf;
	unsigned char *rbuf;
	size_t wlen, woff, rlen, roff;
	struct rouse_io_rw wop, rop;
	bool wlive, rlive;
	int err;
};

static void xfer_step(struct xfer *x, struct rouse_context *cx, bool w)
{
	struct rouse_io_rw *op = w ? &x->wop : &x->rop;
	bool *live = w ? &x->wlive : &x->rlive;
	size_t *off = w ? &x->woff : &x->roff;
	size_t len = w ? x->wlen : x->rlen;

	while (x->err == 0 && *off < len) {
		if (!*live) {
			if (w)
				ck_assert_int_eq(rouse_io_write_init(op, x->wio,
					x->wbuf + *off, len - *off), 0);
			else
				ck_assert_int_eq(rouse_io_read_init(op, x->rio,
					x->rbuf + *off, len - *off), 0);
			*live = true;
		}
		if (rouse_future_poll(&op->op.base, cx) == ROUSE_PENDING)
			return;
		ck_assert_int_eq(rouse_future_drop(&op->op.base), 0);
		*live = false;
		if (op->result < 0)
			x->err = (int)op->result;
		else if (op->result == 0)
			x->err = -EPIPE;
		else
			*off += (size_t)op->result;
	}
}

static enum rouse_poll xfer_poll(struct rouse_future *self,
				 struct rouse_context *cx)
{
	struct xfer *x = (struct xfer *)self;

	xfer_step(x, cx, true);
	xfer_step(x, cx, false);
	if (x->err != 0 || (x->woff == x->wlen && x->roff == x->rlen))
		return ROUSE_READY;
	return ROUSE_PENDING;
}

static void xfer_drop(struct rouse_future *self)
{
	struct xfer *x = (struct xfer *)self;

	if (x->wlive)
		ck_assert_int_eq(rouse_future_drop(&x->wop.op.base), 0);
	if (x->rlive)
		ck_assert_int_eq(rouse_future_drop(&x->rop.op.base), 0);
	x->wlive = x->rlive = false;
}

static const struct rouse_future_vtable xfer_vtable = {
	xfer_poll, xfer_drop,
};

static void xfer_init(struct xfer *x, struct rouse_io *wio,
		      const unsigned char *wbuf, size_t wlen,
		      struct rouse_io *rio, unsigned char *rbuf, size_t rlen)
{
	memset(x, 0, sizeof(*x));
	x->base.vtable = &xfer_vtable;
	x->wio = wio;
	x->wbuf = wbuf;
	x->wlen = wlen;
	x->rio = rio;
	x->rbuf = rbuf;
	x->rlen = rlen;
}

static unsigned char pattern(unsigned int seed, size_t k)
{
	return (unsigned char)(seed * 131u + k * 7u + (k >> 9));
}

static unsigned char *pattern_buf(unsigned int seed, size_t len)
{
	unsigned char *b = malloc(len);
	size_t k;

	ck_assert_ptr_nonnull(b);
	for (k = 0; k < len; k++)
		b[k] = pattern(seed, k);
	return b;
}

/* ---- TCP over the loopback ------------------------------------------- */

static int tcp_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			0);

	ck_assert_int_ge(fd, 0);
	return fd;
}

/* A socket bound to 127.0.0.1 on a port of the kernel's choosing. */
static int tcp_bound(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = tcp_socket();

	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)addr, &len), 0);
	ck_assert_int_ne(addr->sin_port, 0);
	return fd;
}

static int tcp_listener(struct sockaddr_in *addr)
{
	int fd = tcp_bound(addr);

	ck_assert_int_eq(listen(fd, 256), 0);
	return fd;
}

#define BIG (1024 * 1024)

START_TEST(test_tcp)
{
	struct sockaddr_in addr, local, *peer;
	struct rouse_io *lio, *cio, *sio;
	struct rouse_io_connect con;
	struct rouse_io_accept acc;
	struct rouse_io_rw rd;
	struct xfer down, up;
	struct join j;
	struct test_runner ru;
	unsigned char *out1, *out2, *in1, *in2, c;
	socklen_t len = sizeof(local);
	int lfd, cfd, sfd, fds0;

	setup_sigpipe();
	fds0 = test_count_fds_warm();
	test_runner_init(&ru, (enum test_mode)_i);
	lfd = tcp_listener(&addr);
	cfd = tcp_socket();
	lio = io_reg(ru.r, lfd);
	cio = io_reg(ru.r, cfd);

	/* Accept and connect, side by side. */
	ck_assert_int_eq(rouse_io_accept_init(&acc, lio), 0);
	ck_assert_int_eq(rouse_io_connect_init(&con, cio,
					       (struct sockaddr *)&addr,
					       sizeof(addr)), 0);
	acc.result = con.result = 1;
	join_init(&j);
	join_add(&j, &acc.op.base);
	join_add(&j, &con.op.base);
	ck_assert_int_eq(test_runner_block_on(&ru, &j.base), 0);
	ck_assert_int_eq(con.result, 0);
	sfd = acc.result;
	ck_assert_int_ge(sfd, 0);
	ck_assert_int_eq(rouse_future_drop(&acc.op.base), 0);
	ck_assert_int_eq(rouse_future_drop(&con.op.base), 0);
	/* The accepted fd: nonblocking, close-on-exec, from our client. */
	ck_assert(fcntl(sfd, F_GETFL) & O_NONBLOCK);
	ck_assert(fcntl(sfd, F_GETFD) & FD_CLOEXEC);
	ck_assert_int_eq(getsockname(cfd, (struct sockaddr *)&local, &len),
			 0);
	ck_assert_int_eq(acc.addrlen, sizeof(struct sockaddr_in));
	peer = (struct sockaddr_in *)&acc.addr;
	ck_assert_int_eq(peer->sin_family, AF_INET);
	ck_assert_int_eq(peer->sin_port, local.sin_port);
	ck_assert_int_eq(peer->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	sio = io_reg(ru.r, sfd);

	/* A megabyte each way at once: more than the buffers hold. */
	out1 = pattern_buf(1, BIG);
	out2 = pattern_buf(2, BIG);
	in1 = calloc(1, BIG);
	in2 = calloc(1, BIG);
	ck_assert(in1 != NULL && in2 != NULL);
	xfer_init(&down, sio, out1, BIG, cio, in1, BIG);
	xfer_init(&up, cio, out2, BIG, sio, in2, BIG);
	join_init(&j);
	join_add(&j, &down.base);
	join_add(&j, &up.base);
	ck_assert_int_eq(test_runner_block_on(&ru, &j.base), 0);
	ck_assert_int_eq(down.err, 0);
	ck_assert_int_eq(up.err, 0);
	ck_assert_int_eq(memcmp(in1, out1, BIG), 0);
	ck_assert_int_eq(memcmp(in2, out2, BIG), 0);
	ck_assert_int_eq(rouse_future_drop(&down.base), 0);
	ck_assert_int_eq(rouse_future_drop(&up.base), 0);

	/* The server's side shuts down: the client reads end of file. */
	ck_assert_int_eq(shutdown(sfd, SHUT_WR), 0);
	ck_assert_int_eq(rouse_io_read_init(&rd, cio, &c, 1), 0);
	rd.result = 1;
	ck_assert_int_eq(test_runner_block_on(&ru, &rd.op.base), 0);
	ck_assert_int_eq(rd.result, 0);
	ck_assert_int_eq(rouse_future_drop(&rd.op.base), 0);

	ck_assert_int_eq(rouse_io_deregister(sio), 0);
	ck_assert_int_eq(rouse_io_deregister(cio), 0);
	ck_assert_int_eq(rouse_io_deregister(lio), 0);
	close(sfd);
	close(cfd);
	close(lfd);
	free(out1);
	free(out2);
	free(in1);
	free(in2);
	test_runner_free(&ru);
	ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

/*
 * Read io to its end of file, every read ready at its first poll; the
 * bytes go to out (NUL-terminated), the first read's count to *first.
 */
static void read_to_eof_now(struct rouse_io *io, struct rouse_waker *w,
			    char *out, size_t cap, ssize_t *first)
{
	size_t len = 0;
	ssize_t n;

	*first = -1;
	do {
		ck_assert_uint_lt(len, cap);
		n = read_now(io, out + len, cap - 1 - len, w);
		ck_assert_int_ge(n, 0);
		if (*first < 0)
			*first = n;
		len += (size_t)n;
	} while (n > 0);
	out[len] = '\0';
}

/*
 * Urgent data ends a read short with more queued behind it, so a short
 * read of such a socket proves nothing: the source must keep reading
 * without waiting for an edge that will not come.  TCP, and a Unix
 * stream socket where the kernel has MSG_OOB (5.15 and later).
 */
START_TEST(test_urgent_data_short_read)
{
	struct sockaddr_in addr;
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_io *io;
	struct pollfd pfd;
	char out[32];
	ssize_t first;
	int lfd, cfd, sfd, sv[2];

	setup_sigpipe();
	lfd = tcp_listener(&addr);
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(cfd, 0);
	ck_assert_int_eq(connect(cfd, (struct sockaddr *)&addr, sizeof(addr)),
			 0);
	sfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	ck_assert_int_ge(sfd, 0);
	io = io_reg(r, sfd);
	ck_assert_int_eq(send(cfd, "abc", 3, 0), 3);
	ck_assert_int_eq(send(cfd, "X", 1, MSG_OOB), 1);
	ck_assert_int_eq(send(cfd, "def", 3, 0), 3);
	ck_assert_int_eq(shutdown(cfd, SHUT_WR), 0);
	/* The FIN comes after the data: once it is here, all of it is. */
	pfd.fd = sfd;
	pfd.events = POLLRDHUP;
	ck_assert_int_eq(poll(&pfd, 1, -1), 1);
	ck_assert_int_ge(rouse_reactor_turn(r, 0), 0);
	read_to_eof_now(io, &w, out, sizeof(out), &first);
	ck_assert_int_eq(first, 3);	/* stopped at the urgent mark */
	ck_assert_str_eq(out, "abcdef");
	ck_assert_int_eq(rouse_io_deregister(io), 0);
	close(sfd);
	close(cfd);
	close(lfd);

	io = pair_reg(r, sv);
	ck_assert_int_eq(write(sv[1], "abc", 3), 3);
	if (send(sv[1], "X", 1, MSG_OOB) == 1) {
		ck_assert_int_eq(write(sv[1], "def", 3), 3);
		ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
		ck_assert_int_ge(rouse_reactor_turn(r, 0), 0);
		read_to_eof_now(io, &w, out, sizeof(out), &first);
		ck_assert_int_lt(first, 6);
		ck_assert_str_eq(out, "abcdef");
	} else {
		ck_assert_int_eq(errno, EOPNOTSUPP);	/* before 5.15 */
	}
	pair_unreg(io, sv);
	counting_waker_drop_last(&w, &cw);
	rouse_reactor_free(r);
}
END_TEST

/*
 * The end of a stream is never lost behind a short read.  A peer writes a
 * few bytes and half-closes; a read takes the bytes (short, so it clears
 * the readable bit), and the next read must still see the hang-up and
 * return 0.  Each kind (a Unix stream pair, a TCP connection) in each
 * order: the data and the FIN before the source is registered, after a
 * turn that saw both, the FIN between the two reads (after a turn that
 * saw the data), and both arriving while the first read waits.
 */
enum eof_order {
	EOF_BEFORE_REGISTER,
	EOF_AFTER_TURN,
	EOF_BETWEEN_READS,
	EOF_READ_WAITED,
	EOF_ORDERS
};

/* A connected pair: sv[0] nonblocking (the reader), sv[1] the peer. */
static void eof_pair(bool tcp, int sv[2])
{
	struct sockaddr_in addr;
	int lfd;

	if (!tcp) {
		test_pair_make(sv);
		return;
	}
	lfd = tcp_listener(&addr);
	sv[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(sv[1], 0);
	ck_assert_int_eq(connect(sv[1], (struct sockaddr *)&addr,
				 sizeof(addr)), 0);
	sv[0] = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	ck_assert_int_ge(sv[0], 0);
	close(lfd);
}

/* Half-close peer's side of the pair, and wait until fd has seen it. */
static void eof_half_close(int peer, int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLRDHUP };

	ck_assert_int_eq(shutdown(peer, SHUT_WR), 0);
	ck_assert_int_eq(poll(&pfd, 1, -1), 1);
	ck_assert(pfd.revents & POLLRDHUP);
}

/*
 * A read of io: ready at once, or after one turn of r that does not block
 * (the kernel has what the read needs already).
 */
static ssize_t eof_read(struct rouse_reactor *r, struct rouse_io *io,
			char *buf, size_t len, struct rouse_waker *w)
{
	struct rouse_io_rw op;

	ck_assert_int_eq(rouse_io_read_init(&op, io, buf, len), 0);
	if (test_poll_with(&op.op.base, w) == ROUSE_PENDING) {
		ck_assert_int_ge(rouse_reactor_turn(r, 0), 0);
		ck_assert_int_eq(test_poll_with(&op.op.base, w), ROUSE_READY);
	}
	ck_assert_int_eq(rouse_future_drop(&op.op.base), 0);
	return op.result;
}

START_TEST(test_eof_after_short_read)
{
	bool tcp = _i >= EOF_ORDERS;
	enum eof_order order = (enum eof_order)(_i % EOF_ORDERS);
	struct counting_waker cw;
	struct rouse_waker w = counting_waker(&cw);
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_io *io = NULL;
	struct rouse_io_rw first;
	char buf[64];
	int sv[2];

	setup_sigpipe();
	eof_pair(tcp, sv);
	if (order != EOF_BEFORE_REGISTER)
		io = io_reg(r, sv[0]);
	if (order == EOF_READ_WAITED) {
		ck_assert_int_eq(rouse_io_read_init(&first, io, buf,
						    sizeof(buf)), 0);
		ck_assert_int_eq(test_poll_with(&first.op.base, &w),
				 ROUSE_PENDING);
	}
	ck_assert_int_eq(write(sv[1], "hello", 5), 5);
	if (order != EOF_BETWEEN_READS)
		eof_half_close(sv[1], sv[0]);
	if (order == EOF_BEFORE_REGISTER)
		io = io_reg(r, sv[0]);
	if (order != EOF_BEFORE_REGISTER)
		ck_assert_int_ge(rouse_reactor_turn(r, 0), 0);
	if (order == EOF_READ_WAITED) {
		ck_assert_int_eq(test_poll_with(&first.op.base, &w),
				 ROUSE_READY);
		ck_assert_int_eq(first.result, 5);
		ck_assert_int_eq(rouse_future_drop(&first.op.base), 0);
	} else {
		ck_assert_int_eq(eof_read(r, io, buf, sizeof(buf), &w), 5);
	}
	ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
	if (order == EOF_BETWEEN_READS)
		eof_half_close(sv[1], sv[0]);
	ck_assert_int_eq(eof_read(r, io, buf, sizeof(buf), &w), 0);
	/* And it stays at the end. */
	ck_assert_int_eq(eof_read(r, io, buf, sizeof(buf), &w), 0);
	pair_unreg(io, sv);
	counting_waker_drop_last(&w, &cw);
	rouse_reactor_free(r);
}
END_TEST

START_TEST(test_tcp_refused)
{
	struct sockaddr_in addr;
	struct rouse_io_connect con;
	struct rouse_io *cio;
	struct test_runner ru;
	int bound, cfd, fds0, i;

	fds0 = test_count_fds_warm();
	test_runner_init(&ru, (enum test_mode)_i);
	/* Bound, so that the port stays ours, but not listening. */
	bound = tcp_bound(&addr);
	for (i = 0; i < 10; i++) {
		cfd = tcp_socket();
		cio = io_reg(ru.r, cfd);
		ck_assert_int_eq(rouse_io_connect_init(&con, cio,
			(struct sockaddr *)&addr, sizeof(addr)), 0);
		con.result = 1;
		ck_assert_int_eq(test_runner_block_on(&ru, &con.op.base), 0);
		ck_assert_int_eq(con.result, -ECONNREFUSED);
		ck_assert_int_eq(rouse_future_drop(&con.op.base), 0);
		ck_assert_int_eq(rouse_io_deregister(cio), 0);
		close(cfd);
	}
	close(bound);
	test_runner_free(&ru);
	ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

START_TEST(test_accept_pending)
{
	struct test_fixture fx;
	struct sockaddr_in addr;
	struct rouse_io_accept acc;
	struct rouse_io *lio;
	int lfd, cfd;

	test_fixture_init(&fx);
	/* No one connecting: an accept waits, and a connection wakes it. */
	lfd = tcp_listener(&addr);
	lio = io_reg(fx.r, lfd);
	ck_assert_int_eq(rouse_io_accept_init(&acc, lio), 0);
	ck_assert_int_eq(test_poll_with(&acc.op.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(rouse_reactor_turn(fx.r, 0), 0);
	ck_assert_int_eq(counting_waker_total_wakes(&fx.cw), 0);
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(cfd, 0);
	/* Blocking connect: returns once the connection is queued. */
	ck_assert_int_eq(connect(cfd, (struct sockaddr *)&addr, sizeof(addr)),
			 0);
	ck_assert_int_ge(rouse_reactor_turn(fx.r, -1), 1);
	ck_assert_int_eq(atomic_load(&fx.cw.wakes), 1);
	ck_assert_int_eq(test_poll_with(&acc.op.base, &fx.w), ROUSE_READY);
	ck_assert_int_ge(acc.result, 0);
	close(acc.result);
	ck_assert_int_eq(rouse_future_drop(&acc.op.base), 0);
	ck_assert_int_eq(rouse_io_deregister(lio), 0);
	close(cfd);
	close(lfd);
	test_fixture_free(&fx);
}
END_TEST

/* ---- an echo server and a hundred clients ---------------------------- */

#define CLIENTS 100
#define ECHO_BUF 4096

struct econn {
	int fd;
	struct rouse_io *io;
	bool writing, live;
	size_t len, off;
	struct rouse_io_rw op;
	unsigned char buf[ECHO_BUF];
};

struct eserver {
	struct rouse_future base;
	struct test_runner ru;
	int lfd;
	struct rouse_io *lio;
	struct rouse_io_accept acc;
	struct rouse_event *stop;
	struct rouse_event_wait stopw;
	struct econn *conns[CLIENTS * 2];
	int n, served, eofs;
};

/* Move a connection on; false once it is finished. */
static bool econn_drive(struct econn *c, struct rouse_context *cx)
{
	for (;;) {
		if (!c->live) {
			if (c->writing)
				rouse_io_write_init(&c->op, c->io,
						    c->buf + c->off,
						    c->len - c->off);
			else
				rouse_io_read_init(&c->op, c->io, c->buf,
						   sizeof(c->buf));
			c->live = true;
		}
		if (rouse_future_poll(&c->op.op.base, cx) == ROUSE_PENDING)
			return true;
		rouse_future_drop(&c->op.op.base);
		c->live = false;
		if (c->op.result <= 0)
			return false;
		if (c->writing) {
			c->off += (size_t)c->op.result;
			c->writing = c->off < c->len;
		} else {
			c->len = (size_t)c->op.result;
			c->off = 0;
			c->writing = true;
		}
	}
}

static void econn_close(struct eserver *s, int i)
{
	struct econn *c = s->conns[i];

	if (c->live)
		rouse_future_drop(&c->op.op.base);
	ck_assert_int_eq(rouse_io_deregister(c->io), 0);
	close(c->fd);
	free(c);
	s->conns[i] = s->conns[--s->n];
}

static enum rouse_poll eserver_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct eserver *s = (struct eserver *)f;
	int i;

	if (rouse_future_poll(&s->stopw.op.base, cx) == ROUSE_READY)
		return ROUSE_READY;
	while (rouse_future_poll(&s->acc.op.base, cx) == ROUSE_READY) {
		struct econn *c;
		int fd = s->acc.result;

		rouse_future_drop(&s->acc.op.base);
		ck_assert_int_eq(rouse_io_accept_init(&s->acc, s->lio), 0);
		ck_assert_int_ge(fd, 0);
		c = calloc(1, sizeof(*c));
		ck_assert_ptr_nonnull(c);
		c->fd = fd;
		c->io = io_reg(s->ru.r, fd);
		ck_assert_int_lt(s->n, CLIENTS * 2);
		s->conns[s->n++] = c;
		s->served++;
	}
	for (i = 0; i < s->n;) {
		if (econn_drive(s->conns[i], cx)) {
			i++;
		} else {
			s->eofs++;
			econn_close(s, i);
		}
	}
	return ROUSE_PENDING;
}

static void eserver_drop(struct rouse_future *f)
{
	struct eserver *s = (struct eserver *)f;

	while (s->n > 0)
		econn_close(s, 0);
	rouse_future_drop(&s->acc.op.base);
	rouse_future_drop(&s->stopw.op.base);
}

static const struct rouse_future_vtable eserver_vtable = {
	eserver_poll, eserver_drop,
};

static void *eserver_thread(void *arg)
{
	struct eserver *s = arg;

	ck_assert_int_eq(test_runner_block_on(&s->ru, &s->base), 0);
	ck_assert_int_eq(rouse_future_drop(&s->base), 0);
	return NULL;
}

struct eclient {
	struct rouse_future base;
	int fd;
	struct rouse_io *io;
	bool connected;
	struct rouse_io_connect con;
	struct xfer x;
	unsigned char *out, *in;
	size_t len;
	int err;
};

static enum rouse_poll eclient_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct eclient *c = (struct eclient *)f;

	if (!c->connected) {
		if (rouse_future_poll(&c->con.op.base, cx) == ROUSE_PENDING)
			return ROUSE_PENDING;
		c->err = c->con.result;
		ck_assert_int_eq(rouse_future_drop(&c->con.op.base), 0);
		c->connected = true;
		if (c->err != 0)
			return ROUSE_READY;
		xfer_init(&c->x, c->io, c->out, c->len, c->io, c->in, c->len);
	}
	if (rouse_future_poll(&c->x.base, cx) == ROUSE_PENDING)
		return ROUSE_PENDING;
	c->err = c->x.err;
	return ROUSE_READY;
}

static const struct rouse_future_vtable eclient_vtable = { eclient_poll,
							   NULL };

START_TEST(test_echo)
{
	static struct eclient cl[CLIENTS];
	static struct eserver s;
	struct sockaddr_in addr;
	struct test_runner ru;
	struct join j;
	pthread_t t;
	int i, fds0;

	setup_sigpipe();
	fds0 = test_count_fds_warm();

	/* The server: its own reactor, on a thread of its own. */
	memset(&s, 0, sizeof(s));
	s.base.vtable = &eserver_vtable;
	test_runner_init(&s.ru, (enum test_mode)_i);
	s.lfd = tcp_listener(&addr);
	s.lio = io_reg(s.ru.r, s.lfd);
	ck_assert_int_eq(rouse_event_new(s.ru.r, &s.stop), 0);
	ck_assert_int_eq(rouse_io_accept_init(&s.acc, s.lio), 0);
	ck_assert_int_eq(rouse_event_wait_init(&s.stopw, s.stop), 0);
	t = test_thread_start(eserver_thread, &s);

	/* The clients: all at once, under one future on this thread. */
	test_runner_init(&ru, (enum test_mode)_i);
	join_init(&j);
	for (i = 0; i < CLIENTS; i++) {
		struct eclient *c = &cl[i];

		memset(c, 0, sizeof(*c));
		c->base.vtable = &eclient_vtable;
		c->len = 3000 + (size_t)i * 97;
		c->out = pattern_buf((unsigned int)i + 10, c->len);
		c->in = calloc(1, c->len);
		ck_assert_ptr_nonnull(c->in);
		c->fd = tcp_socket();
		c->io = io_reg(ru.r, c->fd);
		ck_assert_int_eq(rouse_io_connect_init(&c->con, c->io,
			(struct sockaddr *)&addr, sizeof(addr)), 0);
		join_add(&j, &c->base);
	}
	ck_assert_int_eq(test_runner_block_on(&ru, &j.base), 0);
	for (i = 0; i < CLIENTS; i++) {
		struct eclient *c = &cl[i];
		size_t k;

		ck_assert_msg(c->err == 0, "client %d: %s", i,
			      strerror(-c->err));
		for (k = 0; k < c->len; k++)
			if (c->in[k] != pattern((unsigned int)i + 10, k))
				ck_abort_msg("client %d: byte %zu is %#x", i, k,
					     c->in[k]);
		ck_assert_int_eq(rouse_future_drop(&c->x.base), 0);
		ck_assert_int_eq(rouse_io_deregister(c->io), 0);
		close(c->fd);
		free(c->out);
		free(c->in);
	}
	test_runner_free(&ru);

	/* Stop the server from here: an event notified across threads. */
	ck_assert_int_eq(rouse_event_notify(s.stop), 0);
	test_thread_join(t);
	ck_assert_int_eq(s.served, CLIENTS);
	rouse_event_free(s.stop);
	ck_assert_int_eq(rouse_io_deregister(s.lio), 0);
	close(s.lfd);
	test_runner_free(&s.ru);
	ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

/* ---- bad arguments -------------------------------------------------- */

START_TEST(test_einval)
{
	struct rouse_reactor *r = test_reactor_make();
	struct sockaddr_storage ss;
	struct rouse_io_connect con;
	struct rouse_io_accept acc;
	struct rouse_io_ready rdy;
	struct rouse_io_rw rw;
	struct rouse_io *io = SENTINEL;
	char buf[4];
	int sv[2], fds0;

	test_pair_make(sv);
	fds0 = test_count_fds();
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_INET;
	ck_assert_int_eq(rouse_io_register(NULL, sv[0], &io), -EINVAL);
	ck_assert_int_eq(rouse_io_register(r, sv[0], NULL), -EINVAL);
	ck_assert_ptr_eq(io, SENTINEL);
	ck_assert_int_eq(rouse_io_deregister(NULL), -EINVAL);
	ck_assert_int_eq(rouse_io_fd(NULL), -EINVAL);
	ck_assert_int_eq(rouse_io_clear(NULL, ROUSE_IO_READABLE), -EINVAL);
	ck_assert_int_eq(rouse_io_readable_init(&rdy, NULL), -EINVAL);
	ck_assert_int_eq(rouse_io_writable_init(&rdy, NULL), -EINVAL);
	ck_assert_int_eq(rouse_io_read_init(&rw, NULL, buf, 4), -EINVAL);
	ck_assert_int_eq(rouse_io_write_init(&rw, NULL, buf, 4), -EINVAL);
	ck_assert_int_eq(rouse_io_accept_init(&acc, NULL), -EINVAL);
	ck_assert_int_eq(rouse_io_connect_init(&con, NULL,
					       (struct sockaddr *)&ss,
					       sizeof(struct sockaddr_in)),
			 -EINVAL);
	io = io_reg(r, sv[0]);
	ck_assert_int_eq(rouse_io_readable_init(NULL, io), -EINVAL);
	ck_assert_int_eq(rouse_io_writable_init(NULL, io), -EINVAL);
	ck_assert_int_eq(rouse_io_read_init(NULL, io, buf, 4), -EINVAL);
	ck_assert_int_eq(rouse_io_read_init(&rw, io, NULL, 4), -EINVAL);
	ck_assert_int_eq(rouse_io_write_init(NULL, io, buf, 4), -EINVAL);
	ck_assert_int_eq(rouse_io_write_init(&rw, io, NULL, 4), -EINVAL);
	ck_assert_int_eq(rouse_io_accept_init(NULL, io), -EINVAL);
	ck_assert_int_eq(rouse_io_connect_init(NULL, io,
					       (struct sockaddr *)&ss,
					       sizeof(struct sockaddr_in)),
			 -EINVAL);
	ck_assert_int_eq(rouse_io_connect_init(&con, io, NULL,
					       sizeof(struct sockaddr_in)),
			 -EINVAL);
	ck_assert_int_eq(rouse_io_connect_init(&con, io,
					       (struct sockaddr *)&ss, 0),
			 -EINVAL);
	ck_assert_int_eq(rouse_io_connect_init(&con, io,
					       (struct sockaddr *)&ss,
					       sizeof(ss) + 1), -EINVAL);
	/* A zero-length read with no buffer is fine: it reads nothing. */
	ck_assert_int_eq(rouse_io_read_init(&rw, io, NULL, 0), 0);
	ck_assert_int_eq(test_poll_noop(&rw.op.base), ROUSE_READY);
	ck_assert_int_eq(rw.result, 0);
	ck_assert_int_eq(rouse_future_drop(&rw.op.base), 0);
	ck_assert_int_eq(rouse_io_deregister(io), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
	close(sv[0]);
	close(sv[1]);
	rouse_reactor_free(r);
}
END_TEST

static Suite *io_suite(void)
{
	Suite *s = suite_create("io");
	TCase *tc;

	tc = tcase_create("register");
	tcase_add_test(tc, test_register_errors);
	tcase_add_test(tc, test_register_many);
	suite_add_tcase(s, tc);

	tc = tcase_create("readiness");
	tcase_add_test(tc, test_readable_writable);
	tcase_add_test(tc, test_hangup);
	tcase_add_test(tc, test_error_bits);
	tcase_add_test(tc, test_cache_cleared);
	tcase_add_test(tc, test_short_read_drains);
	tcase_add_test(tc, test_packet_pipe_short_read);
	tcase_add_test(tc, test_clear_keeps_later_edge);
	tcase_add_test(tc, test_zero_write_no_sigpipe);
	tcase_add_test(tc, test_second_op_busy);
	tcase_add_test(tc, test_deregister_pending);
	suite_add_tcase(s, tc);

	tc = tcase_create("generation");
	tcase_add_test(tc, test_generation_deregistered);
	tcase_add_test(tc, test_generation_dup);
	tcase_add_test(tc, test_generation_in_batch);
	tcase_add_test(tc, test_closed_before_deregister);
	suite_add_tcase(s, tc);

	tc = tcase_create("wake_callback");
	tcase_add_test(tc, test_deregister_from_wake);
	suite_add_tcase(s, tc);

	tc = tcase_create("tcp");
	tcase_add_loop_test(tc, test_tcp, 0, TEST_MODES);
	tcase_add_loop_test(tc, test_tcp_refused, 0, TEST_MODES);
	tcase_add_test(tc, test_urgent_data_short_read);
	tcase_add_loop_test(tc, test_eof_after_short_read, 0,
			    2 * EOF_ORDERS);
	tcase_add_test(tc, test_accept_pending);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("echo");
	tcase_add_loop_test(tc, test_echo, 0, TEST_MODES);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = tcase_create("einval");
	tcase_add_test(tc, test_einval);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return test_run_suite(io_suite());
}
