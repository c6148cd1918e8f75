// SPDX-License-Identifier: MIT
/*
 * tests/check_dns.c - name lookups: answers from numeric hosts and
 * /etc/hosts, error codes, waking from a resolver thread, dropping at
 * every moment of a lookup, allocation failure, fork().
 *
 * There is no network here: every name is numeric or in /etc/hosts,
 * except one that cannot exist, whose answer depends on whether a name
 * server can be reached, and is checked against both documented codes.
 *
 * Leaks are counted, not only left to LeakSanitizer: most tests install
 * an allocator that counts the library's live blocks, and wait for the
 * count to come back down once every lookup was dropped (a request
 * dropped while its lookup runs is freed by the resolver thread, a
 * little later).
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/wait.h>

#include <rouse/alloc.h>
#include <rouse/dns.h>

#include "testutil.h"

/* ---- a counting allocator that fails on demand --------------------- */

struct count_alloc {
	atomic_long live;	/* blocks allocated and not yet freed */
	atomic_long calls;	/* malloc and realloc calls since armed */
	atomic_long fail_at;	/* the call (from 0) that fails; -1: none */
	atomic_long failed;	/* calls failed on purpose */
};

static struct count_alloc ca;

static bool ca_should_fail(void)
{
	long n = atomic_fetch_add(&ca.calls, 1);

	if (n != atomic_load(&ca.fail_at))
		return false;
	atomic_fetch_add(&ca.failed, 1);
	return true;
}

static void *ca_malloc(void *data, size_t size)
{
	void *p;

	if (ca_should_fail())
		return NULL;
	p = malloc(size);
	if (p != NULL)
		atomic_fetch_add(&ca.live, 1);
	return p;
}

static void *ca_realloc(void *data, void *ptr, size_t size)
{
	if (ca_should_fail())
		return NULL;
	return realloc(ptr, size);
}

static void ca_free(void *data, void *ptr)
{
	atomic_fetch_sub(&ca.live, 1);
	free(ptr);
}

static const struct rouse_allocator ca_allocator = {
	.malloc = ca_malloc,
	.realloc = ca_realloc,
	.free = ca_free,
	.data = &ca,
};

/* Fail call n from now on (counting from 0); -1: none, only count. */
static void ca_arm(long n)
{
	atomic_store(&ca.calls, 0);
	atomic_store(&ca.failed, 0);
	atomic_store(&ca.fail_at, n);
}

/* Fail nothing more; the counts stay. */
static void ca_disarm(void)
{
	atomic_store(&ca.fail_at, -1);
}

/*
 * Wait until the library holds n blocks.  Requests that a resolver thread
 * still runs are freed by it when it is done; a leak makes the tcase time
 * out.
 */
static void ca_wait_live(long n)
{
	while (atomic_load(&ca.live) != n)
		sched_yield();
}

/*
 * Count the reactor library's blocks from now on, and make sure the
 * resolver exists.  Returns the blocks that stay: 1 when the resolver was
 * made here (it lives as long as the process), else 0.
 */
static long ca_install(void)
{
	struct rouse_reactor *r;
	struct rouse_dns_lookup l;
	long base;

	atomic_init(&ca.live, 0);
	ca_arm(-1);
	ck_assert_int_eq(rouse_reactor_set_allocator(&ca_allocator), 0);
	r = test_reactor_make();
	ca_arm(-1);
	ck_assert_int_eq(rouse_dns_lookup_init(&l, r, "::1", NULL, NULL), 0);
	/* The request, and the resolver if it did not exist. */
	base = atomic_load(&ca.calls) - 1;
	ck_assert_int_eq(rouse_block_on(&l.base), 0);
	ck_assert_int_eq(l.result, 0);
	ck_assert_int_eq(rouse_future_drop(&l.base), 0);
	rouse_dns_free(l.addrs);
	rouse_reactor_free(r);
	ca_wait_live(base);
	return base;
}

static void ca_remove(void)
{
	ck_assert_int_eq(rouse_reactor_set_allocator(NULL), 0);
}

/* ---- helpers ------------------------------------------------------- */

static struct addrinfo hints_of(int family, int socktype, int flags)
{
	struct addrinfo h;

	memset(&h, 0, sizeof(h));
	h.ai_family = family;
	h.ai_socktype = socktype;
	h.ai_flags = flags;
	return h;
}

/* Init l for host and service, run it to completion in ru. */
static void lookup_run(struct test_runner *ru, struct rouse_dns_lookup *l,
		       const char *host, const char *service,
		       const struct addrinfo *hints)
{
	ck_assert_int_eq(rouse_dns_lookup_init(l, ru->r, host, service, hints),
			 0);
	ck_assert_int_eq(test_runner_block_on(ru, &l->base), 0);
}

