// SPDX-License-Identifier: MIT
/*
 * tests/check_net.c - addresses, streams and TCP: parsing and formatting
 * (whole or not at all), a TCP round trip of 1 MiB each way with
 * write_all and read_exact, half-close and the end of the stream, readv
 * and writev, connect refused, a reset peer (never SIGPIPE), dual-stack
 * IPv6, EMFILE at accept survived, and bad input.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <rouse/net.h>

#include "testutil.h"

/* ---- addresses ------------------------------------------------------- */

static void round_trip(const char *text, int family, int port)
{
	struct rouse_addr a;
	char buf[ROUSE_ADDR_STRLEN];

	ck_assert_msg(rouse_addr_parse(&a, text) == 0, "parse %s", text);
	ck_assert_int_eq(a.u.sa.sa_family, family);
	if (port >= 0)
		ck_assert_int_eq(rouse_addr_port(&a), port);
	else
		ck_assert_int_eq(rouse_addr_port(&a), -EAFNOSUPPORT);
	ck_assert_int_eq(rouse_addr_format(&a, buf, sizeof(buf)),
			 (int)strlen(text));
	ck_assert_str_eq(buf, text);
}

START_TEST(addr_forms)
{
	round_trip("127.0.0.1:8080", AF_INET, 8080);
	round_trip("0.0.0.0:0", AF_INET, 0);
	round_trip("255.255.255.255:65535", AF_INET, 65535);
	round_trip("[::1]:8080", AF_INET6, 8080);
	round_trip("[::]:0", AF_INET6, 0);
	round_trip("[fe80::1%7]:80", AF_INET6, 80);
	round_trip("/tmp/rouse.sock", AF_UNIX, -1);
	round_trip("./relative/sock", AF_UNIX, -1);
	round_trip("@abstract-name", AF_UNIX, -1);
}
END_TEST

START_TEST(addr_rejects)
{
	static const char *const bad[] = {
		"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
		"127.0.0.1:80x", "127.0.0.1:-1", ":80", "localhost:80",
		"256.1.1.1:1", "1.2.3:4", "0x7f.0.0.1:80", "[::1]80",
		"[::1]:", "[::1", "::1:80", "[]:80", "[::1%]:80",
		"[::1%no-such-if0]:80", "127.0.0.1: 80",
	};
	struct rouse_addr a, before;
	char longpath[200];
	size_t i;

	memset(&a, 0x5a, sizeof(a));
	before = a;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(rouse_addr_parse(&a, bad[i]) == -EINVAL,
			      "accepted \"%s\"", bad[i]);
		/* Never a partial parse: *out untouched. */
		ck_assert(memcmp(&a, &before, sizeof(a)) == 0);
	}
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	ck_assert_int_eq(rouse_addr_parse(&a, longpath), -EINVAL);
	longpath[0] = '@';
	ck_assert_int_eq(rouse_addr_parse(&a, longpath), -EINVAL);
	ck_assert_int_eq(rouse_addr_parse(NULL, "1.2.3.4:5"), -EINVAL);
	ck_assert_int_eq(rouse_addr_parse(&a, NULL), -EINVAL);
}
END_TEST

START_TEST(addr_format_and_sockaddr)
{
	struct rouse_addr a, b;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char small[8];

	ck_assert_int_eq(rouse_addr_parse(&a, "127.0.0.1:8080"), 0);
	ck_assert_int_eq(rouse_addr_format(&a, small, sizeof(small)),
			 -ENOSPC);
	ck_assert_int_eq(rouse_addr_format(NULL, small, sizeof(small)),
			 -EINVAL);
	ck_assert_int_eq(rouse_addr_format(&a, NULL, 8), -EINVAL);
	ck_assert_int_eq(rouse_addr_format(&a, small, 0), -EINVAL);
	sin.sin_port = htons(99);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(rouse_addr_from_sockaddr(&b, (struct sockaddr *)&sin,
						  sizeof(sin)), 0);
	ck_assert_int_eq(rouse_addr_port(&b), 99);
	ck_assert_int_eq(rouse_addr_from_sockaddr(&b, (struct sockaddr *)&sin,
						  sizeof(sin) - 1), -EINVAL);
	sin.sin_family = AF_APPLETALK;
	ck_assert_int_eq(rouse_addr_from_sockaddr(&b, (struct sockaddr *)&sin,
						  sizeof(sin)),
			 -EAFNOSUPPORT);
	ck_assert_int_eq(rouse_addr_from_sockaddr(NULL, (struct sockaddr *)&sin,
						  sizeof(sin)), -EINVAL);
	memset(&b, 0, sizeof(b));
	ck_assert_int_eq(rouse_addr_port(&b), -EINVAL);
	ck_assert_int_eq(rouse_addr_port(NULL), -EINVAL);
}
END_TEST

