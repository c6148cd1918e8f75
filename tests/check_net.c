// SPDX-License-Identifier: MIT
/*
 * tests/check_net.c - addresses, streams and TCP: parsing and formatting
 * (whole or not at all), a TCP round trip of 1 MiB each way with
 * write_all and read_exact, half-close and the end of the stream, readv
 * and writev, connect refused, a reset peer (never SIGPIPE), dual-stack
 * IPv6, EMFILE at accept survived, and bad input.  Connecting to a host
 * by name: localhost and numeric hosts, each address tried in turn, all
 * refused, names and services not found, drops during the lookup and
 * during a connect, the reactor freed under a connect.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <rouse/alloc.h>
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
	/* And the client's peer is the listener's port. */
	ck_assert_int_eq(rouse_stream_peer_addr(c.stream, &peer), 0);
	ck_assert_int_eq(rouse_addr_port(&peer), rouse_addr_port(&addr));
	/* The listener's descriptor is the socket it listens on. */
	{
		int fd = rouse_tcp_listener_fd(l), on = 0;
		socklen_t len = sizeof(on);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on,
					    &len), 0);
		ck_assert_int_eq(on, 1);
	}
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
	/* A plain write: two bytes fit, and all arrive. */
	{
		struct rouse_stream_rw pw;

		ck_assert_int_eq(rouse_stream_write_init(&pw, ss, "hi", 2), 0);
		ck_assert_int_eq(test_runner_block_on(ru, &pw.base), 0);
		ck_assert_int_eq(pw.result, 2);
		rouse_future_drop(&pw.base);
	}
	ck_assert_int_eq(rouse_stream_read_exact_init(&r2, cs, tail, 2), 0);
	ck_assert_int_eq(test_runner_block_on(ru, &r2.base), 0);
	ck_assert_int_eq(r2.result, 2);
	ck_assert(memcmp(tail, "hi", 2) == 0);
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
	ck_assert_int_eq(rouse_stream_peer_addr(NULL, &in_addr), -EINVAL);
	ck_assert_int_eq(rouse_tcp_listener_fd(NULL), -EINVAL);
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
	ck_assert_int_eq(rouse_stream_write_init(&rw, s, NULL, 1), -EINVAL);
	ck_assert_int_eq(rouse_stream_write_init(NULL, s, p, 1), -EINVAL);
	ck_assert_int_eq(rouse_stream_readv_init(&rv, s, &iov, -1), -EINVAL);
	ck_assert_int_eq(rouse_stream_readv_init(&rv, s, NULL, 1), -EINVAL);
	ck_assert_int_eq(rouse_stream_close(s), 0);
	close(p[1]);
	rouse_reactor_free(r);
}
END_TEST

/* ---- connecting to a host by name ------------------------------------- */

/*
 * The reactor library's live blocks, counted by an allocator of the
 * test's; alloc_calls counts the allocations since it was last reset.
 */
static atomic_long live_blocks, alloc_calls;

static void *count_malloc(void *data, size_t size)
{
	void *p = malloc(size);

	(void)data;
	atomic_fetch_add(&alloc_calls, 1);
	if (p != NULL)
		atomic_fetch_add(&live_blocks, 1);
	return p;
}

static void *count_realloc(void *data, void *ptr, size_t size)
{
	(void)data;
	atomic_fetch_add(&alloc_calls, 1);
	return realloc(ptr, size);
}

static void count_free(void *data, void *ptr)
{
	(void)data;
	atomic_fetch_sub(&live_blocks, 1);
	free(ptr);
}

static const struct rouse_allocator counting_allocator = {
	count_malloc, count_realloc, count_free, NULL,
};

/*
 * Wait until the library holds n blocks.  A lookup dropped while its
 * resolver thread runs it is freed by that thread when it is done, a
 * little later; a leak makes the tcase time out.
 */
static void blocks_wait(long n)
{
	while (atomic_load(&live_blocks) != n)
		sched_yield();
}

/*
 * Count the reactor library's blocks from now on.  Returns the count that
 * stays: 1 when the lookup made here also made the process's resolver,
 * which is never freed, else 0.
 */
