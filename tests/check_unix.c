// SPDX-License-Identifier: MIT
/*
 * tests/check_unix.c - Unix sockets: stream round trips over a path and
 * an abstract name, connect to a missing path and a stale one, a stale
 * path at listen, stream and datagram pairs, a datagram cut to the
 * buffer, datagram sockets bound to paths; descriptors passed with
 * SCM_RIGHTS (they work, they are close-on-exec, more than the receiver
 * takes are reported and closed, the most a message carries, along a
 * long stream send), credentials, a read(2) after a message that carried
 * descriptors, EMFILE at accept, a reactor inherited through fork(2),
 * allocation failure, and bad input.  No descriptor leaks anywhere.
 */
#include <limits.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <rouse/alloc.h>
#include <rouse/net.h>

#include "testutil.h"

/* ---- a temporary directory ----------------------------------------- */

/* A new directory under /tmp, in dir; path is dir + "/" + name. */
static void tmpdir_make(char *dir, size_t size)
{
	ck_assert_int_lt(snprintf(dir, size, "/tmp/rouse-unix-XXXXXX"),
			 (int)size);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void tmpdir_path(char *out, size_t size, const char *dir,
			const char *name)
{
	ck_assert_int_lt(snprintf(out, size, "%s/%s", dir, name), (int)size);
}

/* Remove the files named and then the directory. */
static void tmpdir_remove(const char *dir, const char *const *names, int n)
{
	char path[128];
	int i;

	for (i = 0; i < n; i++) {
		tmpdir_path(path, sizeof(path), dir, names[i]);
		unlink(path);
	}
	ck_assert_int_eq(rmdir(dir), 0);
}

/* ---- streams --------------------------------------------------------- */

/* A connected pair through a listener at addr: client and server. */
static void listen_pair(struct test_runner *ru, const struct rouse_addr *addr,
			struct rouse_stream **client,
			struct rouse_stream **server)
{
	struct rouse_unix_listener *l = NULL;
	struct rouse_unix_connect c;
	struct rouse_unix_accept a;
	struct rouse_addr bound;
	char want[ROUSE_ADDR_STRLEN], got[ROUSE_ADDR_STRLEN];

	ck_assert_int_eq(rouse_unix_listen(ru->r, addr, 0, &l), 0);
	ck_assert_int_ge(rouse_unix_listener_fd(l), 0);
	ck_assert_int_eq(rouse_unix_listener_addr(l, &bound), 0);
	ck_assert_int_gt(rouse_addr_format(addr, want, sizeof(want)), 0);
	ck_assert_int_gt(rouse_addr_format(&bound, got, sizeof(got)), 0);
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(rouse_unix_connect_init(&c, ru->r, addr), 0);
	ck_assert_int_eq(rouse_unix_accept_init(&a, l), 0);
	test_run_both(ru, &c.base, &a.base);
	ck_assert_int_eq(c.result, 0);
	ck_assert_int_eq(a.result, 0);
	ck_assert_ptr_nonnull(c.stream);
	ck_assert_ptr_nonnull(a.stream);
	/* The client never bound: its address is the family alone. */
	ck_assert_int_eq(a.peer.u.sa.sa_family, AF_UNIX);
	ck_assert_uint_eq(a.peer.len, sizeof(sa_family_t));
	rouse_future_drop(&c.base);
	rouse_future_drop(&a.base);
	ck_assert_int_eq(rouse_unix_listener_close(l), 0);
	*client = c.stream;
	*server = a.stream;
}

/* Exactly len bytes each way, then a half-close seen as the end. */
static void stream_exchange(struct test_runner *ru, struct rouse_stream *a,
			    struct rouse_stream *b)
{
	struct rouse_stream_rw w, r;
	char buf[16];

	ck_assert_int_eq(rouse_stream_write_all_init(&w, a, "request", 7), 0);
	ck_assert_int_eq(rouse_stream_read_exact_init(&r, b, buf, 7), 0);
	test_run_both(ru, &w.base, &r.base);
	ck_assert_int_eq(r.result, 7);
	ck_assert(memcmp(buf, "request", 7) == 0);
	rouse_future_drop(&w.base);
	rouse_future_drop(&r.base);
	ck_assert_int_eq(rouse_stream_write_all_init(&w, b, "reply", 5), 0);
	ck_assert_int_eq(rouse_stream_read_exact_init(&r, a, buf, 5), 0);
	test_run_both(ru, &w.base, &r.base);
	ck_assert_int_eq(r.result, 5);
	ck_assert(memcmp(buf, "reply", 5) == 0);
	rouse_future_drop(&w.base);
	rouse_future_drop(&r.base);
	ck_assert_int_eq(rouse_stream_shutdown(a, SHUT_WR), 0);
	ck_assert_int_eq(rouse_stream_read_init(&r, b, buf, sizeof(buf)), 0);
	ck_assert_int_eq(test_runner_block_on(ru, &r.base), 0);
	ck_assert_int_eq(r.result, 0);
	rouse_future_drop(&r.base);
}

/*
 * A listener on a path: a round trip; the path stays after the close, and
 * a new listen on it fails with EADDRINUSE until it is removed.
 */
START_TEST(unix_stream_path)
{
	struct test_runner ru;
	struct rouse_stream *c, *s;
	struct rouse_unix_listener *l = NULL;
	struct rouse_addr addr;
	char dir[64], path[128];
	static const char *const names[] = { "sock" };
	struct stat st;
	int fds0;

	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	tmpdir_make(dir, sizeof(dir));
	tmpdir_path(path, sizeof(path), dir, "sock");
	ck_assert_int_eq(rouse_addr_parse(&addr, path), 0);
	listen_pair(&ru, &addr, &c, &s);
	stream_exchange(&ru, c, s);
	ck_assert_int_eq(rouse_stream_close(c), 0);
	ck_assert_int_eq(rouse_stream_close(s), 0);
	/* Nothing was unlinked: the stale socket file is in the way. */
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(rouse_unix_listen(ru.r, &addr, 0, &l), -EADDRINUSE);
	ck_assert_ptr_null(l);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(rouse_unix_listen(ru.r, &addr, 4, &l), 0);
	ck_assert_int_eq(rouse_unix_listener_close(l), 0);
	tmpdir_remove(dir, names, 1);
	ck_assert_int_eq(test_count_fds(), fds0);
	test_runner_free(&ru);
}
END_TEST

/* An abstract name: a round trip; nobody listens once it is closed. */
START_TEST(unix_stream_abstract)
{
	struct test_runner ru;
	struct rouse_stream *c, *s;
	struct rouse_unix_connect f;
	struct rouse_addr addr;
	char name[64];
	int fds0;

	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	snprintf(name, sizeof(name), "@rouse-check-unix-%d-%d", (int)getpid(),
		 _i);
	ck_assert_int_eq(rouse_addr_parse(&addr, name), 0);
	listen_pair(&ru, &addr, &c, &s);
	stream_exchange(&ru, c, s);
	ck_assert_int_eq(rouse_stream_close(c), 0);
	ck_assert_int_eq(rouse_stream_close(s), 0);
	ck_assert_int_eq(rouse_unix_connect_init(&f, ru.r, &addr), 0);
	ck_assert_int_eq(test_runner_block_on(&ru, &f.base), 0);
	ck_assert_int_eq(f.result, -ECONNREFUSED);
	ck_assert_ptr_null(f.stream);
	rouse_future_drop(&f.base);
	ck_assert_int_eq(test_count_fds(), fds0);
	test_runner_free(&ru);
}
END_TEST

/*
 * connect: a path that does not exist is -ENOENT; a socket file nobody
 * listens on (a listener that died) is -ECONNREFUSED.  Nothing leaks.
 */
START_TEST(unix_connect_missing)
{
	struct test_runner ru;
	struct rouse_unix_connect f;
	struct rouse_addr addr;
	char dir[64], path[128];
	static const char *const names[] = { "stale" };
	int fds0, fd;

	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	tmpdir_make(dir, sizeof(dir));
	tmpdir_path(path, sizeof(path), dir, "missing");
	ck_assert_int_eq(rouse_addr_parse(&addr, path), 0);
	ck_assert_int_eq(rouse_unix_connect_init(&f, ru.r, &addr), 0);
	ck_assert_int_eq(test_runner_block_on(&ru, &f.base), 0);
	ck_assert_int_eq(f.result, -ENOENT);
	ck_assert_ptr_null(f.stream);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);

	tmpdir_path(path, sizeof(path), dir, "stale");
	ck_assert_int_eq(rouse_addr_parse(&addr, path), 0);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(fd, &addr.u.sa, addr.len), 0);
	close(fd);
	ck_assert_int_eq(rouse_unix_connect_init(&f, ru.r, &addr), 0);
	ck_assert_int_eq(test_runner_block_on(&ru, &f.base), 0);
	ck_assert_int_eq(f.result, -ECONNREFUSED);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	/* Dropped before its first poll: nothing left either. */
	ck_assert_int_eq(rouse_unix_connect_init(&f, ru.r, &addr), 0);
	ck_assert_int_eq(rouse_future_drop(&f.base), 0);
	tmpdir_remove(dir, names, 1);
	ck_assert_int_eq(test_count_fds(), fds0);
	test_runner_free(&ru);
}
END_TEST