/* A connected pair of TCP streams on ru's reactor: client and server. */
static void tcp_pair(struct test_runner *ru, const char *listen_at,
		     struct rouse_stream **client, struct rouse_stream **server)
{
	struct rouse_tcp_listener *l;
	struct rouse_tcp_connect c;
	struct rouse_tcp_accept a;
	struct rouse_addr addr, peer;

	ck_assert_int_eq(rouse_addr_parse(&addr, listen_at), 0);
	ck_assert_int_eq(rouse_tcp_listen(ru->r, &addr, 0, 0, &l), 0);
	ck_assert_int_eq(rouse_tcp_listener_addr(l, &addr), 0);
	ck_assert_int_gt(rouse_addr_port(&addr), 0);
	if (addr.u.sa.sa_family == AF_INET6) {
		/* Dual-stack: an IPv4 client reaches an IPv6 listener. */
		int port = rouse_addr_port(&addr);
		char text[32];

		snprintf(text, sizeof(text), "127.0.0.1:%d", port);
		ck_assert_int_eq(rouse_addr_parse(&addr, text), 0);
	}
	ck_assert_int_eq(rouse_tcp_connect_init(&c, ru->r, &addr), 0);
	ck_assert_int_eq(rouse_tcp_accept_init(&a, l), 0);
	test_run_both(ru, &c.base, &a.base);
	ck_assert_int_eq(c.result, 0);
	ck_assert_int_eq(a.result, 0);
	ck_assert_ptr_nonnull(c.stream);
	ck_assert_ptr_nonnull(a.stream);
	/* The accepted peer is the client's local address. */
	ck_assert_int_eq(rouse_stream_local_addr(c.stream, &peer), 0);
	ck_assert_int_eq(rouse_addr_port(&peer), rouse_addr_port(&a.peer));
	rouse_future_drop(&c.base);
	rouse_future_drop(&a.base);
	ck_assert_int_eq(rouse_tcp_listener_close(l), 0);
	*client = c.stream;
	*server = a.stream;
}

static unsigned char pattern(size_t k)
{
	return (unsigned char)(k * 131 + (k >> 9));
}

#define BIG (1024 * 1024)

/*
 * 1 MiB each way at once (more than the socket buffers hold, so both
 * sides wait on each other), then a half-close each way: the reader sees
 * its data and then 0, and a read_exact past the end is -EPIPE.
 */
static void tcp_exchange(struct test_runner *ru, const char *listen_at)
{
	struct rouse_stream *cs, *ss;
	struct rouse_stream_rw w1, w2, r1, r2;
	unsigned char *out = malloc(BIG), *in1 = malloc(BIG),
		      *in2 = malloc(BIG);
	struct test_both wr, rd;
	char tail[8];
	size_t k;

	ck_assert(out != NULL && in1 != NULL && in2 != NULL);
	for (k = 0; k < BIG; k++)
		out[k] = pattern(k);
	tcp_pair(ru, listen_at, &cs, &ss);
	ck_assert_int_eq(rouse_stream_set_nodelay(cs, 1), 0);
	ck_assert_int_eq(rouse_stream_set_keepalive(ss, 1), 0);
	ck_assert_int_eq(rouse_stream_write_all_init(&w1, cs, out, BIG), 0);
	ck_assert_int_eq(rouse_stream_write_all_init(&w2, ss, out, BIG), 0);
	ck_assert_int_eq(rouse_stream_read_exact_init(&r1, ss, in1, BIG), 0);
	ck_assert_int_eq(rouse_stream_read_exact_init(&r2, cs, in2, BIG), 0);
	test_both_init(&wr, &w1.base, &w2.base);
	test_both_init(&rd, &r1.base, &r2.base);
	test_run_both(ru, &wr.base, &rd.base);
	ck_assert_int_eq(w1.result, BIG);
	ck_assert_int_eq(w2.result, BIG);
	ck_assert_int_eq(r1.result, BIG);
	ck_assert_int_eq(r2.result, BIG);
	ck_assert(memcmp(in1, out, BIG) == 0);
	ck_assert(memcmp(in2, out, BIG) == 0);
	rouse_future_drop(&w1.base);
	rouse_future_drop(&w2.base);
	rouse_future_drop(&r1.base);
	rouse_future_drop(&r2.base);

	/* Half-close: a few bytes, the end, and the end again. */
	ck_assert_int_eq(rouse_stream_write_all_init(&w1, cs, "bye", 3), 0);
	ck_assert_int_eq(test_runner_block_on(ru, &w1.base), 0);
	rouse_future_drop(&w1.base);
	ck_assert_int_eq(rouse_stream_shutdown(cs, SHUT_WR), 0);
	ck_assert_int_eq(rouse_stream_read_exact_init(&r1, ss, tail, 5), 0);
	ck_assert_int_eq(test_runner_block_on(ru, &r1.base), 0);
	ck_assert_int_eq(r1.result, -EPIPE);
	ck_assert_int_eq(r1.done, 3);
	ck_assert(memcmp(tail, "bye", 3) == 0);
	rouse_future_drop(&r1.base);
	ck_assert_int_eq(rouse_stream_read_init(&r1, ss, tail, sizeof(tail)),
			 0);
	ck_assert_int_eq(test_runner_block_on(ru, &r1.base), 0);
	ck_assert_int_eq(r1.result, 0);
	rouse_future_drop(&r1.base);
	/* The other way still works after the half-close. */
	ck_assert_int_eq(rouse_stream_write_all_init(&w2, ss, "ok", 2), 0);
	ck_assert_int_eq(test_runner_block_on(ru, &w2.base), 0);
	ck_assert_int_eq(w2.result, 2);
	rouse_future_drop(&w2.base);
	ck_assert_int_eq(rouse_stream_read_exact_init(&r2, cs, tail, 2), 0);
	ck_assert_int_eq(test_runner_block_on(ru, &r2.base), 0);
	ck_assert_int_eq(r2.result, 2);
	rouse_future_drop(&r2.base);
	ck_assert_int_eq(rouse_stream_close(cs), 0);
	ck_assert_int_eq(rouse_stream_close(ss), 0);
	free(out);
	free(in1);
	free(in2);
}

