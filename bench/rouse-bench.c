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
 *              trip, plus the eventfd writes the executor made.  Extra
 *              key via=executor (each thread parks on its eventfd) or
 *              via=reactor (each thread drives its own reactor through
 *              rouse_reactor_parker(): the wake crosses through the other
 *              reactor's eventfd and epoll_wait).
 *   wakestorm  a foreign thread wakes the waker of a future that runs in
 *              rouse_block_on(); a delivery is one poll.
 *   timers     n sleep futures started and polled once from inside one
 *              future on a driven reactor, each with a waker of its own;
 *              the CPU per start and per expiry.
 *   timeout    n sleeps of 10 s started, then dropped oldest first.
 *   fds        libevent's bench.c ring: a read future per socketpair on a
 *              driven reactor, per-fd wakers feeding a ready queue.
 *   echo       TCP ping-pong over 127.0.0.1, clients and server on one
 *              driven reactor, per-connection wakers.
 *   yield      tasks on a current-thread executor, each awaiting a
 *              rouse_yield future iters times.
 *   spawn      a root future on a current-thread executor spawns n tasks
 *              with join handles, then awaits every handle.
 *   inject     a foreign thread spawns n tasks onto a current-thread
 *              executor that runs in block_on on the main thread.
 *   spawn-mt   the same as spawn, from a task on a multi-thread executor.
 *
 * The benchmarks on a reactor follow one pattern: the reactor is driven
 * by the thread itself (rouse_block_on_with() on rouse_reactor_parker()),
 * and one root future owns many leaf futures (sleeps, reads, writes).
 * No other thread touches the reactor, so it is made with
 * ROUSE_REACTOR_LOCAL and takes no lock, as the peers' loops take none;
 * the extra key reactor=shared makes it with the lock instead.
 * Each leaf is polled with a context whose waker is its own: a small
 * record that the leaf's wake pushes on a ready queue (or counts), so the
 * root only ever polls the leaves that were woken, never all of them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rouse/combinator.h>
#include <rouse/executor.h>
#include <rouse/reactor.h>

enum {
	EXIT_FAIL = 1,		/* a system call or the run's check failed */
	EXIT_USAGE = 2,		/* unknown benchmark, key or value */
	EXIT_UNSUPPORTED = 3,	/* no such benchmark in rouse (yet) */
};

#define MAX_PARAMS 5

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

/* reactor=local|shared, once driven_reactor() has made a reactor. */
static const char *reactor_note;

static void print_end(void)
{
	if (reactor_note != NULL)
		printf(" reactor=%s", reactor_note);
	putchar('\n');
	if (fflush(stdout) != 0 || ferror(stdout))
		fail("writing the result line to stdout failed");
}

/* ---- helpers of the benchmarks ------------------------------------ */

/* calloc that fails the run (exit 1) instead of returning NULL. */
static void *xcalloc(uint64_t n, size_t size)
{
	void *p;

	if (n > SIZE_MAX / (size ? size : 1))
		fail("out of memory (%" PRIu64 " x %zu bytes)", n, size);
	p = calloc(n ? (size_t)n : 1, size ? size : 1);
	if (p == NULL)
		fail("out of memory (%" PRIu64 " x %zu bytes)", n, size);
	return p;
}

/* A rouse call that returned a negative errno. */
static void check_rouse(const char *what, int err)
{
	if (err < 0)
		fail_err(what, -err);
}

/*
 * The contract's timer delays: splitmix64 of the index, reduced to whole
 * milliseconds in [0, spread_ms].  Stateless, so every implementation
 * arms the same delays in the same order.
 */
static uint64_t splitmix64(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static uint64_t timer_delay_ms(uint64_t i, uint64_t spread_ms)
{
	return splitmix64(i) % (spread_ms + 1);
}

/*
 * The timers check: the last expiry may come no earlier than the longest
 * delay, less 2 ms and one tick of CLOCK_MONOTONIC_COARSE (the slack the
 * contract grants every implementation alike).
 */
static void check_not_early(uint64_t elapsed_ns, uint64_t max_delay_ms)
{
	struct timespec res = { 0, 0 };
	uint64_t slack = 2000000;

	if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0)
		slack += (uint64_t)res.tv_sec * 1000000000u +
			 (uint64_t)res.tv_nsec;
	if (elapsed_ns + slack < max_delay_ms * 1000000)
		fail("all timers expired after %.3f ms, the longest delay is %"
		     PRIu64 " ms", (double)elapsed_ns / 1e6, max_delay_ms);
}

/*
 * Raise the soft RLIMIT_NOFILE to the hard limit; fail clearly when fewer
 * than need descriptors are allowed even then.
 */
static void need_fds(uint64_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		fail_err("getrlimit(RLIMIT_NOFILE)", errno);
	if (rl.rlim_cur != rl.rlim_max) {
		struct rlimit want = rl;

		want.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &want) != 0 &&
		    rl.rlim_max == RLIM_INFINITY) {
			want.rlim_cur = 1u << 20;	/* fs.nr_open default */
			setrlimit(RLIMIT_NOFILE, &want);
		}
		if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
			fail_err("getrlimit(RLIMIT_NOFILE)", errno);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
		fail("needs %" PRIu64 " file descriptors but RLIMIT_NOFILE "
		     "allows only %llu (hard limit %llu); raise it with ulimit "
		     "-Hn or use fewer fds/conns", need,
		     (unsigned long long)rl.rlim_cur,
		     (unsigned long long)rl.rlim_max);
}

/* Poll f with the context of waker w (a leaf polled by a root future). */
static enum rouse_poll poll_with(struct rouse_future *f,
				 const struct rouse_waker *w)
{
	struct rouse_context cx = { w };
	int ret = rouse_future_poll(f, &cx);

	if (ret < 0)
		fail_err("rouse_future_poll", -ret);
	return (enum rouse_poll)ret;
}

/* Keep a clone of the root future's waker, for its leaves to wake. */
static void root_waker_keep(struct rouse_waker *slot, struct rouse_context *cx)
{
	if (slot->vtable != NULL)
		return;
	check_rouse("rouse_waker_clone", rouse_waker_clone(cx->waker, slot));
}

static void root_waker_release(struct rouse_waker *slot)
{
	if (slot->vtable != NULL)
		rouse_waker_drop(slot);
}

/*
 * The ready queue of fds and echo: a FIFO of leaf indexes, each at most
 * once.  A leaf's waker is a struct qwaker (its data points at it):
 * waking it queues the leaf and, when the queue was empty, wakes the root
 * future, which then polls exactly the queued leaves.  The wakers own no
 * resource, so clone returns the same record and drop does nothing; the
 * records outlive every future that holds them.
 */
struct readyq {
	uint32_t *ring;
	uint8_t *queued;		/* per leaf: already in the ring */
	uint32_t cap, head, len;
	struct rouse_waker root;	/* clone of the root's waker */
};

struct qwaker {
	struct readyq *q;
	uint32_t idx;
};

static void readyq_init(struct readyq *q, uint32_t cap)
{
	q->ring = xcalloc(cap, sizeof(*q->ring));
	q->queued = xcalloc(cap, sizeof(*q->queued));
	q->cap = cap;
	q->head = q->len = 0;
	q->root.data = NULL;
	q->root.vtable = NULL;
}

static void readyq_free(struct readyq *q)
{
	root_waker_release(&q->root);
	free(q->ring);
	free(q->queued);
}

static void readyq_push(struct readyq *q, uint32_t idx)
{
	uint32_t tail;

	if (q->queued[idx])
		return;
	q->queued[idx] = 1;
	tail = q->head + q->len;
	if (tail >= q->cap)
		tail -= q->cap;
	q->ring[tail] = idx;
	if (q->len++ == 0 && q->root.vtable != NULL)
		rouse_waker_wake_by_ref(&q->root);
}