/* Drop l and free its answer. */
static void lookup_done(struct rouse_dns_lookup *l)
{
	ck_assert_int_eq(rouse_future_drop(&l->base), 0);
	rouse_dns_free(l->addrs);
}

/* The address of ai as text, e.g. "127.0.0.1" or "::1". */
static const char *ai_text(const struct addrinfo *ai, char *buf, size_t len)
{
	const void *a;

	if (ai->ai_family == AF_INET)
		a = &((const struct sockaddr_in *)ai->ai_addr)->sin_addr;
	else
		a = &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
	ck_assert_ptr_nonnull(inet_ntop(ai->ai_family, a, buf, len));
	return buf;
}

static int ai_port(const struct addrinfo *ai)
{
	const struct sockaddr_in *in = (const void *)ai->ai_addr;
	const struct sockaddr_in6 *in6 = (const void *)ai->ai_addr;

	return ntohs(ai->ai_family == AF_INET ? in->sin_port : in6->sin6_port);
}

/* Whether list holds the address text (of either family). */
static bool ai_has(const struct addrinfo *list, const char *text)
{
	char buf[INET6_ADDRSTRLEN];

	for (; list != NULL; list = list->ai_next)
		if (strcmp(ai_text(list, buf, sizeof(buf)), text) == 0)
			return true;
	return false;
}

/*
 * The answer of a lookup that must have succeeded, every entry with this
 * address: glibc answers an AF_INET "localhost" once per /etc/hosts line
 * that names it, and Debian's has "::1 localhost" too.
 */
static void check_all(const struct rouse_dns_lookup *l, int family,
		      const char *text, int port)
{
	const struct addrinfo *a;
	char buf[INET6_ADDRSTRLEN];

	ck_assert_int_eq(l->result, 0);
	ck_assert_int_eq(l->gai_error, 0);
	ck_assert_ptr_nonnull(l->addrs);
	for (a = l->addrs; a != NULL; a = a->ai_next) {
		ck_assert_int_eq(a->ai_family, family);
		ck_assert_str_eq(ai_text(a, buf, sizeof(buf)), text);
		ck_assert_int_eq(ai_port(a), port);
	}
}

/* The answer of a lookup that must have succeeded with one address. */
static void check_one(const struct rouse_dns_lookup *l, int family,
		      const char *text, int port)
{
	char buf[INET6_ADDRSTRLEN];

	ck_assert_int_eq(l->result, 0);
	ck_assert_int_eq(l->gai_error, 0);
	ck_assert_ptr_nonnull(l->addrs);
	ck_assert_ptr_null(l->addrs->ai_next);
	ck_assert_int_eq(l->addrs->ai_family, family);
	/* NULL hints: SOCK_STREAM only, one entry per address. */
	ck_assert_int_eq(l->addrs->ai_socktype, SOCK_STREAM);
	ck_assert_str_eq(ai_text(l->addrs, buf, sizeof(buf)), text);
	ck_assert_int_eq(ai_port(l->addrs), port);
}

/* ---- answers ------------------------------------------------------- */

START_TEST(test_numeric)
{
	struct test_runner ru;
	struct rouse_dns_lookup l;
	long base;

	base = ca_install();
	test_runner_init(&ru, (enum test_mode)_i);
	lookup_run(&ru, &l, "127.0.0.1", NULL, NULL);
	check_one(&l, AF_INET, "127.0.0.1", 0);
	lookup_done(&l);
	lookup_run(&ru, &l, "::1", NULL, NULL);
	check_one(&l, AF_INET6, "::1", 0);
	lookup_done(&l);
	test_runner_free(&ru);
	/* Every request has gone. */
	ca_wait_live(base);
	ca_remove();
}
END_TEST

/*
 * Whether /etc/hosts names localhost 127.0.0.1.  A minimal root (a fresh
 * debootstrap) has no /etc/hosts; its "localhost" then comes from DNS, if
 * at all, with as many answers as the server gives.
 */
static bool hosts_has_localhost(void)
{
	FILE *f = fopen("/etc/hosts", "re");
	char line[512];
	bool found = false;

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		char *save = NULL, *tok = strtok_r(line, " \t\n", &save);

		if (tok == NULL || strcmp(tok, "127.0.0.1") != 0)
			continue;
		while ((tok = strtok_r(NULL, " \t\n", &save)) != NULL)
			if (strcmp(tok, "localhost") == 0)
				found = true;
	}
	fclose(f);
	return found;
}