START_TEST(tcp_round_trip)
{
	struct test_runner ru;

	test_runner_init(&ru, (enum test_mode)_i);
	tcp_exchange(&ru, "127.0.0.1:0");
	test_runner_free(&ru);
}
END_TEST

START_TEST(tcp_dual_stack)
{
	struct test_runner ru;
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return;		/* no IPv6 in this kernel: nothing to test */
	close(fd);
	test_runner_init(&ru, TEST_MODE_DRIVEN);
	tcp_exchange(&ru, "[::]:0");
	test_runner_free(&ru);
}
END_TEST

START_TEST(tcp_refused)
{
	struct test_runner ru;
	struct rouse_tcp_connect c;
	struct rouse_addr addr;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fds0, fd;

	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	/* A port that was just bound and is closed again: nobody listens. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	ck_assert_int_eq(rouse_addr_from_sockaddr(&addr,
						  (struct sockaddr *)&sin,
						  len), 0);
	ck_assert_int_eq(rouse_tcp_connect_init(&c, ru.r, &addr), 0);
	ck_assert_int_eq(test_runner_block_on(&ru, &c.base), 0);
	ck_assert_int_eq(c.result, -ECONNREFUSED);
	ck_assert_ptr_null(c.stream);
	rouse_future_drop(&c.base);
	close(fd);
	/* Nothing left open by the failed connect. */
	ck_assert_int_eq(test_count_fds(), fds0);
	test_runner_free(&ru);
}
END_TEST

/*
 * The peer resets the connection while a write_all waits for room: the
 * write ends with -ECONNRESET or -EPIPE, and no SIGPIPE (whose default
 * action would end this test) is raised.
 */
START_TEST(tcp_reset_mid_write)
{
	struct test_runner ru;
	struct rouse_stream *cs, *ss;
	struct rouse_stream_rw w;
	struct linger lg = { 1, 0 };
	unsigned char *buf = calloc(1, 8 * BIG);

	signal(SIGPIPE, SIG_DFL);
	test_runner_init(&ru, TEST_MODE_DRIVEN);
	tcp_pair(&ru, "127.0.0.1:0", &cs, &ss);
	ck_assert_int_eq(rouse_stream_write_all_init(&w, cs, buf, 8 * BIG),
			 0);
	ck_assert_int_eq(test_poll_noop(&w.base), ROUSE_PENDING);
	/* Linger 0: close sends a reset, not a FIN. */
	ck_assert_int_eq(setsockopt(rouse_stream_fd(ss), SOL_SOCKET,
				    SO_LINGER, &lg, sizeof(lg)), 0);
	ck_assert_int_eq(rouse_stream_close(ss), 0);
	ck_assert_int_eq(test_runner_block_on(&ru, &w.base), 0);
	ck_assert_msg(w.result == -ECONNRESET || w.result == -EPIPE,
		      "write_all: %zd", w.result);
	ck_assert_uint_lt(w.done, 8 * BIG);
	rouse_future_drop(&w.base);
	ck_assert_int_eq(rouse_stream_close(cs), 0);
	test_runner_free(&ru);
	free(buf);
}
END_TEST