static bool readyq_pop(struct readyq *q, uint32_t *idx)
{
	if (q->len == 0)
		return false;
	*idx = q->ring[q->head];
	q->queued[*idx] = 0;
	if (++q->head == q->cap)
		q->head = 0;
	q->len--;
	return true;
}

static const struct rouse_waker_vtable qwaker_vtable;

static struct rouse_waker qwaker_clone(void *data)
{
	struct rouse_waker w = { data, &qwaker_vtable };

	return w;
}

static void qwaker_wake(void *data)
{
	struct qwaker *qw = data;

	readyq_push(qw->q, qw->idx);
}

static void qwaker_drop(void *data)
{
	(void)data;
}

static const struct rouse_waker_vtable qwaker_vtable = {
	.clone = qwaker_clone,
	.wake = qwaker_wake,
	.wake_by_ref = qwaker_wake,
	.drop = qwaker_drop,
};

static struct rouse_waker qwaker_of(struct qwaker *qw)
{
	return qwaker_clone(qw);
}

/* ---- the suite ---------------------------------------------------- */

struct param {
	const char *key;	/* NULL ends the list */
	const char *def;	/* default, as written on the command line */
	uint64_t min;
	uint64_t max;
	/*
	 * NULL: a decimal integer between min and max.  Otherwise the
	 * words the value may be, "a|b|c", and the value is the index of
	 * the one given (rouse-bench's own variant keys, like via=).
	 */
	const char *choices;
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
static void run_wakestorm(const struct args *a);
static void run_timers(const struct args *a);
static void run_timeout(const struct args *a);
static void run_fds(const struct args *a);
static void run_echo(const struct args *a);
static void run_yield(const struct args *a);
static void run_spawn(const struct args *a);
static void run_inject(const struct args *a);
static void run_spawn_mt(const struct args *a);

/*
 * Bounds that keep the benchmarks' own arithmetic in range: timer and fd
 * indexes fit in 32 bits, delays and durations stay far from overflowing
 * int64_t nanoseconds, and an echo message fits in memory.
 */
#define TIMERS_MAX (UINT64_C(1) << 31)
#define SPREAD_MAX (UINT64_C(1) << 32)
#define FDS_MAX (UINT64_C(1) << 28)
#define SIZE_MAX_ECHO (UINT64_C(1) << 30)
#define FDS_READ_MAX 65536
#define SECS_MAX (UINT64_C(1) << 31)

#define COUNT(key, def) { key, def, 1, COUNT_MAX, NULL }
#define PIN { "pin", "1", 0, 1, NULL }
/*
 * rouse-bench's own key for the benchmarks that run on reactors: "local"
 * makes them with ROUSE_REACTOR_LOCAL (one thread uses each, so it takes
 * no lock, as the peers' loops take none), "shared" without.
 */
#define REACTOR { "reactor", "local", 0, 1, "local|shared" }

static const struct bench suite[] = {
	{ "yield", { COUNT("tasks", "100"), COUNT("iters", "10000") },
	  NULL, run_yield },
	{ "spawn", { COUNT("n", "100000") }, NULL, run_spawn },
	{ "pingpong", { COUNT("n", "100000"), PIN,
			{ "via", "executor", 0, 1, "executor|reactor" },
			REACTOR },
	  NULL, run_pingpong },
	{ "wakestorm", { COUNT("n", "1000000"), PIN }, NULL, run_wakestorm },
	{ "timers", { { "n", "1000000", 1, TIMERS_MAX, NULL },
		      { "spread_ms", "1000", 0, SPREAD_MAX, NULL }, REACTOR },
	  NULL, run_timers },
	{ "timeout", { { "n", "1000000", 1, TIMERS_MAX, NULL }, REACTOR },
	  NULL,
	  run_timeout },
	{ "fds", { { "fds", "1000", 2, FDS_MAX, NULL }, COUNT("active", "100"),
		   { "writes", "100000", 0, COUNT_MAX, NULL },
		   { "read_bytes", "64", 1, FDS_READ_MAX, NULL }, REACTOR },
	  check_fds,
	  run_fds },
	{ "echo", { { "conns", "1", 1, FDS_MAX, NULL },
		    { "secs", "3", 1, SECS_MAX, NULL },
		    { "size", "64", 1, SIZE_MAX_ECHO, NULL }, REACTOR },
	  NULL, run_echo },
	{ "inject", { COUNT("n", "100000"), PIN }, NULL, run_inject },
	{ "spawn-mt", { COUNT("n", "100000"), COUNT("workers", "2") },
	  NULL, run_spawn_mt },
};

#define SUITE_SIZE (sizeof(suite) / sizeof(suite[0]))

static void print_usage(void)
{
	size_t b;
	int i;

	fprintf(stderr, "usage: %s NAME [key=value ...]\n", prog);
	for (b = 0; b < SUITE_SIZE; b++) {
		fprintf(stderr, "  %-10s", suite[b].name);
		for (i = 0; i < MAX_PARAMS && suite[b].params[i].key; i++) {
			const struct param *p = &suite[b].params[i];

			if (p->choices != NULL)
				fprintf(stderr, " [%s=%s: %s]", p->key,
					p->def, p->choices);
			else
				fprintf(stderr, " %s=%s", p->key, p->def);
		}
		if (suite[b].run == NULL)
			fprintf(stderr, "  (unsupported)");
		fputc('\n', stderr);
	}
}

/* Index of text among p's choices "a|b|c"; exit 2 when it is none. */
static uint64_t parse_choice(const struct param *p, const char *text)
{
	const char *c = p->choices;
	size_t len = strlen(text);
	uint64_t i;

	for (i = 0;; i++) {
		const char *bar = strchr(c, '|');
		size_t n = bar != NULL ? (size_t)(bar - c) : strlen(c);

		if (n == len && strncmp(c, text, len) == 0)
			return i;
		if (bar == NULL)
			break;
		c = bar + 1;
	}
	usage_error("bad value %s=%s (expected one of %s)", p->key, text,
		    p->choices);
}

/* The word of choice index v of p, for the result line. */
static const char *choice_name(const struct param *p, uint64_t v,
			       char *buf, size_t size)
{
	const char *c = p->choices;
	size_t n;

	while (v-- > 0)
		c = strchr(c, '|') + 1;
	n = strchr(c, '|') != NULL ? (size_t)(strchr(c, '|') - c)
				   : strlen(c);
	snprintf(buf, size, "%.*s", (int)n, c);
	return buf;
}

/* The word of a choice parameter, for the result line. */
static const char *arg_word(const struct args *a, const char *key,
			    char *buf, size_t size)
{
	int i;

	for (i = 0; i < MAX_PARAMS && a->bench->params[i].key != NULL; i++)
		if (strcmp(a->bench->params[i].key, key) == 0)
			return choice_name(&a->bench->params[i], a->val[i],
					   buf, size);
	fprintf(stderr, "%s: internal error: %s has no parameter %s\n", prog,
		a->bench->name, key);
	abort();
}

/*
 * A reactor driven by the calling thread, and the parker that drives it;
 * ROUSE_REACTOR_LOCAL unless the run says reactor=shared.
 */
static struct rouse_reactor *driven_reactor(const struct args *a,
					    struct rouse_parker *parker)
{
	static char word[8];
	struct rouse_reactor *r;
	bool local = arg(a, "reactor") == 0;

