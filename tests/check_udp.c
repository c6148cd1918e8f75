// SPDX-License-Identifier: MIT
/*
 * tests/check_udp.c - UDP and the datagram futures: send_to and
 * recv_from on 127.0.0.1, connected sockets, a datagram cut to the
 * buffer, an empty datagram, sendmmsg and recvmmsg of a batch, IPv6 and
 * dual-stack, an adopted socket, a receive dropped while it waits (and
 * a second one refused meanwhile), a reactor inherited through fork(2),
 * allocation failure, and bad input.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <sys/wait.h>

#include <rouse/alloc.h>
#include <rouse/net.h>

#include "testutil.h"

/* ---- helpers --------------------------------------------------------- */

static struct rouse_dgram *udp_at(struct rouse_reactor *r, const char *text,
				  unsigned int flags)
{
	struct rouse_dgram *d = NULL;
	struct rouse_addr a;

	ck_assert_int_eq(rouse_addr_parse(&a, text), 0);
	ck_assert_int_eq(rouse_udp_bind(r, &a, flags, &d), 0);
	ck_assert_ptr_nonnull(d);
	return d;
}

static struct rouse_addr local_of(struct rouse_dgram *d)
{
	struct rouse_addr a;

	ck_assert_int_eq(rouse_dgram_local_addr(d, &a), 0);
	ck_assert_int_gt(rouse_addr_port(&a), 0);
	return a;
}

/* Send len bytes of buf from a to `to` (NULL: connected); must all go. */
static void send_one(struct test_runner *ru, struct rouse_dgram *a,
		     const void *buf, size_t len, const struct rouse_addr *to)
{
	struct rouse_dgram_rw s;

	ck_assert_int_eq(rouse_dgram_send_to_init(&s, a, buf, len, to), 0);
	ck_assert_int_eq(test_runner_block_on(ru, &s.base), 0);
	ck_assert_int_eq(s.result, (ssize_t)len);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
}

/* Receive one datagram on b into buf; returns the future's result. */
static ssize_t recv_one(struct test_runner *ru, struct rouse_dgram *b,
			void *buf, size_t len, struct rouse_addr *from,
			int *truncated)
{
	struct rouse_dgram_rw r;
	ssize_t n;

	ck_assert_int_eq(rouse_dgram_recv_from_init(&r, b, buf, len), 0);
	ck_assert_int_eq(test_runner_block_on(ru, &r.base), 0);
	n = r.result;
	if (from != NULL)
		*from = r.addr;
	if (truncated != NULL)
		*truncated = r.truncated;
	ck_assert_int_eq(rouse_future_drop(&r.base), 0);
	return n;
}

/*
 * The round trip of udp_round_trip and udp_ipv6: a receive that waits
 * for its datagram, the sender's address, a datagram cut to the buffer,
 * an empty one, then the same over connected sockets.
 */
static void exchange(struct test_runner *ru, struct rouse_dgram *a,
		     struct rouse_dgram *b)
{
	struct rouse_addr aa = local_of(a), ba = local_of(b), from, peer;
	struct rouse_dgram_rw r, s;
	char buf[64], big[200];
	int trunc;

	/* A receive that waits, then the send that ends the wait. */
	ck_assert_int_eq(rouse_dgram_recv_from_init(&r, b, buf, sizeof(buf)),
			 0);
	ck_assert_int_eq(test_poll_noop(&r.base), ROUSE_PENDING);
	ck_assert_int_eq(rouse_dgram_send_to_init(&s, a, "hello", 5, &ba), 0);
	test_run_both(ru, &s.base, &r.base);
	ck_assert_int_eq(s.result, 5);
	ck_assert_int_eq(r.result, 5);
	ck_assert_int_eq(r.truncated, 0);
	ck_assert(memcmp(buf, "hello", 5) == 0);
	ck_assert_int_eq(r.addr.u.sa.sa_family, aa.u.sa.sa_family);
	ck_assert_int_eq(rouse_addr_port(&r.addr), rouse_addr_port(&aa));
	rouse_future_drop(&s.base);
	rouse_future_drop(&r.base);

