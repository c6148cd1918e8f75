// SPDX-License-Identifier: MIT
/* tests/check_log.c - log levels, sinks, the stderr format and ROUSE_LOG. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <regex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rouse/executor.h>
#include <rouse/log.h>
#include <rouse/reactor.h>

#include "testutil.h"

/* ---- a recording sink ---------------------------------------------- */

#define REC_LINES 512

struct rec_line {
	enum rouse_log_level level;
	char module[16];
	char message[256];
};

struct recorder {
	pthread_mutex_t lock;
	int n;
	int overflow;
	struct rec_line lines[REC_LINES];
};

static void rec_init(struct recorder *r)
{
	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(pthread_mutex_init(&r->lock, NULL), 0);
}

static void rec_sink(void *data, enum rouse_log_level level,
		     const char *module, const char *message)
{
	struct recorder *r = data;

	pthread_mutex_lock(&r->lock);
	if (r->n < REC_LINES) {
		struct rec_line *l = &r->lines[r->n++];

		l->level = level;
		snprintf(l->module, sizeof(l->module), "%s", module);
		snprintf(l->message, sizeof(l->message), "%s", message);
	} else {
		r->overflow++;
	}
	pthread_mutex_unlock(&r->lock);
}

/* Index of the first line at or after from containing text, or -1. */
static int rec_find(struct recorder *r, int from, const char *text)
{
	int i;

	for (i = from; i < r->n; i++)
		if (strstr(r->lines[i].message, text) != NULL)
			return i;
	return -1;
}

static int rec_count(struct recorder *r, const char *text)
{
	int i, n = 0;

	for (i = 0; i < r->n; i++)
		n += strstr(r->lines[i].message, text) != NULL;
	return n;
}

/* Every line came from module at level. */
static void rec_assert_all(struct recorder *r, const char *module,
			   enum rouse_log_level level)
{
	int i;

	ck_assert_int_eq(r->overflow, 0);
	for (i = 0; i < r->n; i++) {
		ck_assert_str_eq(r->lines[i].module, module);
		ck_assert_msg(r->lines[i].level == level,
			      "line %d (%s) has level %d, not %d", i,
			      r->lines[i].message, (int)r->lines[i].level,
			      (int)level);
	}
}

/* ---- futures that make the executor log ---------------------------- */

struct lfut;
typedef enum rouse_poll lfut_fn(struct lfut *f, struct rouse_context *cx);

struct lfut {
	struct rouse_future base;
	lfut_fn *fn;
	int polls;
	struct rouse_waker kept;
	uint64_t parks0;
	atomic_int woken;
	pthread_t thread;
	int nested_result;
	int saved_errno;
};

static enum rouse_poll lfut_poll(struct rouse_future *self,
				 struct rouse_context *cx)
{
	struct lfut *f = (struct lfut *)self;

	f->polls++;
	return f->fn(f, cx);
}

static const struct rouse_future_vtable lfut_vtable = { lfut_poll, NULL };

static struct lfut lfut_make(lfut_fn *fn)
{
	struct lfut f = { .base.vtable = &lfut_vtable, .fn = fn };

	return f;
}

/* Wakes the kept clone once the executor is parked. */
static void *waker_after_park(void *arg)
{
	struct lfut *f = arg;

	test_wait_parks(f->parks0 + 1);
	atomic_store(&f->woken, 1);
	rouse_waker_wake(&f->kept);
	return NULL;
}

/* Pending once; woken from another thread once the executor has parked. */
static enum rouse_poll fn_park_once(struct lfut *f, struct rouse_context *cx)
{
	if (f->polls == 1) {
		f->parks0 = test_executor_stats().parks;
		if (rouse_waker_clone(cx->waker, &f->kept) != 0 ||
		    pthread_create(&f->thread, NULL, waker_after_park, f) != 0)
			abort();
		return ROUSE_PENDING;
	}
	return atomic_load(&f->woken) ? ROUSE_READY : ROUSE_PENDING;
}

/* Runs fn_park_once to completion; returns block_on's result. */
static int run_park_once(void)
{
	struct lfut f = lfut_make(fn_park_once);
	int err = rouse_block_on(&f.base);

	pthread_join(f.thread, NULL);
	return err == 0 && f.polls == 2 ? 0 : -1;
}

/*
 * At these levels, make both libraries log: the executor a park in
 * block_on, the reactor one made and freed.
 */