	reactor_note = arg_word(a, "reactor", word, sizeof(word));
	check_rouse("rouse_reactor_new",
		    rouse_reactor_new(&r, local ? ROUSE_REACTOR_LOCAL : 0));
	check_rouse("rouse_reactor_parker", rouse_reactor_parker(r, parker));
	return r;
}

/*
 * Parse text as the value of p: decimal digits only, within range, or
 * one of p's choices.
 */
static uint64_t parse_value(const struct param *p, const char *text)
{
	const char *c;
	uint64_t v = 0;

	if (p->choices != NULL)
		return parse_choice(p, text);

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
 *
 * via=reactor: main creates a reactor per thread, and each thread runs
 * rouse_block_on_with() on its own reactor's parker, so that each one
 * blocks in its reactor's epoll_wait and the other side's wake writes
 * that reactor's wake eventfd.  eventfd_writes= (the executor's counter)
 * is printed for via=executor only: the reactor keeps no such count.
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

	/* via=reactor: one reactor per thread; NULL for via=executor. */
	struct rouse_reactor *reactor_a, *reactor_b;
	struct rouse_parker parker_a, parker_b;
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
	if (pp->reactor_b != NULL)
		pp->b_err = rouse_block_on_with(&fut.base, &pp->parker_b);
	else
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
	bool via_reactor = arg(a, "via") == 1;
	char via[16];
	pthread_t tb;
	int err;

	pp->n = n;
	pp->pin = arg(a, "pin");
	if (via_reactor) {
		pp->reactor_a = driven_reactor(a, &pp->parker_a);
		pp->reactor_b = driven_reactor(a, &pp->parker_b);
	}
	pp->lat = xcalloc(n, sizeof(*pp->lat));
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

	if (via_reactor)
		err = rouse_block_on_with(&fut.base, &pp->parker_a);
	else
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
	rouse_reactor_free(pp->reactor_a);
	rouse_reactor_free(pp->reactor_b);

	qsort(pp->lat, n, sizeof(*pp->lat), cmp_u32);
	wall = pp->m1.wall - pp->m0.wall;
	print_head(n, wall, pp->m1.cpu - pp->m0.cpu, (double)wall / n);
	printf(" p50_ns=%" PRIu32 " p99_ns=%" PRIu32,
	       percentile(pp->lat, n, 50), percentile(pp->lat, n, 99));
	if (!via_reactor)
		printf(" eventfd_writes=%" PRIu64 " parks=%" PRIu64,
		       pp->s1.eventfd_writes - pp->s0.eventfd_writes,
		       pp->s1.parks - pp->s0.parks);
	printf(" via=%s", arg_word(a, "via", via, sizeof(via)));
	print_end();
	free(pp->lat);
}

/* ---- wakestorm ---------------------------------------------------- */

/*
 * The loop thread (main, role 0) runs rouse_block_on() on ws_future.  Its
 * first poll clones its context's waker, publishes it, opens the CPU
 * phase and meets the sender at the barrier; every later poll is one
 * delivery.  The sender (role 1) calls rouse_waker_wake_by_ref() on that
 * clone n times, storing last = 1 (seq_cst) before the final one.  The
 * poll that sees last == 1 takes t_seen and is ready.
 *
 * A poll happens only after a wake was consumed (the thread parker never
 * returns spuriously without a timeout), so 1 <= deliveries <= n.
 */
static struct wakestorm {
	/* Written by the sender, read by the loop. */
	_Alignas(64) atomic_int last;

	/* Read by the sender: written once, before the barrier. */
	_Alignas(64) struct rouse_waker waker;	/* the clone the sender wakes */

	/* The loop's own. */
	_Alignas(64) bool published;
	uint64_t deliveries;
	uint64_t t_seen;
	uint64_t cpu0;
	struct rouse_executor_stats s0;

	/* The sender's own. */
	_Alignas(64) uint64_t t0, t_sent;

	uint64_t n, pin;
	pthread_barrier_t go;
} ws_state;

struct ws_future {
	struct rouse_future base;
	struct wakestorm *ws;
};

static enum rouse_poll ws_poll(struct rouse_future *self,
			       struct rouse_context *cx)
{
	struct wakestorm *ws = ((struct ws_future *)self)->ws;
	int err;

	if (!ws->published) {
		check_rouse("rouse_waker_clone",
			    rouse_waker_clone(cx->waker, &ws->waker));
		ws->published = true;
		check_rouse("rouse_executor_get_stats",
			    rouse_executor_get_stats(&ws->s0));
		ws->cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
		/* The barrier publishes the waker to the sender. */
		err = pthread_barrier_wait(&ws->go);
		if (err != 0 && err != PTHREAD_BARRIER_SERIAL_THREAD)
			fail_err("pthread_barrier_wait", err);
		return ROUSE_PENDING;
	}
	ws->deliveries++;
	if (atomic_load(&ws->last) == 0)
		return ROUSE_PENDING;
	ws->t_seen = now_ns();
	return ROUSE_READY;
}

static const struct rouse_future_vtable ws_vtable = {
	.poll = ws_poll,
};

static void *ws_sender(void *arg)
{
	struct wakestorm *ws = arg;
	const struct rouse_waker *w = &ws->waker;
	uint64_t i;
	int err;

	pin_thread(ws->pin, 1);
	err = pthread_barrier_wait(&ws->go);
	if (err != 0 && err != PTHREAD_BARRIER_SERIAL_THREAD)
		fail_err("pthread_barrier_wait", err);
	ws->t0 = now_ns();
	for (i = 1; i < ws->n; i++)
		rouse_waker_wake_by_ref(w);
	atomic_store(&ws->last, 1);
	rouse_waker_wake_by_ref(w);
	ws->t_sent = now_ns();
	return NULL;
}

static void run_wakestorm(const struct args *a)
{
	struct wakestorm *ws = &ws_state;
	struct ws_future fut = { { &ws_vtable }, ws };
	struct rouse_executor_stats s1;
	uint64_t cpu1, wall;
	pthread_t ts;
	int err;

	ws->n = arg(a, "n");
	ws->pin = arg(a, "pin");
	err = pthread_barrier_init(&ws->go, NULL, 2);
	if (err != 0)
		fail_err("pthread_barrier_init", err);
	pin_thread(ws->pin, 0);
	err = pthread_create(&ts, NULL, ws_sender, ws);
	if (err != 0)
		fail_err("pthread_create", err);

	check_rouse("rouse_block_on", rouse_block_on(&fut.base));
	err = pthread_join(ts, NULL);
	if (err != 0)
		fail_err("pthread_join", err);
	cpu1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	check_rouse("rouse_executor_get_stats", rouse_executor_get_stats(&s1));

	if (ws->deliveries < 1 || ws->deliveries > ws->n)
		fail("%" PRIu64 " deliveries for %" PRIu64 " wakes",
		     ws->deliveries, ws->n);
	rouse_waker_drop(&ws->waker);
	pthread_barrier_destroy(&ws->go);

	wall = ws->t_seen - ws->t0;
	print_head(ws->n, wall, cpu1 - ws->cpu0, (double)wall / ws->n);
	printf(" send_ns_per_op=%.2f deliveries=%" PRIu64 " eventfd_writes=%"
	       PRIu64 " parks=%" PRIu64,
	       (double)(ws->t_sent - ws->t0) / ws->n, ws->deliveries,
	       s1.eventfd_writes - ws->s0.eventfd_writes,
	       s1.parks - ws->s0.parks);
	print_end();
}

/* ---- timers and timeout ------------------------------------------- */