START_TEST(unix_stream_pair)
{
	struct test_runner ru;
	struct rouse_stream *p[2];
	struct rouse_addr a;
	int fds0;

	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	ck_assert_int_eq(rouse_unix_stream_pair(ru.r, p), 0);
	ck_assert(fcntl(rouse_stream_fd(p[0]), F_GETFD) & FD_CLOEXEC);
	ck_assert(fcntl(rouse_stream_fd(p[1]), F_GETFL) & O_NONBLOCK);
	ck_assert_int_eq(rouse_stream_local_addr(p[0], &a), 0);
	ck_assert_int_eq(a.u.sa.sa_family, AF_UNIX);
	stream_exchange(&ru, p[0], p[1]);
	ck_assert_int_eq(rouse_stream_close(p[0]), 0);
	ck_assert_int_eq(rouse_stream_close(p[1]), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
	test_runner_free(&ru);
}
END_TEST

/* ---- datagrams ------------------------------------------------------- */

static ssize_t dgram_recv(struct test_runner *ru, struct rouse_dgram *d,
			  void *buf, size_t len, struct rouse_addr *from,
			  int *truncated)
{
	struct rouse_dgram_rw r;
	ssize_t n;

	ck_assert_int_eq(rouse_dgram_recv_from_init(&r, d, buf, len), 0);
	ck_assert_int_eq(test_runner_block_on(ru, &r.base), 0);
	n = r.result;
	if (from != NULL)
		*from = r.addr;
	if (truncated != NULL)
		*truncated = r.truncated;
	rouse_future_drop(&r.base);
	return n;
}

static void dgram_send(struct test_runner *ru, struct rouse_dgram *d,
		       const void *buf, size_t len,
		       const struct rouse_addr *to)
{
	struct rouse_dgram_rw s;

	ck_assert_int_eq(rouse_dgram_send_to_init(&s, d, buf, len, to), 0);
	ck_assert_int_eq(test_runner_block_on(ru, &s.base), 0);
	ck_assert_int_eq(s.result, (ssize_t)len);
	rouse_future_drop(&s.base);
}

/*
 * A datagram pair: a receive that waits; a datagram longer than the
 * buffer is cut and reported, the next one is whole; the peer of a pair
 * has no address.
 */
START_TEST(unix_dgram_pair)
{
	struct test_runner ru;
	struct rouse_dgram *p[2];
	struct rouse_dgram_rw r, s;
	struct rouse_addr from;
	char buf[8], big[100];
	int trunc, fds0;

	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	ck_assert_int_eq(rouse_unix_dgram_pair(ru.r, p), 0);
	ck_assert_int_eq(rouse_dgram_recv_from_init(&r, p[1], buf,
						    sizeof(buf)), 0);
	ck_assert_int_eq(test_poll_noop(&r.base), ROUSE_PENDING);
	memset(big, 'q', sizeof(big));
	ck_assert_int_eq(rouse_dgram_send_to_init(&s, p[0], big, sizeof(big),
						  NULL), 0);
	test_run_both(&ru, &s.base, &r.base);
	ck_assert_int_eq(s.result, (ssize_t)sizeof(big));
	ck_assert_int_eq(r.result, (ssize_t)sizeof(buf));
	ck_assert_int_eq(r.truncated, 1);
	ck_assert_uint_eq(r.addr.len, 0);
	rouse_future_drop(&s.base);
	rouse_future_drop(&r.base);
	/* The rest of the cut datagram is gone: the next one is whole. */
	dgram_send(&ru, p[0], "next", 4, NULL);
	ck_assert_int_eq(dgram_recv(&ru, p[1], buf, sizeof(buf), &from,
				    &trunc), 4);
	ck_assert_int_eq(trunc, 0);
	ck_assert(memcmp(buf, "next", 4) == 0);
	/* And the other way. */
	dgram_send(&ru, p[1], "", 0, NULL);
	ck_assert_int_eq(dgram_recv(&ru, p[0], buf, sizeof(buf), NULL, &trunc),
			 0);
	ck_assert_int_eq(trunc, 0);
	ck_assert_int_eq(rouse_dgram_close(p[0]), 0);
	ck_assert_int_eq(rouse_dgram_close(p[1]), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
	test_runner_free(&ru);
}
END_TEST

/*
 * Datagram sockets on paths: the receiver sees the sender's path, and
 * answers it there; an unbound sender has no address; connect works.
 */
START_TEST(unix_dgram_paths)
{
	struct test_runner ru;
	struct rouse_dgram *a, *b, *anon;
	struct rouse_addr aa, ba, from, local;
	char dir[64], path[128], text[ROUSE_ADDR_STRLEN], buf[16];
	static const char *const names[] = { "a", "b" };
	int fds0;

	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	tmpdir_make(dir, sizeof(dir));
	tmpdir_path(path, sizeof(path), dir, "a");
	ck_assert_int_eq(rouse_addr_parse(&aa, path), 0);
	tmpdir_path(path, sizeof(path), dir, "b");
	ck_assert_int_eq(rouse_addr_parse(&ba, path), 0);
	ck_assert_int_eq(rouse_unix_dgram_bind(ru.r, &aa, &a), 0);
	ck_assert_int_eq(rouse_unix_dgram_bind(ru.r, &ba, &b), 0);
	ck_assert_int_eq(rouse_unix_dgram_bind(ru.r, NULL, &anon), 0);
	ck_assert_int_eq(rouse_dgram_local_addr(a, &local), 0);
	ck_assert_int_gt(rouse_addr_format(&local, text, sizeof(text)), 0);
	tmpdir_path(path, sizeof(path), dir, "a");
	ck_assert_str_eq(text, path);

	dgram_send(&ru, a, "to b", 4, &ba);
	ck_assert_int_eq(dgram_recv(&ru, b, buf, sizeof(buf), &from, NULL), 4);
	ck_assert_int_gt(rouse_addr_format(&from, text, sizeof(text)), 0);
	ck_assert_str_eq(text, path);
	dgram_send(&ru, b, "back", 4, &from);
	ck_assert_int_eq(dgram_recv(&ru, a, buf, sizeof(buf), NULL, NULL), 4);
	ck_assert(memcmp(buf, "back", 4) == 0);

	dgram_send(&ru, anon, "anon", 4, &ba);
	ck_assert_int_eq(dgram_recv(&ru, b, buf, sizeof(buf), &from, NULL), 4);
	ck_assert_uint_eq(from.len, 0);

	ck_assert_int_eq(rouse_dgram_connect(anon, &aa), 0);
	dgram_send(&ru, anon, "conn", 4, NULL);
	ck_assert_int_eq(dgram_recv(&ru, a, buf, sizeof(buf), NULL, NULL), 4);
	ck_assert(memcmp(buf, "conn", 4) == 0);

	ck_assert_int_eq(rouse_dgram_close(a), 0);
	ck_assert_int_eq(rouse_dgram_close(b), 0);
	ck_assert_int_eq(rouse_dgram_close(anon), 0);
	tmpdir_remove(dir, names, 2);
	ck_assert_int_eq(test_count_fds(), fds0);
	test_runner_free(&ru);
}
END_TEST

/* ---- descriptors --------------------------------------------------- */

/*
 * The two ends of a Unix socket, stream or datagram, as the message
 * futures take them.
 */
struct ends {
	bool dgram;
	struct rouse_stream *s[2];
	struct rouse_dgram *d[2];
};

static void ends_make(struct test_runner *ru, struct ends *e, bool dgram)
{
	e->dgram = dgram;
	if (dgram)
		ck_assert_int_eq(rouse_unix_dgram_pair(ru->r, e->d), 0);
	else
		ck_assert_int_eq(rouse_unix_stream_pair(ru->r, e->s), 0);
}

static int ends_fd(struct ends *e, int i)
{
	return e->dgram ? rouse_dgram_fd(e->d[i]) : rouse_stream_fd(e->s[i]);
}

static void ends_close(struct ends *e)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (e->dgram)
			ck_assert_int_eq(rouse_dgram_close(e->d[i]), 0);
		else
			ck_assert_int_eq(rouse_stream_close(e->s[i]), 0);
	}
}