static void log_both(enum rouse_log_level executor_level,
		     enum rouse_log_level reactor_level)
{
	ck_assert_int_eq(rouse_executor_set_log_level(executor_level), 0);
	ck_assert_int_eq(rouse_reactor_set_log_level(reactor_level), 0);
	ck_assert_int_eq(run_park_once(), 0);
	rouse_reactor_free(test_reactor_make());
}

static enum rouse_poll fn_ready(struct lfut *f, struct rouse_context *cx)
{
	return ROUSE_READY;
}

/* A poll that calls block_on: -EDEADLK, and a warning. */
static enum rouse_poll fn_nested(struct lfut *f, struct rouse_context *cx)
{
	struct lfut inner = lfut_make(fn_ready);

	f->nested_result = rouse_block_on(&inner.base);
	return ROUSE_READY;
}

static int run_nested(void)
{
	struct lfut f = lfut_make(fn_nested);

	if (rouse_block_on(&f.base) != 0)
		return -1;
	return f.nested_result;
}

/* ---- levels -------------------------------------------------------- */

START_TEST(test_levels)
{
	typedef int set_fn(enum rouse_log_level);
	set_fn *setters[] = {
		rouse_executor_set_log_level, rouse_reactor_set_log_level,
	};
	int bad[] = { -1, ROUSE_LOG_TRACE + 1, 100, INT_MAX, INT_MIN };
	size_t i, j;

	for (i = 0; i < 2; i++) {
		for (j = ROUSE_LOG_OFF; j <= ROUSE_LOG_TRACE; j++)
			ck_assert_int_eq(setters[i]((enum rouse_log_level)j),
					 0);
		for (j = 0; j < sizeof(bad) / sizeof(bad[0]); j++)
			ck_assert_int_eq(setters[i]((enum rouse_log_level)
						    bad[j]), -EINVAL);
	}
	ck_assert_int_eq(rouse_executor_set_log_sink(rec_sink, NULL), 0);
	ck_assert_int_eq(rouse_executor_set_log_sink(NULL, NULL), 0);
	ck_assert_int_eq(rouse_reactor_set_log_sink(rec_sink, NULL), 0);
	ck_assert_int_eq(rouse_reactor_set_log_sink(NULL, NULL), 0);
}
END_TEST

/* A refused level leaves the one in force. */
START_TEST(test_bad_level_keeps_level)
{
	static struct recorder r;
	struct lfut f = lfut_make(fn_ready);

	rec_init(&r);
	ck_assert_int_eq(rouse_executor_set_log_sink(rec_sink, &r), 0);
	ck_assert_int_eq(rouse_executor_set_log_level(ROUSE_LOG_TRACE), 0);
	ck_assert_int_eq(rouse_executor_set_log_level(
				 (enum rouse_log_level)(ROUSE_LOG_TRACE + 1)),
			 -EINVAL);
	ck_assert_int_eq(rouse_executor_set_log_level(
				 (enum rouse_log_level)-1), -EINVAL);
	ck_assert_int_eq(rouse_block_on(&f.base), 0);
	ck_assert_int_gt(r.n, 0);
	rec_assert_all(&r, "executor", ROUSE_LOG_TRACE);

	ck_assert_int_eq(rouse_executor_set_log_level(ROUSE_LOG_OFF), 0);
	ck_assert_int_eq(rouse_executor_set_log_level(
				 (enum rouse_log_level)ROUSE_LOG_TRACE + 7),
			 -EINVAL);
	r.n = 0;
	ck_assert_int_eq(rouse_block_on(&f.base), 0);
	ck_assert_int_eq(r.n, 0);
	ck_assert_int_eq(rouse_executor_set_log_sink(NULL, NULL), 0);
}
END_TEST

/* ---- the executor's lines ------------------------------------------ */