START_TEST(test_localhost)
{
	struct test_runner ru;
	struct rouse_dns_lookup l;
	struct addrinfo h = hints_of(AF_INET, SOCK_STREAM, 0);

	if (!hosts_has_localhost()) {
		fprintf(stderr, "check_dns: /etc/hosts has no localhost line; "
			"the lookup from it is not tested here\n");
		return;
	}
	test_runner_init(&ru, (enum test_mode)_i);
	/* From /etc/hosts, through the NSS "files" source. */
	lookup_run(&ru, &l, "localhost", NULL, NULL);
	ck_assert_int_eq(l.result, 0);
	ck_assert(ai_has(l.addrs, "127.0.0.1"));
	lookup_done(&l);
	lookup_run(&ru, &l, "localhost", "7", &h);
	check_all(&l, AF_INET, "127.0.0.1", 7);
	lookup_done(&l);
	test_runner_free(&ru);
}
END_TEST

START_TEST(test_service)
{
	struct test_runner ru;
	struct rouse_dns_lookup l;
	struct addrinfo h;
	struct servent *se;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	lookup_run(&ru, &l, "127.0.0.1", "8080", NULL);
	check_one(&l, AF_INET, "127.0.0.1", 8080);
	lookup_done(&l);
	/* No host: the address to bind to, with AI_PASSIVE. */
	h = hints_of(AF_INET6, SOCK_STREAM, AI_PASSIVE);
	lookup_run(&ru, &l, NULL, "8080", &h);
	check_one(&l, AF_INET6, "::", 8080);
	lookup_done(&l);
	/* A service by name, where /etc/services has it. */
	se = getservbyname("http", "tcp");
	if (se != NULL) {
		int port = ntohs(se->s_port);

		lookup_run(&ru, &l, "127.0.0.1", "http", NULL);
		check_one(&l, AF_INET, "127.0.0.1", port);
		lookup_done(&l);
	}
	/* Datagram hints give datagram entries. */
	h = hints_of(AF_INET, SOCK_DGRAM, 0);
	lookup_run(&ru, &l, "127.0.0.1", "53", &h);
	ck_assert_int_eq(l.result, 0);
	ck_assert_int_eq(l.addrs->ai_socktype, SOCK_DGRAM);
	ck_assert_int_eq(ai_port(l.addrs), 53);
	lookup_done(&l);
	test_runner_free(&ru);
}
END_TEST

/* The strings and hints are copied: the caller's may change at once. */
START_TEST(test_inputs_copied)
{
	struct test_runner ru;
	struct rouse_dns_lookup l;
	struct addrinfo h = hints_of(AF_INET6, SOCK_STREAM, 0);
	char host[] = "::1", service[] = "443";

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	ck_assert_int_eq(rouse_dns_lookup_init(&l, ru.r, host, service, &h),
			 0);
	memset(host, 'x', sizeof(host) - 1);
	memset(service, 'y', sizeof(service) - 1);
	h.ai_family = AF_UNIX;
	h.ai_flags = -1;
	ck_assert_int_eq(test_runner_block_on(&ru, &l.base), 0);
	check_one(&l, AF_INET6, "::1", 443);
	lookup_done(&l);
	test_runner_free(&ru);
}
END_TEST

/* Ready is ready for good; the answer outlives the future. */
START_TEST(test_after_ready)
{
	struct test_runner ru;
	struct rouse_dns_lookup l;
	struct addrinfo *addrs;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	lookup_run(&ru, &l, "127.0.0.1", "1", NULL);
	addrs = l.addrs;
	ck_assert_int_eq(test_poll_noop(&l.base), ROUSE_READY);
	ck_assert_ptr_eq(l.addrs, addrs);
	ck_assert_int_eq(l.result, 0);
	ck_assert_int_eq(rouse_future_drop(&l.base), 0);
	ck_assert_int_eq(ai_port(addrs), 1);
	rouse_dns_free(addrs);
	rouse_dns_free(NULL);
	test_runner_free(&ru);
}
END_TEST

/* ---- errors -------------------------------------------------------- */

/* Run a lookup that must fail with result and gai. */
static void check_fails(struct test_runner *ru, const char *host,
			const char *service, const struct addrinfo *hints,
			int result, int gai)
{
	struct rouse_dns_lookup l;

	lookup_run(ru, &l, host, service, hints);
	ck_assert_msg(l.result == result && l.gai_error == gai,
		      "%s %s: result %d gai %d, not %d %d", host ? host : "-",
		      service ? service : "-", l.result, l.gai_error, result,
		      gai);
	ck_assert_ptr_null(l.addrs);
	lookup_done(&l);
}