	/* Longer than the buffer: cut, and said so. */
	memset(big, 'z', sizeof(big));
	send_one(ru, a, big, sizeof(big), &ba);
	ck_assert_int_eq(recv_one(ru, b, buf, 10, NULL, &trunc), 10);
	ck_assert_int_eq(trunc, 1);
	/* An empty datagram is 0, and no end of anything. */
	send_one(ru, a, "", 0, &ba);
	ck_assert_int_eq(recv_one(ru, b, buf, sizeof(buf), &from, &trunc), 0);
	ck_assert_int_eq(trunc, 0);
	ck_assert_int_eq(rouse_addr_port(&from), rouse_addr_port(&aa));

	/* Connected both ways: no address on the send. */
	ck_assert_int_eq(rouse_dgram_connect(a, &ba), 0);
	ck_assert_int_eq(rouse_dgram_connect(b, &aa), 0);
	ck_assert_int_eq(rouse_dgram_peer_addr(a, &peer), 0);
	ck_assert_int_eq(rouse_addr_port(&peer), rouse_addr_port(&ba));
	send_one(ru, a, "ping", 4, NULL);
	ck_assert_int_eq(recv_one(ru, b, buf, sizeof(buf), NULL, NULL), 4);
	ck_assert(memcmp(buf, "ping", 4) == 0);
	send_one(ru, b, "pong", 4, NULL);
	ck_assert_int_eq(recv_one(ru, a, buf, sizeof(buf), &from, NULL), 4);
	ck_assert(memcmp(buf, "pong", 4) == 0);
	ck_assert_int_eq(rouse_addr_port(&from), rouse_addr_port(&ba));

	/* Dissolved: a send needs an address again. */
	ck_assert_int_eq(rouse_dgram_connect(a, NULL), 0);
	ck_assert_int_eq(rouse_dgram_peer_addr(a, &peer), -ENOTCONN);
	ck_assert_int_eq(rouse_dgram_send_to_init(&s, a, "x", 1, NULL), 0);
	ck_assert_int_eq(test_runner_block_on(ru, &s.base), 0);
	ck_assert_int_eq(s.result, -EDESTADDRREQ);
	rouse_future_drop(&s.base);
}