START_TEST(test_executor_trace)
{
	static struct recorder r;
	int create, pending, park, unparked, ready, drop;

	rec_init(&r);
	ck_assert_int_eq(rouse_executor_set_log_sink(rec_sink, &r), 0);
	ck_assert_int_eq(rouse_executor_set_log_level(ROUSE_LOG_TRACE), 0);
	ck_assert_int_eq(run_park_once(), 0);
	ck_assert_int_eq(rouse_executor_set_log_level(ROUSE_LOG_OFF), 0);
	ck_assert_int_eq(rouse_executor_set_log_sink(NULL, NULL), 0);

	rec_assert_all(&r, "executor", ROUSE_LOG_TRACE);
	/* First use of this thread's parker. */
	ck_assert_int_ge(rec_find(&r, 0, "created eventfd"), 0);
	/* The life of the waker and of the thread, in order. */
	create = rec_find(&r, 0, "waker create");
	ck_assert_int_ge(create, 0);
	ck_assert_int_ge(rec_find(&r, create, "waker clone"), 0);
	pending = rec_find(&r, create, "poll: pending");
	ck_assert_int_gt(pending, create);
	park = rec_find(&r, pending, "blocks on eventfd");
	ck_assert_int_gt(park, pending);
	ck_assert_int_gt(rec_find(&r, park, "wake: unpark thread"), park);
	ck_assert_int_gt(rec_find(&r, park, "waker wake:"), park);
	unparked = rec_find(&r, park, "unparked");
	ck_assert_int_gt(unparked, park);
	ready = rec_find(&r, unparked, "poll: ready");
	ck_assert_int_gt(ready, unparked);
	drop = rec_find(&r, ready, "waker drop");
	ck_assert_int_gt(drop, ready);
	ck_assert_int_eq(rec_count(&r, "poll: pending"), 1);
	ck_assert_int_eq(rec_count(&r, "poll: ready"), 1);
	ck_assert_int_eq(rec_count(&r, "waker create"), 1);
	/* block_on's waker and the other thread's clone. */
	ck_assert_int_eq(rec_count(&r, "waker drop"), 2);
}
END_TEST

static enum rouse_poll fn_self_wake(struct lfut *f, struct rouse_context *cx)
{
	if (f->polls > 1)
		return ROUSE_READY;
	rouse_waker_wake_by_ref(cx->waker);
	return ROUSE_PENDING;
}

/* A wake while running is traced as such, and the park as a no-op. */
START_TEST(test_executor_trace_notified)
{
	static struct recorder r;
	struct lfut f = lfut_make(fn_self_wake);
	int wake, park;

	rec_init(&r);
	ck_assert_int_eq(rouse_executor_set_log_sink(rec_sink, &r), 0);
	ck_assert_int_eq(rouse_executor_set_log_level(ROUSE_LOG_TRACE), 0);
	ck_assert_int_eq(rouse_block_on(&f.base), 0);
	ck_assert_int_eq(rouse_executor_set_log_sink(NULL, NULL), 0);

	rec_assert_all(&r, "executor", ROUSE_LOG_TRACE);
	wake = rec_find(&r, 0, "waker wake_by_ref");
	ck_assert_int_ge(wake, 0);
	ck_assert_int_gt(rec_find(&r, wake, "no syscall"), wake);
	park = rec_find(&r, wake, "already notified");
	ck_assert_int_gt(park, wake);
	ck_assert_int_gt(rec_find(&r, park, "poll: ready"), park);
	ck_assert_int_eq(rec_count(&r, "blocks on eventfd"), 0);
}
END_TEST

START_TEST(test_executor_below_trace)
{
	static const enum rouse_log_level quiet[] = {
		ROUSE_LOG_OFF, ROUSE_LOG_ERROR, ROUSE_LOG_WARN,
		ROUSE_LOG_INFO, ROUSE_LOG_DEBUG,
	};
	static struct recorder r;
	size_t i;

	rec_init(&r);
	ck_assert_int_eq(rouse_executor_set_log_sink(rec_sink, &r), 0);
	for (i = 0; i < sizeof(quiet) / sizeof(quiet[0]); i++) {
		ck_assert_int_eq(rouse_executor_set_log_level(quiet[i]), 0);
		ck_assert_int_eq(run_park_once(), 0);
		ck_assert_msg(r.n == 0, "level %d logged: %s", (int)quiet[i],
			      r.lines[0].message);
	}
	ck_assert_int_eq(rouse_executor_set_log_sink(NULL, NULL), 0);
}
END_TEST