START_TEST(test_not_found)
{
	struct test_runner ru;
	struct rouse_dns_lookup l;
	struct addrinfo h;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	/* Numeric only: no name server is asked, the answer is certain. */
	h = hints_of(AF_UNSPEC, SOCK_STREAM, AI_NUMERICHOST);
	check_fails(&ru, "no-such-host", NULL, &h, -ENOENT, EAI_NONAME);
	check_fails(&ru, "127.0.0.1.2", NULL, &h, -ENOENT, EAI_NONAME);
	h = hints_of(AF_UNSPEC, SOCK_STREAM, AI_NUMERICSERV);
	check_fails(&ru, "127.0.0.1", "http", &h, -ENOENT, EAI_NONAME);
	/* A service that /etc/services does not have. */
	check_fails(&ru, "127.0.0.1", "no-such-service", NULL, -ESRCH,
		    EAI_SERVICE);
	/* The name is fine, but has no address of the family asked for. */
	h = hints_of(AF_INET, SOCK_STREAM, 0);
	check_fails(&ru, "::1", NULL, &h, -ENODATA, EAI_ADDRFAMILY);

	/*
	 * .invalid never exists (RFC 6761).  Not found if a name server
	 * said so, or -EAGAIN if none could be reached: both are documented
	 * for it, and neither is a success.
	 */
	lookup_run(&ru, &l, "no-such-host.invalid", NULL, NULL);
	ck_assert_msg((l.result == -ENOENT && l.gai_error == EAI_NONAME) ||
			      (l.result == -EAGAIN && l.gai_error == EAI_AGAIN),
		      "result %d, gai %d", l.result, l.gai_error);
	ck_assert_ptr_null(l.addrs);
	lookup_done(&l);
	test_runner_free(&ru);
}
END_TEST

START_TEST(test_bad_input)
{
	struct test_runner ru;
	struct rouse_dns_lookup l, untouched;
	struct addrinfo h;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	memset(&l, 0xa5, sizeof(l));
	untouched = l;
	ck_assert_int_eq(rouse_dns_lookup_init(NULL, ru.r, "::1", NULL, NULL),
			 -EINVAL);
	ck_assert_int_eq(rouse_dns_lookup_init(&l, NULL, "::1", NULL, NULL),
			 -EINVAL);
	ck_assert_int_eq(rouse_dns_lookup_init(&l, ru.r, NULL, NULL, NULL),
			 -EINVAL);
	ck_assert_int_eq(memcmp(&l, &untouched, sizeof(l)), 0);

	/* What getaddrinfo() judges arrives in result. */
	h = hints_of(AF_UNSPEC, SOCK_STREAM, 0x40000000);
	check_fails(&ru, "127.0.0.1", NULL, &h, -EINVAL, EAI_BADFLAGS);
	h = hints_of(AF_UNSPEC, SOCK_STREAM, AI_CANONNAME);
	check_fails(&ru, NULL, "80", &h, -EINVAL, EAI_BADFLAGS);
	h = hints_of(AF_UNIX, SOCK_STREAM, 0);
	check_fails(&ru, "127.0.0.1", NULL, &h, -EAFNOSUPPORT, EAI_FAMILY);
	h = hints_of(AF_UNSPEC, 12345, 0);
	check_fails(&ru, "127.0.0.1", NULL, &h, -ESOCKTNOSUPPORT,
		    EAI_SOCKTYPE);
	test_runner_free(&ru);
}
END_TEST

/* ---- waking -------------------------------------------------------- */

/* The name of thread tid of this process, as in /proc. */
static void thread_name(pid_t tid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)tid);
	f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(buf, (int)len, f));
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

/*
 * The lookup runs on a resolver thread, and that thread wakes the waker:
 * the polling thread never waits for it.  A lookup can be done before its
 * first poll, so this repeats until some poll saw it pending.
 */