static void msg_send_init(struct rouse_unix_msg *f, struct ends *e, int from,
			  const void *buf, size_t len, const int *fds,
			  int nfds, int cred)
{
	if (e->dgram)
		ck_assert_int_eq(rouse_unix_dgram_sendmsg_init(f, e->d[from],
							       NULL, buf, len,
							       fds, nfds,
							       cred), 0);
	else
		ck_assert_int_eq(rouse_unix_sendmsg_init(f, e->s[from], buf,
							 len, fds, nfds, cred),
				 0);
}

static void msg_recv_init(struct rouse_unix_msg *f, struct ends *e, int at,
			  void *buf, size_t len, int *fds, int max)
{
	if (e->dgram)
		ck_assert_int_eq(rouse_unix_dgram_recvmsg_init(f, e->d[at],
							       buf, len, fds,
							       max), 0);
	else
		ck_assert_int_eq(rouse_unix_recvmsg_init(f, e->s[at], buf, len,
							 fds, max), 0);
}

/*
 * Send (from end 0) len bytes with fds and receive them (at end 1) into
 * *rf, which the caller reads and drops.
 */
static void msg_exchange(struct test_runner *ru, struct ends *e,
			 const void *buf, size_t len, const int *fds,
			 int nfds, int cred, struct rouse_unix_msg *rf,
			 void *in, size_t inlen, int *got, int max)
{
	struct rouse_unix_msg sf;

	msg_recv_init(rf, e, 1, in, inlen, got, max);
	ck_assert_int_eq(test_poll_noop(&rf->base), ROUSE_PENDING);
	msg_send_init(&sf, e, 0, buf, len, fds, nfds, cred);
	test_run_both(ru, &sf.base, &rf->base);
	ck_assert_int_eq(sf.result, (ssize_t)len);
	ck_assert_uint_eq(sf.done, len);
	rouse_future_drop(&sf.base);
}

