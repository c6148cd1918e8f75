// SPDX-License-Identifier: MIT
/*
 * tests/check_copy.c - sendfile, splice and the bidirectional copy:
 * a 4 MiB file sent to a TCP and a Unix stream socket (every byte
 * compared; offsets, counts and the end of the file), socket-to-socket
 * splice over Unix and TCP, the bidirectional copy with a half-close
 * passed on each way (small and 1 MiB each way at once), a reset ending
 * both directions, no SIGPIPE from a peer that has gone, -ECHILD in a
 * child of fork(), no descriptor left behind, and bad input.
 */
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <rouse/async.h>
#include <rouse/net.h>

#include "testutil.h"

#define MIB (1024 * 1024)
#define FILE_SIZE (4 * MIB)

static unsigned char pattern(size_t k)
{
	return (unsigned char)(k * 131 + (k >> 9));
}

/* ---- running several futures at once ----------------------------------- */

#define ALL_MAX 6

/* Ready once the first need of its futures are; the others run along. */
struct all {
	struct rouse_future base;
	struct rouse_future *f[ALL_MAX];
	bool done[ALL_MAX];
	int n, need;
};

static enum rouse_poll all_poll(struct rouse_future *self,
				struct rouse_context *cx)
{
	struct all *a = (struct all *)self;
	bool pending = false;
	int i;

	for (i = 0; i < a->n; i++) {
		if (!a->done[i])
			a->done[i] = rouse_future_poll(a->f[i], cx) ==
				     ROUSE_READY;
		pending |= i < a->need && !a->done[i];
	}
	return pending ? ROUSE_PENDING : ROUSE_READY;
}

static const struct rouse_future_vtable all_vt = { all_poll, NULL };

static void run_all(struct test_runner *ru, int n, ...)
{
	struct all a = { .base = { &all_vt }, .n = n, .need = n };
	va_list ap;
	int i;

	ck_assert_int_le(n, ALL_MAX);
	va_start(ap, n);
	for (i = 0; i < n; i++)
		a.f[i] = va_arg(ap, struct rouse_future *);
	va_end(ap);
	ck_assert_int_eq(test_runner_block_on(ru, &a.base), 0);
}

/* ---- streams ------------------------------------------------------------- */

/* A Unix socketpair, both ends streams on ru's reactor. */
static void unix_pair(struct test_runner *ru, struct rouse_stream **a,
		      struct rouse_stream **b)
{
	int sv[2];

	test_pair_make(sv);
	ck_assert_int_eq(rouse_stream_open(ru->r, sv[0], a), 0);
	ck_assert_int_eq(rouse_stream_open(ru->r, sv[1], b), 0);
}

/* A connected pair of TCP streams over the loopback. */
static void tcp_pair(struct test_runner *ru, struct rouse_stream **client,
		     struct rouse_stream **server)
{
	struct rouse_tcp_listener *l;
	struct rouse_tcp_connect c;
	struct rouse_tcp_accept a;
	struct rouse_addr addr;

	ck_assert_int_eq(rouse_addr_parse(&addr, "127.0.0.1:0"), 0);
	ck_assert_int_eq(rouse_tcp_listen(ru->r, &addr, 0, 0, &l), 0);
	ck_assert_int_eq(rouse_tcp_listener_addr(l, &addr), 0);
	ck_assert_int_eq(rouse_tcp_connect_init(&c, ru->r, &addr), 0);
	ck_assert_int_eq(rouse_tcp_accept_init(&a, l), 0);
	run_all(ru, 2, &c.base, &a.base);
	ck_assert_int_eq(c.result, 0);
	ck_assert_int_eq(a.result, 0);
	*client = c.stream;
	*server = a.stream;
	rouse_future_drop(&c.base);
	rouse_future_drop(&a.base);
	ck_assert_int_eq(rouse_tcp_listener_close(l), 0);
}

static void pair(struct test_runner *ru, bool tcp, struct rouse_stream **a,
		 struct rouse_stream **b)
{
	if (tcp)
		tcp_pair(ru, a, b);
	else
		unix_pair(ru, a, b);
}