START_TEST(test_wakes_from_resolver)
{
	struct test_fixture fx;
	struct rouse_dns_lookup l;
	int pending = 0, i;

	test_fixture_init(&fx);
	for (i = 0; i < 1000 && pending < 20; i++) {
		int wakes = atomic_load(&fx.cw.wakes);

		ck_assert_int_eq(rouse_dns_lookup_init(&l, fx.r, "localhost",
						       "80", NULL), 0);
		if (test_poll_with(&l.base, &fx.w) == ROUSE_PENDING) {
			char name[32];
			pid_t tid;

			pending++;
			while (atomic_load(&fx.cw.wakes) == wakes)
				sched_yield();
			tid = atomic_load(&fx.cw.last_tid);
			ck_assert_int_ne(tid, test_gettid());
			thread_name(tid, name, sizeof(name));
			ck_assert_str_eq(name, "rouse-dns");
			ck_assert_int_eq(test_poll_with(&l.base, &fx.w),
					 ROUSE_READY);
		}
		ck_assert_int_eq(l.result, 0);
		ck_assert(ai_has(l.addrs, "127.0.0.1"));
		lookup_done(&l);
	}
	ck_assert_int_gt(pending, 0);
	/* Each wake used up its clone; nothing else was left behind. */
	ck_assert_int_eq(atomic_load(&fx.cw.wakes), pending);
	test_fixture_free(&fx);
}
END_TEST

/* A new waker replaces the old one, which is dropped, not woken. */
START_TEST(test_waker_replaced)
{
	struct rouse_reactor *r = test_reactor_make();
	struct counting_waker c1, c2;
	struct rouse_waker w1 = counting_waker(&c1), w2 = counting_waker(&c2);
	struct rouse_dns_lookup l;
	int replaced = 0, i;

	for (i = 0; i < 1000 && replaced < 20; i++) {
		int w1_wakes = atomic_load(&c1.wakes);
		int w2_wakes = atomic_load(&c2.wakes);

		ck_assert_int_eq(rouse_dns_lookup_init(&l, r, "::1", NULL,
						       NULL), 0);
		if (test_poll_with(&l.base, &w1) == ROUSE_PENDING &&
		    test_poll_with(&l.base, &w2) == ROUSE_PENDING) {
			replaced++;
			/* w1's clone was dropped when w2 took its place. */
			ck_assert_int_eq(atomic_load(&c1.live), 1);
			while (atomic_load(&c2.wakes) == w2_wakes)
				sched_yield();
			ck_assert_int_eq(test_poll_with(&l.base, &w2),
					 ROUSE_READY);
			ck_assert_int_eq(atomic_load(&c1.wakes), w1_wakes);
		} else {
			/* Done between the polls: w1 may have been woken. */
			ck_assert_int_eq(test_poll_with(&l.base, &w2),
					 ROUSE_READY);
		}
		ck_assert_int_eq(l.result, 0);
		lookup_done(&l);
	}
	ck_assert_int_gt(replaced, 0);
	while (atomic_load(&c1.live) != 1 || atomic_load(&c2.live) != 1)
		sched_yield();
	counting_waker_drop_last(&w1, &c1);
	counting_waker_drop_last(&w2, &c2);
	rouse_reactor_free(r);
}
END_TEST

/* ---- many at once -------------------------------------------------- */

#define MANY 64

/* Ready when every lookup of ls is. */
struct all_lookups {
	struct rouse_future base;
	struct rouse_dns_lookup *ls;
	bool *ready;
	int n;
};

static enum rouse_poll all_poll(struct rouse_future *f,
				struct rouse_context *cx)
{
	struct all_lookups *a = (struct all_lookups *)f;
	int i, left = 0;

	for (i = 0; i < a->n; i++) {
		if (a->ready[i])
			continue;
		if (rouse_future_poll(&a->ls[i].base, cx) == ROUSE_READY)
			a->ready[i] = true;
		else
			left++;
	}
	return left == 0 ? ROUSE_READY : ROUSE_PENDING;
}

START_TEST(test_many)
{
	static const struct rouse_future_vtable vt = { all_poll, NULL };
	static const char *const hosts[] = { "127.0.0.1", "::1", "localhost" };
	struct rouse_dns_lookup ls[MANY];
	bool ready[MANY] = { false };
	struct all_lookups all = { { &vt }, ls, ready, MANY };
	struct test_runner ru;
	char port[16];
	int i;
	long base;

	base = ca_install();
	test_runner_init(&ru, (enum test_mode)_i);
	for (i = 0; i < MANY; i++) {
		snprintf(port, sizeof(port), "%d", 1000 + i);
		ck_assert_int_eq(rouse_dns_lookup_init(&ls[i], ru.r,
						       hosts[i % 3], port,
						       NULL), 0);
	}
	ck_assert_int_eq(test_runner_block_on(&ru, &all.base), 0);
	for (i = 0; i < MANY; i++) {
		ck_assert_int_eq(ls[i].result, 0);
		ck_assert_int_eq(ai_port(ls[i].addrs), 1000 + i);
		lookup_done(&ls[i]);
	}
	test_runner_free(&ru);
	ca_wait_live(base);
	ca_remove();
}
END_TEST

