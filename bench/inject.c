// SPDX-License-Identifier: MIT
/*
 * bench/inject.c - the inject benchmark: a foreign thread spawns n
 * detached units onto a current-thread executor that runs in block_on on
 * the main thread; the last unit wakes the root.  Calls only rouse, the
 * harness (bench.h) and the task helpers (tasks.h, leaf.h).
 *
 * t0 just before the first spawn, t1 when the root sees the last unit
 * done.  The root's first poll meets the sender at a barrier, so the
 * sender starts only once the loop runs.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <rouse/executor.h>

#include "bench.h"
#include "leaf.h"
#include "tasks.h"

static pthread_barrier_t inject_go;

/* A unit that also counts itself finished: the last one wakes the root. */
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

static void *inject_sender(void *arg)
{
	struct task_bench *tb = arg;
	uint64_t i;
	int err;

	pin_thread(tb->pin, 1);
	barrier_wait(&inject_go);
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
		barrier_wait(&inject_go);
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
	ts = thread_start(inject_sender, &tb);
	check_rouse("rouse_executor_block_on",
		    rouse_executor_block_on(tb.ex, &root.base));
	thread_join(ts);
	check_rouse("rouse_spawn", tb.err);
	check_ran_once(&tb);
	print_phase(tb.n, tb.t0, tb.t1);
	print_end();
	root_waker_release(&tb.root);
	pthread_barrier_destroy(&inject_go);
	check_rouse("rouse_executor_free", rouse_executor_free(tb.ex));
	free(tb.ran);
}

const struct bench bench_inject = {
	"inject",
	{ COUNT("n", "100000"), PIN },
	NULL, run_inject,
};