/*
 * Three descriptors (the write ends of three pipes) cross the socket;
 * the sender closes its copies; the received ones are close-on-exec and
 * work, and once closed the pipes see their end: no copy is left.
 */
static void pass_three(struct test_runner *ru, bool dgram)
{
	struct ends e;
	struct rouse_unix_msg rf;
	int pipes[3][2], send[3], got[4] = { -1, -1, -1, -1 }, i, fds0;
	char buf[8], c;

	fds0 = test_count_fds_warm();
	ends_make(ru, &e, dgram);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(pipe2(pipes[i], O_CLOEXEC), 0);
		send[i] = pipes[i][1];
	}
	msg_exchange(ru, &e, "fds", 3, send, 3, 0, &rf, buf, sizeof(buf),
		     got, 4);
	ck_assert_int_eq(rf.result, 3);
	ck_assert(memcmp(buf, "fds", 3) == 0);
	ck_assert_int_eq(rf.nfds, 3);
	ck_assert_int_eq(rf.ctrunc, 0);
	ck_assert_int_eq(rf.truncated, 0);
	ck_assert_int_eq(got[3], -1);
	rouse_future_drop(&rf.base);
	for (i = 0; i < 3; i++) {
		close(pipes[i][1]);
		ck_assert_int_ge(got[i], 0);
		ck_assert_int_eq(fcntl(got[i], F_GETFD), FD_CLOEXEC);
		c = (char)('0' + i);
		ck_assert_int_eq(write(got[i], &c, 1), 1);
		ck_assert_int_eq(read(pipes[i][0], buf, sizeof(buf)), 1);
		ck_assert_int_eq(buf[0], '0' + i);
		close(got[i]);
		ck_assert_int_eq(read(pipes[i][0], buf, sizeof(buf)), 0);
		close(pipes[i][0]);
	}
	ends_close(&e);
	ck_assert_int_eq(test_count_fds(), fds0);
}

START_TEST(scm_rights_stream)
{
	struct test_runner ru;

	test_runner_init(&ru, (enum test_mode)_i);
	pass_three(&ru, false);
	test_runner_free(&ru);
}
END_TEST

START_TEST(scm_rights_dgram)
{
	struct test_runner ru;

	test_runner_init(&ru, (enum test_mode)_i);
	pass_three(&ru, true);
	test_runner_free(&ru);
}
END_TEST

/*
 * More descriptors than the receiver takes: it gets max of them, ctrunc
 * is set, and every other one was closed -- the set of open descriptors
 * grows by exactly the ones returned.  With credentials asked for (their
 * room in the buffer used) and without (the room fits a few descriptors
 * more, which the library closes), on a stream and on datagrams.
 */
static void overflow(struct test_runner *ru, bool dgram, bool passcred,
		     int nsend, int max)
{
	static struct test_fdset before, after;
	struct ends e;
	struct rouse_unix_msg rf;
	int fds[ROUSE_UNIX_MAX_FDS], got[ROUSE_UNIX_MAX_FDS], fresh[8], i, n,
		base;
	char buf[8];

	ends_make(ru, &e, dgram);
	if (passcred)
		ck_assert_int_eq(rouse_unix_set_passcred(ends_fd(&e, 1), 1),
				 0);
	base = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(base, 0);
	for (i = 0; i < nsend; i++)
		fds[i] = base;	/* the same file many times: fine */
	test_fdset_take(&before);
	msg_exchange(ru, &e, "x", 1, fds, nsend, 0, &rf, buf, sizeof(buf),
		     got, max);
	test_fdset_take(&after);
	ck_assert_int_eq(rf.result, 1);
	ck_assert_int_eq(rf.nfds, max < nsend ? max : nsend);
	ck_assert_int_eq(rf.ctrunc, nsend > max);
	ck_assert_int_eq(rf.has_cred, passcred);
	n = test_fdset_new(&before, &after, fresh, 8);
	ck_assert_int_eq(n, rf.nfds);
	for (i = 0; i < rf.nfds; i++) {
		ck_assert_int_eq(fcntl(got[i], F_GETFD), FD_CLOEXEC);
		close(got[i]);
	}
	rouse_future_drop(&rf.base);
	close(base);
	ends_close(&e);
}

START_TEST(scm_rights_ctrunc)
{
	struct test_runner ru;
	int fds0;

	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	overflow(&ru, false, false, 5, 2);
	overflow(&ru, false, true, 5, 2);
	overflow(&ru, true, false, 5, 2);
	overflow(&ru, true, true, 5, 2);
	overflow(&ru, false, false, 3, 0);
	overflow(&ru, true, true, 40, 1);
	/* The most one message carries, all taken. */
	overflow(&ru, true, false, ROUSE_UNIX_MAX_FDS, ROUSE_UNIX_MAX_FDS);
	overflow(&ru, false, true, ROUSE_UNIX_MAX_FDS, ROUSE_UNIX_MAX_FDS);
	ck_assert_int_eq(test_count_fds(), fds0);
	test_runner_free(&ru);
}
END_TEST

