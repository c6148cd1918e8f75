// SPDX-License-Identifier: MIT
/*
 * bench/join.c - the join benchmark: one rouse_join of n sleeps with
 * distinct deadlines, run to its end; the CPU it costs per sleep.
 *
 *   rouse-bench-join join [n=10000] [step_ns=1000] [clock=test|real]
 *                         [reactor=local|shared]
 *
 * This is not one of the contract's benchmarks (the peers have no
 * combinators); it measures one thing about rouse: what a join costs per
 * child as the number of children grows.  A join that re-polls every
 * child on any wake costs O(n) per completion and O(n^2) in all; one
 * with a waker per child costs O(1) per completion, so its cost per child
 * stays flat from a hundred children to a hundred thousand.
 *
 * Sleep i is due at base + (rank[i] + 1) * step_ns, where rank is a fixed
 * pseudo-random permutation of 0..n-1: the deadlines are distinct, and
 * the order in which the sleeps complete is not their order in the join.
 * Each sleep sits in a small wrapper that counts its polls, so the result
 * line says how many polls the join made in all (child_polls=) and per
 * child (polls_per_child=): n^2/2 or so for a scanning join, 2 for one
 * with per-child wakers (the first poll, and the one after its wake).
 *
 * clock=test (the default): the reactor's clock is paused, and the root
 * future, each time the join answers pending, advances it by step_ns,
 * which fires exactly one sleep on the calling thread; its wake reaches
 * the root's waker inside the root's own poll, so rouse_block_on() polls
 * again without parking.  One wake per completion, no system call of the
 * executor, and the same work whatever the load of the machine: this is
 * the mode to run under `valgrind --tool=callgrind
 * --toggle-collect=join_measured` for instruction counts.
 * clock=real: the deadlines are on the real clock, 1 ms after setup plus
 * the ranks' steps, and the root runs in rouse_block_on_with() on the
 * reactor's parker; a reactor turn fires every sleep that is due, so
 * several may complete per wake.
 *
 * Measured phase: from just before the first poll of the join (which
 * polls every sleep once, arming its timer) to its completion.
 * ops = n, ns_per_op = cpu_ns / n (CPU per child, as for the timers
 * benchmark), wall_ns and cpu_ns as in the contract.  Check: the join
 * completed every sleep, each with result 0, and with the test clock
 * each advance fired exactly one sleep.
 *
 * Standalone for now: the benchmark is the part between the lines "the
 * benchmark" and "the harness of this program", written against the same
 * few names as rouse-bench's harness (fail, check_rouse, mark_begin,
 * print_head, print_end, arg, xcalloc, driven_reactor).  Moved into
 * rouse-bench's family layout (one file per benchmark, bench.h), the
 * harness part and the declarations before the benchmark go, bench.h is
 * included instead, bench_join loses its static and joins the suite
 * table; join_measured() keeps its name for callgrind.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rouse/combinator.h>
#include <rouse/executor.h>
#include <rouse/reactor.h>

/* ---- what the benchmark needs from a harness ------------------------- */

#define MAX_PARAMS 5
#define COUNT_MAX (UINT64_C(1) << 40)

struct param {
	const char *key;	/* NULL ends the list */
	const char *def;	/* default, as written on the command line */
	uint64_t min;
	uint64_t max;
	const char *choices;	/* NULL, or "a|b": the value is an index */
};

struct bench;

struct args {
	const struct bench *bench;
	uint64_t val[MAX_PARAMS];
};

struct bench {
	const char *name;
	struct param params[MAX_PARAMS];
	const char *(*check)(const struct args *a);
	void (*run)(const struct args *a);
};

struct mark {
	uint64_t wall;
	uint64_t cpu;
};

#define REACTOR { "reactor", "local", 0, 1, "local|shared" }

