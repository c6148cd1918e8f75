// SPDX-License-Identifier: MIT
/*
 * tests/check_process.c - child processes: 1 MiB echoed through cat over
 * two pipes, exit codes, death by a signal, a missing program (-ENOENT
 * from the spawn), 1,000 children at once, free before exit with and
 * without KILL_ON_DROP (and after the reactor is gone), /dev/null,
 * inherited and given descriptors, cwd, envp, a clean signal state in
 * the child, no descriptor leaked either way, fork, allocation failure
 * at every step (also after the child exists), a process group killed
 * whole (by hand and by KILL_ON_DROP), and bad input.
 * Every case ends with no child of ours left, zombie or alive.
 */
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <rouse/alloc.h>
#include <rouse/net.h>
#include <rouse/process.h>

#include "testutil.h"

/* ---- futures to run children with ------------------------------------- */

/* Ready once every one of n futures is. */
struct all {
	struct rouse_future base;
	struct rouse_future **f;
	bool *done;
	int n, left;
};

static enum rouse_poll all_poll(struct rouse_future *self,
				struct rouse_context *cx)
{
	struct all *a = (struct all *)self;
	int i;

	for (i = 0; i < a->n; i++) {
		if (a->done[i] || rouse_future_poll(a->f[i], cx) != ROUSE_READY)
			continue;
		a->done[i] = true;
		a->left--;
	}
	return a->left == 0 ? ROUSE_READY : ROUSE_PENDING;
}

static const struct rouse_future_vtable all_vt = { all_poll, NULL };

static void run_all(struct test_runner *ru, struct rouse_future **f, int n)
{
	struct all a = { { &all_vt }, f, calloc((size_t)n, sizeof(bool)), n,
			 n };

	ck_assert_ptr_nonnull(a.done);
	ck_assert_int_eq(test_runner_block_on(ru, &a.base), 0);
	free(a.done);
}

/* Reads a stream to its end into a buffer that grows. */
struct drain {
	struct rouse_future base;
	struct rouse_stream *s;
	struct rouse_stream_rw rd;
	bool reading;
	char *buf;
	size_t len, cap;
	ssize_t result;		/* 0 at the end, or -errno */
};

static enum rouse_poll drain_poll(struct rouse_future *self,
				  struct rouse_context *cx)
{
	struct drain *d = (struct drain *)self;

	for (;;) {
		if (!d->reading) {
			if (d->cap - d->len < 4096) {
				d->cap = d->cap * 2 + 65536;
				d->buf = realloc(d->buf, d->cap + 1);
				ck_assert_ptr_nonnull(d->buf);
			}
			rouse_stream_read_init(&d->rd, d->s, d->buf + d->len,
					       d->cap - d->len);
			d->reading = true;
		}
		if (rouse_future_poll(&d->rd.base, cx) == ROUSE_PENDING)
			return ROUSE_PENDING;
		rouse_future_drop(&d->rd.base);
		d->reading = false;
		if (d->rd.result <= 0) {
			d->result = d->rd.result;
			d->buf[d->len] = '\0';
			return ROUSE_READY;
		}
		d->len += (size_t)d->rd.result;
	}
}

static const struct rouse_future_vtable drain_vt = { drain_poll, NULL };

static void drain_init(struct drain *d, struct rouse_stream *s)
{
	memset(d, 0, sizeof(*d));
	d->base.vtable = &drain_vt;
	d->s = s;
	d->buf = malloc(1);
	ck_assert_ptr_nonnull(d->buf);
}

/* Writes a buffer whole, then closes the stream it owns (the EOF). */
struct feed {
	struct rouse_future base;
	struct rouse_stream *s;
	struct rouse_stream_rw wr;
	ssize_t result;
};

static enum rouse_poll feed_poll(struct rouse_future *self,
				 struct rouse_context *cx)
{
	struct feed *f = (struct feed *)self;

	if (rouse_future_poll(&f->wr.base, cx) == ROUSE_PENDING)
		return ROUSE_PENDING;
	f->result = f->wr.result;
	rouse_future_drop(&f->wr.base);
	ck_assert_int_eq(rouse_stream_close(f->s), 0);
	return ROUSE_READY;
}

static const struct rouse_future_vtable feed_vt = { feed_poll, NULL };

static void feed_init(struct feed *f, struct rouse_stream *s,
		      const void *buf, size_t len)
{
	f->base.vtable = &feed_vt;
	f->s = s;
	ck_assert_int_eq(rouse_stream_write_all_init(&f->wr, s, buf, len), 0);
}

/* ---- helpers -------------------------------------------------------- */

/* A config for argv (path argv[0]), every stream inherited. */
static struct rouse_process_config config_of(char *const *argv)
{
	struct rouse_process_config c;

	ck_assert_int_eq(rouse_process_config_init(&c), 0);
	c.path = argv[0];
	c.argv = argv;
	return c;
}

/* Wait for p's child with a wait future; the future's outputs. */
static struct rouse_process_wait wait_child(struct test_runner *ru,
					    struct rouse_process *p)
{
	struct rouse_process_wait w;

	ck_assert_int_eq(rouse_process_wait_init(&w, p), 0);
	ck_assert_int_eq(test_runner_block_on(ru, &w.base), 0);
	ck_assert_int_eq(w.result, 0);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	return w;
}

/*
 * Run argv with stdout (and stderr, if err is not NULL) piped back, the
 * other streams as given; return its exit code, the output in *out
 * (malloc'd, NUL-terminated).
 */