static long blocks_install(void)
{
	struct rouse_reactor *r;
	struct rouse_dns_lookup l;
	long base;

	atomic_store(&live_blocks, 0);
	ck_assert_int_eq(rouse_reactor_set_allocator(&counting_allocator), 0);
	r = test_reactor_make();
	atomic_store(&alloc_calls, 0);
	ck_assert_int_eq(rouse_dns_lookup_init(&l, r, "127.0.0.1", NULL, NULL),
			 0);
	/* The request, and the resolver if there was none yet. */
	base = atomic_load(&alloc_calls) - 1;
	ck_assert_int_eq(rouse_block_on(&l.base), 0);
	ck_assert_int_eq(rouse_future_drop(&l.base), 0);
	rouse_dns_free(l.addrs);
	rouse_reactor_free(r);
	blocks_wait(base);
	return base;
}

static void blocks_remove(void)
{
	ck_assert_int_eq(rouse_reactor_set_allocator(NULL), 0);
}

/* A listener on text (port 0); the port it got, as text, in port. */
static struct rouse_tcp_listener *listen_at(struct rouse_reactor *r,
					    const char *text, char *port,
					    size_t len)
{
	struct rouse_tcp_listener *l;
	struct rouse_addr a;

	ck_assert_int_eq(rouse_addr_parse(&a, text), 0);
	ck_assert_int_eq(rouse_tcp_listen(r, &a, 0, 0, &l), 0);
	ck_assert_int_eq(rouse_tcp_listener_addr(l, &a), 0);
	snprintf(port, len, "%d", rouse_addr_port(&a));
	return l;
}

/* Connect f to host and port in ru, and wait until it is ready. */
static void host_run(struct test_runner *ru,
		     struct rouse_tcp_connect_host *f, const char *host,
		     const char *port)
{
	/* Zeroed, so that host_reached() compares no uninitialised byte. */
	memset(f, 0, sizeof(*f));
	ck_assert_int_eq(rouse_tcp_connect_host_init(f, ru->r, host, port),
			 0);
	ck_assert_int_eq(test_runner_block_on(ru, &f->base), 0);
}

/*
 * f, ready, reached l at an address of family: polled again it stays as
 * it is, its drop leaves the stream open, and a byte goes through to the
 * connection that l accepts.  Both streams are closed after.
 */
static void host_reached(struct test_runner *ru,
			 struct rouse_tcp_connect_host *f,
			 struct rouse_tcp_listener *l, int family)
{
	struct rouse_tcp_connect_host copy;
	struct rouse_tcp_accept a;
	struct rouse_stream_rw w, rd;
	struct rouse_addr at, local;
	char byte = 0;

	ck_assert_int_eq(f->result, 0);
	ck_assert_int_eq(f->gai_error, 0);
	ck_assert_int_ge(f->attempts, 1);
	ck_assert_ptr_nonnull(f->stream);
	ck_assert_int_eq(f->peer.u.sa.sa_family, family);
	ck_assert_int_eq(rouse_tcp_listener_addr(l, &at), 0);
	ck_assert_int_eq(rouse_addr_port(&f->peer), rouse_addr_port(&at));
	copy = *f;
	ck_assert_int_eq(test_poll_noop(&f->base), ROUSE_READY);
	ck_assert(memcmp(&copy, f, sizeof(copy)) == 0);
	ck_assert_int_eq(rouse_future_drop(&f->base), 0);
	ck_assert_ptr_eq(f->stream, copy.stream);

	ck_assert_int_eq(rouse_tcp_accept_init(&a, l), 0);
	ck_assert_int_eq(test_runner_block_on(ru, &a.base), 0);
	ck_assert_int_eq(a.result, 0);
	ck_assert_int_eq(rouse_stream_local_addr(f->stream, &local), 0);
	ck_assert_int_eq(rouse_addr_port(&a.peer), rouse_addr_port(&local));
	ck_assert_int_eq(rouse_stream_write_all_init(&w, f->stream, "h", 1),
			 0);
	ck_assert_int_eq(rouse_stream_read_exact_init(&rd, a.stream, &byte,
						      1), 0);
	test_run_both(ru, &w.base, &rd.base);
	ck_assert_int_eq(rd.result, 1);
	ck_assert_int_eq(byte, 'h');
	rouse_future_drop(&w.base);
	rouse_future_drop(&rd.base);
	ck_assert_int_eq(rouse_stream_close(a.stream), 0);
	rouse_future_drop(&a.base);
	ck_assert_int_eq(rouse_stream_close(f->stream), 0);
}

