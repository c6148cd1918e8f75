// SPDX-License-Identifier: MIT
/*
 * bench/rouse-bench.c - rouse's program of the benchmark suite.
 *
 * The suite (yield, spawn, pingpong, wakestorm, timers, timeout, fds, echo,
 * inject, spawn-mt) and its rules are the benchmark contract that rouse is
 * compared under, next to the same benchmarks written on libuv, libev and
 * libevent:
 *
 *   rouse-bench NAME [key=value ...]
 *
 * Every parameter has a default; values are plain decimal integers.  On
 * success one line goes to stdout,
 *
 *   bench=NAME impl=rouse ops=N wall_ns=W cpu_ns=C ns_per_op=X [key=value]
 *
 * where wall_ns (CLOCK_MONOTONIC) and cpu_ns (CLOCK_PROCESS_CPUTIME_ID)
 * cover the measured phase only, and the exit status is 0.  Otherwise:
 * 1 when the run or its own check failed, 2 for an unknown benchmark, an
 * unknown key or a bad value, 3 ("unsupported") for a benchmark this
 * program does not implement yet.  Parameters are validated before
 * anything else, so a bad parameter is exit 2 for every benchmark.
 *
 * Each benchmark is one row of suite[] below: its keys with their
 * defaults and ranges, an optional cross-parameter check, and the
 * function that runs it (NULL until it is written).
 *
 * Implemented so far:
 *
 *   pingpong   two threads, each in rouse_block_on() on its own future;
 *              A wakes B, B's poll wakes A; the mean, p50 and p99 round
 *              trip, plus the eventfd writes the executor made.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rouse/executor.h>

enum {
	EXIT_FAIL = 1,		/* a system call or the run's check failed */
	EXIT_USAGE = 2,		/* unknown benchmark, key or value */
	EXIT_UNSUPPORTED = 3,	/* no such benchmark in rouse (yet) */
};

#define MAX_PARAMS 4

/* Largest value of a count: keeps n + 2 and n * 100 far from overflow. */
#define COUNT_MAX (UINT64_C(1) << 40)

static const char *prog = "rouse-bench";
static const char *bench_name;
static cpu_set_t startup_cpus;	/* the affinity mask at startup */

/* ---- errors ------------------------------------------------------- */

__attribute__((noreturn, format(printf, 2, 3)))
static void die(int status, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	if (bench_name != NULL)
		fprintf(stderr, "%s: %s: ", prog, bench_name);
	else
		fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

#define fail(...) die(EXIT_FAIL, __VA_ARGS__)
#define usage_error(...) die(EXIT_USAGE, __VA_ARGS__)

/* A call that failed with the (positive) error number err. */
__attribute__((noreturn))
static void fail_err(const char *what, int err)
{
	fail("%s: %s", what, strerror(err));
}

/* ---- clocks ------------------------------------------------------- */

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) != 0)
		fail_err("clock_gettime", errno);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/* One instant on both clocks; a phase is the difference of two marks. */
struct mark {
	uint64_t wall;
	uint64_t cpu;
};

/*
 * The process CPU clock is a system call: read it first when a phase
 * opens and last when it closes, so that it stays outside the wall time.
 */
static struct mark mark_begin(void)
{
	struct mark m;

	m.cpu = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	m.wall = now_ns();
	return m;
}

static struct mark mark_end(void)
{
	struct mark m;

	m.wall = now_ns();
	m.cpu = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	return m;
}

/* ---- threads ------------------------------------------------------ */

/*
 * pin=1: role 0 (the thread that owns the measured loop) goes to the
 * first CPU of the startup affinity mask, role 1 to the second, both to
 * the first when only one is allowed.  pin=0: the scheduler decides.
 */
static void pin_thread(uint64_t pin, int role)
{
	cpu_set_t one;
	int cpu, seen = 0, chosen = -1, err;

	if (!pin)
		return;
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &startup_cpus))
			continue;
		if (seen == 0 || seen == role)
			chosen = cpu;
		if (seen++ == role)
			break;
	}
	if (chosen < 0)
		fail("no CPU in the startup affinity mask");
	CPU_ZERO(&one);
	CPU_SET(chosen, &one);
	err = pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
	if (err != 0)
		fail("pthread_setaffinity_np(cpu %d): %s", chosen,
		     strerror(err));
}