START_TEST(test_executor_warn)
{
	static struct recorder r;

	rec_init(&r);
	ck_assert_int_eq(rouse_executor_set_log_sink(rec_sink, &r), 0);
	/* ERROR is below the warning: nothing. */
	ck_assert_int_eq(rouse_executor_set_log_level(ROUSE_LOG_ERROR), 0);
	ck_assert_int_eq(run_nested(), -EDEADLK);
	ck_assert_int_eq(r.n, 0);
	/* WARN, INFO and DEBUG show it, and only it. */
	ck_assert_int_eq(rouse_executor_set_log_level(ROUSE_LOG_WARN), 0);
	ck_assert_int_eq(run_nested(), -EDEADLK);
	ck_assert_int_eq(r.n, 1);
	rec_assert_all(&r, "executor", ROUSE_LOG_WARN);
	ck_assert_ptr_nonnull(strstr(r.lines[0].message, "inside a poll"));
	ck_assert_int_eq(rouse_executor_set_log_level(ROUSE_LOG_DEBUG), 0);
	ck_assert_int_eq(run_nested(), -EDEADLK);
	ck_assert_int_eq(r.n, 2);
	rec_assert_all(&r, "executor", ROUSE_LOG_WARN);
	ck_assert_int_eq(rouse_executor_set_log_sink(NULL, NULL), 0);
}
END_TEST

/* A parker whose park fails. */
static int bad_park(void *data, int64_t timeout_ns)
{
	return -EIO;
}

static void bad_unpark(void *data)
{
}

static int bad_waker(void *data, struct rouse_waker *out)
{
	*out = rouse_waker_noop();
	return 0;
}

static enum rouse_poll fn_pending(struct lfut *f, struct rouse_context *cx)
{
	return ROUSE_PENDING;
}

START_TEST(test_executor_error)
{
	static const struct rouse_parker_vtable vt = {
		bad_park, bad_unpark, bad_waker,
	};
	struct rouse_parker p = { NULL, &vt };
	static struct recorder r;
	struct lfut f = lfut_make(fn_pending);

	rec_init(&r);
	ck_assert_int_eq(rouse_executor_set_log_sink(rec_sink, &r), 0);
	ck_assert_int_eq(rouse_executor_set_log_level(ROUSE_LOG_ERROR), 0);
	ck_assert_int_eq(rouse_block_on_with(&f.base, &p), -EIO);
	ck_assert_int_eq(r.n, 1);
	rec_assert_all(&r, "executor", ROUSE_LOG_ERROR);
	ck_assert_ptr_nonnull(strstr(r.lines[0].message, "park failed"));
	ck_assert_int_eq(rouse_executor_set_log_level(ROUSE_LOG_OFF), 0);
	ck_assert_int_eq(rouse_block_on_with(&f.base, &p), -EIO);
	ck_assert_int_eq(r.n, 1);
	ck_assert_int_eq(rouse_executor_set_log_sink(NULL, NULL), 0);
}
END_TEST

/* ---- the sink contract --------------------------------------------- */

#define SERIAL_THREADS 4
#define SERIAL_RUNS 200

static atomic_int in_sink;
static atomic_int sink_overlaps;
static atomic_int sink_calls;

static void serial_sink(void *data, enum rouse_log_level level,
			const char *module, const char *message)
{
	if (atomic_fetch_add(&in_sink, 1) != 0)
		atomic_fetch_add(&sink_overlaps, 1);
	atomic_fetch_add(&sink_calls, 1);
	sched_yield();
	atomic_fetch_sub(&in_sink, 1);
}

static void *serial_thread(void *arg)
{
	struct test_barrier *b = arg;
	int i;

	test_barrier_wait(b);
	for (i = 0; i < SERIAL_RUNS; i++) {
		struct lfut f = lfut_make(fn_self_wake);

		ck_assert_int_eq(rouse_block_on(&f.base), 0);
	}
	return NULL;
}

/* The sink is called with the log lock held: never two at once. */
START_TEST(test_sink_serialized)
{
	struct test_barrier b;
	pthread_t t[SERIAL_THREADS];
	int i;

	test_barrier_init(&b, SERIAL_THREADS);
	ck_assert_int_eq(rouse_executor_set_log_sink(serial_sink, NULL), 0);
	ck_assert_int_eq(rouse_executor_set_log_level(ROUSE_LOG_TRACE), 0);
	for (i = 0; i < SERIAL_THREADS; i++)
		t[i] = test_thread_start(serial_thread, &b);
	for (i = 0; i < SERIAL_THREADS; i++)
		test_thread_join(t[i]);
	ck_assert_int_eq(rouse_executor_set_log_level(ROUSE_LOG_OFF), 0);
	ck_assert_int_eq(rouse_executor_set_log_sink(NULL, NULL), 0);
	test_barrier_destroy(&b);
	ck_assert_int_gt(atomic_load(&sink_calls),
			 SERIAL_THREADS * SERIAL_RUNS);
	ck_assert_int_eq(atomic_load(&sink_overlaps), 0);
}
END_TEST