/* A file of FILE_SIZE pattern bytes, already unlinked. */
static int temp_file(void)
{
	const char *dir = getenv("TMPDIR");
	char path[512];
	unsigned char *buf = malloc(FILE_SIZE);
	size_t k;
	int fd;

	ck_assert_ptr_nonnull(buf);
	snprintf(path, sizeof(path), "%s/check_copy.XXXXXX",
		 dir != NULL && *dir != '\0' ? dir : "/tmp");
	fd = mkostemp(path, O_CLOEXEC);
	ck_assert_msg(fd >= 0, "mkostemp(%s): %s", path, strerror(errno));
	ck_assert_int_eq(unlink(path), 0);
	for (k = 0; k < FILE_SIZE; k++)
		buf[k] = pattern(k);
	ck_assert_int_eq(write(fd, buf, FILE_SIZE), FILE_SIZE);
	free(buf);
	return fd;
}

/* ---- peers --------------------------------------------------------------- */

/* Writes len bytes of out, then half-closes. */
struct sender {
	struct rouse_future base;
	struct rouse_async co;
	struct rouse_stream *s;
	const void *out;
	size_t len;
	struct rouse_stream_rw w;
	ssize_t err;		/* output: 0, or the write's error */
};

static enum rouse_poll sender_poll(struct rouse_future *f,
				   struct rouse_context *cx)
{
	struct sender *t = (struct sender *)f;

	ROUSE_ASYNC_BEGIN(&t->co, cx);
	ck_assert_int_eq(rouse_stream_write_all_init(&t->w, t->s, t->out,
						     t->len), 0);
	ROUSE_AWAIT(&t->w.base);
	rouse_future_drop(&t->w.base);
	if (t->w.result < 0) {
		t->err = t->w.result;
		ROUSE_ASYNC_RETURN();
	}
	ck_assert_int_eq(t->w.result, (ssize_t)t->len);
	ck_assert_int_eq(rouse_stream_shutdown(t->s, SHUT_WR), 0);
	ROUSE_ASYNC_END();
}

static void sender_drop(struct rouse_future *f)
{
	rouse_future_drop(&((struct sender *)f)->w.base);
}

static const struct rouse_future_vtable sender_vt = { sender_poll,
						      sender_drop };

static void sender_init(struct sender *t, struct rouse_stream *s,
			const void *out, size_t len)
{
	memset(t, 0, sizeof(*t));
	t->base.vtable = &sender_vt;
	t->s = s;
	t->out = out;
	t->len = len;
}

/* Reads until the end of the stream, into a buffer of its own. */
struct receiver {
	struct rouse_future base;
	struct rouse_async co;
	struct rouse_stream *s;
	struct rouse_stream_rw r;
	unsigned char *in;
	size_t size, got;
	ssize_t err;		/* output: 0, or the read's error */
};

static enum rouse_poll receiver_poll(struct rouse_future *f,
				     struct rouse_context *cx)
{
	struct receiver *t = (struct receiver *)f;

	ROUSE_ASYNC_BEGIN(&t->co, cx);
	for (;;) {
		/* Room for one byte more than expected, to see it. */
		ck_assert_uint_lt(t->got, t->size);
		ck_assert_int_eq(rouse_stream_read_init(&t->r, t->s,
							t->in + t->got,
							t->size - t->got), 0);
		ROUSE_AWAIT(&t->r.base);
		rouse_future_drop(&t->r.base);
		if (t->r.result <= 0)
			break;
		t->got += (size_t)t->r.result;
	}
	t->err = t->r.result;
	ROUSE_ASYNC_END();
}

static void receiver_drop(struct rouse_future *f)
{
	rouse_future_drop(&((struct receiver *)f)->r.base);
}

static const struct rouse_future_vtable receiver_vt = { receiver_poll,
							receiver_drop };

static void receiver_init(struct receiver *t, struct rouse_stream *s,
			  size_t expect)
{
	memset(t, 0, sizeof(*t));
	t->base.vtable = &receiver_vt;
	t->s = s;
	t->size = expect + 1;
	t->in = malloc(t->size);
	ck_assert_ptr_nonnull(t->in);
}

static void receiver_free(struct receiver *t)
{
	rouse_future_drop(&t->base);
	free(t->in);
}

/* first, then second: a peer that answers only after the end. */
struct seq {
	struct rouse_future base;
	struct rouse_future *first, *second;
	bool first_done;
};

static enum rouse_poll seq_poll(struct rouse_future *f,
				struct rouse_context *cx)
{
	struct seq *q = (struct seq *)f;

	if (!q->first_done) {
		if (rouse_future_poll(q->first, cx) == ROUSE_PENDING)
			return ROUSE_PENDING;
		q->first_done = true;
	}
	return (enum rouse_poll)rouse_future_poll(q->second, cx);
}

static const struct rouse_future_vtable seq_vt = { seq_poll, NULL };

/* ---- sendfile ------------------------------------------------------------ */