/*
 * "localhost" (from /etc/hosts) and numeric hosts reach a listener at
 * the port given as text; nothing is left open after.
 */
START_TEST(host_by_name)
{
	struct test_runner ru;
	struct rouse_tcp_listener *l;
	struct rouse_tcp_connect_host f;
	char port[16];
	int fds0;

	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	l = listen_at(ru.r, "127.0.0.1:0", port, sizeof(port));
	/* Where localhost is ::1 too, that one comes first, and is refused. */
	host_run(&ru, &f, "localhost", port);
	host_reached(&ru, &f, l, AF_INET);
	host_run(&ru, &f, "127.0.0.1", port);
	ck_assert_int_eq(f.attempts, 1);
	host_reached(&ru, &f, l, AF_INET);
	ck_assert_int_eq(rouse_tcp_listener_close(l), 0);
	if (test_have_ipv6()) {
		l = listen_at(ru.r, "[::1]:0", port, sizeof(port));
		host_run(&ru, &f, "::1", port);
		ck_assert_int_eq(f.attempts, 1);
		host_reached(&ru, &f, l, AF_INET6);
		ck_assert_int_eq(rouse_tcp_listener_close(l), 0);
	}
	ck_assert_int_eq(test_count_fds(), fds0);
	test_runner_free(&ru);
}
END_TEST

/* The number of addresses that getaddrinfo() gives name for TCP. */
static int count_addresses(const char *name)
{
	struct addrinfo hints, *list, *ai;
	int n = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(name, NULL, &hints, &list) != 0)
		return 0;
	for (ai = list; ai != NULL; ai = ai->ai_next)
		n++;
	freeaddrinfo(list);
	return n;
}

/* Whether a and b are the same address, port included. */
static bool same_addr(const struct rouse_addr *a, const struct rouse_addr *b)
{
	char ta[ROUSE_ADDR_STRLEN], tb[ROUSE_ADDR_STRLEN];

	return rouse_addr_format(a, ta, sizeof(ta)) > 0 &&
	       rouse_addr_format(b, tb, sizeof(tb)) > 0 &&
	       strcmp(ta, tb) == 0;
}

/*
 * name has two addresses or more.  With a listener on the second one
 * only, the connect is refused at the first, tried again at the second,
 * and reaches it; with no listener, both are refused and the result is
 * the second's error.  Returns 0, or the number of the check that failed:
 * it may run in a child process, where Check's macros are not to be used.
 */
static int in_turn(struct rouse_reactor *r, struct rouse_parker *pk,
		   const char *name)
{
	struct addrinfo hints, *list;
	struct rouse_addr first, second, at;
	struct rouse_tcp_listener *l;
	struct rouse_tcp_connect_host f;
	struct rouse_tcp_accept a;
	char port[16];
	int fds0 = test_count_fds(), err;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(name, NULL, &hints, &list) != 0)
		return 10;
	err = list->ai_next == NULL ||
	      rouse_addr_from_sockaddr(&first, list->ai_addr,
				       list->ai_addrlen) != 0 ||
	      rouse_addr_from_sockaddr(&second, list->ai_next->ai_addr,
				       list->ai_next->ai_addrlen) != 0;
	freeaddrinfo(list);
	if (err || same_addr(&first, &second))
		return 11;
	/* The second address only: V6ONLY keeps ::1 from taking IPv4. */
	if (rouse_tcp_listen(r, &second, ROUSE_TCP_V6ONLY, 0, &l) != 0 ||
	    rouse_tcp_listener_addr(l, &at) != 0)
		return 12;
	snprintf(port, sizeof(port), "%d", rouse_addr_port(&at));
	if (rouse_tcp_connect_host_init(&f, r, name, port) != 0 ||
	    rouse_block_on_with(&f.base, pk) != 0)
		return 13;
	rouse_future_drop(&f.base);
	if (f.result != 0 || f.gai_error != 0 || f.stream == NULL)
		return 14;
	if (f.attempts != 2 || !same_addr(&f.peer, &at))
		return 15;
	if (rouse_tcp_accept_init(&a, l) != 0 ||
	    rouse_block_on_with(&a.base, pk) != 0 || a.result != 0)
		return 16;
	rouse_stream_close(a.stream);
	rouse_future_drop(&a.base);
	rouse_stream_close(f.stream);
	rouse_tcp_listener_close(l);

	/* Nobody listens now: refused everywhere, the last error is it. */
	if (rouse_tcp_connect_host_init(&f, r, name, port) != 0 ||
	    rouse_block_on_with(&f.base, pk) != 0)
		return 17;
	rouse_future_drop(&f.base);
	if (f.result != -ECONNREFUSED || f.stream != NULL ||
	    f.gai_error != 0 || f.attempts != 2 || !same_addr(&f.peer, &at))
		return 18;
	if (test_count_fds() != fds0)
		return 19;
	return 0;
}