static void errno_sink(void *data, enum rouse_log_level level,
		       const char *module, const char *message)
{
	errno = EBADF;
}

static enum rouse_poll fn_errno(struct lfut *f, struct rouse_context *cx)
{
	if (f->polls > 1) {
		f->saved_errno = errno;
		return ROUSE_READY;
	}
	rouse_waker_wake_by_ref(cx->waker);
	errno = 4242;
	return ROUSE_PENDING;
}

/*
 * Logging leaves errno alone: between the two polls below the executor
 * makes no system call (the wake is found at park time), only log lines.
 */
START_TEST(test_sink_keeps_errno)
{
	struct lfut f = lfut_make(fn_errno);

	ck_assert_int_eq(rouse_executor_set_log_sink(errno_sink, NULL), 0);
	ck_assert_int_eq(rouse_executor_set_log_level(ROUSE_LOG_TRACE), 0);
	ck_assert_int_eq(rouse_block_on(&f.base), 0);
	ck_assert_int_eq(rouse_executor_set_log_sink(NULL, NULL), 0);
	ck_assert_int_eq(f.polls, 2);
	ck_assert_int_eq(f.saved_errno, 4242);
}
END_TEST

/* ---- the reactor's lines ------------------------------------------- */

START_TEST(test_reactor_debug)
{
	static struct recorder r;
	struct rouse_reactor *re = NULL;
	char expect[64];

	rec_init(&r);
	ck_assert_int_eq(rouse_reactor_set_log_sink(rec_sink, &r), 0);
	ck_assert_int_eq(rouse_reactor_set_log_level(ROUSE_LOG_DEBUG), 0);
	ck_assert_int_eq(rouse_reactor_new(&re, 0), 0);
	ck_assert_int_eq(r.n, 1);
	rec_assert_all(&r, "reactor", ROUSE_LOG_DEBUG);
	snprintf(expect, sizeof(expect), "reactor %p: epoll ", (void *)re);
	ck_assert_ptr_nonnull(strstr(r.lines[0].message, expect));
	ck_assert_ptr_nonnull(strstr(r.lines[0].message, "timerfd"));
	ck_assert_ptr_nonnull(strstr(r.lines[0].message, "eventfd"));
	rouse_reactor_free(re);
	ck_assert_int_eq(r.n, 2);
	ck_assert_ptr_nonnull(strstr(r.lines[1].message, "freed"));
	rec_assert_all(&r, "reactor", ROUSE_LOG_DEBUG);

	/* At TRACE too; below DEBUG, nothing. */
	ck_assert_int_eq(rouse_reactor_set_log_level(ROUSE_LOG_TRACE), 0);
	rouse_reactor_free(test_reactor_make());
	ck_assert_int_eq(r.n, 4);
	ck_assert_int_eq(rouse_reactor_set_log_level(ROUSE_LOG_INFO), 0);
	rouse_reactor_free(test_reactor_make());
	ck_assert_int_eq(rouse_reactor_set_log_level(ROUSE_LOG_OFF), 0);
	rouse_reactor_free(test_reactor_make());
	ck_assert_int_eq(r.n, 4);
	ck_assert_int_eq(rouse_reactor_set_log_sink(NULL, NULL), 0);
}
END_TEST