/*
 * Credentials: with SO_PASSCRED the receiver learns the sender's pid, uid
 * and gid, whether the sender attached them itself or the kernel did.
 */
START_TEST(scm_credentials)
{
	struct test_runner ru;
	struct rouse_unix_msg rf;
	struct ends e;
	char buf[8];
	int k, got[1];

	test_runner_init(&ru, (enum test_mode)_i);
	for (k = 0; k < 4; k++) {
		bool dgram = k & 1, explicit_cred = k & 2;

		ends_make(&ru, &e, dgram);
		ck_assert_int_eq(rouse_unix_set_passcred(ends_fd(&e, 1), 1),
				 0);
		msg_exchange(&ru, &e, "who", 3, NULL, 0, explicit_cred, &rf,
			     buf, sizeof(buf), got, 1);
		ck_assert_int_eq(rf.result, 3);
		ck_assert_int_eq(rf.nfds, 0);
		ck_assert_int_eq(rf.ctrunc, 0);
		ck_assert_int_eq(rf.has_cred, 1);
		ck_assert_int_eq(rf.cred.pid, getpid());
		ck_assert_int_eq(rf.cred.uid, geteuid());
		ck_assert_int_eq(rf.cred.gid, getegid());
		rouse_future_drop(&rf.base);
		/* Without SO_PASSCRED, none. */
		ck_assert_int_eq(rouse_unix_set_passcred(ends_fd(&e, 1), 0),
				 0);
		msg_exchange(&ru, &e, "who", 3, NULL, 0, explicit_cred, &rf,
			     buf, sizeof(buf), got, 1);
		ck_assert_int_eq(rf.has_cred, 0);
		rouse_future_drop(&rf.base);
		ends_close(&e);
	}
	test_runner_free(&ru);
}
END_TEST

#define LONG_LEN (4 * 1024 * 1024)

/*
 * Receives len bytes on s with one recvmsg future after another, closing
 * and counting the descriptors that come.
 */
struct drain {
	struct rouse_future base;
	struct rouse_unix_msg rf;
	struct rouse_stream *s;
	unsigned char *in;
	size_t done, len;
	int fds, ctrunc;
	bool active;
};

static enum rouse_poll drain_poll(struct rouse_future *f,
				  struct rouse_context *cx)
{
	struct drain *d = (struct drain *)f;
	int got[4], i;

	for (;;) {
		if (!d->active) {
			if (d->done == d->len)
				return ROUSE_READY;
			ck_assert_int_eq(rouse_unix_recvmsg_init(
						 &d->rf, d->s, d->in + d->done,
						 d->len - d->done, got, 4), 0);
			d->active = true;
		}
		if (rouse_future_poll(&d->rf.base, cx) == ROUSE_PENDING)
			return ROUSE_PENDING;
		ck_assert_int_gt(d->rf.result, 0);
		d->done += (size_t)d->rf.result;
		d->ctrunc |= d->rf.ctrunc;
		for (i = 0; i < d->rf.nfds; i++)
			close(got[i]);
		d->fds += d->rf.nfds;
		rouse_future_drop(&d->rf.base);
		d->active = false;
	}
}

static const struct rouse_future_vtable drain_vt = { drain_poll, NULL };

/*
 * A stream send longer than the socket holds, with descriptors: it takes
 * many sendmsg(2) calls, and the descriptors go with the first one only.
 * The receiver reads it all with recvmsg and gets them exactly once.
 */