static int run_capture(struct test_runner *ru, struct rouse_process_config *c,
		       char **out, char **err)
{
	struct rouse_process *p;
	struct rouse_process_wait w;
	struct drain d1, d2;
	struct rouse_future *f[2] = { &d1.base, &d2.base };

	c->stdio[1] = ROUSE_STDIO_PIPE;
	if (err != NULL)
		c->stdio[2] = ROUSE_STDIO_PIPE;
	ck_assert_int_eq(rouse_process_spawn(ru->r, c, &p), 0);
	drain_init(&d1, rouse_process_stdio(p, 1));
	drain_init(&d2, rouse_process_stdio(p, 2));
	run_all(ru, f, err != NULL ? 2 : 1);
	ck_assert_int_eq(d1.result, 0);
	*out = d1.buf;
	if (err != NULL) {
		ck_assert_int_eq(d2.result, 0);
		*err = d2.buf;
	} else {
		free(d2.buf);
	}
	w = wait_child(ru, p);
	ck_assert_int_eq(rouse_process_free(p), 0);
	return w.exit_code;
}

/* This process has no child, alive or zombie (a zombie is not reaped). */
static bool no_children(void)
{
	siginfo_t si;

	return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 &&
	       errno == ECHILD;
}

/*
 * Wait until no child is left: the turns of a driven reactor reap the
 * orphans, or its own thread does (or the default reactor's).  The
 * tcase's timeout bounds the wait.
 */
static void settle_no_children(struct test_runner *ru)
{
	const struct timespec ms = { 0, 1000000 };

	while (!no_children()) {
		if (ru != NULL && ru->mode != TEST_MODE_THREADED)
			ck_assert_int_ge(rouse_reactor_turn(ru->r, 1000000), 0);
		else
			nanosleep(&ms, NULL);
	}
}

static unsigned char pattern(size_t k)
{
	return (unsigned char)(k * 131 + (k >> 9));
}

#define BIG (1024 * 1024)

/* ---- cases ----------------------------------------------------------- */

/*
 * 1 MiB through cat: more than both pipes hold, so the write and the
 * read wait on each other; the end of the input is the stream's close.
 */
START_TEST(echo_through_cat)
{
	char *argv[] = { "/bin/cat", NULL };
	struct rouse_process_config c = config_of(argv);
	struct test_runner ru;
	struct rouse_process *p;
	struct rouse_stream *in;
	struct rouse_process_wait w;
	struct feed fd;
	struct drain d;
	struct rouse_future *f[2] = { &fd.base, &d.base };
	unsigned char *data = malloc(BIG);
	int fds0;
	size_t k;

	ck_assert_ptr_nonnull(data);
	for (k = 0; k < BIG; k++)
		data[k] = pattern(k);
	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	c.stdio[0] = c.stdio[1] = ROUSE_STDIO_PIPE;
	ck_assert_int_eq(rouse_process_spawn(ru.r, &c, &p), 0);
	ck_assert_int_gt(rouse_process_pid(p), 0);
	ck_assert_ptr_null(rouse_process_stdio(p, 2));
	ck_assert_int_eq(rouse_process_take_stdio(p, 0, &in), 0);
	ck_assert_ptr_null(rouse_process_stdio(p, 0));
	ck_assert_int_eq(rouse_process_take_stdio(p, 0, &in), -ENOENT);
	feed_init(&fd, in, data, BIG);
	drain_init(&d, rouse_process_stdio(p, 1));
	run_all(&ru, f, 2);
	ck_assert_int_eq(fd.result, BIG);
	ck_assert_int_eq(d.result, 0);
	ck_assert_uint_eq(d.len, BIG);
	ck_assert(memcmp(d.buf, data, BIG) == 0);
	w = wait_child(&ru, p);
	ck_assert_int_eq(w.exit_code, 0);
	ck_assert_int_eq(w.term_signal, 0);
	ck_assert(WIFEXITED(w.status) && WEXITSTATUS(w.status) == 0);
	ck_assert_int_eq(rouse_process_free(p), 0);
	ck_assert_int_eq(test_count_fds(), fds0);
	ck_assert(no_children());
	free(d.buf);
	free(data);
	test_runner_free(&ru);
}
END_TEST

START_TEST(exit_codes)
{
	static const int codes[] = { 0, 1, 7, 255 };
	struct test_runner ru;
	size_t i;

	test_runner_init(&ru, (enum test_mode)_i);
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		char script[32];
		char *argv[] = { "/bin/sh", "-c", script, NULL };
		struct rouse_process_config c = config_of(argv);
		struct rouse_process *p;
		struct rouse_process_wait w, again;

		snprintf(script, sizeof(script), "exit %d", codes[i]);
		ck_assert_int_eq(rouse_process_spawn(ru.r, &c, &p), 0);
		w = wait_child(&ru, p);
		ck_assert_int_eq(w.exit_code, codes[i]);
		ck_assert_int_eq(w.term_signal, 0);
		ck_assert(WIFEXITED(w.status));
		ck_assert_int_eq(WEXITSTATUS(w.status), codes[i]);
		/* Reaped already: a second wait is ready at once. */
		ck_assert_int_eq(rouse_process_wait_init(&again, p), 0);
		ck_assert_int_eq(test_poll_noop(&again.base), ROUSE_READY);
		ck_assert_int_eq(again.result, 0);
		ck_assert_int_eq(again.status, w.status);
		ck_assert_int_eq(again.exit_code, codes[i]);
		ck_assert_int_eq(rouse_future_drop(&again.base), 0);
		/* No process by that pidfd any more. */
		ck_assert_int_eq(rouse_process_kill(p, SIGTERM), -ESRCH);
		ck_assert_int_eq(rouse_process_free(p), 0);
	}
	ck_assert(no_children());
	test_runner_free(&ru);
}
END_TEST