/* Each library has its own level and sink. */
START_TEST(test_libraries_independent)
{
	static struct recorder ex, re;

	rec_init(&ex);
	rec_init(&re);
	ck_assert_int_eq(rouse_executor_set_log_sink(rec_sink, &ex), 0);
	ck_assert_int_eq(rouse_reactor_set_log_sink(rec_sink, &re), 0);

	log_both(ROUSE_LOG_TRACE, ROUSE_LOG_OFF);
	ck_assert_int_gt(ex.n, 0);
	ck_assert_int_eq(re.n, 0);
	rec_assert_all(&ex, "executor", ROUSE_LOG_TRACE);

	ex.n = 0;
	log_both(ROUSE_LOG_OFF, ROUSE_LOG_TRACE);
	ck_assert_int_eq(ex.n, 0);
	ck_assert_int_eq(re.n, 2);
	rec_assert_all(&re, "reactor", ROUSE_LOG_DEBUG);

	/* Both on, each to its own sink. */
	re.n = 0;
	log_both(ROUSE_LOG_TRACE, ROUSE_LOG_TRACE);
	ck_assert_int_gt(ex.n, 0);
	ck_assert_int_eq(re.n, 2);
	rec_assert_all(&ex, "executor", ROUSE_LOG_TRACE);
	rec_assert_all(&re, "reactor", ROUSE_LOG_DEBUG);
	ck_assert_int_eq(rouse_executor_set_log_sink(NULL, NULL), 0);
	ck_assert_int_eq(rouse_reactor_set_log_sink(NULL, NULL), 0);
}
END_TEST

/* ---- the stderr sink ----------------------------------------------- */

#define LINE_RE "^[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} "

/*
 * How many lines of text match re; *n gets the number of lines.  With
 * report, the lines that do not match are named on stderr.
 */
static int match_lines(const char *text, const char *re, int *n,
		       bool report)
{
	regex_t rx;
	char *copy = strdup(text), *save = NULL, *line;
	int matched = 0;

	ck_assert_ptr_nonnull(copy);
	ck_assert_int_eq(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
	*n = 0;
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		(*n)++;
		if (regexec(&rx, line, 0, NULL, 0) == 0)
			matched++;
		else if (report)
			fprintf(stderr, "no match for /%s/: '%s'\n", re, line);
	}
	regfree(&rx);
	free(copy);
	return matched;
}

/* Whether every line of text matches re; counts lines into *n. */
static bool all_lines_match(const char *text, const char *re, int *n)
{
	int matched = match_lines(text, re, n, true);

	return matched == *n;
}

/* How many lines of text match re. */
static int count_matches(const char *text, const char *re)
{
	int n;

	return match_lines(text, re, &n, false);
}