/* writev writes a vector whole across short writes; readv reads. */
START_TEST(stream_vectors)
{
	struct test_runner ru;
	struct rouse_stream *a, *b;
	struct rouse_stream_rwv wv, rv;
	struct rouse_stream_rw rx;
	unsigned char *big = malloc(BIG), *in = malloc(BIG + 4);
	struct iovec out[3] = {
		{ (void *)"ab", 2 }, { NULL, BIG }, { (void *)"yz", 2 },
	};
	char small[3];
	struct iovec into[2] = { { small, 1 }, { small + 1, 2 } };
	int sv[2];
	size_t k;

	test_runner_init(&ru, (enum test_mode)_i);
	for (k = 0; k < BIG; k++)
		big[k] = pattern(k);
	out[1].iov_base = big;
	test_pair_make(sv);
	ck_assert_int_eq(rouse_stream_open(ru.r, sv[0], &a), 0);
	ck_assert_int_eq(rouse_stream_open(ru.r, sv[1], &b), 0);
	ck_assert_int_eq(rouse_stream_writev_init(&wv, a, out, 3), 0);
	ck_assert_int_eq(rouse_stream_read_exact_init(&rx, b, in, BIG + 4),
			 0);
	test_run_both(&ru, &wv.base, &rx.base);
	ck_assert_int_eq(wv.result, BIG + 4);
	ck_assert_int_eq(rx.result, BIG + 4);
	ck_assert(memcmp(in, "ab", 2) == 0);
	ck_assert(memcmp(in + 2, big, BIG) == 0);
	ck_assert(memcmp(in + 2 + BIG, "yz", 2) == 0);
	rouse_future_drop(&wv.base);
	rouse_future_drop(&rx.base);
	/* readv waits for data, then takes what is there. */
	ck_assert_int_eq(rouse_stream_readv_init(&rv, b, into, 2), 0);
	ck_assert_int_eq(test_poll_noop(&rv.base), ROUSE_PENDING);
	ck_assert_int_eq(write(sv[0], "XYZ", 3), 3);
	ck_assert_int_eq(test_runner_block_on(&ru, &rv.base), 0);
	ck_assert_int_eq(rv.result, 3);
	ck_assert(memcmp(small, "XYZ", 3) == 0);
	rouse_future_drop(&rv.base);
	/* And sees the end of the stream after a half-close. */
	ck_assert_int_eq(rouse_stream_shutdown(a, SHUT_WR), 0);
	ck_assert_int_eq(rouse_stream_readv_init(&rv, b, into, 2), 0);
	ck_assert_int_eq(test_runner_block_on(&ru, &rv.base), 0);
	ck_assert_int_eq(rv.result, 0);
	rouse_future_drop(&rv.base);
	ck_assert_int_eq(rouse_stream_close(a), 0);
	ck_assert_int_eq(rouse_stream_close(b), 0);
	test_runner_free(&ru);
	free(big);
	free(in);
}
END_TEST

/*
 * In a child with a low descriptor limit: accept meets EMFILE, reports it
 * once, sheds the waiting connection (its client sees the connection
 * end), and works again once descriptors are free.
 */
static int emfile_child(void)
{
	struct rouse_reactor *r;
	struct rouse_parker pk;
	struct rouse_tcp_listener *l;
	struct rouse_tcp_accept a;
	struct rouse_addr addr;
	int fds[256], n = 0, c1, c2, fd;
	char byte;

	if (rouse_reactor_new(&r, 0) || rouse_reactor_parker(r, &pk) ||
	    rouse_addr_parse(&addr, "127.0.0.1:0") ||
	    rouse_tcp_listen(r, &addr, 0, 0, &l) ||
	    rouse_tcp_listener_addr(l, &addr))
		return 2;
	c1 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	c2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c1 < 0 || c2 < 0 ||
	    connect(c1, &addr.u.sa, addr.len) != 0)
		return 3;
	while ((fd = dup(0)) >= 0)
		if (n < 256)
			fds[n++] = fd;
	rouse_tcp_accept_init(&a, l);
	if (rouse_block_on_with(&a.base, &pk) != 0 || a.result != -EMFILE)
		return 4;
	rouse_future_drop(&a.base);
	/* The waiting connection was shed: its client sees the end. */
	if (recv(c1, &byte, 1, 0) > 0)
		return 5;
	while (n > 0)
		close(fds[--n]);
	if (connect(c2, &addr.u.sa, addr.len) != 0)
		return 6;
	rouse_tcp_accept_init(&a, l);
	if (rouse_block_on_with(&a.base, &pk) != 0 || a.result != 0)
		return 7;
	rouse_stream_close(a.stream);
	rouse_future_drop(&a.base);
	rouse_tcp_listener_close(l);
	rouse_reactor_free(r);
	return 0;
}