/* Killed with SIGTERM while it waits for input that never comes. */
START_TEST(killed_by_signal)
{
	char *argv[] = { "cat", NULL };
	struct rouse_process_config c = config_of(argv);
	struct test_runner ru;
	struct rouse_process *p;
	struct rouse_process_wait w;

	test_runner_init(&ru, (enum test_mode)_i);
	c.stdio[0] = ROUSE_STDIO_PIPE;
	c.flags = ROUSE_PROCESS_SEARCH_PATH | ROUSE_PROCESS_KILL_ON_DROP;
	ck_assert_int_eq(rouse_process_spawn(ru.r, &c, &p), 0);
	/* A wait that is polled first, and then woken by the end. */
	ck_assert_int_eq(rouse_process_wait_init(&w, p), 0);
	ck_assert_int_eq(test_poll_noop(&w.base), ROUSE_PENDING);
	ck_assert_int_eq(rouse_process_kill(p, 0), 0);
	ck_assert_int_eq(rouse_process_kill(p, SIGTERM), 0);
	ck_assert_int_eq(test_runner_block_on(&ru, &w.base), 0);
	ck_assert_int_eq(w.result, 0);
	ck_assert_int_eq(w.term_signal, SIGTERM);
	ck_assert_int_eq(w.exit_code, -1);
	ck_assert(WIFSIGNALED(w.status) && WTERMSIG(w.status) == SIGTERM);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	ck_assert_int_eq(rouse_process_free(p), 0);
	ck_assert(no_children());
	test_runner_free(&ru);
}
END_TEST

/* A missing program is the spawn's error, never a child's exit 127. */
START_TEST(missing_program)
{
	char *argv[] = { "/nonexistent/rouse-test-prog", NULL };
	char *argv_p[] = { "rouse-test-no-such-program", NULL };
	char *argv_x[] = { "/etc/passwd", NULL };
	struct rouse_process_config c = config_of(argv);
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_process *p = NULL;
	int fds0 = test_count_fds();

	c.stdio[0] = c.stdio[1] = c.stdio[2] = ROUSE_STDIO_PIPE;
	ck_assert_int_eq(rouse_process_spawn(r, &c, &p), -ENOENT);
	c = config_of(argv_p);
	c.flags = ROUSE_PROCESS_SEARCH_PATH;
	c.stdio[1] = ROUSE_STDIO_NULL;
	ck_assert_int_eq(rouse_process_spawn(r, &c, &p), -ENOENT);
	/* Not executable. */
	c = config_of(argv_x);
	ck_assert_int_eq(rouse_process_spawn(r, &c, &p), -EACCES);
	/* A directory that does not exist. */
	c = config_of((char *[]){ "/bin/true", NULL });
	c.cwd = "/nonexistent/rouse-test-dir";
	ck_assert_int_eq(rouse_process_spawn(r, &c, &p), -ENOENT);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(test_count_fds(), fds0);
	ck_assert(no_children());
	rouse_reactor_free(r);
}
END_TEST

#define MANY 1000

/*
 * 1,000 children at once, each waited for by its own future, in batches
 * as large as the descriptor limit allows (one pidfd each).
 */
START_TEST(many_children)
{
	char *argv[] = { "/bin/true", NULL };
	struct rouse_process_config c = config_of(argv);
	static struct rouse_process *p[MANY];
	static struct rouse_process_wait w[MANY];
	static struct rouse_future *f[MANY];
	struct test_runner ru;
	struct rlimit lim;
	int fds0, batch, done = 0, i, n;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &lim), 0);
	lim.rlim_cur = lim.rlim_max;
	setrlimit(RLIMIT_NOFILE, &lim);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &lim), 0);
	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	batch = (int)lim.rlim_cur - fds0 - 64;
	ck_assert_int_gt(batch, 0);
	if (batch > MANY)
		batch = MANY;
	while (done < MANY) {
		n = MANY - done < batch ? MANY - done : batch;
		for (i = 0; i < n; i++) {
			ck_assert_int_eq(rouse_process_spawn(ru.r, &c, &p[i]),
					 0);
			ck_assert_int_eq(rouse_process_wait_init(&w[i], p[i]),
					 0);
			f[i] = &w[i].base;
		}
		run_all(&ru, f, n);
		for (i = 0; i < n; i++) {
			ck_assert_int_eq(w[i].result, 0);
			ck_assert_int_eq(w[i].exit_code, 0);
			rouse_future_drop(&w[i].base);
			ck_assert_int_eq(rouse_process_free(p[i]), 0);
		}
		done += n;
	}
	ck_assert_int_eq(test_count_fds(), fds0);
	ck_assert(no_children());
	test_runner_free(&ru);
}
END_TEST

/* KILL_ON_DROP: free kills and reaps before it returns. */
START_TEST(drop_kills)
{
	char *argv[] = { "sleep", "1000", NULL };
	struct rouse_process_config c = config_of(argv);
	struct test_runner ru;
	struct rouse_process *p;
	pid_t pid;
	int fds0;

	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	c.flags = ROUSE_PROCESS_SEARCH_PATH | ROUSE_PROCESS_KILL_ON_DROP;
	c.stdio[1] = ROUSE_STDIO_PIPE;
	ck_assert_int_eq(rouse_process_spawn(ru.r, &c, &p), 0);
	pid = rouse_process_pid(p);
	ck_assert_int_eq(kill(pid, 0), 0);
	ck_assert_int_eq(rouse_process_free(p), 0);
	/* At once: no zombie, no process. */
	ck_assert(no_children());
	ck_assert_int_eq(kill(pid, 0), -1);
	ck_assert_int_eq(errno, ESRCH);
	ck_assert_int_eq(test_count_fds(), fds0);
	test_runner_free(&ru);
}
END_TEST

