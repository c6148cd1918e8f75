// SPDX-License-Identifier: MIT
/*
 * tests/check_bufread.c - the buffered reader: lines that arrive a byte
 * at a time, a line exactly at the cap and one over it (-EMSGSIZE, and the
 * bytes still readable), the end of the stream in the middle of a line
 * and at the start of one, CRLF, read_until with another delimiter, plain
 * reads that drain the buffer first or bypass it, a dropped read_line
 * that loses nothing, one operation at a time, and bad input.
 */
#include <sys/wait.h>

#include <rouse/net.h>

#include "testutil.h"

/* ---- helpers ----------------------------------------------------------- */

/* A socketpair: *s is a stream on ru's reactor, *raw the other end. */
static void stream_pair(struct test_runner *ru, struct rouse_stream **s,
			int *raw)
{
	int sv[2];

	test_pair_make(sv);
	ck_assert_int_eq(rouse_stream_open(ru->r, sv[0], s), 0);
	*raw = sv[1];
}

static void put(int fd, const char *text)
{
	size_t len = strlen(text);

	ck_assert_int_eq(send(fd, text, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Run one operation of the reader to its end and drop it. */
static ssize_t run_op(struct test_runner *ru, struct rouse_bufreader_op *f,
		      char *copy, size_t size)
{
	ssize_t r;

	ck_assert_int_eq(test_runner_block_on(ru, &f->base), 0);
	r = f->result;
	if (copy != NULL) {
		ck_assert_uint_lt(f->len, size);
		if (f->len > 0)
			memcpy(copy, f->data, f->len);
		copy[f->len] = '\0';
	}
	ck_assert_int_eq(rouse_future_drop(&f->base), 0);
	return r;
}

static ssize_t line(struct test_runner *ru, struct rouse_bufreader *b,
		    size_t max, char *copy, size_t size)
{
	struct rouse_bufreader_op f;

	ck_assert_int_eq(rouse_bufreader_read_line_init(&f, b, max), 0);
	return run_op(ru, &f, copy, size);
}

static ssize_t until(struct test_runner *ru, struct rouse_bufreader *b,
		     int delim, size_t max, char *copy, size_t size)
{
	struct rouse_bufreader_op f;

	ck_assert_int_eq(rouse_bufreader_read_until_init(&f, b, delim, max),
			 0);
	return run_op(ru, &f, copy, size);
}

static ssize_t plain_read(struct test_runner *ru, struct rouse_bufreader *b,
			  void *buf, size_t len)
{
	struct rouse_bufreader_op f;
	ssize_t r;

	ck_assert_int_eq(rouse_bufreader_read_init(&f, b, buf, len), 0);
	ck_assert_int_eq(test_runner_block_on(ru, &f.base), 0);
	r = f.result;
	ck_assert_ptr_eq(f.data, buf);
	ck_assert_int_eq((ssize_t)f.len, r > 0 ? r : 0);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	return r;
}

/* ---- a byte at a time ------------------------------------------------- */

/*
 * Writes text to fd one byte per poll, waking itself in between, then
 * half-closes: each byte is a readiness event of its own for the reader.
 */
struct dribble {
	struct rouse_future base;
	int fd;
	const char *text;
	size_t off;
};

static enum rouse_poll dribble_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct dribble *d = (struct dribble *)f;

	if (d->text[d->off] == '\0')
		return ROUSE_READY;
	ck_assert_int_eq(send(d->fd, d->text + d->off, 1, MSG_NOSIGNAL), 1);
	if (d->text[++d->off] == '\0') {
		ck_assert_int_eq(shutdown(d->fd, SHUT_WR), 0);
		return ROUSE_READY;
	}
	rouse_waker_wake_by_ref(cx->waker);
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable dribble_vt = { dribble_poll, NULL };

#define MAX_LINES 8

/* Reads lines until the end (or an error), keeping a copy of each. */
struct lines {
	struct rouse_future base;
	struct rouse_bufreader *b;
	struct rouse_bufreader_op op;
	bool live;
	size_t max;
	int n;
	char text[MAX_LINES][64];
	ssize_t result[MAX_LINES];
};

static enum rouse_poll lines_poll(struct rouse_future *f,
				  struct rouse_context *cx)
{
	struct lines *l = (struct lines *)f;

	for (;;) {
		ssize_t r;

		if (!l->live) {
			ck_assert_int_lt(l->n, MAX_LINES);
			ck_assert_int_eq(rouse_bufreader_read_line_init(
						 &l->op, l->b, l->max), 0);
			l->live = true;
		}
		if (rouse_future_poll(&l->op.base, cx) == ROUSE_PENDING)
			return ROUSE_PENDING;
		r = l->op.result;
		l->result[l->n] = r;
		ck_assert_uint_lt(l->op.len, sizeof(l->text[0]));
		if (l->op.len > 0)
			memcpy(l->text[l->n], l->op.data, l->op.len);
		l->text[l->n][l->op.len] = '\0';
		l->n++;
		rouse_future_drop(&l->op.base);
		l->live = false;
		if (r <= 0)
			return ROUSE_READY;
	}
}

static const struct rouse_future_vtable lines_vt = { lines_poll, NULL };

/*
 * An HTTP-like head, a byte at a time, then a last line with no newline:
 * CRLF is taken off, the empty line is len 0 with result 2, the last line
 * comes whole at the end, and then the end itself (result 0).
 */
START_TEST(lines_byte_at_a_time)
{
	static const char text[] =
		"GET / HTTP/1.1\r\nHost: example\r\n\r\nbody\nlast";
	struct test_runner ru;
	struct rouse_stream *s;
	struct rouse_bufreader b;
	unsigned char buf[64];
	struct dribble d = { { &dribble_vt }, -1, text, 0 };
	struct lines l;
	int raw, fds0;

	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	stream_pair(&ru, &s, &raw);
	d.fd = raw;
	memset(&l, 0, sizeof(l));
	l.base.vtable = &lines_vt;
	l.b = &b;
	l.max = 32;
	ck_assert_int_eq(rouse_bufreader_init(&b, s, buf, sizeof(buf)), 0);
	test_run_both(&ru, &d.base, &l.base);
	ck_assert_int_eq(l.n, 6);
	ck_assert_str_eq(l.text[0], "GET / HTTP/1.1");
	ck_assert_int_eq(l.result[0], 16);
	ck_assert_str_eq(l.text[1], "Host: example");
	ck_assert_int_eq(l.result[1], 15);
	ck_assert_str_eq(l.text[2], "");
	ck_assert_int_eq(l.result[2], 2);
	ck_assert_str_eq(l.text[3], "body");
	ck_assert_int_eq(l.result[3], 5);
	/* The end in the middle of a line: what was read, no newline. */
	ck_assert_str_eq(l.text[4], "last");
	ck_assert_int_eq(l.result[4], 4);
	ck_assert_int_eq(l.result[5], 0);
	/* And the end stays the end, for every kind of read. */
	ck_assert_int_eq(line(&ru, &b, 32, NULL, 0), 0);
	ck_assert_int_eq(until(&ru, &b, ',', 32, NULL, 0), 0);
	ck_assert_int_eq(plain_read(&ru, &b, buf, 4), 0);
	ck_assert_int_eq(rouse_stream_close(s), 0);
	close(raw);
	ck_assert_int_eq(test_count_fds(), fds0);
	test_runner_free(&ru);
}
END_TEST

/*
 * The cap counts the newline: a line that fits exactly is taken; one
 * byte more is -EMSGSIZE with nothing taken, and a plain read then gets
 * the same bytes.  With max equal to the buffer's size, the buffered
 * bytes move to its front to make room for a whole line.
 */
START_TEST(line_max)
{
	struct test_runner ru;
	struct rouse_stream *s;
	struct rouse_bufreader b;
	unsigned char buf[8];
	const void *peek;
	char got[16];
	int raw;

	test_runner_init(&ru, (enum test_mode)_i);
	stream_pair(&ru, &s, &raw);
	ck_assert_int_eq(rouse_bufreader_init(&b, s, buf, sizeof(buf)), 0);
	put(raw, "ab\n1234567\nabcdefgh\nrest");
	ck_assert_int_eq(shutdown(raw, SHUT_WR), 0);
	ck_assert_int_eq(line(&ru, &b, 8, got, sizeof(got)), 3);
	ck_assert_str_eq(got, "ab");
	/* Exactly 8 with its newline, past the buffer's end at first. */
	ck_assert_int_eq(line(&ru, &b, 8, got, sizeof(got)), 8);
	ck_assert_str_eq(got, "1234567");
	/* Nine: too long, and nothing taken. */
	ck_assert_int_eq(line(&ru, &b, 8, got, sizeof(got)), -EMSGSIZE);
	ck_assert_int_eq(rouse_bufreader_buffered(&b, &peek), 8);
	ck_assert(memcmp(peek, "abcdefgh", 8) == 0);
	ck_assert_int_eq(line(&ru, &b, 8, got, sizeof(got)), -EMSGSIZE);
	/* A plain read gets the bytes that stayed. */
	ck_assert_int_eq(plain_read(&ru, &b, got, 4), 4);
	ck_assert(memcmp(got, "abcd", 4) == 0);
	ck_assert_int_eq(line(&ru, &b, 8, got, sizeof(got)), 5);
	ck_assert_str_eq(got, "efgh");
	ck_assert_int_eq(line(&ru, &b, 8, got, sizeof(got)), 4);
	ck_assert_str_eq(got, "rest");
	ck_assert_int_eq(line(&ru, &b, 8, got, sizeof(got)), 0);
	ck_assert_int_eq(rouse_stream_close(s), 0);
	close(raw);
	test_runner_free(&ru);
}
END_TEST

/* The end at once, and a stream that ends with a newline. */
START_TEST(line_end)
{
	struct test_runner ru;
	struct rouse_stream *s;
	struct rouse_bufreader b;
	unsigned char buf[16];
	char got[16];
	int raw;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	stream_pair(&ru, &s, &raw);
	ck_assert_int_eq(rouse_bufreader_init(&b, s, buf, sizeof(buf)), 0);
	put(raw, "x\n");
	ck_assert_int_eq(shutdown(raw, SHUT_WR), 0);
	ck_assert_int_eq(line(&ru, &b, 16, got, sizeof(got)), 2);
	ck_assert_str_eq(got, "x");
	ck_assert_int_eq(line(&ru, &b, 16, got, sizeof(got)), 0);
	ck_assert_str_eq(got, "");
	ck_assert_int_eq(rouse_stream_close(s), 0);
	close(raw);
	test_runner_free(&ru);
}
END_TEST

/*
 * CRLF, LF and a lone CR: "\r\n" and "\n" are taken off, a CR that is
 * not before the newline stays.  read_until keeps its delimiter.
 */
START_TEST(crlf_and_until)
{
	struct test_runner ru;
	struct rouse_stream *s;
	struct rouse_bufreader b;
	unsigned char buf[32];
	char got[32];
	int raw;

	test_runner_init(&ru, (enum test_mode)_i);
	stream_pair(&ru, &s, &raw);
	ck_assert_int_eq(rouse_bufreader_init(&b, s, buf, sizeof(buf)), 0);
	put(raw, "x\r\n\r\n\na\rb\n");
	ck_assert_int_eq(line(&ru, &b, 32, got, sizeof(got)), 3);
	ck_assert_str_eq(got, "x");
	ck_assert_int_eq(line(&ru, &b, 32, got, sizeof(got)), 2);
	ck_assert_str_eq(got, "");
	ck_assert_int_eq(line(&ru, &b, 32, got, sizeof(got)), 1);
	ck_assert_str_eq(got, "");
	ck_assert_int_eq(line(&ru, &b, 32, got, sizeof(got)), 4);
	ck_assert_str_eq(got, "a\rb");
	put(raw, "k=v;;tail;x\r");
	ck_assert_int_eq(shutdown(raw, SHUT_WR), 0);
	ck_assert_int_eq(until(&ru, &b, ';', 32, got, sizeof(got)), 4);
	ck_assert_str_eq(got, "k=v;");
	ck_assert_int_eq(until(&ru, &b, ';', 32, got, sizeof(got)), 1);
	ck_assert_str_eq(got, ";");
	/* The delimiter counts against the cap too. */
	ck_assert_int_eq(until(&ru, &b, ';', 4, got, sizeof(got)),
			 -EMSGSIZE);
	ck_assert_int_eq(until(&ru, &b, ';', 5, got, sizeof(got)), 5);
	ck_assert_str_eq(got, "tail;");
	/* A delimiter of 0 and of 255 are bytes like any other. */
	ck_assert_int_eq(until(&ru, &b, 0, 32, got, sizeof(got)), 2);
	ck_assert_str_eq(got, "x\r");	/* the end: what was left */
	ck_assert_int_eq(until(&ru, &b, 255, 32, got, sizeof(got)), 0);
	ck_assert_int_eq(rouse_stream_close(s), 0);
	close(raw);
	test_runner_free(&ru);
}
END_TEST

/*
 * Plain reads: the buffered bytes first (never more than asked), and a
 * read of at least the buffer's size with nothing buffered goes straight
 * into the caller's buffer.
 */
START_TEST(plain_reads)
{
	struct test_runner ru;
	struct rouse_stream *s;
	struct rouse_bufreader b;
	unsigned char buf[8];
	char got[64];
	const void *peek;
	int raw;

	test_runner_init(&ru, (enum test_mode)_i);
	stream_pair(&ru, &s, &raw);
	ck_assert_int_eq(rouse_bufreader_init(&b, s, buf, sizeof(buf)), 0);
	put(raw, "hi\nabcdef");
	ck_assert_int_eq(line(&ru, &b, 8, got, sizeof(got)), 3);
	/* "abcde" is buffered: a read of 64 gets only that. */
	ck_assert_int_eq(rouse_bufreader_buffered(&b, NULL), 5);
	ck_assert_int_eq(plain_read(&ru, &b, got, 2), 2);
	ck_assert(memcmp(got, "ab", 2) == 0);
	ck_assert_int_eq(rouse_bufreader_consume(&b, 1), 0);
	ck_assert_int_eq(rouse_bufreader_consume(&b, 3), -EINVAL);
	ck_assert_int_eq(plain_read(&ru, &b, got, sizeof(got)), 2);
	ck_assert(memcmp(got, "de", 2) == 0);
	/* Empty buffer, a big read: straight into got, past the buffer. */
	put(raw, "0123456789abcdefghij");
	ck_assert_int_eq(plain_read(&ru, &b, got, sizeof(got)), 21);
	ck_assert(memcmp(got, "f0123456789abcdefghij", 21) == 0);
	ck_assert_int_eq(rouse_bufreader_buffered(&b, &peek), 0);
	/* A small read fills the buffer, and the rest stays there. */
	put(raw, "ABCDEFGHIJ");
	ck_assert_int_eq(plain_read(&ru, &b, got, 3), 3);
	ck_assert(memcmp(got, "ABC", 3) == 0);
	ck_assert_int_eq(rouse_bufreader_buffered(&b, &peek), 5);
	ck_assert(memcmp(peek, "DEFGH", 5) == 0);
	/* A zero-length read is 0 at once, and changes nothing. */
	ck_assert_int_eq(plain_read(&ru, &b, NULL, 0), 0);
	ck_assert_int_eq(rouse_bufreader_buffered(&b, NULL), 5);
	ck_assert_int_eq(rouse_stream_close(s), 0);
	close(raw);
	test_runner_free(&ru);
}
END_TEST

/*
 * A read_line dropped while it waits loses nothing: the bytes it read are
 * in the reader, and the next read_line returns the whole line.  While
 * an operation is live, the reader refuses another one.
 */
START_TEST(dropped_line_loses_nothing)
{
	struct test_runner ru;
	struct rouse_stream *s;
	struct rouse_bufreader b;
	struct rouse_bufreader_op f, g;
	unsigned char buf[32];
	char got[32];
	int raw, i;

	test_runner_init(&ru, (enum test_mode)_i);
	stream_pair(&ru, &s, &raw);
	ck_assert_int_eq(rouse_bufreader_init(&b, s, buf, sizeof(buf)), 0);
	put(raw, "par");
	ck_assert_int_eq(rouse_bufreader_read_line_init(&f, &b, 32), 0);
	/* Polled until it has read "par" and waits for more. */
	for (i = 0; rouse_bufreader_buffered(&b, NULL) < 3; i++) {
		ck_assert_int_lt(i, 1000000);
		ck_assert_int_eq(test_poll_noop(&f.base), ROUSE_PENDING);
		sched_yield();
	}
	ck_assert_int_eq(test_poll_noop(&f.base), ROUSE_PENDING);
	ck_assert_int_eq(rouse_bufreader_read_line_init(&g, &b, 32), -EBUSY);
	ck_assert_int_eq(rouse_bufreader_read_init(&g, &b, got, 1), -EBUSY);
	ck_assert_int_eq(rouse_bufreader_consume(&b, 1), -EBUSY);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	put(raw, "tial\n");
	ck_assert_int_eq(line(&ru, &b, 32, got, sizeof(got)), 8);
	ck_assert_str_eq(got, "partial");
	/* A finished operation frees the reader before its drop. */
	put(raw, "a\nb\n");
	ck_assert_int_eq(rouse_bufreader_read_line_init(&f, &b, 32), 0);
	ck_assert_int_eq(test_runner_block_on(&ru, &f.base), 0);
	ck_assert_int_eq(f.result, 2);
	ck_assert_int_eq(rouse_bufreader_read_line_init(&g, &b, 32), 0);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);	/* late */
	ck_assert_int_eq(test_runner_block_on(&ru, &g.base), 0);
	ck_assert_int_eq(g.result, 2);
	ck_assert_int_eq(rouse_future_drop(&g.base), 0);
	ck_assert_int_eq(rouse_stream_close(s), 0);
	close(raw);
	test_runner_free(&ru);
}
END_TEST

/* An error of the stream is the operation's; buffered bytes stay. */
START_TEST(stream_error)
{
	struct test_runner ru;
	struct rouse_stream *s;
	struct rouse_bufreader b;
	unsigned char buf[32];
	char got[32];
	ssize_t r;
	int raw;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	stream_pair(&ru, &s, &raw);
	ck_assert_int_eq(rouse_bufreader_init(&b, s, buf, sizeof(buf)), 0);
	put(raw, "no newline");
	/* Unread bytes on the closing side: the reader's peer resets. */
	ck_assert_int_eq(send(rouse_stream_fd(s), "?", 1, MSG_NOSIGNAL), 1);
	close(raw);
	r = line(&ru, &b, 32, got, sizeof(got));
	ck_assert_int_eq(r, -ECONNRESET);
	ck_assert_int_eq(rouse_bufreader_buffered(&b, NULL), 10);
	ck_assert_int_eq(rouse_stream_close(s), 0);
	test_runner_free(&ru);
}
END_TEST

/* In a child of fork(), an inherited reactor's stream is not read. */
START_TEST(child_refused)
{
	struct test_runner ru;
	struct rouse_stream *s;
	struct rouse_bufreader b;
	unsigned char buf[32];
	char got[32];
	int raw, status;
	pid_t pid;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	stream_pair(&ru, &s, &raw);
	ck_assert_int_eq(rouse_bufreader_init(&b, s, buf, sizeof(buf)), 0);
	put(raw, "parent's\n");
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct rouse_bufreader_op f;
		struct rouse_waker w = rouse_waker_noop();
		struct rouse_context cx = { &w };

		if (rouse_bufreader_read_line_init(&f, &b, 32) != 0 ||
		    f.base.vtable->poll(&f.base, &cx) != ROUSE_READY ||
		    f.result != -ECHILD)
			_exit(1);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_eq(line(&ru, &b, 32, got, sizeof(got)), 9);
	ck_assert_str_eq(got, "parent's");
	ck_assert_int_eq(rouse_stream_close(s), 0);
	close(raw);
	test_runner_free(&ru);
}
END_TEST

START_TEST(bufread_bad_input)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_stream *s;
	struct rouse_bufreader b;
	struct rouse_bufreader_op f;
	unsigned char buf[16];
	int sv[2];

	test_pair_make(sv);
	ck_assert_int_eq(rouse_stream_open(r, sv[0], &s), 0);
	ck_assert_int_eq(rouse_bufreader_init(NULL, s, buf, 16), -EINVAL);
	ck_assert_int_eq(rouse_bufreader_init(&b, NULL, buf, 16), -EINVAL);
	ck_assert_int_eq(rouse_bufreader_init(&b, s, NULL, 16), -EINVAL);
	ck_assert_int_eq(rouse_bufreader_init(&b, s, buf, 0), -EINVAL);
	ck_assert_int_eq(rouse_bufreader_init(&b, s, buf, 16), 0);
	ck_assert_int_eq(rouse_bufreader_read_line_init(NULL, &b, 8), -EINVAL);
	ck_assert_int_eq(rouse_bufreader_read_line_init(&f, NULL, 8), -EINVAL);
	ck_assert_int_eq(rouse_bufreader_read_line_init(&f, &b, 0), -EINVAL);
	ck_assert_int_eq(rouse_bufreader_read_line_init(&f, &b, 17), -EINVAL);
	ck_assert_int_eq(rouse_bufreader_read_until_init(&f, &b, -1, 8),
			 -EINVAL);
	ck_assert_int_eq(rouse_bufreader_read_until_init(&f, &b, 256, 8),
			 -EINVAL);
	ck_assert_int_eq(rouse_bufreader_read_until_init(&f, &b, 'x', 0),
			 -EINVAL);
	ck_assert_int_eq(rouse_bufreader_read_init(&f, &b, NULL, 1), -EINVAL);
	ck_assert_int_eq(rouse_bufreader_read_init(NULL, &b, buf, 1),
			 -EINVAL);
	ck_assert_int_eq(rouse_bufreader_buffered(NULL, NULL), -EINVAL);
	ck_assert_int_eq(rouse_bufreader_consume(NULL, 0), -EINVAL);
	ck_assert_int_eq(rouse_bufreader_consume(&b, 1), -EINVAL);
	/* None of the refusals left the reader busy. */
	ck_assert_int_eq(rouse_bufreader_read_line_init(&f, &b, 16), 0);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	ck_assert_int_eq(rouse_stream_close(s), 0);
	close(sv[1]);
	rouse_reactor_free(r);
}
END_TEST

static Suite *bufread_suite(void)
{
	Suite *s = suite_create("bufread");
	TCase *tc = tcase_create("bufread");

	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	tcase_add_loop_test(tc, lines_byte_at_a_time, 0, TEST_MODES);
	tcase_add_loop_test(tc, line_max, 0, TEST_MODES);
	tcase_add_test(tc, line_end);
	tcase_add_loop_test(tc, crlf_and_until, 0, TEST_MODES);
	tcase_add_loop_test(tc, plain_reads, 0, TEST_MODES);
	tcase_add_loop_test(tc, dropped_line_loses_nothing, 0, TEST_MODES);
	tcase_add_test(tc, stream_error);
	tcase_add_test(tc, child_refused);
	tcase_add_test(tc, bufread_bad_input);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(bufread_suite());
}