#define IN_TURN_NAME "rouse-in-turn.test"

/*
 * A child of fork(): see /etc/hosts replaced by the file at path, in a
 * mount namespace of its own (and a user namespace, when that is what it
 * takes to be allowed one), then run in_turn() on IN_TURN_NAME.  Exit
 * status 77: no namespace could be had; 78: the name was not found even
 * so (a cache such as nscd answers instead of the file).
 */
static int in_turn_child(const char *path)
{
	struct rouse_reactor *r;
	struct rouse_parker pk;

	if (unshare(CLONE_NEWNS) != 0 &&
	    unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
		return 77;
	/*
	 * Private first, so that nothing below reaches the host's mounts.
	 * The kernel ignores the type of these two; "none" rather than NULL
	 * keeps valgrind from taking it for a string it must read.
	 */
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount(path, "/etc/hosts", "none", MS_BIND, NULL) != 0)
		return 77;
	if (count_addresses(IN_TURN_NAME) < 2)
		return 78;
	if (rouse_reactor_new(&r, 0) != 0 || rouse_reactor_parker(r, &pk) != 0)
		return 2;
	return in_turn(r, &pk, IN_TURN_NAME);
}

/*
 * A host whose first address is refused and whose second one accepts is
 * tried in turn.  "localhost" serves where /etc/hosts gives it ::1 and
 * 127.0.0.1; and a name of the test's own, with two loopback addresses,
 * in an /etc/hosts that only a child sees, wherever the child may have a
 * mount namespace.  When neither can be had, this one case is skipped,
 * and says so.
 */
START_TEST(host_in_turn)
{
	char path[] = "/tmp/rouse-hosts-XXXXXX";
	const char *text = test_have_ipv6()
		? "::1 " IN_TURN_NAME "\n127.0.0.1 " IN_TURN_NAME "\n"
		: "127.0.0.2 " IN_TURN_NAME "\n127.0.0.1 " IN_TURN_NAME "\n";
	int fd, status, ran = 0;
	pid_t pid;

	if (count_addresses("localhost") >= 2) {
		struct test_runner ru;

		test_runner_init(&ru, TEST_MODE_DRIVEN);
		ck_assert_int_eq(in_turn(ru.r, &ru.parker, "localhost"), 0);
		test_runner_free(&ru);
		ran++;
	}

	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	ck_assert_int_eq(fchmod(fd, 0644), 0);
	close(fd);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(in_turn_child(path));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	unlink(path);
	ck_assert(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77 || WEXITSTATUS(status) == 78) {
		fprintf(stderr, "check_net: host_in_turn: %s\n",
			WEXITSTATUS(status) == 77
			? "no mount namespace for a private /etc/hosts"
			: "a private /etc/hosts was not read (nscd?)");
	} else {
		ck_assert_msg(WEXITSTATUS(status) == 0,
			      "in the child, check %d of in_turn() failed",
			      WEXITSTATUS(status));
		ran++;
	}
	if (ran == 0)
		fprintf(stderr, "check_net: host_in_turn: SKIPPED: no name "
			"with two addresses (localhost has one here)\n");
}
END_TEST