static void sendfile_case(struct test_runner *ru, bool tcp)
{
	struct rouse_stream *out, *in;
	struct rouse_sendfile f;
	struct rouse_stream_rw rd;
	unsigned char *got = malloc(FILE_SIZE);
	int fd = temp_file(), fds0;
	off_t pos;
	size_t k;

	ck_assert_ptr_nonnull(got);
	pos = lseek(fd, 12345, SEEK_SET);
	fds0 = test_count_fds_warm();
	pair(ru, tcp, &out, &in);
	/* The whole file: count 0. */
	ck_assert_int_eq(rouse_sendfile_init(&f, out, fd, 0, 0), 0);
	ck_assert_int_eq(rouse_stream_read_exact_init(&rd, in, got,
						      FILE_SIZE), 0);
	run_all(ru, 2, &f.base, &rd.base);
	ck_assert_int_eq(f.result, FILE_SIZE);
	ck_assert_uint_eq(f.done, FILE_SIZE);
	ck_assert_int_eq(f.offset, FILE_SIZE);
	ck_assert_int_eq(rd.result, FILE_SIZE);
	for (k = 0; k < FILE_SIZE; k++)
		if (got[k] != pattern(k))
			ck_abort_msg("byte %zu differs", k);
	rouse_future_drop(&f.base);
	rouse_future_drop(&rd.base);
	/* A part, from an offset. */
	ck_assert_int_eq(rouse_sendfile_init(&f, out, fd, 100, 1000), 0);
	ck_assert_int_eq(rouse_stream_read_exact_init(&rd, in, got, 1000), 0);
	run_all(ru, 2, &f.base, &rd.base);
	ck_assert_int_eq(f.result, 1000);
	ck_assert_int_eq(f.offset, 1100);
	for (k = 0; k < 1000; k++)
		ck_assert_int_eq(got[k], pattern(100 + k));
	rouse_future_drop(&f.base);
	rouse_future_drop(&rd.base);
	/* More than the file has: it stops at the end. */
	ck_assert_int_eq(rouse_sendfile_init(&f, out, fd, FILE_SIZE - 10, 100),
			 0);
	ck_assert_int_eq(test_runner_block_on(ru, &f.base), 0);
	ck_assert_int_eq(f.result, 10);
	rouse_future_drop(&f.base);
	ck_assert_int_eq(rouse_sendfile_init(&f, out, fd, FILE_SIZE, 0), 0);
	ck_assert_int_eq(test_runner_block_on(ru, &f.base), 0);
	ck_assert_int_eq(f.result, 0);
	rouse_future_drop(&f.base);
	ck_assert_int_eq(rouse_stream_read_exact_init(&rd, in, got, 10), 0);
	ck_assert_int_eq(test_runner_block_on(ru, &rd.base), 0);
	ck_assert_int_eq(rd.result, 10);
	ck_assert_int_eq(got[9], pattern(FILE_SIZE - 1));
	rouse_future_drop(&rd.base);
	/* The file's own offset was left alone. */
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), pos);
	ck_assert_int_eq(rouse_stream_close(out), 0);
	ck_assert_int_eq(rouse_stream_close(in), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
	close(fd);
	free(got);
}

START_TEST(sendfile_tcp)
{
	struct test_runner ru;

	test_runner_init(&ru, (enum test_mode)_i);
	sendfile_case(&ru, true);
	test_runner_free(&ru);
}
END_TEST

START_TEST(sendfile_unix)
{
	struct test_runner ru;

	test_runner_init(&ru, (enum test_mode)_i);
	sendfile_case(&ru, false);
	test_runner_free(&ru);
}
END_TEST

/* ---- splice -------------------------------------------------------------- */

/*
 * 4 MiB from a0 to a1, spliced to b0, read from b1: the splice ends at
 * a1's end with every byte passed on; then a splice with a count stops
 * there and leaves the rest in its input.
 */