/*
 * Both run inside one root future polled by rouse_block_on_with() on a
 * driven reactor's parker.  The n sleeps live in one array, touched
 * before the measured phase (page faults are setup, like the peers'
 * handle arrays), and sleep i is polled with a waker whose data points at
 * fired[i]: its wake counts the expiry there, and the last one marks m2
 * and wakes the root.  So the root is polled about once per reactor turn
 * and never looks at the sleeps again.  The wakers own nothing: clone
 * hands out the same record, drop only counts.
 */
static struct timer_bench {
	struct rouse_reactor *reactor;
	struct rouse_sleep *s;
	uint8_t *fired;		/* per timer: expiries seen */
	uint64_t n, spread_ms;
	uint64_t expired;	/* wakes */
	uint64_t clones, drops;
	uint64_t twice;		/* wakes of a timer that had fired */
	uint64_t immediate;	/* sleeps ready at their first poll */
	bool started;
	struct rouse_waker root;
	struct mark m0, m1, m2;
} tm;

static const struct rouse_waker_vtable tm_waker_vtable;

static struct rouse_waker tm_waker_clone(void *data)
{
	struct rouse_waker w = { data, &tm_waker_vtable };

	tm.clones++;
	return w;
}

/* Timer fired[] fired: count it; the last one closes the phase. */
static void tm_expired(uint8_t *fired)
{
	if ((*fired)++ != 0)
		tm.twice++;
	if (++tm.expired == tm.n) {
		tm.m2 = mark_end();
		if (tm.root.vtable != NULL)
			rouse_waker_wake_by_ref(&tm.root);
	}
}

static void tm_waker_wake(void *data)
{
	tm_expired(data);
}

static void tm_waker_drop(void *data)
{
	(void)data;
	tm.drops++;
}

static const struct rouse_waker_vtable tm_waker_vtable = {
	.clone = tm_waker_clone,
	.wake = tm_waker_wake,
	.wake_by_ref = tm_waker_wake,
	.drop = tm_waker_drop,
};

/*
 * Start sleep i for deadline: initialise it and poll it once.  A sleep
 * whose deadline the reactor knows has passed may be ready at once
 * (timers with delay 0); that is its expiry.  Returns whether it was.
 */
static bool tm_start(uint64_t i, int64_t deadline)
{
	struct rouse_waker w = { &tm.fired[i], &tm_waker_vtable };
	int err;

	err = rouse_sleep_until_init(&tm.s[i], tm.reactor, deadline);
	if (err < 0)
		fail_err("rouse_sleep_until_init", -err);
	if (poll_with(&tm.s[i].base, &w) == ROUSE_PENDING)
		return false;
	if (tm.s[i].result != 0)
		fail("sleep %" PRIu64 ": result %d", i, tm.s[i].result);
	tm_expired(&tm.fired[i]);
	return true;
}

static enum rouse_poll timers_poll(struct rouse_future *self,
				   struct rouse_context *cx)
{
	uint64_t i;
	int64_t now;

	(void)self;
	if (!tm.started) {
		tm.started = true;
		root_waker_keep(&tm.root, cx);
		/* One clock reading, as the peers use their loop's time. */
		now = rouse_reactor_now(tm.reactor);
		if (now < 0)
			fail_err("rouse_reactor_now", (int)-now);
		tm.m0 = mark_begin();
		for (i = 0; i < tm.n; i++)
			tm.immediate += tm_start(i, now + (int64_t)
				timer_delay_ms(i, tm.spread_ms) * 1000000);
		tm.m1 = mark_end();
		/* All were due at once: the phase ends with the starts. */
		if (tm.expired == tm.n)
			tm.m2 = tm.m1;
	}
	return tm.expired == tm.n ? ROUSE_READY : ROUSE_PENDING;
}

static const struct rouse_future_vtable timers_vtable = {
	.poll = timers_poll,
};

/* Setup shared by timers and timeout; returns the parker. */
static struct rouse_parker tm_setup(const struct args *a, uint64_t n)
{
	struct rouse_parker parker;

	memset(&tm, 0, sizeof(tm));
	tm.n = n;
	tm.s = xcalloc(n, sizeof(*tm.s));
	tm.fired = xcalloc(n, sizeof(*tm.fired));
	/* calloc may hand out fresh zero pages: fault them in now. */
	memset(tm.s, 0xff, n * sizeof(*tm.s));
	memset(tm.s, 0, n * sizeof(*tm.s));
	memset(tm.fired, 1, n);
	memset(tm.fired, 0, n);
	tm.reactor = driven_reactor(a, &parker);
	return parker;
}

static void tm_teardown(void)
{
	uint64_t i;

	for (i = 0; i < tm.n; i++)
		if (tm.s[i].base.vtable != NULL)
			rouse_future_drop(&tm.s[i].base);
	root_waker_release(&tm.root);
	rouse_reactor_free(tm.reactor);
	free(tm.s);
	free(tm.fired);
}

static void run_timers(const struct args *a)
{
	struct rouse_future root = { &timers_vtable };
	struct rouse_parker parker;
	uint64_t n = arg(a, "n"), i, max_delay = 0, cpu, wall;

	parker = tm_setup(a, n);
	tm.spread_ms = arg(a, "spread_ms");
	for (i = 0; i < n; i++) {
		uint64_t d = timer_delay_ms(i, tm.spread_ms);

		if (d > max_delay)
			max_delay = d;
	}

	check_rouse("rouse_block_on_with", rouse_block_on_with(&root, &parker));

	if (tm.expired != n || tm.twice != 0)
		fail("%" PRIu64 " expiries of %" PRIu64 " timers (%" PRIu64
		     " of a timer that had fired)", tm.expired, n, tm.twice);
	for (i = 0; i < n; i++) {
		if (tm.fired[i] != 1)
			fail("timer %" PRIu64 " fired %u times", i,
			     tm.fired[i]);
		if (tm.s[i].result != 0)
			fail("timer %" PRIu64 " has result %d", i,
			     tm.s[i].result);
	}
	if (tm.clones + tm.immediate != n || tm.drops != 0)
		fail("%" PRIu64 " waker clones and %" PRIu64 " drops for %"
		     PRIu64 " timers (%" PRIu64 " ready at once)", tm.clones,
		     tm.drops, n, tm.immediate);
	wall = tm.m2.wall - tm.m0.wall;
	check_not_early(wall, max_delay);
	cpu = tm.m2.cpu - tm.m0.cpu;
	tm_teardown();

	print_head(n, wall, cpu, (double)cpu / n);
	printf(" start_ns_per_op=%.2f expire_ns_per_op=%.2f bytes_per_timer=%zu"
	       " future_bytes=%zu", (double)(tm.m1.cpu - tm.m0.cpu) / n,
	       (double)(tm.m2.cpu - tm.m1.cpu) / n,
	       sizeof(struct rouse_timer_entry) + sizeof(struct rouse_waker),
	       sizeof(struct rouse_sleep));
	print_end();
}

/*
 * timeout: the root's one poll starts n sleeps of 10 s (one clock
 * reading), then drops all n oldest first; none may fire, and dropping
 * must hand every waker back (drops == clones == n proves the reactor
 * holds no registration any more).
 */
static enum rouse_poll timeout_poll(struct rouse_future *self,
				    struct rouse_context *cx)
{
	int64_t deadline;
	uint64_t i;

	(void)self;
	(void)cx;
	deadline = rouse_reactor_now(tm.reactor);
	if (deadline < 0)
		fail_err("rouse_reactor_now", (int)-deadline);
	deadline += INT64_C(10000000000);
	tm.m0 = mark_begin();
	for (i = 0; i < tm.n; i++)
		if (tm_start(i, deadline))
			fail("a sleep of 10 s was ready at its first poll");
	tm.m1 = mark_end();
	for (i = 0; i < tm.n; i++)
		rouse_future_drop(&tm.s[i].base);
	tm.m2 = mark_end();
	return ROUSE_READY;
}