/* ---- dropping ------------------------------------------------------ */

#define DROP_ROUNDS 1000
#define DROP_BATCH 16

/*
 * Many lookups started and dropped at once, most of them still queued:
 * those never run; the few a thread has taken are freed by it.  Half are
 * polled first, so that a waker is left to drop as well.
 */
START_TEST(test_drop_before_completion)
{
	struct test_fixture fx;
	struct rouse_dns_lookup ls[DROP_BATCH];
	int round, i;
	long base;

	base = ca_install();
	test_fixture_init(&fx);
	for (round = 0; round < DROP_ROUNDS; round++) {
		for (i = 0; i < DROP_BATCH; i++)
			ck_assert_int_eq(rouse_dns_lookup_init(
						 &ls[i], fx.r,
						 i % 2 ? "localhost" : "::1",
						 "80", NULL), 0);
		for (i = 0; i < DROP_BATCH; i += 2)
			test_poll_with(&ls[i].base, &fx.w);
		for (i = 0; i < DROP_BATCH; i++) {
			ck_assert_int_eq(rouse_future_drop(&ls[i].base), 0);
			/* Ready before the drop: the answer is ours. */
			if (ls[i].addrs != NULL && ls[i].result == 0)
				rouse_dns_free(ls[i].addrs);
		}
	}
	/* Every clone was dropped or woken, by whichever side held it. */
	while (atomic_load(&fx.cw.live) != 1)
		sched_yield();
	test_fixture_free(&fx);
	/* Nothing left, once the threads have let go of what they ran. */
	ca_wait_live(base);
	ca_remove();
}
END_TEST

/* Keep the CPU busy for about n iterations. */
static void spin(unsigned int n)
{
	volatile unsigned int x = 0;

	while (n-- > 0)
		x++;
}

/*
 * The drop races the completion: after a random pause a lookup is
 * dropped while queued, while running, as it completes, while its thread
 * wakes the waker, or after.  Each request is freed once (ASan sees a
 * second free or a late use; the count sees a leak).
 */
START_TEST(test_drop_racing_completion)
{
	struct test_fixture fx;
	struct rouse_dns_lookup l;
	uint64_t seed = 42;
	int i;
	long base;

	base = ca_install();
	test_fixture_init(&fx);
	for (i = 0; i < 3000; i++) {
		uint64_t rnd = test_splitmix64(&seed);

		ck_assert_int_eq(rouse_dns_lookup_init(&l, fx.r, "127.0.0.1",
						       "80", NULL), 0);
		if (rnd & 1)
			test_poll_with(&l.base, &fx.w);
		spin((unsigned int)(rnd >> 8) % 20000);
		if (rnd & 2)
			test_poll_with(&l.base, &fx.w);
		ck_assert_int_eq(rouse_future_drop(&l.base), 0);
		if (l.addrs != NULL)
			rouse_dns_free(l.addrs);
	}
	while (atomic_load(&fx.cw.live) != 1)
		sched_yield();
	test_fixture_free(&fx);
	ca_wait_live(base);
	ca_remove();
}
END_TEST

/* Dropped without a poll, on another thread than the one that made it. */
static void *drop_thread(void *arg)
{
	rouse_future_drop(&((struct rouse_dns_lookup *)arg)->base);
	return NULL;
}

START_TEST(test_drop_elsewhere)
{
	struct rouse_reactor *r;
	struct rouse_dns_lookup l;
	int i;
	long base;

	base = ca_install();
	r = test_reactor_make();
	for (i = 0; i < 200; i++) {
		ck_assert_int_eq(rouse_dns_lookup_init(&l, r, "localhost", NULL,
						       NULL), 0);
		test_thread_join(test_thread_start(drop_thread, &l));
	}
	rouse_reactor_free(r);
	ca_wait_live(base);
	ca_remove();
}
END_TEST

/*
 * A deadline races the lookup through the reactor, run each way: the
 * timeout drops a lookup it beats, at whatever point the lookup is.
 */