__attribute__((noreturn, format(printf, 2, 3)))
static void die(int status, const char *fmt, ...);
#define fail(...) die(1, __VA_ARGS__)
#define usage_error(...) die(2, __VA_ARGS__)
__attribute__((noreturn))
static void fail_err(const char *what, int err);
static void check_rouse(const char *what, int err);
static struct mark mark_begin(void);
static struct mark mark_end(void);
static void print_head(uint64_t ops, uint64_t wall_ns, uint64_t cpu_ns,
		       double ns_per_op);
static void print_end(void);
static uint64_t arg(const struct args *a, const char *key);
static void *xcalloc(uint64_t n, size_t size);
static struct rouse_reactor *driven_reactor(const struct args *a,
					    struct rouse_parker *parker);

/* ---- the benchmark ---------------------------------------------------- */

/* Largest n: the ranks are 32-bit, and n sleeps must fit in memory. */
#define JOIN_MAX (UINT64_C(1) << 26)

/* A sleep that counts its polls. */
struct counted_sleep {
	struct rouse_future base;
	uint64_t *polls;
	struct rouse_sleep sleep;
};

static enum rouse_poll counted_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct counted_sleep *c = (struct counted_sleep *)f;

	(*c->polls)++;
	return c->sleep.base.vtable->poll(&c->sleep.base, cx);
}

static void counted_drop(struct rouse_future *f)
{
	struct counted_sleep *c = (struct counted_sleep *)f;

	rouse_future_drop(&c->sleep.base);
}

static const struct rouse_future_vtable counted_vtable = {
	.poll = counted_poll,
	.drop = counted_drop,
};

static struct join_bench {
	struct rouse_reactor *reactor;
	struct counted_sleep *sleeps;
	struct rouse_future **futures;
	bool *done;
	struct rouse_join join;
	uint64_t n, step_ns, polls, advances;
	bool test_clock;
} jb;

/*
 * The root of block_on: the join, and with the test clock the hand that
 * moves time on by one step whenever the join waits.
 */
static enum rouse_poll join_root_poll(struct rouse_future *f,
				      struct rouse_context *cx)
{
	int fired;