/* Read all of fd (from its start) into a new string. */
static char *slurp_fd(int fd, bool rewind)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	ssize_t n;

	ck_assert_ptr_nonnull(buf);
	if (rewind)
		ck_assert(lseek(fd, 0, SEEK_SET) == 0);
	for (;;) {
		if (cap - len < 1024) {
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		ck_assert(n >= 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

/* Run fn with stderr going to a temporary file; return what it wrote. */
static char *capture_stderr(void (*fn)(void))
{
	FILE *tmp = tmpfile();
	int saved, fd;
	char *out;

	ck_assert_ptr_nonnull(tmp);
	fd = fileno(tmp);
	saved = dup(STDERR_FILENO);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
	fn();
	ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
	close(saved);
	out = slurp_fd(fd, true);
	fclose(tmp);
	return out;
}

static void stderr_run(void)
{
	ck_assert_int_eq(rouse_executor_set_log_sink(NULL, NULL), 0);
	ck_assert_int_eq(rouse_reactor_set_log_sink(NULL, NULL), 0);
	log_both(ROUSE_LOG_TRACE, ROUSE_LOG_DEBUG);
	ck_assert_int_eq(rouse_executor_set_log_level(ROUSE_LOG_WARN), 0);
	ck_assert_int_eq(run_nested(), -EDEADLK);
	ck_assert_int_eq(rouse_executor_set_log_level(ROUSE_LOG_OFF), 0);
	ck_assert_int_eq(rouse_reactor_set_log_level(ROUSE_LOG_OFF), 0);
}

#define ANY_LINE_RE \
	LINE_RE "(TRACE \\[executor\\]|DEBUG \\[reactor\\]|" \
	"WARN  \\[executor\\]) [^ ].*$"

START_TEST(test_stderr_format)
{
	char *out = capture_stderr(stderr_run);
	int n;

	ck_assert_msg(all_lines_match(out, ANY_LINE_RE, &n),
		      "bad line in:\n%s", out);
	ck_assert_int_gt(n, 6);
	ck_assert_int_ge(count_matches(out, LINE_RE
				       "TRACE \\[executor\\] waker create: "),
			 1);
	ck_assert_int_eq(count_matches(out, LINE_RE
				       "TRACE \\[executor\\] poll: pending$"),
			 1);
	ck_assert_int_eq(count_matches(out, LINE_RE
				       "TRACE \\[executor\\] poll: ready$"),
			 1);
	ck_assert_int_ge(count_matches(out, LINE_RE
				       "TRACE \\[executor\\] park: thread "
				       "[0-9]+ blocks on eventfd [0-9]+$"),
			 1);
	ck_assert_int_eq(count_matches(out, LINE_RE
				       "DEBUG \\[reactor\\] reactor 0x[0-9a-f]+"
				       ": epoll [0-9]+, timerfd [0-9]+, "
				       "eventfd [0-9]+$"),
			 1);
	ck_assert_int_eq(count_matches(out, LINE_RE
				       "DEBUG \\[reactor\\] reactor 0x[0-9a-f]+"
				       ": freed$"),
			 1);
	/* The level is padded to five columns. */
	ck_assert_int_eq(count_matches(out, LINE_RE
				       "WARN  \\[executor\\] block_on: "
				       "called inside a poll on this thread$"),
			 1);
	free(out);
}
END_TEST

/* ---- ROUSE_LOG, read when the libraries are loaded ----------------- */

#define CHILD_ARG "--rouse-log-child"

/* What the re-executed test binary does: a little of everything. */
static int log_child(void)
{
	struct rouse_reactor *r = NULL;

	if (run_park_once() != 0)
		return 10;
	if (run_nested() != -EDEADLK)
		return 11;
	if (rouse_reactor_new(&r, 0) != 0)
		return 12;
	rouse_reactor_free(r);
	return 0;
}

/*
 * The path of this program, read from /proc/self/exe before the fork.
 * Executing "/proc/self/exe" itself would run whatever the kernel loaded
 * into this process: under valgrind that is the tool, not the test, while
 * valgrind answers the readlink() with the program it runs.
 */
static void self_path(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);

	ck_assert_msg(n > 0 && (size_t)n < len - 1,
		      "readlink(/proc/self/exe): %s", strerror(errno));
	buf[n] = '\0';
}

/*
 * Run this binary again as log_child() with ROUSE_LOG=value (unset when
 * value is NULL); return its stderr.  It must exit with 0.
 */
static char *run_child_with(const char *value)
{
	char self[PATH_MAX];
	int pfd[2], status;
	char *out;
	pid_t pid;

	self_path(self, sizeof(self));
	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char *argv[] = { "check_log", CHILD_ARG, NULL };

		if (dup2(pfd[1], STDERR_FILENO) < 0)
			_exit(90);
		close(pfd[0]);
		close(pfd[1]);
		if (value != NULL)
			setenv("ROUSE_LOG", value, 1);
		else
			unsetenv("ROUSE_LOG");
		execv(self, argv);
		_exit(91);
	}
	close(pfd[1]);
	out = slurp_fd(pfd[0], false);
	close(pfd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child with ROUSE_LOG=%s: status %#x, stderr:\n%s",
		      value ? value : "(unset)", status, out);
	return out;
}

/*
 * run_child_with(value), whose stderr must be log lines only; their count
 * goes into *n.
 */
static char *run_child_lines(const char *value, int *n)
{
	char *out = run_child_with(value);

	ck_assert_msg(all_lines_match(out, ANY_LINE_RE, n),
		      "ROUSE_LOG=%s:\n%s", value, out);
	return out;
}

START_TEST(test_env_trace)
{
	static const char *const values[] = { "trace", "TRACE", "Trace" };
	size_t i;

	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		int n;
		char *out = run_child_lines(values[i], &n);

		/* Both libraries read it: the executor's trace... */
		ck_assert_int_ge(count_matches(out, "TRACE \\[executor\\] "
					       "waker create"), 1);
		ck_assert_int_ge(count_matches(out, "TRACE \\[executor\\] "
					       "poll: pending$"), 1);
		ck_assert_int_ge(count_matches(out, "TRACE \\[executor\\] "
					       "poll: ready$"), 1);
		ck_assert_int_ge(count_matches(out, "TRACE \\[executor\\] "
					       "park: thread [0-9]+ blocks"),
				 1);
		ck_assert_int_ge(count_matches(out, "TRACE \\[executor\\] "
					       "waker drop"), 1);
		/* ...the warning... */
		ck_assert_int_eq(count_matches(out, "WARN  \\[executor\\] "
					       "block_on: called inside"), 1);
		/* ...and the reactor's debug lines. */
		ck_assert_int_eq(count_matches(out, "DEBUG \\[reactor\\] "
					       "reactor 0x[0-9a-f]+: epoll"),
				 1);
		ck_assert_int_eq(count_matches(out, "DEBUG \\[reactor\\] "
					       "reactor 0x[0-9a-f]+: freed"),
				 1);
		free(out);
	}
}
END_TEST

