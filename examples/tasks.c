// SPDX-License-Identifier: MIT
/*
 * examples/tasks.c - spawn four tasks on a multi-thread executor and join
 * them.  Each task's future is moved into the task; its output stays in it
 * and is read through the join handle, which is itself a future.
 */
#include <stdio.h>
#include <rouse/executor.h>

/* A task's future: squares its input; the output stays in the struct. */
struct square {
	struct rouse_future base;
	int in, out;
};

static enum rouse_poll square_poll(struct rouse_future *f,
				   struct rouse_context *cx)
{
	struct square *s = (struct square *)f;

	(void)cx;
	s->out = s->in * s->in;
	return ROUSE_READY;
}

static const struct rouse_future_vtable square_vt = { square_poll, NULL };

int main(void)
{
	struct rouse_executor_config cfg;
	struct rouse_executor *ex;
	struct rouse_join_handle h[4];
	int i, sum = 0;

	rouse_executor_config_init(&cfg);
	cfg.kind = ROUSE_EXECUTOR_MULTI_THREAD;	/* one worker per CPU */
	rouse_executor_new(&cfg, &ex);
	for (i = 0; i < 4; i++) {
		struct square s = { { &square_vt }, i + 1, 0 };

		rouse_spawn(ex, &s.base, sizeof(s), &h[i]);	/* moved in */
	}
	for (i = 0; i < 4; i++) {
		rouse_executor_block_on(ex, &h[i].base);	/* a join handle is a future */
		sum += ((struct square *)h[i].output)->out;
		rouse_future_drop(&h[i].base);
	}
	printf("1 + 4 + 9 + 16 = %d\n", sum);
	return rouse_executor_free(ex);
}
