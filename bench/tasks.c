// SPDX-License-Identifier: MIT
/*
 * bench/tasks.c - the parts that the task benchmarks (yield, spawn,
 * spawn-mt, inject) share: counting finished tasks, making an executor,
 * the unit task, and the spawner of spawn and spawn-mt.  Calls only rouse
 * and the harness (bench.h).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <rouse/executor.h>

#include "bench.h"
#include "tasks.h"

struct rouse_executor *make_executor(enum rouse_executor_kind kind,
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

static enum rouse_poll unit_poll(struct rouse_future *f,
				 struct rouse_context *cx)
{
	struct unit_task *u = (struct unit_task *)f;

	(void)cx;
	u->tb->ran[u->i]++;
	return ROUSE_READY;
}

const struct rouse_future_vtable unit_vt = { unit_poll, NULL };

void check_ran_once(const struct task_bench *tb)
{
	uint64_t i;

	for (i = 0; i < tb->n; i++)
		if (tb->ran[i] != 1)
			fail("task %" PRIu64 " ran %u times", i, tb->ran[i]);
}

/* ---- the spawner of spawn and spawn-mt ----------------------------- */

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

void spawner_init(struct spawner *sp, struct task_bench *tb, uint64_t n)
{
	memset(tb, 0, sizeof(*tb));
	memset(sp, 0, sizeof(*sp));
	tb->n = n;
	tb->ran = xcalloc(n, 1);
	tb->h = xcalloc(n, sizeof(*tb->h));
	sp->base.vtable = &spawner_vt;
	sp->tb = tb;
}

void spawner_check(const struct task_bench *tb)
{
	check_rouse("spawn", tb->err);
	check_ran_once(tb);
}

void spawner_free(struct task_bench *tb)
{
	check_rouse("rouse_executor_free", rouse_executor_free(tb->ex));
	free(tb->h);
	free(tb->ran);
}