/* Every address refused: -ECONNREFUSED, the last address in peer. */
START_TEST(host_refused)
{
	struct test_runner ru;
	struct rouse_tcp_listener *l;
	struct rouse_tcp_connect_host f;
	char port[16];
	int fds0;

	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	/* A port that was just listened on, and is closed again. */
	l = listen_at(ru.r, "127.0.0.1:0", port, sizeof(port));
	ck_assert_int_eq(rouse_tcp_listener_close(l), 0);
	host_run(&ru, &f, "127.0.0.1", port);
	ck_assert_int_eq(f.result, -ECONNREFUSED);
	ck_assert_int_eq(f.attempts, 1);
	ck_assert_int_eq(f.gai_error, 0);
	ck_assert_ptr_null(f.stream);
	ck_assert_int_eq(rouse_addr_port(&f.peer), atoi(port));
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	host_run(&ru, &f, "localhost", port);
	ck_assert_int_eq(f.result, -ECONNREFUSED);
	ck_assert_int_eq(f.attempts, count_addresses("localhost"));
	ck_assert_ptr_null(f.stream);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
	test_runner_free(&ru);
}
END_TEST

/*
 * Failed lookups: the lookup's error, its EAI_* code, and no address
 * tried.  .invalid never exists (RFC 6761): not found if a name server
 * said so, or -EAGAIN when none could be reached, as here with no
 * network; both end, and neither is a success.
 */
START_TEST(host_not_found)
{
	struct test_runner ru;
	struct rouse_tcp_connect_host f;
	int fds0;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	fds0 = test_count_fds_warm();
	host_run(&ru, &f, "nonexistent.invalid", "80");
	ck_assert_msg((f.result == -ENOENT && f.gai_error == EAI_NONAME) ||
			      (f.result == -EAGAIN &&
			       f.gai_error == EAI_AGAIN),
		      "result %d, gai_error %d", f.result, f.gai_error);
	ck_assert_int_eq(f.attempts, 0);
	ck_assert_ptr_null(f.stream);
	ck_assert_int_eq(f.peer.len, 0);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	/* A service that /etc/services does not have: certain, no network. */
	host_run(&ru, &f, "127.0.0.1", "no-such-service");
	ck_assert_int_eq(f.result, -ESRCH);
	ck_assert_int_eq(f.gai_error, EAI_SERVICE);
	ck_assert_int_eq(f.attempts, 0);
	ck_assert_ptr_null(f.stream);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
	test_runner_free(&ru);
}
END_TEST

/* Bad arguments are refused, and leave f, fds and memory as they were. */
START_TEST(host_bad_input)
{
	struct rouse_reactor *r;
	struct rouse_tcp_connect_host f, before;
	long base, blocks;
	int fds0;

	base = blocks_install();
	r = test_reactor_make();
	fds0 = test_count_fds_warm();
	blocks = atomic_load(&live_blocks);
	memset(&f, 0xa5, sizeof(f));
	before = f;
	ck_assert_int_eq(rouse_tcp_connect_host_init(NULL, r, "localhost",
						     "80"), -EINVAL);
	ck_assert_int_eq(rouse_tcp_connect_host_init(&f, NULL, "localhost",
						     "80"), -EINVAL);
	ck_assert_int_eq(rouse_tcp_connect_host_init(&f, r, NULL, "80"),
			 -EINVAL);
	ck_assert_int_eq(rouse_tcp_connect_host_init(&f, r, "localhost",
						     NULL), -EINVAL);
	ck_assert_int_eq(rouse_tcp_connect_host_init(&f, r, "", "80"),
			 -EINVAL);
	ck_assert_int_eq(rouse_tcp_connect_host_init(&f, r, "localhost", ""),
			 -EINVAL);
	ck_assert(memcmp(&f, &before, sizeof(f)) == 0);
	ck_assert_int_eq(test_count_fds(), fds0);
	ck_assert_int_eq(atomic_load(&live_blocks), blocks);
	rouse_reactor_free(r);
	blocks_wait(base);
	blocks_remove();
}
END_TEST