static const struct rouse_future_vtable timeout_vtable = {
	.poll = timeout_poll,
};

static void run_timeout(const struct args *a)
{
	struct rouse_future root = { &timeout_vtable };
	struct rouse_parker parker;
	uint64_t n = arg(a, "n"), i, cpu;
	int woken;

	parker = tm_setup(a, n);
	check_rouse("rouse_block_on_with", rouse_block_on_with(&root, &parker));
	/* A turn that would fire anything left over: nothing may come. */
	woken = rouse_reactor_turn(tm.reactor, 0);
	check_rouse("rouse_reactor_turn", woken < 0 ? woken : 0);

	if (tm.expired != 0 || woken != 0)
		fail("%" PRIu64 " of the cancelled timers fired", tm.expired);
	if (tm.clones != n || tm.drops != n)
		fail("%" PRIu64 " waker clones and %" PRIu64 " drops for %"
		     PRIu64 " cancelled timers: some are still pending",
		     tm.clones, tm.drops, n);
	for (i = 0; i < n; i++)
		if (tm.s[i].base.vtable != NULL || tm.fired[i] != 0)
			fail("timer %" PRIu64 " was not cancelled", i);
	cpu = tm.m2.cpu - tm.m0.cpu;
	tm_teardown();

	print_head(n, tm.m2.wall - tm.m0.wall, cpu, (double)cpu / n);
	printf(" start_ns_per_op=%.2f cancel_ns_per_op=%.2f",
	       (double)(tm.m1.cpu - tm.m0.cpu) / n,
	       (double)(tm.m2.cpu - tm.m1.cpu) / n);
	print_end();
}

/* ---- fds ---------------------------------------------------------- */

/*
 * libevent's bench.c ring on a driven reactor.  Every read end is
 * registered and has a one-byte read future, polled with the pair's own
 * qwaker; the reactor's wake of pair i queues i, and the root future
 * polls the read futures of the queued pairs only.  A read that returns
 * its byte passes the token on (one send into the next pair while writes
 * remain) and the pair's next read future is polled at once: it takes a
 * second byte if one is there, or leaves the waker with the reactor.
 *
 * Extra key read_bytes= (default 64): the length of each read future.
 * A read takes every byte that is there, and each byte read passes one
 * token on (the contract allows it); ops stay bytes.  An edge-triggered
 * reactor learns that a socket is empty from a short read; a read of
 * exactly one byte is never short, so read_bytes=1 costs an extra EAGAIN
 * read per event, which the level-triggered peers do not need.
 */
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

	print_head(fx.read, m1.wall - m0.wall, m1.cpu - m0.cpu,
		   (double)(m1.wall - m0.wall) / fx.read);
	printf(" read_bytes=%zu", fx.read_len);
	print_end();
}

/* ---- echo --------------------------------------------------------- */

/*
 * Clients and server sides are the 2 * conns "sides" of one driven
 * reactor, each with a qwaker (clients 0..conns-1, servers after).  Every
 * side always has a read future pending into the shared 64 KiB buffer
 * (its data is consumed before anything else is polled); a write is a
 * write future, ready at once unless the socket is full.  The root future
 * drives the queued sides only.  The secs timer is a sleep future with a
 * waker of its own that marks the end and wakes the root.
 *
 * A client sends its message, reads the echo into place (byte for byte
 * equal to what it sent), and sends the next one.  A server side echoes
 * what it read; output the socket does not take at once is copied to the
 * side's own buffer, and the side reads no more until it is flushed.
 */
#define ECHO_BUF 65536

struct echo_side {
	struct qwaker qw;
	struct rouse_io *io;
	int fd;
	bool client;
	uint32_t conn;
	struct rouse_io_rw rd, wr;
	bool rd_live, wr_live;
	uint8_t *msg;		/* client: the message in flight */
	size_t sent;		/* client: bytes of msg written */
	size_t got;		/* client: bytes of its echo read */
	bool slow;		/* client: this message had to wait */
	uint8_t *out;		/* server: echo the socket did not take */
	size_t out_len, out_off, out_cap;
};

struct echo_stop {
	struct rouse_waker *root;
	bool fired;
	struct mark at;
};

static struct echo_bench {
	struct rouse_reactor *reactor;
	struct readyq q;
	struct echo_side *side;	/* 2 * conns */
	uint64_t conns;
	size_t size;
	uint64_t secs;
	uint64_t rt;		/* round trips completed */
	uint64_t slow_writes;	/* writes the socket did not take at once */
	bool started;
	struct rouse_sleep timer;
	struct echo_stop stop;
	struct mark m0;
	uint8_t rbuf[ECHO_BUF];
} *ex;

static const struct rouse_waker_vtable stop_waker_vtable;

static struct rouse_waker stop_waker_clone(void *data)
{
	struct rouse_waker w = { data, &stop_waker_vtable };

	return w;
}

static void stop_waker_wake(void *data)
{
	struct echo_stop *st = data;

	if (!st->fired) {
		st->at = mark_end();
		st->fired = true;
	}
	rouse_waker_wake_by_ref(st->root);
}

static const struct rouse_waker_vtable stop_waker_vtable = {
	.clone = stop_waker_clone,
	.wake = stop_waker_wake,
	.wake_by_ref = stop_waker_wake,
	.drop = qwaker_drop,
};

static void echo_read_init(struct echo_side *s)
{
	check_rouse("rouse_io_read_init",
		    rouse_io_read_init(&s->rd, s->io, ex->rbuf, ECHO_BUF));
	s->rd_live = true;
}

static void echo_write_init(struct echo_side *s, const void *buf, size_t len)
{
	check_rouse("rouse_io_write_init",
		    rouse_io_write_init(&s->wr, s->io, buf, len));
	s->wr_live = true;
}

/* Poll side s's read; its result once it is ready, else -EAGAIN. */
static ssize_t echo_read(struct echo_side *s, const struct rouse_waker *w)
{
	ssize_t n;

	if (poll_with(&s->rd.op.base, w) == ROUSE_PENDING)
		return -EAGAIN;
	n = s->rd.result;
	rouse_future_drop(&s->rd.op.base);
	echo_read_init(s);
	if (n == 0)
		fail("%s %" PRIu32 ": unexpected end of file",
		     s->client ? "client" : "server", s->conn);
	if (n < 0)
		fail("%s %" PRIu32 ": read: %s", s->client ? "client" :
		     "server", s->conn, strerror((int)-n));
	return n;
}

/* Poll side s's write; its result once it is ready, else -EAGAIN. */
static ssize_t echo_write(struct echo_side *s, const struct rouse_waker *w)
{
	ssize_t n;

	if (poll_with(&s->wr.op.base, w) == ROUSE_PENDING)
		return -EAGAIN;
	n = s->wr.result;
	rouse_future_drop(&s->wr.op.base);
	s->wr_live = false;
	if (n < 0)
		fail("%s %" PRIu32 ": write: %s", s->client ? "client" :
		     "server", s->conn, strerror((int)-n));
	return n;
}

/* Client: write what is left of the message while the socket takes it. */
static void client_send(struct echo_side *c, const struct rouse_waker *w)
{
	ssize_t n;

	while (c->sent < ex->size) {
		if (!c->wr_live)
			echo_write_init(c, c->msg + c->sent,
					ex->size - c->sent);
		n = echo_write(c, w);
		if (n < 0) {
			if (!c->slow)
				ex->slow_writes++;
			c->slow = true;
			return;
		}
		c->sent += (size_t)n;
	}
}