/*
 * A shell in a group of its own starts sleep in the background and
 * prints its pid.  This process is made a subreaper, so that the
 * orphaned sleep comes back to it and its end can be seen.  The line is
 * read through a buffered reader: the shell keeps the pipe open, so
 * there is no end of the stream to read to.
 */
static pid_t spawn_group(struct test_runner *ru, unsigned int flags,
			 struct rouse_process **p)
{
	char *argv[] = { "/bin/sh", "-c",
			 "sleep 1000 >/dev/null 2>&1 & echo $!; wait", NULL };
	struct rouse_process_config c = config_of(argv);
	struct rouse_bufreader b;
	struct rouse_bufreader_op rd;
	char buf[32], line[32];
	pid_t pid, grandchild;

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1UL, 0UL, 0UL, 0UL),
			 0);
	c.flags = flags;
	c.stdio[1] = ROUSE_STDIO_PIPE;
	ck_assert_int_eq(rouse_process_spawn(ru->r, &c, p), 0);
	ck_assert_int_eq(rouse_bufreader_init(&b, rouse_process_stdio(*p, 1),
					      buf, sizeof(buf)), 0);
	ck_assert_int_eq(rouse_bufreader_read_line_init(&rd, &b, sizeof(buf)),
			 0);
	ck_assert_int_eq(test_runner_block_on(ru, &rd.base), 0);
	ck_assert_int_gt(rd.result, 0);
	ck_assert_uint_lt(rd.len, sizeof(line));
	memcpy(line, rd.data, rd.len);
	line[rd.len] = '\0';
	rouse_future_drop(&rd.base);
	grandchild = (pid_t)atoi(line);
	pid = rouse_process_pid(*p);
	ck_assert_int_gt(grandchild, 0);
	/* Both in the child's own group, which is not ours. */
	ck_assert_int_eq(getpgid(pid), pid);
	ck_assert_int_eq(getpgid(grandchild), pid);
	ck_assert_int_ne(getpgid(0), pid);
	return grandchild;
}

/* The grandchild ended by SIGKILL, reaped here as its subreaper. */
static void assert_killed(pid_t grandchild)
{
	int st;

	ck_assert_int_eq(waitpid(grandchild, &st, 0), grandchild);
	ck_assert(WIFSIGNALED(st));
	ck_assert_int_eq(WTERMSIG(st), SIGKILL);
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 0UL, 0UL, 0UL, 0UL),
			 0);
}

/* Killing the group reaches what the child started, not the child only. */
START_TEST(group_killed)
{
	struct test_runner ru;
	struct rouse_process_wait w;
	struct rouse_process *p;
	pid_t grandchild;

	test_runner_init(&ru, (enum test_mode)_i);
	grandchild = spawn_group(&ru, ROUSE_PROCESS_NEW_GROUP, &p);
	ck_assert_int_eq(rouse_process_kill_group(p, 0), 0);
	ck_assert_int_eq(rouse_process_kill_group(p, 12345), -EINVAL);
	ck_assert_int_eq(rouse_process_kill_group(p, SIGKILL), 0);
	w = wait_child(&ru, p);
	ck_assert_int_eq(w.term_signal, SIGKILL);
	assert_killed(grandchild);
	/* The child reaped and its group empty: nobody is left to signal. */
	ck_assert_int_eq(rouse_process_kill_group(p, SIGKILL), -ESRCH);
	ck_assert_int_eq(rouse_process_free(p), 0);
	ck_assert(no_children());
	test_runner_free(&ru);
}
END_TEST

/* KILL_ON_DROP with NEW_GROUP: free leaves nothing of the group behind. */
START_TEST(drop_kills_group)
{
	struct test_runner ru;
	struct rouse_process *p;
	pid_t grandchild;

	test_runner_init(&ru, (enum test_mode)_i);
	grandchild = spawn_group(&ru, ROUSE_PROCESS_NEW_GROUP |
				 ROUSE_PROCESS_KILL_ON_DROP, &p);
	ck_assert_int_eq(rouse_process_free(p), 0);
	assert_killed(grandchild);
	ck_assert(no_children());
	test_runner_free(&ru);
}
END_TEST

/*
 * Without KILL_ON_DROP, a child freed while it runs goes on running, and
 * is reaped by the reactor when it ends: cat, whose input we hold open,
 * then close.
 */
START_TEST(drop_orphan)
{
	char *argv[] = { "/bin/cat", NULL };
	struct rouse_process_config c = config_of(argv);
	struct test_runner ru;
	struct rouse_process *p;
	struct rouse_stream *in;
	siginfo_t si;
	pid_t pid;
	int fds0;

	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	c.stdio[0] = ROUSE_STDIO_PIPE;
	ck_assert_int_eq(rouse_process_spawn(ru.r, &c, &p), 0);
	pid = rouse_process_pid(p);
	ck_assert_int_eq(rouse_process_take_stdio(p, 0, &in), 0);
	ck_assert_int_eq(rouse_process_free(p), 0);
	/* Alive, not killed: no child has ended. */
	ck_assert_int_eq(kill(pid, 0), 0);
	memset(&si, 0, sizeof(si));
	ck_assert_int_eq(waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT),
			 0);
	ck_assert_int_eq(si.si_pid, 0);
	/* Its input ends, so does cat; a turn of the reactor reaps it. */
	ck_assert_int_eq(rouse_stream_close(in), 0);
	settle_no_children(&ru);
	/* The pidfd went with it. */
	ck_assert_int_eq(test_count_fds(), fds0);
	test_runner_free(&ru);
}
END_TEST

/*
 * The orphan's reactor is freed before the child ends: the default
 * reactor takes the orphan over and reaps it.
 */
