// SPDX-License-Identifier: MIT
/*
 * bench/bench.h - what rouse-bench's harness and its benchmarks offer
 * each other, and nothing more.
 *
 * The harness (rouse-bench.c) offers every benchmark: errors and the exit
 * statuses, the clocks and phase marks, threads (pinning, start, join, a
 * checked barrier), the latency statistics, the result line, the values
 * of the run's parameters, and a few checked helpers (memory, descriptors,
 * a reactor driven by the calling thread).  Each benchmark's file offers
 * the harness one thing: its descriptor, struct bench, which the harness
 * lists in its table and calls through.  Helpers that several benchmarks
 * share live in their own files with their own headers (leaf.h, sleeps.h,
 * tasks.h); a benchmark never calls another benchmark.
 */
#ifndef ROUSE_BENCH_BENCH_H
#define ROUSE_BENCH_BENCH_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <rouse/reactor.h>

/* ---- errors and exit statuses --------------------------------------- */

enum {
	EXIT_FAIL = 1,		/* a system call or the run's check failed */
	EXIT_USAGE = 2,		/* unknown benchmark, key or value */
	EXIT_UNSUPPORTED = 3,	/* no such benchmark in rouse (yet) */
};

/* "rouse-bench: NAME: message" on stderr, then exit(status). */
__attribute__((noreturn, format(printf, 2, 3)))
void die(int status, const char *fmt, ...);

#define fail(...) die(EXIT_FAIL, __VA_ARGS__)
#define usage_error(...) die(EXIT_USAGE, __VA_ARGS__)

/* A call that failed with the (positive) error number err. */
__attribute__((noreturn))
void fail_err(const char *what, int err);

/* A rouse call that returned a negative errno fails the run. */
static inline void check_rouse(const char *what, int err)
{
	if (err < 0)
		fail_err(what, -err);
}

/* ---- clocks ----------------------------------------------------------- */

/*
 * Inline, like lat_clamp() below: pingpong and wakestorm read the clock
 * inside their measured phase, and a call there would be measured too.
 */
static inline uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) != 0)
		fail_err("clock_gettime", errno);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/* One instant on both clocks; a phase is the difference of two marks. */
struct mark {
	uint64_t wall;
	uint64_t cpu;
};

/* The CPU clock outside the wall clock: begin reads it first, end last. */
struct mark mark_begin(void);
struct mark mark_end(void);

/* ---- threads ---------------------------------------------------------- */

/*
 * pin=1: role 0 (the thread that owns the measured loop) goes to the
 * first CPU of the startup affinity mask, role 1 to the second.  pin=0:
 * the scheduler decides.
 */
void pin_thread(uint64_t pin, int role);
/* Start fn(arg) on a new thread, or fail the run. */
pthread_t thread_start(void *(*fn)(void *), void *arg);
/* Wait for a thread of thread_start() to end, or fail the run. */
void thread_join(pthread_t t);
/* pthread_barrier_wait(), failing the run on an error. */
void barrier_wait(pthread_barrier_t *b);

/* ---- statistics ------------------------------------------------------- */

/* A latency sample in ns, clamped to 32 bits. */
static inline uint32_t lat_clamp(uint64_t ns)
{
	return ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

void lat_sort(uint32_t *v, uint64_t n);
/* Nearest-rank percentile pct of the n sorted samples v. */
uint32_t percentile(const uint32_t *v, uint64_t n, unsigned int pct);

/* ---- the result line -------------------------------------------------- */

/* The six mandatory fields; the caller appends extras, then print_end. */
void print_head(uint64_t ops, uint64_t wall_ns, uint64_t cpu_ns,
		double ns_per_op);
/* The six fields of the phase m0..m1, ns_per_op its wall time per op. */
void print_phase(uint64_t ops, struct mark m0, struct mark m1);
/* reactor= when the run made a driven_reactor(), the newline, a flush. */
void print_end(void);

/* ---- benchmarks and their parameters ---------------------------------- */

#define MAX_PARAMS 5

/* Largest value of a count: keeps n + 2 and n * 100 far from overflow. */
#define COUNT_MAX (UINT64_C(1) << 40)

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

/* What a benchmark's file exports: its one descriptor. */
struct bench {
	const char *name;
	struct param params[MAX_PARAMS];
	/* Cross-parameter rule: NULL or an error message (exit 2). */
	const char *(*check)(const struct args *a);
	/* Runs the benchmark and prints its line; NULL: unsupported. */
	void (*run)(const struct args *a);
};

#define COUNT(key, def) { key, def, 1, COUNT_MAX, NULL }
#define PIN { "pin", "1", 0, 1, NULL }
/*
 * rouse-bench's own key for the benchmarks that run on reactors: "local"
 * makes them with ROUSE_REACTOR_LOCAL (one thread uses each, so it takes
 * no lock, as the peers' loops take none), "shared" without.
 */
#define REACTOR { "reactor", "local", 0, 1, "local|shared" }

/* Value of key, which must be one of the benchmark's parameters. */
uint64_t arg(const struct args *a, const char *key);
/* The word of a choice parameter, for the result line. */
const char *arg_word(const struct args *a, const char *key, char *buf,
		     size_t size);

/* ---- checked helpers -------------------------------------------------- */

/* calloc that fails the run (exit 1) instead of returning NULL. */
void *xcalloc(uint64_t n, size_t size);

/*
 * Raise the soft RLIMIT_NOFILE to the hard limit; fail clearly when fewer
 * than need descriptors are allowed even then.
 */
void need_fds(uint64_t need);

struct sockaddr_in;

/*
 * A TCP listener on 127.0.0.1, on a port the kernel chooses, which *addr
 * receives; flags are added to socket()'s type (SOCK_CLOEXEC always is).
 * Fails the run on error.
 */
int listen_loopback(int flags, struct sockaddr_in *addr);

/*
 * A reactor driven by the calling thread, and the parker that drives it;
 * ROUSE_REACTOR_LOCAL unless the run says reactor=shared (which the
 * result line then says too).
 */
struct rouse_reactor *driven_reactor(const struct args *a,
				     struct rouse_parker *parker);

/* ---- the benchmarks, in the order of the harness's table -------------- */

extern const struct bench bench_yield;		/* yield.c */
extern const struct bench bench_spawn;		/* spawn.c */
extern const struct bench bench_pingpong;	/* pingpong.c */
extern const struct bench bench_wakestorm;	/* wakestorm.c */
extern const struct bench bench_timers;		/* timers.c */
extern const struct bench bench_timeout;	/* timeout.c */
extern const struct bench bench_fds;		/* fds.c */
extern const struct bench bench_echo;		/* echo.c */
extern const struct bench bench_inject;		/* inject.c */
extern const struct bench bench_spawn_mt;	/* spawn-mt.c */
extern const struct bench bench_join;		/* join.c: not in the contract */
extern const struct bench bench_echo_mt;	/* echo-mt.c: not in the contract */

#endif