static void client_drive(struct echo_side *c)
{
	struct rouse_waker w = qwaker_of(&c->qw);
	ssize_t n;

	client_send(c, &w);
	while ((n = echo_read(c, &w)) > 0) {
		if (c->got + (size_t)n > ex->size ||
		    memcmp(ex->rbuf, c->msg + c->got, (size_t)n) != 0)
			fail("connection %" PRIu32 ": the echo differs from "
			     "what was sent", c->conn);
		c->got += (size_t)n;
		if (c->got < ex->size)
			continue;
		ex->rt++;
		c->got = 0;
		c->sent = 0;
		c->slow = false;
		c->msg[0]++;
		client_send(c, &w);
	}
}

/* Server: flush buffered echo; true when nothing is left to write. */
static bool server_flush(struct echo_side *s, const struct rouse_waker *w)
{
	ssize_t n;

	while (s->out_off < s->out_len) {
		if (!s->wr_live)
			echo_write_init(s, s->out + s->out_off,
					s->out_len - s->out_off);
		n = echo_write(s, w);
		if (n < 0)
			return false;
		s->out_off += (size_t)n;
	}
	s->out_off = s->out_len = 0;
	return true;
}

/* Server: keep bytes the socket did not take (the read buffer is shared). */
static void server_keep(struct echo_side *s, const uint8_t *data, size_t len)
{
	if (len > s->out_cap) {
		s->out = realloc(s->out, len);
		if (s->out == NULL)
			fail("out of memory");
		s->out_cap = len;
	}
	memcpy(s->out, data, len);
	s->out_off = 0;
	s->out_len = len;
	ex->slow_writes++;
}

static void server_drive(struct echo_side *s)
{
	struct rouse_waker w = qwaker_of(&s->qw);
	ssize_t n, put;

	if (!server_flush(s, &w))
		return;
	while ((n = echo_read(s, &w)) > 0) {
		echo_write_init(s, ex->rbuf, (size_t)n);
		put = echo_write(s, &w);
		if (put == n)
			continue;
		if (put < 0) {
			/* Pending on the shared buffer: retry on a copy. */
			rouse_future_drop(&s->wr.op.base);
			s->wr_live = false;
			put = 0;
		}
		server_keep(s, ex->rbuf + put, (size_t)(n - put));
		if (!server_flush(s, &w))
			return;
	}
}

static enum rouse_poll echo_poll(struct rouse_future *self,
				 struct rouse_context *cx)
{
	uint32_t i;
	uint64_t k;

	(void)self;
	if (!ex->started) {
		struct rouse_waker w = stop_waker_clone(&ex->stop);

		ex->started = true;
		root_waker_keep(&ex->q.root, cx);
		ex->stop.root = &ex->q.root;
		ex->m0 = mark_begin();
		check_rouse("rouse_sleep_init",
			    rouse_sleep_init(&ex->timer, ex->reactor,
					     (int64_t)ex->secs * 1000000000));
		if (poll_with(&ex->timer.base, &w) == ROUSE_READY)
			fail("the %" PRIu64 " s timer was ready at once",
			     ex->secs);
		for (k = 0; k < ex->conns; k++)
			client_drive(&ex->side[k]);
	}
	while (!ex->stop.fired && readyq_pop(&ex->q, &i)) {
		if (ex->side[i].client)
			client_drive(&ex->side[i]);
		else
			server_drive(&ex->side[i]);
	}
	return ex->stop.fired ? ROUSE_READY : ROUSE_PENDING;
}

static const struct rouse_future_vtable echo_vtable = {
	.poll = echo_poll,
};

/*
 * Setup (untimed): the clients' connect futures and the listener's accept
 * future, all polled on every wake (a few hundred polls at most) until
 * every connection is up on both sides.
 */
struct echo_setup {
	struct rouse_future base;
	struct rouse_io *listen_io;
	struct rouse_io_accept accept;
	struct rouse_io_connect *connect;
	bool *connected;
	uint64_t nconnected, accepted;
};

static void echo_side_start(struct echo_side *s, int fd, bool client,
			    uint32_t conn, uint32_t idx)
{
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		fail_err("setsockopt(TCP_NODELAY)", errno);
	s->fd = fd;
	s->client = client;
	s->conn = conn;
	s->qw.q = &ex->q;
	s->qw.idx = idx;
}

static enum rouse_poll echo_setup_poll(struct rouse_future *self,
				       struct rouse_context *cx)
{
	struct echo_setup *st = (struct echo_setup *)self;
	uint64_t k;

	for (k = 0; k < ex->conns; k++) {
		struct rouse_io_connect *c = &st->connect[k];

		if (st->connected[k] ||
		    poll_with(&c->op.base, cx->waker) == ROUSE_PENDING)
			continue;
		if (c->result < 0)
			fail("connect: %s", strerror(-c->result));
		rouse_future_drop(&c->op.base);
		st->connected[k] = true;
		st->nconnected++;
	}
	while (st->accepted < ex->conns &&
	       poll_with(&st->accept.op.base, cx->waker) == ROUSE_READY) {
		struct echo_side *s = &ex->side[ex->conns + st->accepted];
		int fd = st->accept.result;

		if (fd < 0)
			fail("accept: %s", strerror(-fd));
		rouse_future_drop(&st->accept.op.base);
		check_rouse("rouse_io_accept_init",
			    rouse_io_accept_init(&st->accept, st->listen_io));
		check_rouse("rouse_io_register",
			    rouse_io_register(ex->reactor, fd, &s->io));
		echo_side_start(s, fd, false, (uint32_t)st->accepted,
				(uint32_t)(ex->conns + st->accepted));
		st->accepted++;
	}
	if (st->nconnected == ex->conns && st->accepted == ex->conns)
		return ROUSE_READY;
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable echo_setup_vtable = {
	.poll = echo_setup_poll,
};

static void run_echo(const struct args *a)
{
	struct rouse_future root = { &echo_vtable };
	struct echo_setup st = { .base = { &echo_setup_vtable } };
	struct sockaddr_in addr;
	socklen_t len = sizeof(addr);
	struct rouse_parker parker;
	uint64_t k, rt, wall;
	int lfd;

	ex = xcalloc(1, sizeof(*ex));
	ex->conns = arg(a, "conns");
	ex->secs = arg(a, "secs");
	ex->size = (size_t)arg(a, "size");
	need_fds(2 * ex->conns + 64);
	ex->side = xcalloc(2 * ex->conns, sizeof(*ex->side));
	readyq_init(&ex->q, (uint32_t)(2 * ex->conns));
	ex->reactor = driven_reactor(a, &parker);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		fail_err("socket", errno);
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    listen(lfd, SOMAXCONN) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&addr, &len) != 0)
		fail_err("listening on 127.0.0.1:0", errno);
	check_rouse("rouse_io_register",
		    rouse_io_register(ex->reactor, lfd, &st.listen_io));
	check_rouse("rouse_io_accept_init",
		    rouse_io_accept_init(&st.accept, st.listen_io));
	st.connect = xcalloc(ex->conns, sizeof(*st.connect));
	st.connected = xcalloc(ex->conns, sizeof(*st.connected));
	for (k = 0; k < ex->conns; k++) {
		struct echo_side *c = &ex->side[k];
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
				SOCK_CLOEXEC, 0);

		if (fd < 0)
			fail_err("socket", errno);
		check_rouse("rouse_io_register",
			    rouse_io_register(ex->reactor, fd, &c->io));
		echo_side_start(c, fd, true, (uint32_t)k, (uint32_t)k);
		c->msg = xcalloc(ex->size, 1);
		for (size_t j = 0; j < ex->size; j++)
			c->msg[j] = (uint8_t)(k * 31 + j);
		check_rouse("rouse_io_connect_init",
			    rouse_io_connect_init(&st.connect[k], c->io,
						  (struct sockaddr *)&addr,
						  sizeof(addr)));
	}
	check_rouse("rouse_block_on_with (setup)",
		    rouse_block_on_with(&st.base, &parker));
	rouse_future_drop(&st.accept.op.base);
	free(st.connect);
	free(st.connected);
	/* Every side's read is pending before the measured phase. */
	for (k = 0; k < 2 * ex->conns; k++) {
		struct echo_side *s = &ex->side[k];
		struct rouse_waker w = qwaker_of(&s->qw);

		echo_read_init(s);
		if (poll_with(&s->rd.op.base, &w) == ROUSE_READY)
			fail("data on connection %" PRIu32 " before the run",
			     s->conn);
	}

	check_rouse("rouse_block_on_with", rouse_block_on_with(&root, &parker));

	rt = ex->rt;
	wall = ex->stop.at.wall - ex->m0.wall;
	if (rt == 0)
		fail("no round trip completed");
	print_head(rt, wall, ex->stop.at.cpu - ex->m0.cpu, (double)wall / rt);
	printf(" rtt_per_s=%.2f slow_writes=%" PRIu64,
	       (double)rt * 1e9 / (double)wall, ex->slow_writes);
	print_end();

	rouse_future_drop(&ex->timer.base);
	for (k = 0; k < 2 * ex->conns; k++) {
		struct echo_side *s = &ex->side[k];

		if (s->rd_live)
			rouse_future_drop(&s->rd.op.base);
		if (s->wr_live)
			rouse_future_drop(&s->wr.op.base);
		check_rouse("rouse_io_deregister", rouse_io_deregister(s->io));
		close(s->fd);
		free(s->msg);
		free(s->out);
	}
	check_rouse("rouse_io_deregister", rouse_io_deregister(st.listen_io));
	close(lfd);
	readyq_free(&ex->q);
	rouse_reactor_free(ex->reactor);
	free(ex->side);
	free(ex);
}