/* ---- results ------------------------------------------------------ */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile pct of the n sorted samples v. */
static uint32_t percentile(const uint32_t *v, uint64_t n, unsigned int pct)
{
	uint64_t rank = (pct * n + 99) / 100;

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

static uint32_t lat_clamp(uint64_t ns)
{
	return ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

/* The six mandatory fields; the caller appends extras and a newline. */
static void print_head(uint64_t ops, uint64_t wall_ns, uint64_t cpu_ns,
		       double ns_per_op)
{
	printf("bench=%s impl=rouse ops=%" PRIu64 " wall_ns=%" PRIu64
	       " cpu_ns=%" PRIu64 " ns_per_op=%.2f", bench_name, ops,
	       wall_ns, cpu_ns, ns_per_op);
}

static void print_end(void)
{
	putchar('\n');
	if (fflush(stdout) != 0 || ferror(stdout))
		fail("writing the result line to stdout failed");
}

/* ---- the suite ---------------------------------------------------- */

struct param {
	const char *key;	/* NULL ends the list */
	const char *def;	/* default, as written on the command line */
	uint64_t min;
	uint64_t max;
};

struct bench;

/* A benchmark's parameters, in the order of its params[]. */
struct args {
	const struct bench *bench;
	uint64_t val[MAX_PARAMS];
};

struct bench {
	const char *name;
	struct param params[MAX_PARAMS];
	/* Cross-parameter rule: NULL or an error message (exit 2). */
	const char *(*check)(const struct args *a);
	/* Runs the benchmark and prints its line; NULL: unsupported. */
	void (*run)(const struct args *a);
};

/* Value of key, which must be one of the benchmark's parameters. */
static uint64_t arg(const struct args *a, const char *key)
{
	int i;

	for (i = 0; i < MAX_PARAMS && a->bench->params[i].key != NULL; i++)
		if (strcmp(a->bench->params[i].key, key) == 0)
			return a->val[i];
	fprintf(stderr, "%s: internal error: %s has no parameter %s\n", prog,
		a->bench->name, key);
	abort();
}

static const char *check_fds(const struct args *a)
{
	static char msg[96];

	if (arg(a, "active") <= arg(a, "fds"))
		return NULL;
	snprintf(msg, sizeof(msg), "active=%" PRIu64 " exceeds fds=%" PRIu64,
		 arg(a, "active"), arg(a, "fds"));
	return msg;
}

static void run_pingpong(const struct args *a);

#define COUNT(key, def) { key, def, 1, COUNT_MAX }
#define PIN { "pin", "1", 0, 1 }

static const struct bench suite[] = {
	{ "yield", { COUNT("tasks", "100"), COUNT("iters", "10000") },
	  NULL, NULL },
	{ "spawn", { COUNT("n", "100000") }, NULL, NULL },
	{ "pingpong", { COUNT("n", "100000"), PIN }, NULL, run_pingpong },
	{ "wakestorm", { COUNT("n", "1000000"), PIN }, NULL, NULL },
	{ "timers", { COUNT("n", "1000000"),
		      { "spread_ms", "1000", 0, COUNT_MAX } }, NULL, NULL },
	{ "timeout", { COUNT("n", "1000000") }, NULL, NULL },
	{ "fds", { { "fds", "1000", 2, COUNT_MAX }, COUNT("active", "100"),
		   { "writes", "100000", 0, COUNT_MAX } }, check_fds, NULL },
	{ "echo", { COUNT("conns", "1"), COUNT("secs", "3"),
		    COUNT("size", "64") }, NULL, NULL },
	{ "inject", { COUNT("n", "100000"), PIN }, NULL, NULL },
	{ "spawn-mt", { COUNT("n", "100000"), COUNT("workers", "2") },
	  NULL, NULL },
};

#define SUITE_SIZE (sizeof(suite) / sizeof(suite[0]))

static void print_usage(void)
{
	size_t b;
	int i;

	fprintf(stderr, "usage: %s NAME [key=value ...]\n", prog);
	for (b = 0; b < SUITE_SIZE; b++) {
		fprintf(stderr, "  %-10s", suite[b].name);
		for (i = 0; i < MAX_PARAMS && suite[b].params[i].key; i++)
			fprintf(stderr, " %s=%s", suite[b].params[i].key,
				suite[b].params[i].def);
		if (suite[b].run == NULL)
			fprintf(stderr, "  (unsupported)");
		fputc('\n', stderr);
	}
}

/* Parse text as the value of p: decimal digits only, within range. */
static uint64_t parse_value(const struct param *p, const char *text)
{
	const char *c;
	uint64_t v = 0;

	if (*text == '\0')
		usage_error("bad value %s= (expected a decimal integer)",
			    p->key);
	for (c = text; *c != '\0'; c++) {
		unsigned int d = (unsigned int)(*c - '0');

		if (d > 9)
			usage_error("bad value %s=%s (expected a decimal "
				    "integer)", p->key, text);
		if (v > (UINT64_MAX - d) / 10)
			usage_error("bad value %s=%s (too large)", p->key,
				    text);
		v = v * 10 + d;
	}
	if (v < p->min || v > p->max)
		usage_error("bad value %s=%s (must be between %" PRIu64
			    " and %" PRIu64 ")", p->key, text, p->min,
			    p->max);
	return v;
}

/* Look NAME up and fill *a from the defaults and key=value arguments. */
static void parse_args(int argc, char **argv, struct args *a)
{
	const struct bench *b = NULL;
	const char *msg;
	size_t k;
	int i, j;

	for (k = 0; k < SUITE_SIZE; k++)
		if (strcmp(suite[k].name, argv[1]) == 0)
			b = &suite[k];
	if (b == NULL)
		usage_error("unknown benchmark (try %s --help)", prog);
	a->bench = b;
	for (j = 0; j < MAX_PARAMS && b->params[j].key != NULL; j++)
		a->val[j] = parse_value(&b->params[j], b->params[j].def);
	for (i = 2; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		size_t len;

		if (eq == NULL)
			usage_error("bad argument '%s' (expected key=value)",
				    argv[i]);
		len = (size_t)(eq - argv[i]);
		for (j = 0; j < MAX_PARAMS && b->params[j].key != NULL; j++)
			if (strlen(b->params[j].key) == len &&
			    strncmp(b->params[j].key, argv[i], len) == 0)
				break;
		if (j == MAX_PARAMS || b->params[j].key == NULL)
			usage_error("unknown parameter '%.*s'", (int)len,
				    argv[i]);
		a->val[j] = parse_value(&b->params[j], eq + 1);
	}
	if (b->check != NULL && (msg = b->check(a)) != NULL)
		usage_error("%s", msg);
}

/* ---- pingpong ----------------------------------------------------- */

/*
 * Thread A runs rouse_block_on() on fut_a, thread B on fut_b.  A round
 * trip: A bumps ping and wakes B; B's poll sees the new ping, bumps pong
 * and wakes A; A's poll sees the new pong and takes a timestamp.
 *
 * Each side clones the waker of its own context on its first poll and
 * publishes the clone with a release store; the other side wakes it with
 * rouse_waker_wake_by_ref().  B is started and publishes first; A waits
 * for that on a condition variable (untimed setup, before either future
 * depends on the other), then enters block_on, publishes its own waker
 * and sends the handshake ping.  The clones stay alive until both threads
 * are done and are dropped by main, so no wake can reach a freed parker.
 *
 * ping and pong are sequence numbers, so a poll that finds nothing new
 * (which block_on allows) is told apart from a delivery: B's "runs" count
 * pings handled, which must be n + 2 (handshake, n, stop).
 */
struct pingpong {
	/* Written by A, read by B. */
	_Alignas(64) atomic_uint_fast64_t ping;
	atomic_bool stop;
	_Atomic(const struct rouse_waker *) waker_a;
	struct rouse_waker waker_a_slot;

	/* Written by B, read by A. */
	_Alignas(64) atomic_uint_fast64_t pong;
	_Atomic(const struct rouse_waker *) waker_b;
	struct rouse_waker waker_b_slot;

	/* A's own state. */
	_Alignas(64) uint64_t n;
	uint64_t pings_sent;
	uint64_t pongs_seen;
	uint64_t done;		/* timed round trips */
	uint64_t a_polls;
	uint64_t t_prev;
	uint32_t *lat;
	struct mark m0, m1;
	struct rouse_executor_stats s0, s1;
	bool a_published;

	/* B's own state. */
	_Alignas(64) uint64_t pings_seen;
	uint64_t b_runs;	/* pings handled */
	uint64_t b_polls;
	bool b_published;
	int b_err;

	/* Setup: A waits here until B has published its waker. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool b_ready;
	uint64_t pin;
};

struct pp_future {
	struct rouse_future base;	/* first: block_on sees this */
	struct pingpong *pp;
};

static struct pingpong pp_state;

/* Clone cx's waker into *slot and publish it through *pub. */
static void pp_publish(struct rouse_context *cx, struct rouse_waker *slot,
		       _Atomic(const struct rouse_waker *) *pub)
{
	int err = rouse_waker_clone(cx->waker, slot);

	if (err < 0)
		fail_err("rouse_waker_clone", -err);
	atomic_store_explicit(pub, slot, memory_order_release);
}

static void pp_wake(_Atomic(const struct rouse_waker *) *pub)
{
	const struct rouse_waker *w;
	int err;

	w = atomic_load_explicit(pub, memory_order_acquire);
	if (w == NULL)
		fail("the other side's waker is not published");
	err = rouse_waker_wake_by_ref(w);
	if (err < 0)
		fail_err("rouse_waker_wake_by_ref", -err);
}

/* A: the next ping (its value is seen by B's acquire), then the wake. */
static void pp_ping(struct pingpong *pp)
{
	atomic_store_explicit(&pp->ping, ++pp->pings_sent,
			      memory_order_release);
	pp_wake(&pp->waker_b);
}

static enum rouse_poll pp_a_poll(struct rouse_future *self,
				 struct rouse_context *cx)
{
	struct pingpong *pp = ((struct pp_future *)self)->pp;
	uint64_t pong, t;
	int err;

	pp->a_polls++;
	if (!pp->a_published) {
		pp_publish(cx, &pp->waker_a_slot, &pp->waker_a);
		pp->a_published = true;
		pp_ping(pp);	/* the handshake */
		return ROUSE_PENDING;
	}
	pong = atomic_load_explicit(&pp->pong, memory_order_acquire);
	if (pong == pp->pongs_seen)
		return ROUSE_PENDING;	/* polled, but nothing new */
	t = now_ns();
	if (pong != pp->pongs_seen + 1 || pong != pp->pings_sent)
		fail("A saw pong %" PRIu64 " after %" PRIu64 " (ping %"
		     PRIu64 ")", pong, pp->pongs_seen, pp->pings_sent);
	pp->pongs_seen = pong;
	if (pong == 1) {
		/* The handshake is back: both threads run; start timing. */
		err = rouse_executor_get_stats(&pp->s0);
		if (err < 0)
			fail_err("rouse_executor_get_stats", -err);
		pp->m0 = mark_begin();
		pp->t_prev = pp->m0.wall;
	} else {
		pp->lat[pp->done++] = lat_clamp(t - pp->t_prev);
		pp->t_prev = t;
	}
	if (pp->done == pp->n) {
		pp->m1 = mark_end();
		err = rouse_executor_get_stats(&pp->s1);
		if (err < 0)
			fail_err("rouse_executor_get_stats", -err);
		atomic_store_explicit(&pp->stop, true, memory_order_relaxed);
		pp_ping(pp);	/* stop B (its release covers stop) */
		return ROUSE_READY;
	}
	pp_ping(pp);
	return ROUSE_PENDING;
}

static enum rouse_poll pp_b_poll(struct rouse_future *self,
				 struct rouse_context *cx)
{
	struct pingpong *pp = ((struct pp_future *)self)->pp;
	uint64_t ping;
	int err;

	pp->b_polls++;
	if (!pp->b_published) {
		pp_publish(cx, &pp->waker_b_slot, &pp->waker_b);
		pp->b_published = true;
		err = pthread_mutex_lock(&pp->lock);
		if (err != 0)
			fail_err("pthread_mutex_lock", err);
		pp->b_ready = true;
		err = pthread_cond_signal(&pp->cond);
		if (err != 0)
			fail_err("pthread_cond_signal", err);
		err = pthread_mutex_unlock(&pp->lock);
		if (err != 0)
			fail_err("pthread_mutex_unlock", err);
	}
	ping = atomic_load_explicit(&pp->ping, memory_order_acquire);
	if (ping == pp->pings_seen)
		return ROUSE_PENDING;	/* polled, but nothing new */
	if (ping != pp->pings_seen + 1)
		fail("B saw ping %" PRIu64 " after %" PRIu64, ping,
		     pp->pings_seen);
	pp->pings_seen = ping;
	pp->b_runs++;
	if (atomic_load_explicit(&pp->stop, memory_order_relaxed))
		return ROUSE_READY;
	atomic_store_explicit(&pp->pong, ping, memory_order_release);
	pp_wake(&pp->waker_a);
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable pp_a_vtable = {
	.poll = pp_a_poll,
};

static const struct rouse_future_vtable pp_b_vtable = {
	.poll = pp_b_poll,
};

static void *pp_thread_b(void *arg)
{
	struct pingpong *pp = arg;
	struct pp_future fut = { { &pp_b_vtable }, pp };

	pin_thread(pp->pin, 1);
	pp->b_err = rouse_block_on(&fut.base);
	if (pp->b_err < 0)
		fail_err("rouse_block_on (thread B)", -pp->b_err);
	return NULL;
}

static void run_pingpong(const struct args *a)
{
	struct pingpong *pp = &pp_state;
	struct pp_future fut = { { &pp_a_vtable }, pp };
	uint64_t n = arg(a, "n"), wall;
	pthread_t tb;
	int err;

	pp->n = n;
	pp->pin = arg(a, "pin");
	pp->lat = calloc(n, sizeof(*pp->lat));
	if (pp->lat == NULL)
		fail("out of memory for %" PRIu64 " samples", n);
	err = pthread_mutex_init(&pp->lock, NULL);
	if (err == 0)
		err = pthread_cond_init(&pp->cond, NULL);
	if (err != 0)
		fail_err("pthread_mutex_init/pthread_cond_init", err);

	pin_thread(pp->pin, 0);
	err = pthread_create(&tb, NULL, pp_thread_b, pp);
	if (err != 0)
		fail_err("pthread_create", err);
	err = pthread_mutex_lock(&pp->lock);
	while (err == 0 && !pp->b_ready)
		err = pthread_cond_wait(&pp->cond, &pp->lock);
	if (err == 0)
		err = pthread_mutex_unlock(&pp->lock);
	if (err != 0)
		fail_err("waiting for thread B", err);
	if (atomic_load_explicit(&pp->waker_b, memory_order_acquire) == NULL)
		fail("thread B is ready but its waker is not published");

	err = rouse_block_on(&fut.base);
	if (err < 0)
		fail_err("rouse_block_on (thread A)", -err);
	err = pthread_join(tb, NULL);
	if (err != 0)
		fail_err("pthread_join", err);

	if (pp->done != n || pp->pongs_seen != n + 1)
		fail("%" PRIu64 " timed round trips, expected %" PRIu64,
		     pp->done, n);
	if (pp->b_runs != n + 2)
		fail("B ran %" PRIu64 " times, expected %" PRIu64,
		     pp->b_runs, n + 2);

	rouse_waker_drop(&pp->waker_a_slot);
	rouse_waker_drop(&pp->waker_b_slot);
	pthread_cond_destroy(&pp->cond);
	pthread_mutex_destroy(&pp->lock);

	qsort(pp->lat, n, sizeof(*pp->lat), cmp_u32);
	wall = pp->m1.wall - pp->m0.wall;
	print_head(n, wall, pp->m1.cpu - pp->m0.cpu, (double)wall / n);
	printf(" p50_ns=%" PRIu32 " p99_ns=%" PRIu32 " eventfd_writes=%"
	       PRIu64 " parks=%" PRIu64, percentile(pp->lat, n, 50),
	       percentile(pp->lat, n, 99),
	       pp->s1.eventfd_writes - pp->s0.eventfd_writes,
	       pp->s1.parks - pp->s0.parks);
	print_end();
	free(pp->lat);
}

/* ---- main --------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct args a;

	memset(&a, 0, sizeof(a));
	if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0) {
		print_usage();
		return EXIT_USAGE;
	}
	bench_name = argv[1];
	parse_args(argc, argv, &a);
	if (a.bench->run == NULL)
		die(EXIT_UNSUPPORTED, "unsupported (not implemented in rouse "
		    "yet)");
	if (sched_getaffinity(0, sizeof(startup_cpus), &startup_cpus) != 0)
		fail_err("sched_getaffinity", errno);
	a.bench->run(&a);
	return 0;
}
