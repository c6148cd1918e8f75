// SPDX-License-Identifier: MIT
/*
 * examples/async-loop.c - an async function with awaits inside a loop: an
 * interval ticks five times, and after each tick the function yields once
 * to let other work run.
 *
 *   examples/async-loop
 *
 * The loop counter is a member of the struct, not a C local: a local does
 * not survive the return that every pending await is.  The interval is
 * initialised once, before the loop, and awaited again at each turn of
 * it; a yield is re-initialised each time, which costs two stores.
 */
#include <stdio.h>
#include <string.h>

#include <rouse/async.h>
#include <rouse/combinator.h>
#include <rouse/executor.h>
#include <rouse/reactor.h>

#define MS 1000000LL

struct ticker {
	struct rouse_future base;
	struct rouse_async co;
	struct rouse_reactor *r;
	int n;				/* ticks to wait for */
	int i;				/* the loop counter: in the struct */
	int64_t start;
	struct rouse_interval iv;
	struct rouse_yield y;
	int result;			/* output: 0 or -errno */
};

static enum rouse_poll ticker_poll(struct rouse_future *f,
				   struct rouse_context *cx)
{
	struct ticker *t = (struct ticker *)f;

	ROUSE_ASYNC_BEGIN(&t->co, cx);
	t->start = rouse_reactor_now(t->r);
	t->result = rouse_interval_init(&t->iv, t->r, 20 * MS);
	if (t->result < 0)
		ROUSE_ASYNC_RETURN();
	for (t->i = 1; t->i <= t->n; t->i++) {
		ROUSE_AWAIT(&t->iv.sleep.base);
		if (t->iv.result < 0) {
			t->result = t->iv.result;
			ROUSE_ASYNC_RETURN();
		}
		printf("tick %d at %lld ms (%llu period%s)\n", t->i,
		       (long long)((rouse_reactor_now(t->r) - t->start) / MS),
		       (unsigned long long)t->iv.ticks,
		       t->iv.ticks == 1 ? "" : "s");
		rouse_yield_init(&t->y);
		ROUSE_AWAIT(&t->y.base);
	}
	printf("%d ticks, done\n", t->n);
	ROUSE_ASYNC_END();
}

/* The interval and the yield hold nothing while unused: drop both. */
static void ticker_drop(struct rouse_future *f)
{
	struct ticker *t = (struct ticker *)f;

	rouse_future_drop(&t->iv.sleep.base);
	rouse_future_drop(&t->y.base);
}

static const struct rouse_future_vtable ticker_vtable = {
	.poll = ticker_poll,
	.drop = ticker_drop,
};

int main(void)
{
	struct rouse_parker parker;
	struct ticker t;
	int err;

	memset(&t, 0, sizeof(t));
	t.base.vtable = &ticker_vtable;
	t.n = 5;
	setvbuf(stdout, NULL, _IOLBF, 0);
	err = rouse_reactor_new(&t.r, 0);
	if (err == 0)
		err = rouse_reactor_parker(t.r, &parker);
	if (err < 0) {
		fprintf(stderr, "async-loop: reactor: %s\n", strerror(-err));
		return 1;
	}
	err = rouse_block_on_with(&t.base, &parker);
	if (err == 0)
		err = t.result;
	rouse_future_drop(&t.base);
	rouse_reactor_free(t.r);
	if (err < 0) {
		fprintf(stderr, "async-loop: %s\n", strerror(-err));
		return 1;
	}
	return 0;
}