/* ---- tasks: yield, spawn, inject, spawn-mt -------------------------- */

/* A task that awaits a rouse_yield future iters times. */
struct yield_task {
	struct rouse_future base;
	uint64_t iters, done;
	struct rouse_yield y;		/* the await in progress */
	bool awaiting;
	struct task_bench *tb;
};

/* What the tasks of one run share. */
struct task_bench {
	uint64_t n, finished;		/* atomic: tasks that completed */
	struct rouse_waker root;	/* woken by the last task */
	uint8_t *ran;			/* spawn, inject, spawn-mt */
	struct mark t0, t1;		/* the measured phase */
	struct rouse_executor *ex;
	struct rouse_join_handle *h;
	uint64_t pin;
	int err;
};

static void task_finished(struct task_bench *tb)
{
	if (__atomic_add_fetch(&tb->finished, 1, __ATOMIC_ACQ_REL) == tb->n)
		rouse_waker_wake_by_ref(&tb->root);
}

static enum rouse_poll yield_task_poll(struct rouse_future *f,
				       struct rouse_context *cx)
{
	struct yield_task *t = (struct yield_task *)f;

	while (t->done < t->iters) {
		if (!t->awaiting) {
			rouse_yield_init(&t->y);
			t->awaiting = true;
		}
		if (rouse_yield_poll(&t->y.base, cx) != ROUSE_READY)
			return ROUSE_PENDING;
		t->awaiting = false;
		t->done++;
	}
	task_finished(t->tb);
	return ROUSE_READY;
}

static const struct rouse_future_vtable yield_task_vt = { yield_task_poll,
							   NULL };

/* The root of block_on: ready when all n tasks finished. */
struct tasks_root {
	struct rouse_future base;
	struct task_bench *tb;
};

static enum rouse_poll tasks_root_poll(struct rouse_future *f,
				       struct rouse_context *cx)
{
	struct task_bench *tb = ((struct tasks_root *)f)->tb;

	root_waker_keep(&tb->root, cx);
	if (__atomic_load_n(&tb->finished, __ATOMIC_ACQUIRE) == tb->n)
		return ROUSE_READY;
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable tasks_root_vt = { tasks_root_poll,
							   NULL };

static struct rouse_executor *make_executor(enum rouse_executor_kind kind,
					    unsigned int workers)
{
	struct rouse_executor_config cfg;
	struct rouse_executor *e;

	check_rouse("rouse_executor_config_init",
		    rouse_executor_config_init(&cfg));
	cfg.kind = kind;
	cfg.workers = workers;
	check_rouse("rouse_executor_new", rouse_executor_new(&cfg, &e));
	return e;
}

static void run_yield(const struct args *a)
{
	struct task_bench tb;
	struct tasks_root root = { { &tasks_root_vt }, &tb };
	uint64_t tasks = arg(a, "tasks"), iters = arg(a, "iters"), i;
	struct rouse_executor *e;

	memset(&tb, 0, sizeof(tb));
	tb.n = tasks;
	e = make_executor(ROUSE_EXECUTOR_CURRENT_THREAD, 1);
	/* A current-thread executor runs nothing before block_on. */
	for (i = 0; i < tasks; i++) {
		struct yield_task y;

		memset(&y, 0, sizeof(y));
		y.base.vtable = &yield_task_vt;
		y.iters = iters;
		y.tb = &tb;
		check_rouse("rouse_spawn", rouse_spawn(e, &y.base, sizeof(y),
						       NULL));
	}
	tb.t0 = mark_begin();
	check_rouse("rouse_executor_block_on",
		    rouse_executor_block_on(e, &root.base));
	tb.t1 = mark_end();
	print_head(tasks * iters, tb.t1.wall - tb.t0.wall,
		   tb.t1.cpu - tb.t0.cpu,
		   (double)(tb.t1.wall - tb.t0.wall) / (double)(tasks * iters));
	print_end();
	root_waker_release(&tb.root);
	check_rouse("rouse_executor_free", rouse_executor_free(e));
}

/* The trivial task of spawn, inject and spawn-mt: mark itself as run. */
struct unit_task {
	struct rouse_future base;
	struct task_bench *tb;
	uint64_t i;
};

static enum rouse_poll unit_poll(struct rouse_future *f,
				 struct rouse_context *cx)
{
	struct unit_task *u = (struct unit_task *)f;

	(void)cx;
	u->tb->ran[u->i]++;
	return ROUSE_READY;
}

static const struct rouse_future_vtable unit_vt = { unit_poll, NULL };

static enum rouse_poll unit_counted_poll(struct rouse_future *f,
					 struct rouse_context *cx)
{
	struct unit_task *u = (struct unit_task *)f;

	(void)cx;
	u->tb->ran[u->i]++;
	task_finished(u->tb);
	return ROUSE_READY;
}

static const struct rouse_future_vtable unit_counted_vt = { unit_counted_poll,
							     NULL };

static void check_ran_once(const struct task_bench *tb)
{
	uint64_t i;

	for (i = 0; i < tb->n; i++)
		if (tb->ran[i] != 1)
			fail("task %" PRIu64 " ran %u times", i, tb->ran[i]);
}

/*
 * spawn-mt and spawn: spawn n units with join handles, then await every
 * handle; t0 at the first spawn, t1 when the last handle is ready.
 */
struct spawner {
	struct rouse_future base;
	struct task_bench *tb;
	uint64_t next;
	bool spawned;
};

static enum rouse_poll spawner_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct spawner *sp = (struct spawner *)f;
	struct task_bench *tb = sp->tb;
	uint64_t i;
	int err;