/*
 * Dropped during the lookup, at once: whether the lookup is still queued,
 * running, or done, the future has not moved on from it.  And dropped
 * after one poll, wherever that left it: most often still waiting for the
 * lookup, with a waker to give back; else refused, at a port that was
 * just closed.  Nothing is left: no descriptor, no block once the
 * resolver threads have let go of the lookups they were running, no
 * clone of the waker.
 */
START_TEST(host_drop_in_lookup)
{
	struct test_fixture fx;
	struct rouse_tcp_listener *l;
	struct rouse_tcp_connect_host f;
	char port[16];
	int i, fds0;
	long base, blocks0;

	base = blocks_install();
	test_fixture_init(&fx);
	l = listen_at(fx.r, "127.0.0.1:0", port, sizeof(port));
	ck_assert_int_eq(rouse_tcp_listener_close(l), 0);
	fds0 = test_count_fds_warm();
	blocks0 = atomic_load(&live_blocks);
	for (i = 0; i < 400; i++) {
		ck_assert_int_eq(rouse_tcp_connect_host_init(
					 &f, fx.r, i % 4 < 2 ? "localhost"
							     : "127.0.0.1",
					 port), 0);
		if (i % 2 == 1)
			test_poll_with(&f.base, &fx.w);
		else
			ck_assert_int_eq(f.attempts, 0);
		ck_assert_int_eq(rouse_future_drop(&f.base), 0);
		ck_assert_ptr_null(f.stream);
	}
	/*
	 * A resolver thread may still be inside getaddrinfo() for a dropped
	 * lookup, with a descriptor of its own open (a socket, /etc/hosts):
	 * count once every lookup's block is gone, which is after its
	 * getaddrinfo() returned.
	 */
	blocks_wait(blocks0);
	ck_assert_int_eq(test_count_fds(), fds0);
	/* A resolver thread wakes, or the drop drops, each clone. */
	while (atomic_load(&fx.cw.live) != 1)
		sched_yield();
	test_fixture_free(&fx);
	blocks_wait(base);
	blocks_remove();
}
END_TEST

/*
 * A listener on 127.0.0.1 whose queue is full: backlog 1 holds two
 * connections, made here and never accepted, and the kernel drops the
 * SYN of any other connect, which then waits (minutes of retries) until
 * it is dropped.  fds[0] is the listener, fds[1] and fds[2] the clients
 * that fill its queue.  Returns its port.
 */
static int stalled_listener(int fds[3])
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct tcp_info ti;
	int i;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fds[0], 0);
	ck_assert_int_eq(bind(fds[0], (struct sockaddr *)&sin, sizeof(sin)),
			 0);
	ck_assert_int_eq(listen(fds[0], 1), 0);
	ck_assert_int_eq(getsockname(fds[0], (struct sockaddr *)&sin, &len),
			 0);
	for (i = 1; i <= 2; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ck_assert_int_ge(fds[i], 0);
		ck_assert_int_eq(connect(fds[i], (struct sockaddr *)&sin,
					 sizeof(sin)), 0);
	}
	/* On a listener, tcpi_unacked is the length of its queue. */
	for (;;) {
		len = sizeof(ti);
		ck_assert_int_eq(getsockopt(fds[0], IPPROTO_TCP, TCP_INFO,
					    &ti, &len), 0);
		if (ti.tcpi_unacked >= 2)
			break;
		sched_yield();
	}
	return ntohs(sin.sin_port);
}

/* Ready once f is, or once f waits in a connect: its lookup is over. */
struct until_connecting {
	struct rouse_future base;
	struct rouse_tcp_connect_host *f;
	bool ready;	/* f is */
};

static enum rouse_poll until_connecting_poll(struct rouse_future *self,
					     struct rouse_context *cx)
{
	struct until_connecting *u = (struct until_connecting *)self;

	u->ready = rouse_future_poll(&u->f->base, cx) == ROUSE_READY;
	return u->ready || u->f->attempts > 0 ? ROUSE_READY : ROUSE_PENDING;
}