START_TEST(test_timeout)
{
	struct test_runner ru;
	uint64_t seed = 7;
	int i, won = 0, lost = 0;
	long base;

	base = ca_install();
	test_runner_init(&ru, (enum test_mode)_i);
	for (i = 0; i < 400; i++) {
		struct rouse_dns_lookup l;
		struct rouse_timeout t;
		int64_t ns = (int64_t)(test_splitmix64(&seed) % 200000);

		ck_assert_int_eq(rouse_dns_lookup_init(&l, ru.r, "localhost",
						       "80", NULL), 0);
		ck_assert_int_eq(rouse_timeout_init(&t, ru.r, &l.base, ns), 0);
		ck_assert_int_eq(test_runner_block_on(&ru, &t.base), 0);
		if (t.result == 0) {
			won++;
			ck_assert_int_eq(l.result, 0);
			ck_assert(ai_has(l.addrs, "127.0.0.1"));
			rouse_dns_free(l.addrs);
		} else {
			lost++;
			ck_assert_int_eq(t.result, -ETIMEDOUT);
		}
		ck_assert_int_eq(rouse_future_drop(&t.base), 0);
	}
	/* Both outcomes are possible; each must have been clean. */
	ck_assert_int_eq(won + lost, 400);
	test_runner_free(&ru);
	ca_wait_live(base);
	ca_remove();
}
END_TEST

/* ---- allocation failure --------------------------------------------- */

/*
 * Fail allocation n = 0, 1, ... of an init: -ENOMEM, the future untouched,
 * nothing left behind, until an init meets no failure.  The resolver is
 * made before (see ca_install()): its own allocation is the same path
 * with one more step, and each test runs in a new process, so the first
 * lookup of test_alloc_first() meets it.
 */
static int alloc_loop(struct test_runner *ru, long keep)
{
	struct rouse_dns_lookup l, untouched;
	int n, err;

	for (n = 0;; n++) {
		ck_assert_int_lt(n, 16);
		memset(&l, 0xa5, sizeof(l));
		untouched = l;
		ca_arm(n);
		err = rouse_dns_lookup_init(&l, ru->r, "127.0.0.1", "80", NULL);
		ca_disarm();
		if (err == 0)
			break;
		ck_assert_int_eq(err, -ENOMEM);
		ck_assert_int_eq(atomic_load(&ca.failed), 1);
		ck_assert_int_eq(memcmp(&l, &untouched, sizeof(l)), 0);
		ck_assert_int_le(atomic_load(&ca.live), keep);
	}
	ck_assert_int_eq(atomic_load(&ca.failed), 0);
	ck_assert_int_eq(test_runner_block_on(ru, &l.base), 0);
	check_one(&l, AF_INET, "127.0.0.1", 80);
	lookup_done(&l);
	return n;
}

START_TEST(test_alloc_failure)
{
	struct test_runner ru;
	struct rouse_dns_lookup l;
	long base;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	base = ca_install();
	/* The request. */
	ck_assert_int_eq(alloc_loop(&ru, base), 1);
	/* Polling allocates nothing. */
	ck_assert_int_eq(rouse_dns_lookup_init(&l, ru.r, "::1", NULL, NULL), 0);
	ca_arm(0);
	ck_assert_int_eq(test_runner_block_on(&ru, &l.base), 0);
	ck_assert_int_eq(atomic_load(&ca.calls), 0);
	ca_disarm();
	check_one(&l, AF_INET6, "::1", 0);
	lookup_done(&l);
	ca_wait_live(base);
	ca_remove();
	test_runner_free(&ru);
}
END_TEST

/* The first lookup of a process also makes the resolver. */
START_TEST(test_alloc_first)
{
	struct test_runner ru;
	int n;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	atomic_init(&ca.live, 0);
	ca_arm(-1);
	ck_assert_int_eq(rouse_reactor_set_allocator(&ca_allocator), 0);
	/*
	 * The resolver, then the request (each test runs in a process of
	 * its own, unless CK_FORK=no: then the resolver may exist).
	 */
	n = alloc_loop(&ru, 1);
	ck_assert_int_ge(n, 1);
	ck_assert_int_le(n, 2);
	/* The resolver stays for the process's life. */
	ca_wait_live(n - 1);
	ca_remove();
	test_runner_free(&ru);
}
END_TEST

/* ---- fork ---------------------------------------------------------- */

#define CHILD_CHECK(cond)                                                  \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "%s:%d: child: %s\n", __FILE__,    \
				__LINE__, #cond);                          \
			_exit(1);                                          \
		}                                                          \
	} while (0)