START_TEST(scm_rights_long_send)
{
	struct test_runner ru;
	struct rouse_stream *p[2];
	struct rouse_unix_msg sf;
	struct drain d;
	unsigned char *out = malloc(LONG_LEN), *in = malloc(LONG_LEN);
	int pfd[2], fds0;
	size_t k;

	ck_assert(out != NULL && in != NULL);
	for (k = 0; k < LONG_LEN; k++)
		out[k] = (unsigned char)(k * 7 + (k >> 11));
	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	ck_assert_int_eq(rouse_unix_stream_pair(ru.r, p), 0);
	ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
	ck_assert_int_eq(rouse_unix_sendmsg_init(&sf, p[0], out, LONG_LEN,
						 pfd, 2, 0), 0);
	ck_assert_int_eq(test_poll_noop(&sf.base), ROUSE_PENDING);
	ck_assert_uint_gt(sf.done, 0);
	ck_assert_uint_lt(sf.done, LONG_LEN);
	memset(&d, 0, sizeof(d));
	d.base.vtable = &drain_vt;
	d.s = p[1];
	d.in = in;
	d.len = LONG_LEN;
	test_run_both(&ru, &sf.base, &d.base);
	ck_assert_int_eq(sf.result, LONG_LEN);
	ck_assert_uint_eq(sf.done, LONG_LEN);
	ck_assert(memcmp(in, out, LONG_LEN) == 0);
	ck_assert_int_eq(d.fds, 2);
	ck_assert_int_eq(d.ctrunc, 0);
	rouse_future_drop(&sf.base);
	close(pfd[0]);
	close(pfd[1]);
	ck_assert_int_eq(rouse_stream_close(p[0]), 0);
	ck_assert_int_eq(rouse_stream_close(p[1]), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
	test_runner_free(&ru);
	free(out);
	free(in);
}
END_TEST

/*
 * A read(2) of a Unix stream stops after a message that carried
 * descriptors, with more bytes queued behind it.  That short read must
 * not be taken for proof that the socket is drained, or the read of the
 * rest waits for ever.
 */
START_TEST(read_after_fds)
{
	struct test_runner ru;
	struct rouse_stream *p[2];
	struct rouse_unix_msg sf;
	struct rouse_stream_rw r;
	char buf[8];
	int fds0, one[1];

	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	ck_assert_int_eq(rouse_unix_stream_pair(ru.r, p), 0);
	/* Waiting first, so that the bytes come as an event. */
	ck_assert_int_eq(rouse_stream_read_exact_init(&r, p[1], buf, 6), 0);
	ck_assert_int_eq(test_poll_noop(&r.base), ROUSE_PENDING);
	one[0] = rouse_stream_fd(p[0]);
	ck_assert_int_eq(rouse_unix_sendmsg_init(&sf, p[0], "abc", 3, one, 1,
						 0), 0);
	ck_assert_int_eq(test_poll_noop(&sf.base), ROUSE_READY);
	ck_assert_int_eq(sf.result, 3);
	rouse_future_drop(&sf.base);
	ck_assert_int_eq(write(rouse_stream_fd(p[0]), "def", 3), 3);
	/* Both in one event (a threaded reactor turns by itself). */
	if (ru.mode != TEST_MODE_THREADED)
		ck_assert_int_ge(rouse_reactor_turn(ru.r, 0), 0);
	ck_assert_int_eq(test_runner_block_on(&ru, &r.base), 0);
	ck_assert_int_eq(r.result, 6);
	ck_assert(memcmp(buf, "abcdef", 6) == 0);
	rouse_future_drop(&r.base);
	ck_assert_int_eq(rouse_stream_close(p[0]), 0);
	ck_assert_int_eq(rouse_stream_close(p[1]), 0);
	/* The descriptor the read(2) passed over was closed by the kernel. */
	ck_assert_int_eq(test_count_fds(), fds0);
	test_runner_free(&ru);
}
END_TEST

/* A receive dropped while it waits gives its waker back; nothing leaks. */
START_TEST(msg_cancel)
{
	struct test_fixture fx;
	struct rouse_stream *p[2];
	struct rouse_unix_msg rf;
	char buf[4];
	int got[2], fds0;

	test_fixture_init(&fx);
	fds0 = test_count_fds_warm();
	ck_assert_int_eq(rouse_unix_stream_pair(fx.r, p), 0);
	ck_assert_int_eq(rouse_unix_recvmsg_init(&rf, p[1], buf, sizeof(buf),
						 got, 2), 0);
	ck_assert_int_eq(test_poll_with(&rf.base, &fx.w), ROUSE_PENDING);
	ck_assert_int_eq(atomic_load(&fx.cw.live), 2);
	ck_assert_int_eq(rouse_future_drop(&rf.base), 0);
	ck_assert_int_eq(atomic_load(&fx.cw.live), 1);
	ck_assert_int_eq(rouse_stream_close(p[0]), 0);
	ck_assert_int_eq(rouse_stream_close(p[1]), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
	test_fixture_free(&fx);
}
END_TEST

/* ---- EMFILE at accept ----------------------------------------------- */

/* As check_net's TCP case: report once, shed, work again. */
static int emfile_child(const char *name)
{
	struct rouse_reactor *r;
	struct rouse_parker pk;
	struct rouse_unix_listener *l;
	struct rouse_unix_accept a;
	struct rouse_addr addr;
	int fds[256], n = 0, c1, c2, fd;
	char byte;

	if (rouse_reactor_new(&r, 0) || rouse_reactor_parker(r, &pk) ||
	    rouse_addr_parse(&addr, name) ||
	    rouse_unix_listen(r, &addr, 0, &l))
		return 2;
	c1 = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	c2 = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c1 < 0 || c2 < 0 || connect(c1, &addr.u.sa, addr.len) != 0)
		return 3;
	while ((fd = dup(0)) >= 0)
		if (n < 256)
			fds[n++] = fd;
	rouse_unix_accept_init(&a, l);
	if (rouse_block_on_with(&a.base, &pk) != 0 || a.result != -EMFILE)
		return 4;
	rouse_future_drop(&a.base);
	if (recv(c1, &byte, 1, 0) > 0)
		return 5;
	while (n > 0)
		close(fds[--n]);
	if (connect(c2, &addr.u.sa, addr.len) != 0)
		return 6;
	rouse_unix_accept_init(&a, l);
	if (rouse_block_on_with(&a.base, &pk) != 0 || a.result != 0)
		return 7;
	rouse_stream_close(a.stream);
	rouse_future_drop(&a.base);
	rouse_unix_listener_close(l);
	rouse_reactor_free(r);
	return 0;
}

START_TEST(unix_accept_emfile)
{
	struct rlimit lim;
	char name[64];
	int status;
	pid_t pid;

	snprintf(name, sizeof(name), "@rouse-check-emfile-%d", (int)getpid());
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
			_exit(8);
		lim.rlim_cur = 128;
		if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
			_exit(9);
		_exit(emfile_child(name));
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* ---- fork ------------------------------------------------------------ */

static int fork_child(struct rouse_reactor *r, struct rouse_stream *s)
{
	struct rouse_stream *p[2];
	struct rouse_dgram *d[2];
	struct rouse_unix_msg f;
	struct rouse_unix_connect c;
	struct rouse_addr a;
	char buf[4];
	int got[1];

	if (rouse_unix_stream_pair(r, p) != -ECHILD ||
	    rouse_unix_dgram_pair(r, d) != -ECHILD ||
	    rouse_unix_dgram_bind(r, NULL, d) != -ECHILD)
		return 2;
	if (rouse_addr_parse(&a, "@rouse-nobody") != 0 ||
	    rouse_unix_connect_init(&c, r, &a) != -ECHILD)
		return 3;
	/* Nothing queued: the receive would wait, which is refused. */
	if (rouse_unix_recvmsg_init(&f, s, buf, sizeof(buf), got, 1) != 0 ||
	    test_poll_noop(&f.base) != ROUSE_READY || f.result != -ECHILD)
		return 4;
	rouse_future_drop(&f.base);
	if (rouse_stream_close(s) != -ECHILD)
		return 5;
	if (rouse_reactor_fork(r) != 0 || rouse_unix_stream_pair(r, p) != 0)
		return 6;
	rouse_stream_close(p[0]);
	rouse_stream_close(p[1]);
	rouse_reactor_free(r);
	return 0;
}

START_TEST(unix_fork)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_stream *p[2];
	int status;
	pid_t pid;

	ck_assert_int_eq(rouse_unix_stream_pair(r, p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(fork_child(r, p[1]));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_eq(rouse_stream_close(p[0]), 0);
	ck_assert_int_eq(rouse_stream_close(p[1]), 0);
	rouse_reactor_free(r);
}
END_TEST

/* ---- allocation failure ------------------------------------------------ */

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

/* Make one kind of object (_i of the loop), or fail; 0 or -errno. */
static int make_one(struct rouse_reactor *r, int kind, const char *name)
{
	struct rouse_stream *s[2] = { NULL, NULL };
	struct rouse_dgram *d[2] = { NULL, NULL };
	struct rouse_unix_listener *l = NULL;
	struct rouse_addr a;
	int err;

	ck_assert_int_eq(rouse_addr_parse(&a, name), 0);
	switch (kind) {
	case 0:
		err = rouse_unix_stream_pair(r, s);
		break;
	case 1:
		err = rouse_unix_dgram_pair(r, d);
		break;
	case 2:
		err = rouse_unix_dgram_bind(r, &a, d);
		break;
	default:
		err = rouse_unix_listen(r, &a, 0, &l);
		break;
	}
	if (err < 0) {
		ck_assert(s[0] == NULL && d[0] == NULL && l == NULL);
		return err;
	}
	if (s[0] != NULL) {
		ck_assert_int_eq(rouse_stream_close(s[0]), 0);
		ck_assert_int_eq(rouse_stream_close(s[1]), 0);
	}
	if (d[0] != NULL)
		ck_assert_int_eq(rouse_dgram_close(d[0]), 0);
	if (d[1] != NULL)
		ck_assert_int_eq(rouse_dgram_close(d[1]), 0);
	if (l != NULL)
		ck_assert_int_eq(rouse_unix_listener_close(l), 0);
	return 0;
}

/*
 * Each allocation of each maker fails in turn: -ENOMEM, and neither a
 * descriptor nor a block is left; then it succeeds.
 */
START_TEST(unix_enomem)
{
	struct rouse_reactor *r;
	char name[64];
	long n;
	int err, fds0;

	atomic_store(&live_blocks, 0);
	atomic_store(&fail_at, -1);
	ck_assert_int_eq(rouse_reactor_set_allocator(&failing), 0);
	for (n = 0;; n++) {
		ck_assert_int_lt(n, 32);
		snprintf(name, sizeof(name), "@rouse-check-enomem-%d-%ld",
			 (int)getpid(), n);
		r = test_reactor_make();
		fds0 = test_count_fds();
		atomic_store(&nalloc, 0);
		atomic_store(&fail_at, n);
		err = make_one(r, _i, name);
		atomic_store(&fail_at, -1);
		if (err < 0)
			ck_assert_int_eq(err, -ENOMEM);
		ck_assert_int_eq(test_count_fds(), fds0);
		rouse_reactor_free(r);
		ck_assert_int_eq(atomic_load(&live_blocks), 0);
		if (err == 0)
			break;
	}
	ck_assert_int_ge(n, 2);
	ck_assert_int_eq(rouse_reactor_set_allocator(NULL), 0);
}
END_TEST

/* ---- bad input ----------------------------------------------------- */

START_TEST(unix_bad_input)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_unix_listener *l = NULL;
	struct rouse_unix_connect c;
	struct rouse_unix_accept a;
	struct rouse_unix_msg m;
	struct rouse_stream *p[2], *pipe_s, *s_null = NULL;
	struct rouse_dgram *d[2], *dn = NULL;
	struct rouse_addr in, un, fam, none;
	int many[ROUSE_UNIX_MAX_FDS + 1], got[1], pp[2], i;
	char buf[4];

	memset(&none, 0, sizeof(none));
	memset(&fam, 0, sizeof(fam));
	fam.u.sa.sa_family = AF_UNIX;
	fam.len = sizeof(sa_family_t);
	ck_assert_int_eq(rouse_addr_parse(&in, "127.0.0.1:0"), 0);
	ck_assert_int_eq(rouse_addr_parse(&un, "@rouse-bad-input"), 0);
	for (i = 0; i <= ROUSE_UNIX_MAX_FDS; i++)
		many[i] = 0;

	ck_assert_int_eq(rouse_unix_listen(NULL, &un, 0, &l), -EINVAL);
	ck_assert_int_eq(rouse_unix_listen(r, NULL, 0, &l), -EINVAL);
	ck_assert_int_eq(rouse_unix_listen(r, &in, 0, &l), -EINVAL);
	ck_assert_int_eq(rouse_unix_listen(r, &none, 0, &l), -EINVAL);
	ck_assert_int_eq(rouse_unix_listen(r, &un, 0, NULL), -EINVAL);
	ck_assert_ptr_null(l);
	ck_assert_int_eq(rouse_unix_listener_close(NULL), -EINVAL);
	ck_assert_int_eq(rouse_unix_listener_fd(NULL), -EINVAL);
	ck_assert_int_eq(rouse_unix_listener_addr(NULL, &un), -EINVAL);
	ck_assert_int_eq(rouse_unix_accept_init(&a, NULL), -EINVAL);
	ck_assert_int_eq(rouse_unix_connect_init(&c, r, &in), -EINVAL);
	ck_assert_int_eq(rouse_unix_connect_init(&c, r, &fam), -EINVAL);
	ck_assert_int_eq(rouse_unix_connect_init(&c, NULL, &un), -EINVAL);
	ck_assert_int_eq(rouse_unix_connect_init(NULL, r, &un), -EINVAL);
	ck_assert_int_eq(rouse_unix_stream_pair(NULL, p), -EINVAL);
	ck_assert_int_eq(rouse_unix_stream_pair(r, NULL), -EINVAL);
	ck_assert_int_eq(rouse_unix_dgram_pair(NULL, d), -EINVAL);
	ck_assert_int_eq(rouse_unix_dgram_bind(r, &in, &dn), -EINVAL);
	ck_assert_int_eq(rouse_unix_dgram_bind(r, NULL, NULL), -EINVAL);
	ck_assert_ptr_null(dn);
	ck_assert_int_eq(rouse_unix_set_passcred(-1, 1), -EBADF);

	ck_assert_int_eq(rouse_unix_stream_pair(r, p), 0);
	ck_assert_int_eq(rouse_unix_dgram_pair(r, d), 0);
	ck_assert_int_eq(rouse_unix_sendmsg_init(NULL, p[0], buf, 1, NULL, 0,
						 0), -EINVAL);
	ck_assert_int_eq(rouse_unix_sendmsg_init(&m, s_null, buf, 1, NULL, 0,
						 0), -EINVAL);
	ck_assert_int_eq(rouse_unix_sendmsg_init(&m, p[0], NULL, 1, NULL, 0,
						 0), -EINVAL);
	ck_assert_int_eq(rouse_unix_sendmsg_init(&m, p[0], buf, 1, NULL, 1,
						 0), -EINVAL);
	ck_assert_int_eq(rouse_unix_sendmsg_init(&m, p[0], buf, 1, many, -1,
						 0), -EINVAL);
	ck_assert_int_eq(rouse_unix_sendmsg_init(&m, p[0], buf, 1, many,
						 ROUSE_UNIX_MAX_FDS + 1, 0),
			 -EINVAL);
	/* A stream carries control data only with at least a byte. */
	ck_assert_int_eq(rouse_unix_sendmsg_init(&m, p[0], buf, 0, many, 1,
						 0), -EINVAL);
	ck_assert_int_eq(rouse_unix_sendmsg_init(&m, p[0], buf, 0, NULL, 0,
						 1), -EINVAL);
	many[0] = -1;
	ck_assert_int_eq(rouse_unix_sendmsg_init(&m, p[0], buf, 1, many, 1,
						 0), -EBADF);
	ck_assert_int_eq(rouse_unix_recvmsg_init(&m, p[0], buf, 0, got, 1),
			 -EINVAL);
	ck_assert_int_eq(rouse_unix_recvmsg_init(&m, p[0], buf, 1, NULL, 1),
			 -EINVAL);
	ck_assert_int_eq(rouse_unix_recvmsg_init(&m, p[0], buf, 1, got, -1),
			 -EINVAL);
	ck_assert_int_eq(rouse_unix_recvmsg_init(&m, p[0], buf, 1, got,
						 ROUSE_UNIX_MAX_FDS + 1),
			 -EINVAL);
	ck_assert_int_eq(rouse_unix_dgram_sendmsg_init(&m, d[0], &in, buf, 1,
						       NULL, 0, 0), -EINVAL);
	ck_assert_int_eq(rouse_unix_dgram_sendmsg_init(&m, d[0], &fam, buf, 1,
						       NULL, 0, 0), -EINVAL);
	ck_assert_int_eq(rouse_unix_dgram_sendmsg_init(&m, NULL, NULL, buf, 1,
						       NULL, 0, 0), -EINVAL);
	ck_assert_int_eq(rouse_unix_dgram_recvmsg_init(&m, d[0], NULL, 1, got,
						       1), -EINVAL);
	ck_assert_int_eq(rouse_unix_dgram_recvmsg_init(NULL, d[0], buf, 1,
						       got, 1), -EINVAL);
	/* A datagram may be empty and still carry descriptors. */
	ck_assert_int_eq(rouse_unix_dgram_sendmsg_init(&m, d[0], NULL, NULL, 0,
						       NULL, 0, 1), 0);
	ck_assert_int_eq(rouse_future_drop(&m.base), 0);
	/* A pipe is no socket. */
	ck_assert_int_eq(pipe2(pp, O_CLOEXEC), 0);
	ck_assert_int_eq(rouse_stream_open(r, pp[0], &pipe_s), 0);
	ck_assert_int_eq(rouse_unix_recvmsg_init(&m, pipe_s, buf, 1, got, 1),
			 -ENOTSOCK);
	ck_assert_int_eq(rouse_unix_set_passcred(pp[1], 1), -ENOTSOCK);
	ck_assert_int_eq(rouse_stream_close(pipe_s), 0);
	close(pp[1]);
	ck_assert_int_eq(rouse_stream_close(p[0]), 0);
	ck_assert_int_eq(rouse_stream_close(p[1]), 0);
	ck_assert_int_eq(rouse_dgram_close(d[0]), 0);
	ck_assert_int_eq(rouse_dgram_close(d[1]), 0);
	rouse_reactor_free(r);
}
END_TEST

static Suite *unix_suite(void)
{
	Suite *s = suite_create("unix");
	TCase *tc;

	tc = tcase_create("stream");
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	tcase_add_loop_test(tc, unix_stream_path, 0, TEST_MODES);
	tcase_add_loop_test(tc, unix_stream_abstract, 0, TEST_MODES);
	tcase_add_loop_test(tc, unix_connect_missing, 0, TEST_MODES);
	tcase_add_loop_test(tc, unix_stream_pair, 0, TEST_MODES);
	tcase_add_test(tc, unix_accept_emfile);
	suite_add_tcase(s, tc);

	tc = tcase_create("dgram");
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	tcase_add_loop_test(tc, unix_dgram_pair, 0, TEST_MODES);
	tcase_add_loop_test(tc, unix_dgram_paths, 0, TEST_MODES);
	suite_add_tcase(s, tc);

	tc = tcase_create("msg");
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	tcase_add_loop_test(tc, scm_rights_stream, 0, TEST_MODES);
	tcase_add_loop_test(tc, scm_rights_dgram, 0, TEST_MODES);
	tcase_add_loop_test(tc, scm_rights_ctrunc, 0, TEST_MODES);
	tcase_add_loop_test(tc, scm_credentials, 0, TEST_MODES);
	tcase_add_loop_test(tc, scm_rights_long_send, 0, TEST_MODES);
	tcase_add_loop_test(tc, read_after_fds, 0, TEST_MODES);
	tcase_add_test(tc, msg_cancel);
	suite_add_tcase(s, tc);

	tc = tcase_create("edges");
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	tcase_add_test(tc, unix_fork);
	tcase_add_loop_test(tc, unix_enomem, 0, 4);
	tcase_add_test(tc, unix_bad_input);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(unix_suite());
}