static void splice_case(struct test_runner *ru, bool tcp)
{
	struct rouse_stream *a0, *a1, *b0, *b1;
	struct rouse_splice sp;
	struct rouse_stream_rw rd;
	unsigned char *data = malloc(FILE_SIZE), *got = malloc(FILE_SIZE);
	struct sender w;
	char small[128];
	size_t k;
	int fds0;

	ck_assert(data != NULL && got != NULL);
	for (k = 0; k < FILE_SIZE; k++)
		data[k] = pattern(k);
	fds0 = test_count_fds_warm();
	pair(ru, tcp, &a0, &a1);
	pair(ru, tcp, &b0, &b1);
	sender_init(&w, a0, data, FILE_SIZE);
	ck_assert_int_eq(rouse_splice_init(&sp, b0, a1, 0), 0);
	ck_assert_int_eq(rouse_stream_read_exact_init(&rd, b1, got,
						      FILE_SIZE), 0);
	run_all(ru, 3, &w.base, &sp.base, &rd.base);
	ck_assert_int_eq(w.err, 0);
	ck_assert_int_eq(sp.result, FILE_SIZE);
	ck_assert_uint_eq(sp.done, FILE_SIZE);
	ck_assert_int_eq(rd.result, FILE_SIZE);
	ck_assert(memcmp(got, data, FILE_SIZE) == 0);
	rouse_future_drop(&sp.base);
	rouse_future_drop(&rd.base);
	rouse_future_drop(&w.base);
	ck_assert_int_eq(rouse_stream_close(a0), 0);
	ck_assert_int_eq(rouse_stream_close(a1), 0);

	/* A count: 40 of 100 bytes, the other 60 stay in the input. */
	pair(ru, tcp, &a0, &a1);
	ck_assert_int_eq(send(rouse_stream_fd(a0), data, 100, MSG_NOSIGNAL),
			 100);
	ck_assert_int_eq(rouse_splice_init(&sp, b0, a1, 40), 0);
	ck_assert_int_eq(rouse_stream_read_exact_init(&rd, b1, small, 40), 0);
	run_all(ru, 2, &sp.base, &rd.base);
	ck_assert_int_eq(sp.result, 40);
	ck_assert(memcmp(small, data, 40) == 0);
	rouse_future_drop(&sp.base);
	rouse_future_drop(&rd.base);
	ck_assert_int_eq(rouse_stream_read_exact_init(&rd, a1, small, 60), 0);
	ck_assert_int_eq(test_runner_block_on(ru, &rd.base), 0);
	ck_assert_int_eq(rd.result, 60);
	ck_assert(memcmp(small, data + 40, 60) == 0);
	rouse_future_drop(&rd.base);
	ck_assert_int_eq(rouse_stream_close(a0), 0);
	ck_assert_int_eq(rouse_stream_close(a1), 0);
	ck_assert_int_eq(rouse_stream_close(b0), 0);
	ck_assert_int_eq(rouse_stream_close(b1), 0);
	/* The splices' pipes were closed by their drops. */
	ck_assert_int_eq(test_count_fds(), fds0);
	free(data);
	free(got);
}

START_TEST(splice_unix)
{
	struct test_runner ru;

	test_runner_init(&ru, (enum test_mode)_i);
	splice_case(&ru, false);
	test_runner_free(&ru);
}
END_TEST

START_TEST(splice_tcp)
{
	struct test_runner ru;

	test_runner_init(&ru, (enum test_mode)_i);
	splice_case(&ru, true);
	test_runner_free(&ru);
}
END_TEST

/* ---- the bidirectional copy ---------------------------------------------- */

/*
 * A <-> pa (copy) pb <-> B.  A sends and half-closes; B sees the data,
 * then the end, and only then sends back and half-closes; A receives
 * that and the end.  The copy ends with both byte counts.
 */