	(void)f;
	if (rouse_future_poll(&jb.join.base, cx) == ROUSE_READY)
		return ROUSE_READY;
	if (jb.test_clock) {
		fired = rouse_reactor_clock_advance(jb.reactor,
						    (int64_t)jb.step_ns);
		check_rouse("rouse_reactor_clock_advance", fired);
		if (fired != 1)
			fail("an advance fired %d sleeps, not 1", fired);
		jb.advances++;
	}
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable join_root_vtable = {
	.poll = join_root_poll,
};

/*
 * The measured phase, in a function of its own so that callgrind can
 * count it alone (--toggle-collect=join_measured).
 */
__attribute__((noinline))
void join_measured(struct rouse_future *root, struct rouse_parker *parker);

__attribute__((noinline))
void join_measured(struct rouse_future *root, struct rouse_parker *parker)
{
	if (parker != NULL)
		check_rouse("rouse_block_on_with",
			    rouse_block_on_with(root, parker));
	else
		check_rouse("rouse_block_on", rouse_block_on(root));
}

static uint64_t mix64(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static void run_join(const struct args *a)
{
	struct rouse_future root = { &join_root_vtable };
	struct rouse_parker parker;
	struct mark m0, m1;
	uint32_t *rank;
	uint64_t i;
	int64_t base;

	memset(&jb, 0, sizeof(jb));
	jb.n = arg(a, "n");
	jb.step_ns = arg(a, "step_ns");
	jb.test_clock = arg(a, "clock") == 0;
	jb.reactor = driven_reactor(a, &parker);
	if (jb.test_clock)
		check_rouse("rouse_reactor_clock_pause",
			    rouse_reactor_clock_pause(jb.reactor));

	/* A fixed shuffle of the deadlines (Fisher-Yates on splitmix64). */
	rank = xcalloc(jb.n, sizeof(*rank));
	for (i = 0; i < jb.n; i++)
		rank[i] = (uint32_t)i;
	for (i = jb.n - 1; i > 0; i--) {
		uint64_t k = mix64(i) % (i + 1);
		uint32_t t = rank[i];

		rank[i] = rank[k];
		rank[k] = t;
	}

	jb.sleeps = xcalloc(jb.n, sizeof(*jb.sleeps));
	jb.futures = xcalloc(jb.n, sizeof(*jb.futures));
	jb.done = xcalloc(jb.n, sizeof(*jb.done));
	base = rouse_reactor_now(jb.reactor);
	check_rouse("rouse_reactor_now", (int)(base < 0 ? base : 0));
	if (!jb.test_clock)
		base += 1000000;
	for (i = 0; i < jb.n; i++) {
		struct counted_sleep *c = &jb.sleeps[i];

		c->base.vtable = &counted_vtable;
		c->polls = &jb.polls;
		check_rouse("rouse_sleep_until_init",
			    rouse_sleep_until_init(&c->sleep, jb.reactor,
				    base + (int64_t)((rank[i] + 1) *
						     jb.step_ns)));
		jb.futures[i] = &c->base;
	}
	free(rank);
	check_rouse("rouse_join_init",
		    rouse_join_init(&jb.join, jb.futures, jb.done, jb.n));

	m0 = mark_begin();
	join_measured(&root, jb.test_clock ? NULL : &parker);
	m1 = mark_end();

	if (jb.join.remaining != 0)
		fail("the join ended with %zu sleeps left", jb.join.remaining);
	for (i = 0; i < jb.n; i++) {
		if (!jb.done[i] || jb.sleeps[i].sleep.result != 0)
			fail("sleep %" PRIu64 ": done %d, result %d", i,
			     jb.done[i], jb.sleeps[i].sleep.result);
		rouse_future_drop(&jb.sleeps[i].base);
	}
	if (jb.test_clock && jb.advances != jb.n)
		fail("%" PRIu64 " advances for %" PRIu64 " sleeps",
		     jb.advances, jb.n);
	rouse_future_drop(&jb.join.base);

	print_head(jb.n, m1.wall - m0.wall, m1.cpu - m0.cpu,
		   (double)(m1.cpu - m0.cpu) / (double)jb.n);
	printf(" child_polls=%" PRIu64 " polls_per_child=%.2f clock=%s",
	       jb.polls, (double)jb.polls / (double)jb.n,
	       jb.test_clock ? "test" : "real");
	print_end();

	rouse_reactor_free(jb.reactor);
	free(jb.sleeps);
	free(jb.futures);
	free(jb.done);
}

static const struct bench bench_join = {
	"join",
	{ { "n", "10000", 1, JOIN_MAX, NULL },
	  { "step_ns", "1000", 1, UINT64_C(1) << 20, NULL },
	  { "clock", "test", 0, 1, "test|real" },
	  REACTOR },
	NULL, run_join,
};

/* ---- the harness of this program ---------------------------------------- */

static const char *prog = "rouse-bench-join";
static const char *bench_name;
static const char *reactor_word;

static void die(int status, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: %s%s", prog, bench_name ? bench_name : "",
		bench_name ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static void fail_err(const char *what, int err)
{
	fail("%s: %s", what, strerror(err));
}

static void check_rouse(const char *what, int err)
{
	if (err < 0)
		fail_err(what, -err);
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) != 0)
		fail_err("clock_gettime", errno);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct mark mark_begin(void)
{
	struct mark m;

	m.cpu = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	m.wall = clock_ns(CLOCK_MONOTONIC);
	return m;
}

static struct mark mark_end(void)
{
	struct mark m;

	m.wall = clock_ns(CLOCK_MONOTONIC);
	m.cpu = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	return m;
}

static void print_head(uint64_t ops, uint64_t wall_ns, uint64_t cpu_ns,
		       double ns_per_op)
{
	printf("bench=%s impl=rouse ops=%" PRIu64 " wall_ns=%" PRIu64
	       " cpu_ns=%" PRIu64 " ns_per_op=%.2f", bench_name, ops,
	       wall_ns, cpu_ns, ns_per_op);
}

static void print_end(void)
{
	if (reactor_word != NULL)
		printf(" reactor=%s", reactor_word);
	putchar('\n');
	if (fflush(stdout) != 0 || ferror(stdout))
		fail("writing the result line to stdout failed");
}

static uint64_t arg(const struct args *a, const char *key)
{
	int i;

	for (i = 0; i < MAX_PARAMS && a->bench->params[i].key != NULL; i++)
		if (strcmp(a->bench->params[i].key, key) == 0)
			return a->val[i];
	fprintf(stderr, "%s: internal error: no parameter %s\n", prog, key);
	abort();
}

/* A reactor for this thread to drive; reactor=local takes no lock. */
static struct rouse_reactor *driven_reactor(const struct args *a,
					    struct rouse_parker *parker)
{
	struct rouse_reactor *r;
	bool local = arg(a, "reactor") == 0;

	reactor_word = local ? "local" : "shared";
	check_rouse("rouse_reactor_new",
		    rouse_reactor_new(&r, local ? ROUSE_REACTOR_LOCAL : 0));
	check_rouse("rouse_reactor_parker", rouse_reactor_parker(r, parker));
	return r;
}

static void *xcalloc(uint64_t n, size_t size)
{
	void *p;

	if (n == 0 || n > SIZE_MAX / size)
		fail("out of memory (%" PRIu64 " x %zu bytes)", n, size);
	p = calloc((size_t)n, size);
	if (p == NULL)
		fail("out of memory (%" PRIu64 " x %zu bytes)", n, size);
	return p;
}

/* The value of one key=value word, checked against p; exit 2 if bad. */
static uint64_t parse_value(const struct param *p, const char *text)
{
	uint64_t v = 0, i;
	const char *c;

	if (p->choices != NULL) {
		size_t len = strlen(text);

		c = p->choices;
		for (i = 0;; i++) {
			const char *bar = strchr(c, '|');
			size_t k = bar ? (size_t)(bar - c) : strlen(c);

			if (k == len && strncmp(c, text, len) == 0)
				return i;
			if (bar == NULL)
				break;
			c = bar + 1;
		}
		usage_error("bad value %s=%s (expected one of %s)", p->key,
			    text, p->choices);
	}
	if (*text == '\0')
		usage_error("bad value %s= (expected a decimal integer)",
			    p->key);
	for (c = text; *c != '\0'; c++) {
		unsigned int d = (unsigned int)(*c - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			usage_error("bad value %s=%s", p->key, text);
		v = v * 10 + d;
	}
	if (v < p->min || v > p->max)
		usage_error("bad value %s=%s (must be between %" PRIu64
			    " and %" PRIu64 ")", p->key, text, p->min,
			    p->max);
	return v;
}

int main(int argc, char **argv)
{
	const struct bench *b = &bench_join;
	struct args a;
	int i, j;

	if (argc < 2 || strcmp(argv[1], b->name) != 0) {
		fprintf(stderr, "usage: %s join [n=10000] [step_ns=1000] "
			"[clock=test|real] [reactor=local|shared]\n", prog);
		return 2;
	}
	bench_name = b->name;
	a.bench = b;
	for (j = 0; j < MAX_PARAMS && b->params[j].key != NULL; j++)
		a.val[j] = parse_value(&b->params[j], b->params[j].def);
	for (i = 2; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		size_t len = eq ? (size_t)(eq - argv[i]) : 0;

		if (eq == NULL)
			usage_error("bad argument '%s' (expected key=value)",
				    argv[i]);
		for (j = 0; j < MAX_PARAMS && b->params[j].key != NULL; j++)
			if (strlen(b->params[j].key) == len &&
			    strncmp(b->params[j].key, argv[i], len) == 0)
				break;
		if (j == MAX_PARAMS || b->params[j].key == NULL)
			usage_error("unknown parameter '%.*s'", (int)len,
				    argv[i]);
		a.val[j] = parse_value(&b->params[j], eq + 1);
	}
	b->run(&a);
	return 0;
}