static void wait_child_ok(pid_t pid)
{
	int status;

	ck_assert_int_ge(pid, 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child status %#x", status);
}

/*
 * In a child, a lookup the parent started answers -ECHILD, an inherited
 * reactor is refused, and a reactor of the child's own resolves (with a
 * resolver of the child's own: the parent's threads are not there).
 */
START_TEST(test_fork)
{
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_dns_lookup parents;
	struct counting_waker c;
	struct rouse_waker w;
	struct addrinfo *addrs;
	pid_t pid;

	ck_assert_int_eq(rouse_dns_lookup_init(&parents, r, "::1", NULL, NULL),
			 0);
	ck_assert_int_eq(rouse_block_on(&parents.base), 0);
	addrs = parents.addrs;
	ck_assert_int_eq(rouse_future_drop(&parents.base), 0);
	/*
	 * A lookup pending at the fork, but whose thread is out of
	 * getaddrinfo() already: a child that resolves while a parent's
	 * thread was inside it could find glibc's locks held for good.
	 */
	for (;;) {
		w = counting_waker(&c);
		ck_assert_int_eq(rouse_dns_lookup_init(&parents, r, "127.0.0.1",
						       NULL, NULL), 0);
		if (test_poll_with(&parents.base, &w) == ROUSE_PENDING) {
			/* Woken, and the wake has let go of its clone. */
			while (atomic_load(&c.live) != 1)
				sched_yield();
			break;
		}
		lookup_done(&parents);
		counting_waker_drop_last(&w, &c);
	}
	pid = fork();
	if (pid == 0) {
		struct rouse_reactor *mine;
		struct rouse_dns_lookup l;
		struct rouse_parker pk;

		alarm(60);
		CHILD_CHECK(test_poll_noop(&parents.base) == ROUSE_READY);
		CHILD_CHECK(parents.result == -ECHILD);
		CHILD_CHECK(rouse_future_drop(&parents.base) == 0);
		CHILD_CHECK(rouse_dns_lookup_init(&l, r, "::1", NULL, NULL) ==
			    -ECHILD);
		/* The parent's answer is plain memory: still readable. */
		CHILD_CHECK(addrs->ai_family == AF_INET6);
#ifdef __SANITIZE_ADDRESS__
		/*
		 * The child's own lookup allocates, and ASan's allocator (as
		 * of GCC 12) is not fork-safe: a parent's resolver thread
		 * that was starting, or freeing a request, at the fork leaves
		 * an allocator lock held in the child for good (seen here,
		 * twice in 30 runs).  glibc's malloc takes its locks around
		 * fork(): the other builds run it.
		 */
		_exit(0);
#endif
		CHILD_CHECK(rouse_reactor_new(&mine, 0) == 0);
		CHILD_CHECK(rouse_reactor_parker(mine, &pk) == 0);
		CHILD_CHECK(rouse_dns_lookup_init(&l, mine, "localhost", "22",
						  NULL) == 0);
		CHILD_CHECK(rouse_block_on_with(&l.base, &pk) == 0);
		CHILD_CHECK(l.result == 0 && ai_has(l.addrs, "127.0.0.1"));
		CHILD_CHECK(rouse_future_drop(&l.base) == 0);
		rouse_dns_free(l.addrs);
		rouse_reactor_free(mine);
		_exit(0);
	}
	wait_child_ok(pid);
	/* The parent's lookup is untouched by the child's. */
	ck_assert_int_eq(rouse_block_on(&parents.base), 0);
	check_one(&parents, AF_INET, "127.0.0.1", 0);
	lookup_done(&parents);
	counting_waker_drop_last(&w, &c);
	rouse_dns_free(addrs);
	rouse_reactor_free(r);
}
END_TEST

static Suite *dns_suite(void)
{
	Suite *s = suite_create("dns");
	TCase *tc;

	tc = tcase_create("answers");
	tcase_add_loop_test(tc, test_numeric, 0, TEST_MODES);
	tcase_add_loop_test(tc, test_localhost, 0, TEST_MODES);
	tcase_add_test(tc, test_service);
	tcase_add_test(tc, test_inputs_copied);
	tcase_add_test(tc, test_after_ready);
	tcase_add_loop_test(tc, test_many, 0, TEST_MODES);
	/* A name server that does not answer takes its time. */
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, test_not_found);
	tcase_add_test(tc, test_bad_input);
	tcase_add_test(tc, test_alloc_failure);
	tcase_add_test(tc, test_alloc_first);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = tcase_create("wake and drop");
	tcase_add_test(tc, test_wakes_from_resolver);
	tcase_add_test(tc, test_waker_replaced);
	tcase_add_test(tc, test_drop_before_completion);
	tcase_add_test(tc, test_drop_racing_completion);
	tcase_add_test(tc, test_drop_elsewhere);
	tcase_add_loop_test(tc, test_timeout, 0, TEST_MODES);
	tcase_add_test(tc, test_fork);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(dns_suite());
}