	if (!sp->spawned) {
		sp->spawned = true;
		tb->t0 = mark_begin();
		for (i = 0; i < tb->n; i++) {
			struct unit_task u = { { &unit_vt }, tb, i };

			err = rouse_spawn(NULL, &u.base, sizeof(u), &tb->h[i]);
			if (err < 0) {
				tb->err = err;
				return ROUSE_READY;
			}
		}
	}
	while (sp->next < tb->n) {
		if (rouse_future_poll(&tb->h[sp->next].base, cx) !=
		    ROUSE_READY)
			return ROUSE_PENDING;
		if (tb->h[sp->next].result != 0) {
			tb->err = tb->h[sp->next].result;
			return ROUSE_READY;
		}
		sp->next++;
	}
	tb->t1 = mark_end();
	return ROUSE_READY;
}

static void spawner_drop(struct rouse_future *f)
{
	struct spawner *sp = (struct spawner *)f;
	uint64_t i;

	for (i = 0; i < sp->tb->n; i++)
		if (sp->tb->h[i].base.vtable != NULL)
			rouse_future_drop(&sp->tb->h[i].base);
}

static const struct rouse_future_vtable spawner_vt = { spawner_poll,
						       spawner_drop };

static double bytes_per_task(uint64_t n);

static void run_spawn_common(const struct args *a, bool multi)
{
	struct task_bench tb;
	struct spawner sp;
	struct rouse_join_handle root;
	uint64_t workers = multi ? arg(a, "workers") : 1;

	memset(&tb, 0, sizeof(tb));
	memset(&sp, 0, sizeof(sp));
	tb.n = arg(a, "n");
	tb.ran = xcalloc(tb.n, 1);
	tb.h = xcalloc(tb.n, sizeof(*tb.h));
	if (workers > 1024)
		usage_error("workers=%" PRIu64 " is more than 1024", workers);
	tb.ex = make_executor(multi ? ROUSE_EXECUTOR_MULTI_THREAD :
				      ROUSE_EXECUTOR_CURRENT_THREAD,
			      (unsigned int)workers);
	sp.base.vtable = &spawner_vt;
	sp.tb = &tb;
	if (multi) {
		/* From inside one task running on the executor. */
		check_rouse("rouse_spawn", rouse_spawn(tb.ex, &sp.base,
						       sizeof(sp), &root));
		check_rouse("rouse_executor_block_on",
			    rouse_executor_block_on(tb.ex, &root.base));
		check_rouse("spawner task", root.result);
		rouse_future_drop(&root.base);
	} else {
		check_rouse("rouse_executor_block_on",
			    rouse_executor_block_on(tb.ex, &sp.base));
		rouse_future_drop(&sp.base);
	}
	check_rouse("spawn", tb.err);
	check_ran_once(&tb);
	print_head(tb.n, tb.t1.wall - tb.t0.wall, tb.t1.cpu - tb.t0.cpu,
		   (double)(tb.t1.wall - tb.t0.wall) / (double)tb.n);
	if (multi)
		printf(" workers=%" PRIu64, workers);
	else
		printf(" bytes_per_task=%.1f", bytes_per_task(tb.n));
	print_end();
	check_rouse("rouse_executor_free", rouse_executor_free(tb.ex));
	free(tb.h);
	free(tb.ran);
}

/*
 * The memory of a task beyond its future, as malloc sees it: spawn n
 * tasks that never run (a current-thread executor outside block_on) and
 * divide the growth of the heap's in-use bytes.  Untimed, before the run.
 */
static double bytes_per_task(uint64_t n)
{
	struct rouse_executor *e = make_executor(ROUSE_EXECUTOR_CURRENT_THREAD,
						 1);
	struct task_bench tb;
	struct mallinfo2 m0, m1;
	uint64_t i;

	memset(&tb, 0, sizeof(tb));
	m0 = mallinfo2();
	for (i = 0; i < n; i++) {
		struct unit_task u = { { &unit_vt }, &tb, i };

		check_rouse("rouse_spawn", rouse_spawn(e, &u.base, sizeof(u),
						       NULL));
	}
	m1 = mallinfo2();
	check_rouse("rouse_executor_free", rouse_executor_free(e));
	return (double)(m1.uordblks - m0.uordblks) / (double)n -
	       (double)sizeof(struct unit_task);
}

static void run_spawn(const struct args *a)
{
	run_spawn_common(a, false);
}

static void run_spawn_mt(const struct args *a)
{
	run_spawn_common(a, true);
}

/*
 * inject: a foreign thread spawns n detached units onto a current-thread
 * executor that runs in block_on on the main thread; the last unit wakes
 * the root.  t0 just before the first spawn, t1 when the root sees the
 * last unit done.
 */
static pthread_barrier_t inject_go;

static void *inject_sender(void *arg)
{
	struct task_bench *tb = arg;
	uint64_t i;
	int err;

	pin_thread(tb->pin, 1);
	pthread_barrier_wait(&inject_go);
	tb->t0 = mark_begin();
	for (i = 0; i < tb->n; i++) {
		struct unit_task u = { { &unit_counted_vt }, tb, i };

		err = rouse_spawn(tb->ex, &u.base, sizeof(u), NULL);
		if (err < 0) {
			tb->err = err;
			break;
		}
	}
	return NULL;
}

/* Root of inject: handshake first (the loop runs), then wait for all. */
struct inject_root {
	struct rouse_future base;
	struct task_bench *tb;
	bool started;
};

static enum rouse_poll inject_root_poll(struct rouse_future *f,
					struct rouse_context *cx)
{
	struct inject_root *r = (struct inject_root *)f;
	struct task_bench *tb = r->tb;

	if (!r->started) {
		r->started = true;
		root_waker_keep(&tb->root, cx);
		pthread_barrier_wait(&inject_go);
	}
	if (__atomic_load_n(&tb->finished, __ATOMIC_ACQUIRE) == tb->n) {
		tb->t1 = mark_end();
		return ROUSE_READY;
	}
	return tb->err != 0 ? ROUSE_READY : ROUSE_PENDING;
}

static const struct rouse_future_vtable inject_root_vt = { inject_root_poll,
							    NULL };

static void run_inject(const struct args *a)
{
	struct task_bench tb;
	struct inject_root root;
	pthread_t ts;
	int err;

	memset(&tb, 0, sizeof(tb));
	tb.n = arg(a, "n");
	tb.pin = arg(a, "pin");
	tb.ran = xcalloc(tb.n, 1);
	tb.ex = make_executor(ROUSE_EXECUTOR_CURRENT_THREAD, 1);
	root.base.vtable = &inject_root_vt;
	root.tb = &tb;
	root.started = false;
	err = pthread_barrier_init(&inject_go, NULL, 2);
	if (err != 0)
		fail_err("pthread_barrier_init", err);
	pin_thread(tb.pin, 0);
	err = pthread_create(&ts, NULL, inject_sender, &tb);
	if (err != 0)
		fail_err("pthread_create", err);
	check_rouse("rouse_executor_block_on",
		    rouse_executor_block_on(tb.ex, &root.base));
	pthread_join(ts, NULL);
	check_rouse("rouse_spawn", tb.err);
	check_ran_once(&tb);
	print_head(tb.n, tb.t1.wall - tb.t0.wall, tb.t1.cpu - tb.t0.cpu,
		   (double)(tb.t1.wall - tb.t0.wall) / (double)tb.n);
	print_end();
	root_waker_release(&tb.root);
	pthread_barrier_destroy(&inject_go);
	check_rouse("rouse_executor_free", rouse_executor_free(tb.ex));
	free(tb.ran);
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
	/* A write to a closed socket is an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	a.bench->run(&a);
	return 0;
}