START_TEST(drop_orphan_reactor_freed)
{
	char *argv[] = { "/bin/cat", NULL };
	struct rouse_process_config c = config_of(argv);
	struct test_runner ru;
	struct rouse_process *p;
	struct rouse_stream *in;
	int keep;

	test_runner_init(&ru, (enum test_mode)_i);
	c.stdio[0] = ROUSE_STDIO_PIPE;
	ck_assert_int_eq(rouse_process_spawn(ru.r, &c, &p), 0);
	ck_assert_int_eq(rouse_process_take_stdio(p, 0, &in), 0);
	keep = dup(rouse_stream_fd(in));
	ck_assert_int_ge(keep, 0);
	ck_assert_int_eq(rouse_stream_close(in), 0);
	ck_assert_int_eq(rouse_process_free(p), 0);
	test_runner_free(&ru);
	ck_assert(!no_children());
	close(keep);
	settle_no_children(NULL);
}
END_TEST

/* Reads all of fd, which is blocking, to its end; malloc'd, with a NUL. */
static char *read_all(int fd)
{
	size_t len = 0, cap = 256;
	char *buf = malloc(cap);
	ssize_t n;

	ck_assert_ptr_nonnull(buf);
	for (;;) {
		if (cap - len < 2) {
			buf = realloc(buf, cap *= 2);
			ck_assert_ptr_nonnull(buf);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		ck_assert_int_ge(n, 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

/* /dev/null, the caller's own stream, and a descriptor given by number. */
START_TEST(stdio_kinds)
{
	char *argv[] = { "/bin/sh", "-c", "cat; echo out; echo err >&2",
			 NULL };
	struct rouse_process_config c = config_of(argv);
	struct test_runner ru;
	char *out, *text;
	int errp[2], saved, fds0;

	test_runner_init(&ru, (enum test_mode)_i);
	fds0 = test_count_fds_warm();
	/* stdin /dev/null: cat ends at once; stderr our own fd 2. */
	ck_assert_int_eq(pipe2(errp, O_CLOEXEC), 0);
	saved = fcntl(2, F_DUPFD_CLOEXEC, 3);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_eq(dup2(errp[1], 2), 2);
	c.stdio[0] = ROUSE_STDIO_NULL;
	c.stdio[2] = ROUSE_STDIO_INHERIT;
	ck_assert_int_eq(run_capture(&ru, &c, &out, NULL), 0);
	ck_assert_int_eq(dup2(saved, 2), 2);
	close(saved);
	close(errp[1]);
	ck_assert_str_eq(out, "out\n");
	free(out);
	text = read_all(errp[0]);
	ck_assert_str_eq(text, "err\n");
	free(text);
	close(errp[0]);
	/* stderr a descriptor of ours, given by number. */
	ck_assert_int_eq(pipe2(errp, O_CLOEXEC), 0);
	c.stdio[2] = errp[1];
	ck_assert_int_eq(run_capture(&ru, &c, &out, NULL), 0);
	close(errp[1]);
	ck_assert_str_eq(out, "out\n");
	free(out);
	text = read_all(errp[0]);
	ck_assert_str_eq(text, "err\n");
	free(text);
	close(errp[0]);
	/* stdout to /dev/null: nothing comes, and it succeeds. */
	c = config_of((char *[]){ "/bin/sh", "-c", "echo gone", NULL });
	c.stdio[1] = ROUSE_STDIO_NULL;
	c.stdio[2] = ROUSE_STDIO_PIPE;
	{
		struct rouse_process *p;
		struct drain d;
		struct rouse_future *f = &d.base;

		ck_assert_int_eq(rouse_process_spawn(ru.r, &c, &p), 0);
		drain_init(&d, rouse_process_stdio(p, 2));
		run_all(&ru, &f, 1);
		ck_assert_uint_eq(d.len, 0);
		free(d.buf);
		ck_assert_int_eq(wait_child(&ru, p).exit_code, 0);
		ck_assert_int_eq(rouse_process_free(p), 0);
	}
	/* A descriptor that is not open. */
	c.stdio[1] = 999;
	{
		struct rouse_process *p = NULL;

		ck_assert_int_eq(rouse_process_spawn(ru.r, &c, &p), -EBADF);
		ck_assert_ptr_null(p);
	}
	ck_assert_int_eq(test_count_fds(), fds0);
	ck_assert(no_children());
	test_runner_free(&ru);
}
END_TEST

/*
 * A pipe end made while fd 0, 1 and 2 are closed lands on them; the
 * spawn moves the child's ends out of the way of its dup2s.
 */
START_TEST(stdio_low_fds)
{
	char *argv[] = { "/bin/sh", "-c", "read x; echo \"$x\"; echo e >&2",
			 NULL };
	struct rouse_process_config c = config_of(argv);
	struct test_runner ru;
	struct rouse_process *p;
	struct rouse_stream *in;
	struct feed fd;
	struct drain d1, d2;
	struct rouse_future *f[3] = { &fd.base, &d1.base, &d2.base };
	int saved[3], i;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	for (i = 0; i < 3; i++) {
		saved[i] = fcntl(i, F_DUPFD_CLOEXEC, 10);
		ck_assert_int_ge(saved[i], 0);
		close(i);
	}
	c.stdio[0] = c.stdio[1] = c.stdio[2] = ROUSE_STDIO_PIPE;
	ck_assert_int_eq(rouse_process_spawn(ru.r, &c, &p), 0);
	ck_assert_int_eq(rouse_process_take_stdio(p, 0, &in), 0);
	feed_init(&fd, in, "hello\n", 6);
	drain_init(&d1, rouse_process_stdio(p, 1));
	drain_init(&d2, rouse_process_stdio(p, 2));
	run_all(&ru, f, 3);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(dup2(saved[i], i), i);
		close(saved[i]);
	}
	ck_assert_str_eq(d1.buf, "hello\n");
	ck_assert_str_eq(d2.buf, "e\n");
	free(d1.buf);
	free(d2.buf);
	ck_assert_int_eq(wait_child(&ru, p).exit_code, 0);
	ck_assert_int_eq(rouse_process_free(p), 0);
	test_runner_free(&ru);
}
END_TEST

START_TEST(working_directory)
{
	char dir[] = "/tmp/rouse-process-XXXXXX";
	char *argv[] = { "/bin/pwd", "-P", NULL };
	char *argv_rel[] = { "./script", NULL };
	struct rouse_process_config c = config_of(argv);
	struct test_runner ru;
	char *real, *out, path[64];
	FILE *f;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	real = realpath(dir, NULL);
	ck_assert_ptr_nonnull(real);
	c.cwd = dir;
	ck_assert_int_eq(run_capture(&ru, &c, &out, NULL), 0);
	ck_assert(strncmp(out, real, strlen(real)) == 0);
	ck_assert_str_eq(out + strlen(real), "\n");
	free(out);
	/* A relative path is found in the child's new directory. */
	snprintf(path, sizeof(path), "%s/script", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("#!/bin/sh\necho here\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0700), 0);
	c = config_of(argv_rel);
	c.cwd = dir;
	ck_assert_int_eq(run_capture(&ru, &c, &out, NULL), 0);
	ck_assert_str_eq(out, "here\n");
	free(out);
	unlink(path);
	rmdir(dir);
	free(real);
	test_runner_free(&ru);
}
END_TEST

START_TEST(environment)
{
	char *argv[] = { "/bin/sh", "-c", "echo \"[$ROUSE_A][$ROUSE_B]\"",
			 NULL };
	char *envp[] = { "ROUSE_A=given", NULL };
	struct rouse_process_config c = config_of(argv);
	struct test_runner ru;
	char *out;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	ck_assert_int_eq(setenv("ROUSE_B", "inherited", 1), 0);
	/* envp NULL: the caller's environment. */
	ck_assert_int_eq(run_capture(&ru, &c, &out, NULL), 0);
	ck_assert_str_eq(out, "[][inherited]\n");
	free(out);
	/* envp given: that and nothing else. */
	c.envp = envp;
	ck_assert_int_eq(run_capture(&ru, &c, &out, NULL), 0);
	ck_assert_str_eq(out, "[given][]\n");
	free(out);
	unsetenv("ROUSE_B");
	test_runner_free(&ru);
}
END_TEST

/*
 * The child starts with no signal blocked and none ignored, whatever the
 * caller's thread has: a shell that sends itself SIGTERM dies of it.
 */
START_TEST(clean_signal_state)
{
	char *argv[] = { "/bin/sh", "-c", "kill -TERM $$; exit 3", NULL };
	struct rouse_process_config c = config_of(argv);
	struct test_runner ru;
	struct rouse_process *p;
	sigset_t term;
	int how;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	for (how = 0; how < 2; how++) {
		struct rouse_process_wait w;

		sigemptyset(&term);
		sigaddset(&term, SIGTERM);
		if (how == 0)
			pthread_sigmask(SIG_BLOCK, &term, NULL);
		else
			signal(SIGTERM, SIG_IGN);
		ck_assert_int_eq(rouse_process_spawn(ru.r, &c, &p), 0);
		w = wait_child(&ru, p);
		ck_assert_int_eq(w.term_signal, SIGTERM);
		ck_assert_int_eq(rouse_process_free(p), 0);
		pthread_sigmask(SIG_UNBLOCK, &term, NULL);
		signal(SIGTERM, SIG_DFL);
	}
	test_runner_free(&ru);
}
END_TEST

/*
 * The child sees none of our descriptors: not the reactor's, not the
 * pidfds of other children, not the other ends of its own pipes.
 */
START_TEST(no_fd_leak_to_child)
{
	char *argv[] = { "/bin/sh", "-c",
			 "for f in /proc/$$/fd/*; do readlink \"$f\"; done;"
			 " true", NULL };
	char *argv_cat[] = { "/bin/cat", NULL };
	struct rouse_process_config c = config_of(argv), cc;
	struct test_runner ru;
	struct rouse_process *other;
	char *out;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	/* Another child with pipes and a pidfd, alive meanwhile. */
	cc = config_of(argv_cat);
	cc.stdio[0] = cc.stdio[1] = ROUSE_STDIO_PIPE;
	cc.flags = ROUSE_PROCESS_KILL_ON_DROP;
	ck_assert_int_eq(rouse_process_spawn(ru.r, &cc, &other), 0);
	c.stdio[0] = ROUSE_STDIO_PIPE;
	ck_assert_int_eq(run_capture(&ru, &c, &out, NULL), 0);
	ck_assert_msg(strstr(out, "pidfd") == NULL &&
			      strstr(out, "eventpoll") == NULL &&
			      strstr(out, "eventfd") == NULL &&
			      strstr(out, "timerfd") == NULL,
		      "the child has: %s", out);
	free(out);
	ck_assert_int_eq(rouse_process_free(other), 0);
	ck_assert(no_children());
	test_runner_free(&ru);
}
END_TEST

/* Dropping a wait that waits, then waiting again; two waits at once. */
START_TEST(wait_drop_and_busy)
{
	char *argv[] = { "/bin/cat", NULL };
	struct rouse_process_config c = config_of(argv);
	struct test_runner ru;
	struct rouse_process *p;
	struct rouse_stream *in;
	struct rouse_process_wait w, w2;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	c.stdio[0] = ROUSE_STDIO_PIPE;
	ck_assert_int_eq(rouse_process_spawn(ru.r, &c, &p), 0);
	ck_assert_int_eq(rouse_process_wait_init(&w, p), 0);
	ck_assert_int_eq(test_poll_noop(&w.base), ROUSE_PENDING);
	ck_assert_int_eq(rouse_process_wait_init(&w2, p), 0);
	ck_assert_int_eq(test_poll_noop(&w2.base), ROUSE_READY);
	ck_assert_int_eq(w2.result, -EBUSY);
	ck_assert_int_eq(rouse_future_drop(&w2.base), 0);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	ck_assert_int_eq(rouse_process_take_stdio(p, 0, &in), 0);
	ck_assert_int_eq(rouse_stream_close(in), 0);
	ck_assert_int_eq(wait_child(&ru, p).exit_code, 0);
	ck_assert_int_eq(rouse_process_free(p), 0);
	test_runner_free(&ru);
}
END_TEST

/*
 * In a child of fork(), the parent's processes and reactor are refused;
 * after rouse_reactor_fork() a wait says ECHILD, and free kills nothing.
 */
START_TEST(inherited_refused)
{
	char *argv[] = { "/bin/cat", NULL };
	struct rouse_process_config c = config_of(argv);
	struct test_runner ru;
	struct rouse_process *p, *q = NULL;
	struct rouse_process_wait w;
	int status;
	pid_t pid;

	test_runner_init(&ru, TEST_MODE_DRIVEN);
	c.stdio[0] = ROUSE_STDIO_PIPE;
	c.flags = ROUSE_PROCESS_KILL_ON_DROP;
	ck_assert_int_eq(rouse_process_spawn(ru.r, &c, &p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int bad = 0;

		bad |= rouse_process_spawn(ru.r, &c, &q) != -ECHILD;
		bad |= rouse_process_kill(p, SIGKILL) != -ECHILD;
		bad |= rouse_process_wait_init(&w, p) != -ECHILD;
		bad |= rouse_process_free(p) != -ECHILD;
		/* Made the child's own: p's child is still not ours. */
		bad |= rouse_reactor_fork(ru.r) != 0;
		bad |= rouse_process_wait_init(&w, p) != 0;
		bad |= test_poll_noop(&w.base) != ROUSE_READY ||
		       w.result != -ECHILD;
		rouse_future_drop(&w.base);
		bad |= rouse_process_free(p) != 0;	/* kills nothing */
		_exit(bad);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* The parent's child is untouched, and still ours to end. */
	ck_assert_int_eq(rouse_process_kill(p, 0), 0);
	ck_assert_int_eq(rouse_process_free(p), 0);
	ck_assert(no_children());
	test_runner_free(&ru);
}
END_TEST

/* ---- allocation failure ---------------------------------------------- */

/* The reactor library's allocator, failing call fail_at (from 0). */
static atomic_long fa_live, fa_calls, fa_fail_at = -1, fa_failed;

static bool fa_fail(void)
{
	if (atomic_fetch_add(&fa_calls, 1) != atomic_load(&fa_fail_at))
		return false;
	atomic_fetch_add(&fa_failed, 1);
	return true;
}

static void *fa_malloc(void *data, size_t size)
{
	void *p = fa_fail() ? NULL : malloc(size);

	if (p != NULL)
		atomic_fetch_add(&fa_live, 1);
	return p;
}

static void *fa_realloc(void *data, void *ptr, size_t size)
{
	return fa_fail() ? NULL : realloc(ptr, size);
}

static void fa_free(void *data, void *ptr)
{
	atomic_fetch_sub(&fa_live, 1);
	free(ptr);
}

static const struct rouse_allocator fa_allocator = {
	fa_malloc, fa_realloc, fa_free, NULL,
};

/*
 * Each allocation of a spawn with three pipes fails in turn, the last
 * ones after the child exists (the pidfd's registration): -ENOMEM, no
 * block, descriptor or child left behind; then one spawn succeeds.
 */
START_TEST(spawn_alloc_failure)
{
	char *argv[] = { "/bin/cat", NULL };
	struct rouse_process_config c = config_of(argv);
	struct rouse_reactor *r;
	struct rouse_process *p;
	long n, live0;
	int fds0, err;

	c.stdio[0] = c.stdio[1] = c.stdio[2] = ROUSE_STDIO_PIPE;
	c.flags = ROUSE_PROCESS_KILL_ON_DROP;	/* no orphan outlives r */
	ck_assert_int_eq(rouse_reactor_set_allocator(&fa_allocator), 0);
	for (n = 0;; n++) {
		ck_assert_int_lt(n, 64);
		live0 = atomic_load(&fa_live);
		r = test_reactor_make();
		fds0 = test_count_fds();
		p = NULL;
		atomic_store(&fa_calls, 0);
		atomic_store(&fa_failed, 0);
		atomic_store(&fa_fail_at, n);
		err = rouse_process_spawn(r, &c, &p);
		atomic_store(&fa_fail_at, -1);
		if (err == 0) {
			ck_assert_int_eq(rouse_process_free(p), 0);
		} else {
			ck_assert_int_eq(err, -ENOMEM);
			ck_assert_int_eq(atomic_load(&fa_failed), 1);
			ck_assert_ptr_null(p);
			ck_assert_int_eq(test_count_fds(), fds0);
			ck_assert(no_children());
		}
		ck_assert(no_children());
		rouse_reactor_free(r);
		/* What the reactor's tables kept went with it. */
		ck_assert_int_eq(atomic_load(&fa_live), live0);
		if (err == 0 && atomic_load(&fa_failed) == 0)
			break;
	}
	/* The object, three streams and registrations, the pidfd's. */
	ck_assert_int_ge(n, 8);
	ck_assert_int_eq(atomic_load(&fa_live), 0);
	ck_assert_int_eq(rouse_reactor_set_allocator(NULL), 0);
}
END_TEST

START_TEST(bad_input)
{
	char *argv[] = { "/bin/true", NULL };
	char *empty[] = { NULL };
	struct rouse_process_config c = config_of(argv), b;
	struct rouse_reactor *r = test_reactor_make();
	struct rouse_process *p = NULL;
	struct rouse_stream *s;
	struct rouse_process_wait w;

	ck_assert_int_eq(rouse_process_config_init(NULL), -EINVAL);
	ck_assert_int_eq(rouse_process_spawn(NULL, &c, &p), -EINVAL);
	ck_assert_int_eq(rouse_process_spawn(r, NULL, &p), -EINVAL);
	ck_assert_int_eq(rouse_process_spawn(r, &c, NULL), -EINVAL);
	b = c;
	b.path = NULL;
	ck_assert_int_eq(rouse_process_spawn(r, &b, &p), -EINVAL);
	b = c;
	b.argv = NULL;
	ck_assert_int_eq(rouse_process_spawn(r, &b, &p), -EINVAL);
	b.argv = empty;
	ck_assert_int_eq(rouse_process_spawn(r, &b, &p), -EINVAL);
	b = c;
	b.stdio[1] = -4;
	ck_assert_int_eq(rouse_process_spawn(r, &b, &p), -EINVAL);
	b = c;
	b.flags = 0x100;
	ck_assert_int_eq(rouse_process_spawn(r, &b, &p), -EINVAL);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(rouse_process_free(NULL), -EINVAL);
	ck_assert_int_eq(rouse_process_kill(NULL, SIGTERM), -EINVAL);
	ck_assert_int_eq(rouse_process_kill_group(NULL, SIGTERM), -EINVAL);
	ck_assert_int_eq(rouse_process_pid(NULL), -EINVAL);
	ck_assert_ptr_null(rouse_process_stdio(NULL, 1));
	ck_assert_int_eq(rouse_process_wait_init(NULL, p), -EINVAL);
	ck_assert_int_eq(rouse_process_wait_init(&w, NULL), -EINVAL);
	ck_assert_int_eq(rouse_process_take_stdio(NULL, 0, &s), -EINVAL);
	/* A real process, and bad arguments about it. */
	ck_assert_int_eq(rouse_process_spawn(r, &c, &p), 0);
	ck_assert_ptr_null(rouse_process_stdio(p, 1));	/* not a pipe */
	ck_assert_ptr_null(rouse_process_stdio(p, 3));
	ck_assert_ptr_null(rouse_process_stdio(p, -1));
	ck_assert_int_eq(rouse_process_take_stdio(p, 3, &s), -EINVAL);
	ck_assert_int_eq(rouse_process_take_stdio(p, 0, NULL), -EINVAL);
	ck_assert_int_eq(rouse_process_take_stdio(p, 1, &s), -ENOENT);
	ck_assert_int_eq(rouse_process_kill(p, 12345), -EINVAL);
	/* Not spawned with NEW_GROUP: its group is ours, never signalled. */
	ck_assert_int_eq(rouse_process_kill_group(p, 0), -EINVAL);
	ck_assert_int_eq(rouse_process_wait_init(&w, p), 0);
	ck_assert_int_eq(rouse_future_drop(&w.base), 0);
	ck_assert_int_eq(rouse_process_free(p), 0);
	rouse_reactor_free(r);
	settle_no_children(NULL);
}
END_TEST

static Suite *process_suite(void)
{
	Suite *s = suite_create("process");
	TCase *tc;

	tc = tcase_create("spawn");
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	tcase_add_loop_test(tc, echo_through_cat, 0, TEST_MODES);
	tcase_add_loop_test(tc, exit_codes, 0, TEST_MODES);
	tcase_add_loop_test(tc, killed_by_signal, 0, TEST_MODES);
	tcase_add_test(tc, missing_program);
	tcase_add_loop_test(tc, stdio_kinds, 0, TEST_MODES);
	tcase_add_test(tc, stdio_low_fds);
	tcase_add_test(tc, working_directory);
	tcase_add_test(tc, environment);
	tcase_add_test(tc, clean_signal_state);
	tcase_add_test(tc, no_fd_leak_to_child);
	tcase_add_test(tc, wait_drop_and_busy);
	tcase_add_test(tc, inherited_refused);
	tcase_add_test(tc, spawn_alloc_failure);
	tcase_add_test(tc, bad_input);
	suite_add_tcase(s, tc);

	tc = tcase_create("many");
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	/* Threaded and driven: the lock-free mode adds nothing here. */
	tcase_add_loop_test(tc, many_children, TEST_MODE_THREADED,
			    TEST_MODE_DRIVEN + 1);
	suite_add_tcase(s, tc);

	tc = tcase_create("drop");
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	tcase_add_loop_test(tc, drop_kills, 0, TEST_MODES);
	tcase_add_loop_test(tc, drop_kills_group, 0, TEST_MODES);
	tcase_add_loop_test(tc, group_killed, 0, TEST_MODES);
	tcase_add_loop_test(tc, drop_orphan, 0, TEST_MODES);
	tcase_add_loop_test(tc, drop_orphan_reactor_freed, 0, TEST_MODES);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	/* Every case spawns, and a spawn needs pidfd_open(2). */
	if (!test_have_pidfd()) {
		printf("SKIP: no pidfd_open(2) here (Linux < 5.3, or "
		       "valgrind)\n");
		return 77;
	}
	return test_run_suite(process_suite());
}
