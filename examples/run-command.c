// SPDX-License-Identifier: MIT
/*
 * examples/run-command.c - run a command, and stream its output line by
 * line with a prefix.
 *
 *   examples/run-command COMMAND [ARG]...
 *
 * Each line the command writes to its standard output comes out on ours
 * as "NAME| line", each line of its standard error on ours as "NAME! line",
 * as soon as it is complete; NAME is the command's.  A SIGINT sent to
 * run-command is passed on to the command, which decides what to do
 * with it.  run-command exits with the command's exit status, or with
 * 128 + N when signal N ended it, as a shell does.
 *
 *   $ examples/run-command sh -c 'echo a; echo b >&2; exit 3'
 *   sh| a
 *   sh! b
 *   $ echo $?
 *   3
 *
 * One future does everything: it reads both pipes, waits for the child,
 * and waits for SIGINT, all on a reactor that the main thread drives.
 * SIGINT is a future like the others: a listener (rouse_signal_new())
 * has the library catch it, with no handler or signal mask of ours, and
 * each delivery readies a wait, which sends the signal on with
 * rouse_process_kill(), by pidfd.  (From a terminal, Ctrl-C reaches the
 * command directly as well, since it is in the same process group; the
 * forwarding is for a SIGINT sent to run-command alone, with kill.)
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rouse/executor.h>
#include <rouse/process.h>
#include <rouse/signal.h>

/* One output stream of the child, cut into lines. */
struct lines {
	struct rouse_stream *s;
	FILE *to;
	char mark;			/* '|' for stdout, '!' for stderr */
	struct rouse_stream_rw rd;
	bool reading, done;
	size_t len;
	char buf[4096];
};

struct run {
	struct rouse_future base;
	const char *name;
	struct rouse_process *child;
	struct lines out, err;
	struct rouse_process_wait wait;
	struct rouse_signal *sigint;
	struct rouse_signal_wait intr;
};

static void emit(struct run *run, struct lines *l, const char *line,
		 size_t n)
{
	fprintf(l->to, "%s%c %.*s\n", run->name, l->mark, (int)n, line);
}

/* Print every complete line of l->buf; keep the rest for later. */
static void emit_lines(struct run *run, struct lines *l)
{
	char *start = l->buf, *end = l->buf + l->len, *nl;

	while ((nl = memchr(start, '\n', (size_t)(end - start))) != NULL) {
		emit(run, l, start, (size_t)(nl - start));
		start = nl + 1;
	}
	l->len = (size_t)(end - start);
	memmove(l->buf, start, l->len);
	if (l->len == sizeof(l->buf)) {		/* a very long line: cut */
		emit(run, l, l->buf, l->len);
		l->len = 0;
	}
}

/* Read l until its end; true once it is there. */
static bool lines_drive(struct run *run, struct lines *l,
			struct rouse_context *cx)
{
	while (!l->done) {
		if (!l->reading) {
			rouse_stream_read_init(&l->rd, l->s, l->buf + l->len,
					       sizeof(l->buf) - l->len);
			l->reading = true;
		}
		if (rouse_future_poll(&l->rd.base, cx) == ROUSE_PENDING)
			return false;
		rouse_future_drop(&l->rd.base);
		l->reading = false;
		if (l->rd.result <= 0) {
			if (l->rd.result < 0)
				fprintf(stderr, "run-command: read: %s\n",
					strerror((int)-l->rd.result));
			if (l->len > 0)		/* a last line without \n */
				emit(run, l, l->buf, l->len);
			l->done = true;
			break;
		}
		l->len += (size_t)l->rd.result;
		emit_lines(run, l);
	}
	return true;
}

static enum rouse_poll run_poll(struct rouse_future *f,
				struct rouse_context *cx)
{
	struct run *run = (struct run *)f;
	bool out_done, err_done;

	/* Each SIGINT that came: pass it on, and wait for the next. */
	while (rouse_future_poll(&run->intr.base, cx) == ROUSE_READY) {
		rouse_future_drop(&run->intr.base);
		rouse_signal_wait_init(&run->intr, run->sigint);
		rouse_process_kill(run->child, SIGINT);
	}
	out_done = lines_drive(run, &run->out, cx);
	err_done = lines_drive(run, &run->err, cx);
	if (!out_done || !err_done)
		return ROUSE_PENDING;
	return rouse_future_poll(&run->wait.base, cx) == ROUSE_READY
		       ? ROUSE_READY
		       : ROUSE_PENDING;
}

static void run_drop(struct rouse_future *f)
{
	struct run *run = (struct run *)f;

	if (run->out.reading)
		rouse_future_drop(&run->out.rd.base);
	if (run->err.reading)
		rouse_future_drop(&run->err.rd.base);
	rouse_future_drop(&run->wait.base);
	rouse_future_drop(&run->intr.base);
}

static const struct rouse_future_vtable run_vtable = {
	.poll = run_poll,
	.drop = run_drop,
};

int main(int argc, char **argv)
{
	static struct run run = { .base.vtable = &run_vtable };
	struct rouse_process_config c;
	struct rouse_reactor *r;
	struct rouse_parker parker;
	int err, status = 1;

	if (argc < 2) {
		fprintf(stderr, "usage: %s COMMAND [ARG]...\n", argv[0]);
		return 2;
	}
	run.name = strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1
					 : argv[1];
	/* Each line as it comes, even into a pipe or a file. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	err = rouse_reactor_new(&r, 0);
	if (err == 0)
		err = rouse_reactor_parker(r, &parker);
	/* Before the spawn: a SIGINT from then on is passed on. */
	if (err == 0)
		err = rouse_signal_new(r, SIGINT, &run.sigint);
	if (err < 0) {
		fprintf(stderr, "run-command: reactor: %s\n", strerror(-err));
		return 1;
	}

	rouse_process_config_init(&c);
	c.path = argv[1];
	c.argv = argv + 1;
	c.flags = ROUSE_PROCESS_SEARCH_PATH | ROUSE_PROCESS_KILL_ON_DROP;
	c.stdio[1] = ROUSE_STDIO_PIPE;
	c.stdio[2] = ROUSE_STDIO_PIPE;
	err = rouse_process_spawn(r, &c, &run.child);
	if (err < 0) {
		fprintf(stderr, "run-command: %s: %s\n", argv[1],
			strerror(-err));
		return err == -ENOENT ? 127 : 126;	/* as a shell says */
	}
	run.out = (struct lines){ .s = rouse_process_stdio(run.child, 1),
				  .to = stdout, .mark = '|' };
	run.err = (struct lines){ .s = rouse_process_stdio(run.child, 2),
				  .to = stderr, .mark = '!' };
	rouse_process_wait_init(&run.wait, run.child);
	rouse_signal_wait_init(&run.intr, run.sigint);

	err = rouse_block_on_with(&run.base, &parker);
	if (err == 0 && run.wait.result < 0)
		err = run.wait.result;
	if (err < 0)
		fprintf(stderr, "run-command: %s\n", strerror(-err));
	else if (run.wait.term_signal != 0)
		status = 128 + run.wait.term_signal;
	else
		status = run.wait.exit_code;
	rouse_future_drop(&run.base);
	rouse_process_free(run.child);
	rouse_signal_free(run.sigint);
	rouse_reactor_free(r);
	return err < 0 ? 1 : status;
}