/* Run f in ru until it waits in a connect, which it must still do. */
static void run_until_connecting(struct test_runner *ru,
				 struct rouse_tcp_connect_host *f)
{
	static const struct rouse_future_vtable vt = {
		until_connecting_poll, NULL,
	};
	struct until_connecting u = { { &vt }, f, false };

	ck_assert_int_eq(test_runner_block_on(ru, &u.base), 0);
	ck_assert_msg(!u.ready, "connect ended: %d", f->result);
	ck_assert_int_eq(f->attempts, 1);
}

/*
 * Dropped while a connect waits: its socket is closed, the list of
 * addresses freed; the listener it waited for is left as it was.
 */
START_TEST(host_drop_in_connect)
{
	struct test_runner ru;
	struct rouse_tcp_connect_host f;
	char port[16];
	int fds[3], fds0, i;
	long base;

	base = blocks_install();
	test_runner_init(&ru, (enum test_mode)_i);
	snprintf(port, sizeof(port), "%d", stalled_listener(fds));
	fds0 = test_count_fds_warm();
	for (i = 0; i < 20; i++) {
		ck_assert_int_eq(rouse_tcp_connect_host_init(&f, ru.r,
							     "127.0.0.1",
							     port), 0);
		run_until_connecting(&ru, &f);
		ck_assert_int_eq(test_count_fds(), fds0 + 1);
		ck_assert_int_eq(rouse_future_drop(&f.base), 0);
		ck_assert_ptr_null(f.stream);
		ck_assert_int_eq(test_count_fds(), fds0);
	}
	test_runner_free(&ru);
	for (i = 0; i < 3; i++)
		close(fds[i]);
	blocks_wait(base);
	blocks_remove();
}
END_TEST

/*
 * The reactor is freed while a connect waits: the future completes with
 * -ECANCELED and tries no other address; its drop closes the socket.
 * Polled by hand with a counting waker: a waker of the reactor's own,
 * which the resolver thread may still hold for a moment after the lookup,
 * would keep the reactor's eventfd open that long.
 */
START_TEST(host_reactor_freed)
{
	struct test_fixture fx;
	struct rouse_tcp_connect_host f;
	char port[16];
	int fds[3], fds0, i, wakes;

	snprintf(port, sizeof(port), "%d", stalled_listener(fds));
	fds0 = test_count_fds();
	test_fixture_init(&fx);
	ck_assert_int_eq(rouse_tcp_connect_host_init(&f, fx.r, "127.0.0.1",
						     port), 0);
	for (;;) {
		wakes = atomic_load(&fx.cw.wakes);
		ck_assert_int_eq(test_poll_with(&f.base, &fx.w),
				 ROUSE_PENDING);
		if (f.attempts > 0)
			break;
		/* Still looking up: its resolver thread wakes us. */
		while (atomic_load(&fx.cw.wakes) == wakes)
			sched_yield();
	}
	ck_assert_int_eq(f.attempts, 1);
	rouse_reactor_free(fx.r);
	ck_assert_int_eq(test_poll_with(&f.base, &fx.w), ROUSE_READY);
	ck_assert_int_eq(f.result, -ECANCELED);
	ck_assert_int_eq(f.attempts, 1);
	ck_assert_ptr_null(f.stream);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
	/* Every clone of the waker was woken or dropped. */
	counting_waker_drop_last(&fx.w, &fx.cw);
	for (i = 0; i < 3; i++)
		close(fds[i]);
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

	tc = tcase_create("host");
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	tcase_add_loop_test(tc, host_by_name, 0, TEST_MODES);
	tcase_add_test(tc, host_in_turn);
	tcase_add_loop_test(tc, host_refused, 0, TEST_MODES);
	tcase_add_test(tc, host_not_found);
	tcase_add_test(tc, host_bad_input);
	tcase_add_test(tc, host_drop_in_lookup);
	tcase_add_loop_test(tc, host_drop_in_connect, 0, TEST_MODES);
	tcase_add_test(tc, host_reactor_freed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(net_suite());
}
