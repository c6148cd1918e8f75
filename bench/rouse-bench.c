// SPDX-License-Identifier: MIT
/*
 * bench/rouse-bench.c - the harness of rouse's program of the benchmark
 * suite: the command line, the clocks, the statistics, the result line
 * and the table of benchmarks.  It calls the benchmarks only through
 * their descriptors in suite[], and each benchmark calls only what
 * bench.h declares (and the shared helpers of leaf.h, sleeps.h, tasks.h).
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
 * Each benchmark is one file (yield.c, spawn.c, pingpong.c, ...) that
 * exports one struct bench: its keys with their defaults and ranges, an
 * optional cross-parameter check, and the function that runs it (NULL
 * until it is written).  The opening comment of each file says what the
 * benchmark does in rouse's terms.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "bench.h"

static const char *prog = "rouse-bench";
static const char *bench_name;
static cpu_set_t startup_cpus;	/* the affinity mask at startup */

/* ---- errors ------------------------------------------------------- */

void die(int status, const char *fmt, ...)
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

void fail_err(const char *what, int err)
{
	fail("%s: %s", what, strerror(err));
}

/* ---- clocks ------------------------------------------------------- */

/*
 * The process CPU clock is a system call: read it first when a phase
 * opens and last when it closes, so that it stays outside the wall time.
 */
struct mark mark_begin(void)
{
	struct mark m;

	m.cpu = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	m.wall = now_ns();
	return m;
}

struct mark mark_end(void)
{
	struct mark m;

	m.wall = now_ns();
	m.cpu = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	return m;
}

/* ---- threads ------------------------------------------------------ */

/* Both roles go to the first CPU when only one is allowed. */
void pin_thread(uint64_t pin, int role)
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

pthread_t thread_start(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	int err = pthread_create(&t, NULL, fn, arg);

	if (err != 0)
		fail_err("pthread_create", err);
	return t;
}

void thread_join(pthread_t t)
{
	int err = pthread_join(t, NULL);

	if (err != 0)
		fail_err("pthread_join", err);
}

void barrier_wait(pthread_barrier_t *b)
{
	int err = pthread_barrier_wait(b);

	if (err != 0 && err != PTHREAD_BARRIER_SERIAL_THREAD)
		fail_err("pthread_barrier_wait", err);
}

/* ---- statistics --------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

void lat_sort(uint32_t *v, uint64_t n)
{
	qsort(v, n, sizeof(*v), cmp_u32);
}

uint32_t percentile(const uint32_t *v, uint64_t n, unsigned int pct)
{
	uint64_t rank = (pct * n + 99) / 100;

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

/* ---- the result line ---------------------------------------------- */

void print_head(uint64_t ops, uint64_t wall_ns, uint64_t cpu_ns,
		double ns_per_op)
{
	printf("bench=%s impl=rouse ops=%" PRIu64 " wall_ns=%" PRIu64
	       " cpu_ns=%" PRIu64 " ns_per_op=%.2f", bench_name, ops,
	       wall_ns, cpu_ns, ns_per_op);
}

void print_phase(uint64_t ops, struct mark m0, struct mark m1)
{
	uint64_t wall = m1.wall - m0.wall;

	print_head(ops, wall, m1.cpu - m0.cpu, (double)wall / (double)ops);
}

/* reactor=local|shared, once driven_reactor() has made a reactor. */
static const char *reactor_note;

void print_end(void)
{
	if (reactor_note != NULL)
		printf(" reactor=%s", reactor_note);
	putchar('\n');
	if (fflush(stdout) != 0 || ferror(stdout))
		fail("writing the result line to stdout failed");
}

/* ---- checked helpers ---------------------------------------------- */

void *xcalloc(uint64_t n, size_t size)
{
	void *p;

	if (n > SIZE_MAX / (size ? size : 1))
		fail("out of memory (%" PRIu64 " x %zu bytes)", n, size);
	p = calloc(n ? (size_t)n : 1, size ? size : 1);
	if (p == NULL)
		fail("out of memory (%" PRIu64 " x %zu bytes)", n, size);
	return p;
}

int listen_loopback(int flags, struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);

	if (fd < 0)
		fail_err("socket", errno);
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) != 0 ||
	    listen(fd, SOMAXCONN) != 0 ||
	    getsockname(fd, (struct sockaddr *)addr, &len) != 0)
		fail_err("listening on 127.0.0.1:0", errno);
	return fd;
}

void need_fds(uint64_t need)
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

struct rouse_reactor *driven_reactor(const struct args *a,
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

/* ---- the suite ---------------------------------------------------- */

static const struct bench *const suite[] = {
	&bench_yield,
	&bench_spawn,
	&bench_pingpong,
	&bench_wakestorm,
	&bench_timers,
	&bench_timeout,
	&bench_fds,
	&bench_echo,
	&bench_inject,
	&bench_spawn_mt,
	&bench_join,
	&bench_echo_mt,
};

#define SUITE_SIZE (sizeof(suite) / sizeof(suite[0]))

static void print_usage(void)
{
	size_t b;
	int i;

	fprintf(stderr, "usage: %s NAME [key=value ...]\n", prog);
	for (b = 0; b < SUITE_SIZE; b++) {
		fprintf(stderr, "  %-10s", suite[b]->name);
		for (i = 0; i < MAX_PARAMS && suite[b]->params[i].key; i++) {
			const struct param *p = &suite[b]->params[i];

			if (p->choices != NULL)
				fprintf(stderr, " [%s=%s: %s]", p->key,
					p->def, p->choices);
			else
				fprintf(stderr, " %s=%s", p->key, p->def);
		}
		if (suite[b]->run == NULL)
			fprintf(stderr, "  (unsupported)");
		fputc('\n', stderr);
	}
}

/* ---- parameters --------------------------------------------------- */

/* Index of key in a's benchmark; an internal error when it has none. */
static int param_index(const struct args *a, const char *key)
{
	int i;

	for (i = 0; i < MAX_PARAMS && a->bench->params[i].key != NULL; i++)
		if (strcmp(a->bench->params[i].key, key) == 0)
			return i;
	fprintf(stderr, "%s: internal error: %s has no parameter %s\n", prog,
		a->bench->name, key);
	abort();
}

uint64_t arg(const struct args *a, const char *key)
{
	return a->val[param_index(a, key)];
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

const char *arg_word(const struct args *a, const char *key, char *buf,
		     size_t size)
{
	int i = param_index(a, key);

	return choice_name(&a->bench->params[i], a->val[i], buf, size);
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
		if (strcmp(suite[k]->name, argv[1]) == 0)
			b = suite[k];
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