START_TEST(test_env_debug)
{
	int n;
	char *out = run_child_lines("debug", &n);

	ck_assert_int_eq(count_matches(out, "TRACE"), 0);
	ck_assert_int_eq(count_matches(out, "WARN  \\[executor\\]"), 1);
	ck_assert_int_eq(count_matches(out, "DEBUG \\[reactor\\]"), 2);
	ck_assert_int_eq(n, 3);
	free(out);
}
END_TEST

START_TEST(test_env_warn)
{
	static const char *const values[] = { "warn", "WARN", "warning",
					      "Warning" };
	size_t i;

	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		int n;
		char *out = run_child_lines(values[i], &n);

		ck_assert_msg(n == 1, "ROUSE_LOG=%s:\n%s", values[i], out);
		ck_assert_int_eq(count_matches(out, "WARN  \\[executor\\] "
					       "block_on: called inside"), 1);
		free(out);
	}
}
END_TEST

START_TEST(test_env_quiet)
{
	static const char *const values[] = { "error", "off", "" };
	size_t i;
	char *out;

	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		out = run_child_with(values[i]);
		ck_assert_msg(out[0] == '\0', "ROUSE_LOG=%s:\n%s", values[i],
			      out);
		free(out);
	}
	out = run_child_with(NULL);
	ck_assert_msg(out[0] == '\0', "ROUSE_LOG unset:\n%s", out);
	free(out);
}
END_TEST

START_TEST(test_env_bad_value)
{
	char *out = run_child_with("verbose");

	/* Each library says so once, and logging stays off. */
	ck_assert_int_eq(count_matches(out, "^rouse: ROUSE_LOG=verbose is not "
				       "one of .*error.*trace.* logging stays "
				       "off$"), 2);
	ck_assert_int_eq(count_matches(out, "^rouse: ROUSE_LOG="), 2);
	ck_assert_int_eq(count_matches(out, LINE_RE), 0);
	free(out);
}
END_TEST

/* Each test leaves both libraries as it found them: quiet, to stderr. */
static void log_reset(void)
{
	ck_assert_int_eq(rouse_executor_set_log_level(ROUSE_LOG_OFF), 0);
	ck_assert_int_eq(rouse_reactor_set_log_level(ROUSE_LOG_OFF), 0);
	ck_assert_int_eq(rouse_executor_set_log_sink(NULL, NULL), 0);
	ck_assert_int_eq(rouse_reactor_set_log_sink(NULL, NULL), 0);
}

static TCase *log_tcase(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, log_reset, log_reset);
	return tc;
}

static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc;

	tc = log_tcase("levels");
	tcase_add_test(tc, test_levels);
	tcase_add_test(tc, test_bad_level_keeps_level);
	suite_add_tcase(s, tc);

	tc = log_tcase("executor_sink");
	tcase_add_test(tc, test_executor_trace);
	tcase_add_test(tc, test_executor_trace_notified);
	tcase_add_test(tc, test_executor_below_trace);
	tcase_add_test(tc, test_executor_warn);
	tcase_add_test(tc, test_executor_error);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = log_tcase("sink_contract");
	tcase_add_test(tc, test_sink_serialized);
	tcase_add_test(tc, test_sink_keeps_errno);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = log_tcase("reactor_sink");
	tcase_add_test(tc, test_reactor_debug);
	tcase_add_test(tc, test_libraries_independent);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = log_tcase("stderr_sink");
	tcase_add_test(tc, test_stderr_format);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = log_tcase("rouse_log_env");
	tcase_add_test(tc, test_env_trace);
	tcase_add_test(tc, test_env_debug);
	tcase_add_test(tc, test_env_warn);
	tcase_add_test(tc, test_env_quiet);
	tcase_add_test(tc, test_env_bad_value);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	return s;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], CHILD_ARG) == 0)
		return log_child();
	return test_run_suite(log_suite());
}