START_TEST(tcp_accept_emfile)
{
	struct rlimit lim;
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
			_exit(8);
		lim.rlim_cur = 128;
		if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
			_exit(9);
		_exit(emfile_child());
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

START_TEST(net_bad_input)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_stream *s = NULL;
	struct rouse_tcp_listener *l = NULL;
	struct rouse_tcp_connect c;
	struct rouse_tcp_accept a;
	struct rouse_stream_rw rw;
	struct rouse_stream_rwv rv;
	struct rouse_addr unix_addr, in_addr;
	struct iovec iov = { NULL, 1 };
	int p[2];

	ck_assert_int_eq(rouse_addr_parse(&unix_addr, "/tmp/x"), 0);
	ck_assert_int_eq(rouse_addr_parse(&in_addr, "127.0.0.1:0"), 0);
	ck_assert_int_eq(rouse_stream_open(NULL, 0, &s), -EINVAL);
	ck_assert_int_eq(rouse_stream_open(r, -1, &s), -EBADF);
	ck_assert_int_eq(rouse_stream_open(r, 0, NULL), -EINVAL);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(rouse_stream_close(NULL), -EINVAL);
	ck_assert_int_eq(rouse_stream_fd(NULL), -EINVAL);
	ck_assert_int_eq(rouse_stream_shutdown(NULL, SHUT_WR), -EINVAL);
	ck_assert_int_eq(rouse_stream_set_nodelay(NULL, 1), -EINVAL);
	ck_assert_int_eq(rouse_stream_local_addr(NULL, &in_addr), -EINVAL);
	ck_assert_int_eq(rouse_tcp_listen(r, &unix_addr, 0, 0, &l), -EINVAL);
	ck_assert_int_eq(rouse_tcp_listen(r, &in_addr, 0x80, 0, &l), -EINVAL);
	ck_assert_int_eq(rouse_tcp_listen(NULL, &in_addr, 0, 0, &l), -EINVAL);
	ck_assert_ptr_null(l);
	ck_assert_int_eq(rouse_tcp_connect_init(&c, r, &unix_addr), -EINVAL);
	ck_assert_int_eq(rouse_tcp_connect_init(&c, NULL, &in_addr), -EINVAL);
	ck_assert_int_eq(rouse_tcp_accept_init(&a, NULL), -EINVAL);
	ck_assert_int_eq(rouse_tcp_listener_close(NULL), -EINVAL);
	/* A pipe is a stream too; a bad shutdown is refused cleanly. */
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(rouse_stream_open(r, p[0], &s), 0);
	ck_assert_int_eq(rouse_stream_shutdown(s, 42), -EINVAL);
	ck_assert_int_eq(rouse_stream_read_init(&rw, s, NULL, 1), -EINVAL);
	ck_assert_int_eq(rouse_stream_read_init(NULL, s, p, 1), -EINVAL);
	ck_assert_int_eq(rouse_stream_readv_init(&rv, s, &iov, -1), -EINVAL);
	ck_assert_int_eq(rouse_stream_readv_init(&rv, s, NULL, 1), -EINVAL);
	ck_assert_int_eq(rouse_stream_close(s), 0);
	close(p[1]);
	rouse_reactor_free(r);
}
END_TEST

static Suite *net_suite(void)
{
	Suite *s = suite_create("net");
	TCase *tc;

	tc = tcase_create("addr");
	tcase_add_test(tc, addr_forms);
	tcase_add_test(tc, addr_rejects);
	tcase_add_test(tc, addr_format_and_sockaddr);
	suite_add_tcase(s, tc);

	tc = tcase_create("tcp");
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	tcase_add_loop_test(tc, tcp_round_trip, 0, TEST_MODES);
	tcase_add_test(tc, tcp_dual_stack);
	tcase_add_loop_test(tc, tcp_refused, 0, TEST_MODES);
	tcase_add_test(tc, tcp_reset_mid_write);
	tcase_add_loop_test(tc, stream_vectors, 0, TEST_MODES);
	tcase_add_test(tc, tcp_accept_emfile);
	tcase_add_test(tc, net_bad_input);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(net_suite());
}