static void bidi_half_close(struct test_runner *ru, bool tcp)
{
	static const char hello[] = "hello from a", reply[] = "reply, from b";
	struct rouse_stream *A, *pa, *pb, *B;
	struct rouse_copy_bidi c;
	struct sender sA, sB;
	struct receiver rA, rB;
	struct seq pA = { { &seq_vt }, &sA.base, &rA.base, false };
	struct seq pB = { { &seq_vt }, &rB.base, &sB.base, false };
	int fds0 = test_count_fds_warm();

	pair(ru, tcp, &A, &pa);
	pair(ru, tcp, &pb, &B);
	sender_init(&sA, A, hello, strlen(hello));
	receiver_init(&rA, A, strlen(reply));
	receiver_init(&rB, B, strlen(hello));
	sender_init(&sB, B, reply, strlen(reply));
	ck_assert_int_eq(rouse_copy_bidirectional_init(&c, pa, pb), 0);
	run_all(ru, 3, &pA.base, &c.base, &pB.base);
	ck_assert_int_eq(c.result, 0);
	ck_assert_uint_eq(c.a_to_b, strlen(hello));
	ck_assert_uint_eq(c.b_to_a, strlen(reply));
	ck_assert_int_eq(sA.err, 0);
	ck_assert_int_eq(sB.err, 0);
	ck_assert_int_eq(rA.err, 0);
	ck_assert_int_eq(rB.err, 0);
	/* B saw all of A's bytes and then the end, before it answered. */
	ck_assert_uint_eq(rB.got, strlen(hello));
	ck_assert(memcmp(rB.in, hello, rB.got) == 0);
	ck_assert_uint_eq(rA.got, strlen(reply));
	ck_assert(memcmp(rA.in, reply, rA.got) == 0);
	ck_assert_int_eq(rouse_future_drop(&c.base), 0);
	/* The outputs outlive the drop. */
	ck_assert_uint_eq(c.a_to_b, strlen(hello));
	ck_assert_int_eq(c.result, 0);
	rouse_future_drop(&sA.base);
	rouse_future_drop(&sB.base);
	receiver_free(&rA);
	receiver_free(&rB);
	ck_assert_int_eq(rouse_stream_close(A), 0);
	ck_assert_int_eq(rouse_stream_close(pa), 0);
	ck_assert_int_eq(rouse_stream_close(pb), 0);
	ck_assert_int_eq(rouse_stream_close(B), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
}

START_TEST(bidi_half_close_unix)
{
	struct test_runner ru;

	test_runner_init(&ru, (enum test_mode)_i);
	bidi_half_close(&ru, false);
	test_runner_free(&ru);
}
END_TEST

START_TEST(bidi_half_close_tcp)
{
	struct test_runner ru;

	test_runner_init(&ru, (enum test_mode)_i);
	bidi_half_close(&ru, true);
	test_runner_free(&ru);
}
END_TEST

/*
 * 1 MiB each way at once, both ends half-closing when they are done;
 * odd _i: the A side over TCP and the B side over Unix, even: the other
 * way round.
 */
START_TEST(bidi_both_ways)
{
	struct test_runner ru;
	struct rouse_stream *A, *pa, *pb, *B;
	struct rouse_copy_bidi c;
	struct sender sA, sB;
	struct receiver rA, rB;
	unsigned char *data = malloc(MIB), *back = malloc(MIB);
	size_t k;

	ck_assert(data != NULL && back != NULL);
	for (k = 0; k < MIB; k++) {
		data[k] = pattern(k);
		back[k] = pattern(k + 7);
	}
	test_runner_init(&ru, (enum test_mode)_i);
	pair(&ru, _i % 2 == 0, &A, &pa);
	pair(&ru, _i % 2 != 0, &pb, &B);
	sender_init(&sA, A, data, MIB);
	sender_init(&sB, B, back, MIB);
	receiver_init(&rA, A, MIB);
	receiver_init(&rB, B, MIB);
	ck_assert_int_eq(rouse_copy_bidirectional_init(&c, pa, pb), 0);
	run_all(&ru, 5, &sA.base, &sB.base, &c.base, &rA.base, &rB.base);
	ck_assert_int_eq(c.result, 0);
	ck_assert_uint_eq(c.a_to_b, MIB);
	ck_assert_uint_eq(c.b_to_a, MIB);
	ck_assert_int_eq(rA.err, 0);
	ck_assert_int_eq(rB.err, 0);
	ck_assert_uint_eq(rB.got, MIB);
	ck_assert_uint_eq(rA.got, MIB);
	ck_assert(memcmp(rB.in, data, MIB) == 0);
	ck_assert(memcmp(rA.in, back, MIB) == 0);
	rouse_future_drop(&c.base);
	rouse_future_drop(&sA.base);
	rouse_future_drop(&sB.base);
	receiver_free(&rA);
	receiver_free(&rB);
	ck_assert_int_eq(rouse_stream_close(A), 0);
	ck_assert_int_eq(rouse_stream_close(pa), 0);
	ck_assert_int_eq(rouse_stream_close(pb), 0);
	ck_assert_int_eq(rouse_stream_close(B), 0);
	test_runner_free(&ru);
	free(data);
	free(back);
}
END_TEST

/*
 * A peer resets its connection (SO_LINGER 0) while the copy runs: the
 * copy ends both directions with -ECONNRESET (or -EPIPE), and says how
 * far each had come.  _i picks the side that resets.
 */
START_TEST(bidi_reset)
{
	struct test_runner ru;
	struct rouse_stream *A, *pa, *pb, *B;
	struct rouse_copy_bidi c;
	struct rouse_stream_rw rd;
	struct linger lg = { 1, 0 };
	struct rouse_stream *victim, *other;
	char buf[8];
	int fds0;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	fds0 = test_count_fds_warm();
	tcp_pair(&ru, &A, &pa);
	tcp_pair(&ru, &pb, &B);
	victim = _i == 0 ? A : B;
	other = _i == 0 ? B : A;
	ck_assert_int_eq(rouse_copy_bidirectional_init(&c, pa, pb), 0);
	/* Some bytes through first, so the copy is well under way. */
	ck_assert_int_eq(send(rouse_stream_fd(victim), "abc", 3,
			      MSG_NOSIGNAL), 3);
	ck_assert_int_eq(rouse_stream_read_exact_init(&rd, other, buf, 3), 0);
	{
		struct all a = { .base = { &all_vt }, .f = { &rd.base,
							     &c.base },
				 .n = 2, .need = 1 };

		ck_assert_int_eq(test_runner_block_on(&ru, &a.base), 0);
		ck_assert(!a.done[1]);
	}
	rouse_future_drop(&rd.base);
	ck_assert_int_eq(rd.result, 3);
	ck_assert_int_eq(setsockopt(rouse_stream_fd(victim), SOL_SOCKET,
				    SO_LINGER, &lg, sizeof(lg)), 0);
	ck_assert_int_eq(rouse_stream_close(victim), 0);
	ck_assert_int_eq(test_runner_block_on(&ru, &c.base), 0);
	ck_assert_msg(c.result == -ECONNRESET || c.result == -EPIPE,
		      "copy: %d", c.result);
	ck_assert_uint_eq(_i == 0 ? c.a_to_b : c.b_to_a, 3);
	ck_assert_uint_eq(_i == 0 ? c.b_to_a : c.a_to_b, 0);
	/* Polled again, it stays ready with its error. */
	ck_assert_int_eq(test_poll_noop(&c.base), ROUSE_READY);
	ck_assert_msg(c.result == -ECONNRESET || c.result == -EPIPE,
		      "copy polled again: %d", c.result);
	rouse_future_drop(&c.base);
	ck_assert_int_eq(rouse_stream_close(pa), 0);
	ck_assert_int_eq(rouse_stream_close(pb), 0);
	/* The other peer sees its connection end. */
	ck_assert_int_eq(rouse_stream_read_init(&rd, other, buf, sizeof(buf)),
			 0);
	ck_assert_int_eq(test_runner_block_on(&ru, &rd.base), 0);
	ck_assert_int_le(rd.result, 0);
	rouse_future_drop(&rd.base);
	ck_assert_int_eq(rouse_stream_close(other), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
	test_runner_free(&ru);
}
END_TEST

/* A copy dropped while it runs closes its pipes; the streams still work. */
START_TEST(bidi_dropped)
{
	struct test_runner ru;
	struct rouse_stream *A, *pa, *pb, *B;
	struct rouse_copy_bidi c;
	struct rouse_stream_rw rd;
	char buf[4];
	int fds0, fds1;

	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	unix_pair(&ru, &A, &pa);
	unix_pair(&ru, &pb, &B);
	fds1 = test_count_fds();
	ck_assert_int_eq(rouse_copy_bidirectional_init(&c, pa, pb), 0);
	ck_assert_int_eq(test_count_fds(), fds1 + 4);
	ck_assert_int_eq(test_poll_noop(&c.base), ROUSE_PENDING);
	ck_assert_int_eq(rouse_future_drop(&c.base), 0);
	ck_assert_int_eq(test_count_fds(), fds1);
	ck_assert_int_eq(send(rouse_stream_fd(A), "ok", 2, MSG_NOSIGNAL), 2);
	ck_assert_int_eq(rouse_stream_read_exact_init(&rd, pa, buf, 2), 0);
	ck_assert_int_eq(test_runner_block_on(&ru, &rd.base), 0);
	ck_assert_int_eq(rd.result, 2);
	rouse_future_drop(&rd.base);
	/* A splice never polled closes its pipe too. */
	{
		struct rouse_splice sp;

		ck_assert_int_eq(rouse_splice_init(&sp, pb, pa, 0), 0);
		ck_assert_int_eq(rouse_future_drop(&sp.base), 0);
	}
	ck_assert_int_eq(rouse_stream_close(A), 0);
	ck_assert_int_eq(rouse_stream_close(pa), 0);
	ck_assert_int_eq(rouse_stream_close(pb), 0);
	ck_assert_int_eq(rouse_stream_close(B), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
	test_runner_free(&ru);
}
END_TEST

/*
 * sendfile and splice into a socket whose peer has gone: -EPIPE, with
 * SIGPIPE at its default action (which would end the test), and no
 * SIGPIPE left pending; one that was pending before stays.
 */
START_TEST(no_sigpipe)
{
	struct test_runner ru;
	struct rouse_stream *out, *peer, *a0, *a1;
	struct rouse_sendfile f;
	struct rouse_splice sp;
	sigset_t set, pend;
	int fd = temp_file();

	signal(SIGPIPE, SIG_DFL);
	test_runner_init(&ru, TEST_MODE_DRIVEN);
	unix_pair(&ru, &out, &peer);
	ck_assert_int_eq(rouse_stream_close(peer), 0);
	ck_assert_int_eq(rouse_sendfile_init(&f, out, fd, 0, 0), 0);
	ck_assert_int_eq(test_runner_block_on(&ru, &f.base), 0);
	ck_assert_int_eq(f.result, -EPIPE);
	/* Polled again, it stays ready with its error, and calls nothing. */
	ck_assert_int_eq(test_poll_noop(&f.base), ROUSE_READY);
	ck_assert_int_eq(f.result, -EPIPE);
	rouse_future_drop(&f.base);
	unix_pair(&ru, &a0, &a1);
	ck_assert_int_eq(send(rouse_stream_fd(a0), "x", 1, MSG_NOSIGNAL), 1);
	ck_assert_int_eq(rouse_splice_init(&sp, out, a1, 1), 0);
	ck_assert_int_eq(test_runner_block_on(&ru, &sp.base), 0);
	ck_assert_int_eq(sp.result, -EPIPE);
	ck_assert_int_eq(test_poll_noop(&sp.base), ROUSE_READY);
	ck_assert_int_eq(sp.result, -EPIPE);
	rouse_future_drop(&sp.base);
	ck_assert_int_eq(sigpending(&pend), 0);
	ck_assert(!sigismember(&pend, SIGPIPE));
	/* The program's own pending SIGPIPE is not taken. */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
	ck_assert_int_eq(raise(SIGPIPE), 0);
	ck_assert_int_eq(rouse_sendfile_init(&f, out, fd, 0, 0), 0);
	ck_assert_int_eq(test_runner_block_on(&ru, &f.base), 0);
	ck_assert_int_eq(f.result, -EPIPE);
	rouse_future_drop(&f.base);
	ck_assert_int_eq(sigpending(&pend), 0);
	ck_assert(sigismember(&pend, SIGPIPE));
	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(pthread_sigmask(SIG_UNBLOCK, &set, NULL), 0);
	ck_assert_int_eq(rouse_stream_close(a0), 0);
	ck_assert_int_eq(rouse_stream_close(a1), 0);
	ck_assert_int_eq(rouse_stream_close(out), 0);
	test_runner_free(&ru);
	close(fd);
}
END_TEST

/*
 * In a child of fork(), the copies refuse an inherited reactor before
 * any system call: the parent's bytes stay where they are.
 */
START_TEST(child_refused)
{
	struct test_runner ru;
	struct rouse_stream *a0, *a1, *b0, *b1;
	struct rouse_stream_rw rd;
	int fd = temp_file(), status;
	char buf[4];
	pid_t pid;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	unix_pair(&ru, &a0, &a1);
	unix_pair(&ru, &b0, &b1);
	ck_assert_int_eq(send(rouse_stream_fd(a0), "abc", 3, MSG_NOSIGNAL),
			 3);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct rouse_waker w = rouse_waker_noop();
		struct rouse_context cx = { &w };
		struct rouse_splice sp;
		struct rouse_sendfile f;
		struct rouse_copy_bidi c;

		if (rouse_splice_init(&sp, b0, a1, 0) != 0 ||
		    sp.base.vtable->poll(&sp.base, &cx) != ROUSE_READY ||
		    sp.result != -ECHILD)
			_exit(1);
		if (rouse_sendfile_init(&f, b0, fd, 0, 0) != 0 ||
		    f.base.vtable->poll(&f.base, &cx) != ROUSE_READY ||
		    f.result != -ECHILD)
			_exit(2);
		if (rouse_copy_bidirectional_init(&c, a1, b0) != 0 ||
		    c.base.vtable->poll(&c.base, &cx) != ROUSE_READY ||
		    c.result != -ECHILD)
			_exit(3);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_eq(rouse_stream_read_exact_init(&rd, a1, buf, 3), 0);
	ck_assert_int_eq(test_runner_block_on(&ru, &rd.base), 0);
	ck_assert_int_eq(rd.result, 3);
	rouse_future_drop(&rd.base);
	/* Nothing reached b1 either. */
	ck_assert_int_eq(recv(rouse_stream_fd(b1), buf, 1, MSG_DONTWAIT), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(rouse_stream_close(a0), 0);
	ck_assert_int_eq(rouse_stream_close(a1), 0);
	ck_assert_int_eq(rouse_stream_close(b0), 0);
	ck_assert_int_eq(rouse_stream_close(b1), 0);
	close(fd);
	test_runner_free(&ru);
}
END_TEST

START_TEST(copy_bad_input)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_stream *s, *t, *p;
	struct rouse_sendfile f;
	struct rouse_splice sp;
	struct rouse_copy_bidi c;
	int sv[2], pp[2], fds0;

	fds0 = test_count_fds();
	test_pair_make(sv);
	ck_assert_int_eq(pipe2(pp, O_CLOEXEC), 0);
	ck_assert_int_eq(rouse_stream_open(r, sv[0], &s), 0);
	ck_assert_int_eq(rouse_stream_open(r, sv[1], &t), 0);
	ck_assert_int_eq(rouse_stream_open(r, pp[0], &p), 0);
	ck_assert_int_eq(rouse_sendfile_init(NULL, s, 0, 0, 0), -EINVAL);
	ck_assert_int_eq(rouse_sendfile_init(&f, NULL, 0, 0, 0), -EINVAL);
	ck_assert_int_eq(rouse_sendfile_init(&f, s, -1, 0, 0), -EBADF);
	ck_assert_int_eq(rouse_sendfile_init(&f, s, 9999, 0, 0), -EBADF);
	ck_assert_int_eq(rouse_sendfile_init(&f, s, pp[1], 0, 0), -EINVAL);
	ck_assert_int_eq(rouse_sendfile_init(&f, s, sv[1], 0, 0), -EINVAL);
	ck_assert_int_eq(rouse_sendfile_init(&f, s, 0, -1, 0), -EINVAL);
	ck_assert_int_eq(rouse_splice_init(NULL, s, t, 0), -EINVAL);
	ck_assert_int_eq(rouse_splice_init(&sp, NULL, t, 0), -EINVAL);
	ck_assert_int_eq(rouse_splice_init(&sp, s, NULL, 0), -EINVAL);
	ck_assert_int_eq(rouse_copy_bidirectional_init(NULL, s, t), -EINVAL);
	ck_assert_int_eq(rouse_copy_bidirectional_init(&c, NULL, t), -EINVAL);
	ck_assert_int_eq(rouse_copy_bidirectional_init(&c, s, NULL), -EINVAL);
	ck_assert_int_eq(rouse_copy_bidirectional_init(&c, s, s), -EINVAL);
	/* A pipe cannot be half-closed. */
	ck_assert_int_eq(rouse_copy_bidirectional_init(&c, s, p), -ENOTSOCK);
	ck_assert_int_eq(rouse_copy_bidirectional_init(&c, p, t), -ENOTSOCK);
	ck_assert_int_eq(rouse_stream_close(s), 0);
	ck_assert_int_eq(rouse_stream_close(t), 0);
	ck_assert_int_eq(rouse_stream_close(p), 0);
	close(pp[1]);
	/* Nothing that was refused left a descriptor open. */
	ck_assert_int_eq(test_count_fds(), fds0);
	rouse_reactor_free(r);
}
END_TEST

static Suite *copy_suite(void)
{
	Suite *s = suite_create("copy");
	TCase *tc = tcase_create("copy");

	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	tcase_add_loop_test(tc, sendfile_tcp, 0, TEST_MODES);
	tcase_add_loop_test(tc, sendfile_unix, 0, TEST_MODES);
	tcase_add_loop_test(tc, splice_unix, 0, TEST_MODES);
	tcase_add_loop_test(tc, splice_tcp, 0, TEST_MODES);
	tcase_add_loop_test(tc, bidi_half_close_unix, 0, TEST_MODES);
	tcase_add_loop_test(tc, bidi_half_close_tcp, 0, TEST_MODES);
	tcase_add_loop_test(tc, bidi_both_ways, 0, TEST_MODES);
	tcase_add_loop_test(tc, bidi_reset, 0, 2);
	tcase_add_loop_test(tc, bidi_dropped, 0, TEST_MODES);
	tcase_add_test(tc, no_sigpipe);
	tcase_add_test(tc, child_refused);
	tcase_add_test(tc, copy_bad_input);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return test_run_suite(copy_suite());
}