START_TEST(udp_round_trip)
{
	struct test_runner ru;
	struct rouse_dgram *a, *b;
	int fds0;

	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	a = udp_at(ru.r, "127.0.0.1:0", 0);
	b = udp_at(ru.r, "127.0.0.1:0", 0);
	exchange(&ru, a, b);
	ck_assert_int_eq(rouse_dgram_close(a), 0);
	ck_assert_int_eq(rouse_dgram_close(b), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
	test_runner_free(&ru);
}
END_TEST

/* IPv6 on ::1; a dual-stack socket on :: hears an IPv4 sender. */
START_TEST(udp_ipv6)
{
	struct test_runner ru;
	struct rouse_dgram *a, *b, *v4, *v6only;
	struct rouse_addr to, from;
	char buf[16], text[32];

	if (!test_have_ipv6())
		return;		/* nothing to test without IPv6 */
	test_runner_init(&ru, (enum test_mode)_i);
	a = udp_at(ru.r, "[::1]:0", ROUSE_UDP_V6ONLY);
	b = udp_at(ru.r, "[::1]:0", 0);
	exchange(&ru, a, b);
	ck_assert_int_eq(rouse_dgram_close(a), 0);
	ck_assert_int_eq(rouse_dgram_close(b), 0);

	b = udp_at(ru.r, "[::]:0", 0);
	v4 = udp_at(ru.r, "127.0.0.1:0", 0);
	to = local_of(b);
	snprintf(text, sizeof(text), "127.0.0.1:%d", rouse_addr_port(&to));
	ck_assert_int_eq(rouse_addr_parse(&to, text), 0);
	send_one(&ru, v4, "v4", 2, &to);
	ck_assert_int_eq(recv_one(&ru, b, buf, sizeof(buf), &from, NULL), 2);
	/* The sender, as a v4-mapped IPv6 address. */
	ck_assert_int_eq(from.u.sa.sa_family, AF_INET6);
	ck_assert(IN6_IS_ADDR_V4MAPPED(&from.u.in6.sin6_addr));
	ck_assert_int_eq(rouse_addr_format(&from, text, sizeof(text)) > 0, 1);
	ck_assert_int_eq(rouse_dgram_close(b), 0);
	ck_assert_int_eq(rouse_dgram_close(v4), 0);
	/* V6ONLY is taken on a wildcard socket too. */
	v6only = udp_at(ru.r, "[::]:0", ROUSE_UDP_V6ONLY);
	ck_assert_int_eq(rouse_dgram_close(v6only), 0);
	test_runner_free(&ru);
}
END_TEST

/* ---- sendmmsg and recvmmsg --------------------------------------------- */

#define BATCH 8

/*
 * Eight datagrams of different lengths with one sendmmsg (to an address
 * in each header), then recvmmsg into eight slots until all eight came;
 * the last one is longer than its slot, and says so in its msg_flags.
 */
START_TEST(udp_mmsg)
{
	struct test_runner ru;
	struct rouse_dgram *a, *b;
	struct rouse_addr aa, ba;
	struct rouse_dgram_mmsg f;
	struct mmsghdr out[BATCH], in[BATCH];
	struct iovec oiov[BATCH], iiov[BATCH];
	struct sockaddr_storage names[BATCH];
	char obuf[BATCH][32], ibuf[BATCH][16];
	int i, got = 0, sent = 0, fds0;

	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	a = udp_at(ru.r, "127.0.0.1:0", 0);
	b = udp_at(ru.r, "127.0.0.1:0", 0);
	aa = local_of(a);
	ba = local_of(b);
	memset(out, 0, sizeof(out));
	for (i = 0; i < BATCH; i++) {
		memset(obuf[i], 'a' + i, sizeof(obuf[i]));
		oiov[i].iov_base = obuf[i];
		oiov[i].iov_len = i == BATCH - 1 ? 32 : (size_t)i + 1;
		out[i].msg_hdr.msg_iov = &oiov[i];
		out[i].msg_hdr.msg_iovlen = 1;
		out[i].msg_hdr.msg_name = &ba.u;
		out[i].msg_hdr.msg_namelen = ba.len;
	}
	/* Waiting first: nothing has come yet. */
	memset(in, 0, sizeof(in));
	ck_assert_int_eq(rouse_dgram_recvmmsg_init(&f, b, in, BATCH), 0);
	ck_assert_int_eq(test_poll_noop(&f.base), ROUSE_PENDING);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	while (sent < BATCH) {
		ck_assert_int_eq(rouse_dgram_sendmmsg_init(&f, a, out + sent,
							   BATCH - sent), 0);
		ck_assert_int_eq(test_runner_block_on(&ru, &f.base), 0);
		ck_assert_int_ge(f.result, 1);
		for (i = sent; i < sent + f.result; i++)
			ck_assert_uint_eq(out[i].msg_len, oiov[i].iov_len);
		sent += f.result;
		rouse_future_drop(&f.base);
	}
	while (got < BATCH) {
		int n = BATCH - got;

		memset(in, 0, sizeof(in));
		for (i = 0; i < n; i++) {
			iiov[i].iov_base = ibuf[got + i];
			iiov[i].iov_len = sizeof(ibuf[0]);
			in[i].msg_hdr.msg_iov = &iiov[i];
			in[i].msg_hdr.msg_iovlen = 1;
			in[i].msg_hdr.msg_name = &names[got + i];
			in[i].msg_hdr.msg_namelen = sizeof(names[0]);
		}
		ck_assert_int_eq(rouse_dgram_recvmmsg_init(&f, b, in,
							   (unsigned int)n),
				 0);
		ck_assert_int_eq(test_runner_block_on(&ru, &f.base), 0);
		ck_assert_int_ge(f.result, 1);
		ck_assert_int_le(f.result, n);
		for (i = 0; i < f.result; i++) {
			int k = got + i;
			size_t want = k == BATCH - 1 ? sizeof(ibuf[0])
						     : (size_t)k + 1;
			bool cut = in[i].msg_hdr.msg_flags & MSG_TRUNC;
			struct rouse_addr from;

			ck_assert_uint_eq(in[i].msg_len, want);
			ck_assert_int_eq(ibuf[k][0], 'a' + k);
			ck_assert_int_eq(cut, k == BATCH - 1);
			ck_assert_int_eq(rouse_addr_from_sockaddr(
						 &from,
						 (struct sockaddr *)&names[k],
						 in[i].msg_hdr.msg_namelen),
					 0);
			ck_assert_int_eq(rouse_addr_port(&from),
					 rouse_addr_port(&aa));
		}
		got += f.result;
		rouse_future_drop(&f.base);
	}
	ck_assert_int_eq(rouse_dgram_close(a), 0);
	ck_assert_int_eq(rouse_dgram_close(b), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
	test_runner_free(&ru);
}
END_TEST

/* ---- adopting, cancelling ---------------------------------------------- */

/* A blocking UDP socket made by hand becomes a nonblocking rouse_dgram. */
START_TEST(dgram_adopt)
{
	struct test_runner ru;
	struct rouse_dgram *a, *b;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char buf[8];
	int fd;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(rouse_dgram_open(ru.r, fd, &b), 0);
	ck_assert_int_eq(rouse_dgram_fd(b), fd);
	ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
	a = udp_at(ru.r, "127.0.0.1:0", 0);
	ck_assert_int_eq(rouse_dgram_connect(a, &(struct rouse_addr){ 0 }),
			 -EINVAL);
	{
		struct rouse_addr ba = local_of(b);

		ck_assert_int_eq(rouse_dgram_connect(a, &ba), 0);
	}
	send_one(&ru, a, "adopt", 5, NULL);
	ck_assert_int_eq(recv_one(&ru, b, buf, sizeof(buf), NULL, NULL), 5);
	ck_assert_int_eq(rouse_dgram_close(a), 0);
	ck_assert_int_eq(rouse_dgram_close(b), 0);
	ck_assert(!test_fd_is_open(fd));
	test_runner_free(&ru);
}
END_TEST

/*
 * A receive that waits holds a clone of the waker; dropping it gives the
 * clone back and deregisters nothing, so a later receive still works.  A
 * second receive that has to wait meanwhile completes with -EBUSY.
 */
START_TEST(dgram_cancel)
{
	struct test_fixture fx;
	struct rouse_dgram *a, *b;
	struct rouse_dgram_rw r;
	struct rouse_addr ba;
	struct test_runner ru;
	char buf[8];

	test_fixture_init(&fx);
	a = udp_at(fx.r, "127.0.0.1:0", 0);
	b = udp_at(fx.r, "127.0.0.1:0", 0);
	ba = local_of(b);
	ck_assert_int_eq(rouse_dgram_recv_from_init(&r, b, buf, sizeof(buf)),
			 0);
	ck_assert_int_eq(test_poll_with(&r.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&fx.cw.live), 2);
	/* One receive waits at a time: a second one that must wait is told. */
	{
		struct rouse_dgram_rw r2;

		ck_assert_int_eq(rouse_dgram_recv_from_init(&r2, b, buf,
							    sizeof(buf)), 0);
		ck_assert_int_eq(test_poll_with(&r2.base, &fx.w), ROUSE_READY);
		ck_assert_int_eq(r2.result, -EBUSY);
		ck_assert_int_eq(rouse_future_drop(&r2.base), 0);
	}
	ck_assert_int_eq(rouse_future_drop(&r.base), 0);
	ck_assert_int_eq(atomic_load(&fx.cw.live), 1);
	/* The socket is intact. */
	ck_assert_int_eq(rouse_reactor_parker(fx.r, &ru.parker), 0);
	ru.r = fx.r;
	ru.mode = TEST_MODE_DRIVEN;
	send_one(&ru, a, "later", 5, &ba);
	ck_assert_int_eq(recv_one(&ru, b, buf, sizeof(buf), NULL, NULL), 5);
	ck_assert_int_eq(rouse_dgram_close(a), 0);
	ck_assert_int_eq(rouse_dgram_close(b), 0);
	test_fixture_free(&fx);
}
END_TEST

/* ---- fork ---------------------------------------------------------------- */

/* In a child: the inherited reactor refuses new sockets and waits. */
static int fork_child(struct rouse_reactor *r, struct rouse_dgram *b)
{
	struct rouse_dgram *d = NULL;
	struct rouse_dgram_rw f;
	struct rouse_addr a;
	char buf[8];

	if (rouse_addr_parse(&a, "127.0.0.1:0") != 0)
		return 2;
	if (rouse_udp_bind(r, &a, 0, &d) != -ECHILD || d != NULL)
		return 3;
	/* Nothing queued: the receive would wait, which is refused. */
	if (rouse_dgram_recv_from_init(&f, b, buf, sizeof(buf)) != 0 ||
	    test_poll_noop(&f.base) != ROUSE_READY || f.result != -ECHILD)
		return 4;
	rouse_future_drop(&f.base);
	if (rouse_dgram_close(b) != -ECHILD)
		return 5;
	if (rouse_reactor_fork(r) != 0)
		return 6;
	if (rouse_dgram_close(b) != 0)
		return 7;
	rouse_reactor_free(r);
	return 0;
}

START_TEST(dgram_fork)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_dgram *b = udp_at(r, "127.0.0.1:0", 0);
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(fork_child(r, b));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_eq(rouse_dgram_close(b), 0);
	rouse_reactor_free(r);
}
END_TEST

/* ---- allocation failure -------------------------------------------------- */

/* Fails allocation number fail_at (from 0) of the armed calls. */
static atomic_long nalloc, fail_at, live_blocks;

static void *fail_malloc(void *data, size_t size)
{
	void *p;

	(void)data;
	if (atomic_fetch_add(&nalloc, 1) == atomic_load(&fail_at))
		return NULL;
	p = malloc(size);
	if (p != NULL)
		atomic_fetch_add(&live_blocks, 1);
	return p;
}

static void *fail_realloc(void *data, void *ptr, size_t size)
{
	(void)data;
	if (atomic_fetch_add(&nalloc, 1) == atomic_load(&fail_at))
		return NULL;
	return realloc(ptr, size);
}

static void fail_free(void *data, void *ptr)
{
	(void)data;
	atomic_fetch_sub(&live_blocks, 1);
	free(ptr);
}

static const struct rouse_allocator failing = {
	fail_malloc, fail_realloc, fail_free, NULL,
};

/*
 * rouse_udp_bind() with each of its allocations failing in turn: -ENOMEM,
 * no descriptor and no block left; then it succeeds.
 */
START_TEST(udp_bind_enomem)
{
	struct rouse_reactor *r;
	struct rouse_dgram *d;
	struct rouse_addr a;
	long n;
	int err, fds0;

	ck_assert_int_eq(rouse_addr_parse(&a, "127.0.0.1:0"), 0);
	atomic_store(&live_blocks, 0);
	atomic_store(&fail_at, -1);
	ck_assert_int_eq(rouse_reactor_set_allocator(&failing), 0);
	for (n = 0;; n++) {
		ck_assert_int_lt(n, 32);
		r = test_reactor_make();
		fds0 = test_count_fds();
		d = NULL;
		atomic_store(&nalloc, 0);
		atomic_store(&fail_at, n);
		err = rouse_udp_bind(r, &a, 0, &d);
		atomic_store(&fail_at, -1);
		if (err == 0) {
			ck_assert_int_eq(rouse_dgram_close(d), 0);
		} else {
			ck_assert_int_eq(err, -ENOMEM);
			ck_assert_ptr_null(d);
		}
		ck_assert_int_eq(test_count_fds(), fds0);
		rouse_reactor_free(r);
		ck_assert_int_eq(atomic_load(&live_blocks), 0);
		if (err == 0)
			break;
	}
	ck_assert_int_ge(n, 2);	/* the source and the socket, at least */
	ck_assert_int_eq(rouse_reactor_set_allocator(NULL), 0);
}
END_TEST

/* ---- bad input ----------------------------------------------------------- */

START_TEST(udp_bad_input)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_dgram *d = NULL, *u;
	struct rouse_dgram_rw rw;
	struct rouse_dgram_mmsg mm;
	struct mmsghdr msgs[1];
	struct rouse_addr in, un, none;
	char buf[4];
	int p[2], sv[2];

	memset(&none, 0, sizeof(none));
	ck_assert_int_eq(rouse_addr_parse(&in, "127.0.0.1:0"), 0);
	ck_assert_int_eq(rouse_addr_parse(&un, "/tmp/x"), 0);
	ck_assert_int_eq(rouse_udp_bind(NULL, &in, 0, &d), -EINVAL);
	ck_assert_int_eq(rouse_udp_bind(r, NULL, 0, &d), -EINVAL);
	ck_assert_int_eq(rouse_udp_bind(r, &in, 0, NULL), -EINVAL);
	ck_assert_int_eq(rouse_udp_bind(r, &un, 0, &d), -EINVAL);
	ck_assert_int_eq(rouse_udp_bind(r, &none, 0, &d), -EINVAL);
	ck_assert_int_eq(rouse_udp_bind(r, &in, 0x100, &d), -EINVAL);
	ck_assert_ptr_null(d);
	ck_assert_int_eq(rouse_dgram_open(NULL, 0, &d), -EINVAL);
	ck_assert_int_eq(rouse_dgram_open(r, -1, &d), -EBADF);
	ck_assert_int_eq(rouse_dgram_open(r, 0, NULL), -EINVAL);
	/* A pipe is no socket; a stream socket is no datagram socket. */
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(rouse_dgram_open(r, p[0], &d), -ENOTSOCK);
	test_pair_make(sv);
	ck_assert_int_eq(rouse_dgram_open(r, sv[0], &d), -EINVAL);
	ck_assert_ptr_null(d);
	ck_assert_int_eq(rouse_dgram_close(NULL), -EINVAL);
	ck_assert_int_eq(rouse_dgram_fd(NULL), -EINVAL);
	ck_assert_int_eq(rouse_dgram_connect(NULL, &in), -EINVAL);
	ck_assert_int_eq(rouse_dgram_local_addr(NULL, &in), -EINVAL);
	ck_assert_int_eq(rouse_dgram_peer_addr(NULL, &in), -EINVAL);

	u = udp_at(r, "127.0.0.1:0", 0);
	ck_assert_int_eq(rouse_dgram_connect(u, &none), -EINVAL);
	ck_assert_int_eq(rouse_dgram_local_addr(u, NULL), -EINVAL);
	ck_assert_int_eq(rouse_dgram_send_to_init(NULL, u, buf, 1, &in),
			 -EINVAL);
	ck_assert_int_eq(rouse_dgram_send_to_init(&rw, NULL, buf, 1, &in),
			 -EINVAL);
	ck_assert_int_eq(rouse_dgram_send_to_init(&rw, u, NULL, 1, &in),
			 -EINVAL);
	ck_assert_int_eq(rouse_dgram_send_to_init(&rw, u, buf, 1, &none),
			 -EINVAL);
	ck_assert_int_eq(rouse_dgram_recv_from_init(&rw, u, NULL, 1),
			 -EINVAL);
	ck_assert_int_eq(rouse_dgram_recv_from_init(&rw, u, buf,
						    (size_t)SSIZE_MAX + 1),
			 -EINVAL);
	ck_assert_int_eq(rouse_dgram_sendmmsg_init(&mm, u, msgs, 0), -EINVAL);
	ck_assert_int_eq(rouse_dgram_sendmmsg_init(&mm, u, NULL, 1), -EINVAL);
	ck_assert_int_eq(rouse_dgram_recvmmsg_init(NULL, u, msgs, 1),
			 -EINVAL);
	ck_assert_int_eq(rouse_dgram_recvmmsg_init(&mm, NULL, msgs, 1),
			 -EINVAL);
	/* The Unix-only futures refuse a UDP socket. */
	{
		struct rouse_unix_msg um;

		ck_assert_int_eq(rouse_unix_dgram_recvmsg_init(&um, u, buf, 1,
							       NULL, 0),
				 -EAFNOSUPPORT);
		ck_assert_int_eq(rouse_unix_set_passcred(rouse_dgram_fd(u),
							 1),
				 -EAFNOSUPPORT);
	}
	ck_assert_int_eq(rouse_dgram_close(u), 0);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
	rouse_reactor_free(r);
}
END_TEST

static Suite *udp_suite(void)
{
	Suite *s = suite_create("udp");
	TCase *tc;

	tc = tcase_create("udp");
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	tcase_add_loop_test(tc, udp_round_trip, 0, TEST_MODES);
	tcase_add_loop_test(tc, udp_ipv6, 0, TEST_MODES);
	tcase_add_loop_test(tc, udp_mmsg, 0, TEST_MODES);
	tcase_add_test(tc, dgram_adopt);
	tcase_add_test(tc, dgram_cancel);
	tcase_add_test(tc, dgram_fork);
	tcase_add_test(tc, udp_bind_enomem);
	tcase_add_test(tc, udp_bad_input);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(udp_suite());
}
