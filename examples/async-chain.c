// SPDX-License-Identifier: MIT
/*
 * examples/async-chain.c - an async function that awaits three futures in
 * a row: a sleep, a user event that a worker thread notifies, and another
 * sleep.
 *
 *   examples/async-chain
 *
 * The function is one future, struct chain, whose poll is written top to
 * bottom with the macros of <rouse/async.h>: each ROUSE_AWAIT() polls a
 * sub-future kept in the struct and, while that is pending, returns
 * pending; the next poll jumps straight back to it.  Everything that must
 * survive an await (the sub-futures, the start time, the result) lives in
 * the struct, none of it in C locals.  The reactor is driven by the thread
 * that runs the chain: rouse_block_on_with() parks in its epoll_wait.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rouse/async.h>
#include <rouse/executor.h>
#include <rouse/reactor.h>

#define MS 1000000LL

struct chain {
	struct rouse_future base;	/* first: the executor sees this */
	struct rouse_async co;		/* where the poll resumes */
	struct rouse_reactor *r;
	struct rouse_event *ev;
	int64_t start;
	/* The sub-futures: one at a time is live, the others are dropped. */
	struct rouse_sleep sleep;
	struct rouse_event_wait wait;
	int result;			/* output: 0 or -errno */
};

static long elapsed_ms(struct chain *c)
{
	return (long)((rouse_reactor_now(c->r) - c->start) / MS);
}

static enum rouse_poll chain_poll(struct rouse_future *f,
				  struct rouse_context *cx)
{
	struct chain *c = (struct chain *)f;

	ROUSE_ASYNC_BEGIN(&c->co, cx);
	c->start = rouse_reactor_now(c->r);

	printf("%4ld ms: sleeping 50 ms\n", elapsed_ms(c));
	c->result = rouse_sleep_init(&c->sleep, c->r, 50 * MS);
	if (c->result < 0)
		ROUSE_ASYNC_RETURN();
	ROUSE_AWAIT(&c->sleep.base);
	c->result = c->sleep.result;	/* read the output, then drop */
	rouse_future_drop(&c->sleep.base);
	if (c->result < 0)
		ROUSE_ASYNC_RETURN();

	printf("%4ld ms: waiting for the worker's event\n", elapsed_ms(c));
	c->result = rouse_event_wait_init(&c->wait, c->ev);
	if (c->result < 0)
		ROUSE_ASYNC_RETURN();
	ROUSE_AWAIT(&c->wait.op.base);
	c->result = c->wait.result;
	printf("%4ld ms: the event came (%llu notification)\n",
	       elapsed_ms(c), (unsigned long long)c->wait.count);
	rouse_future_drop(&c->wait.op.base);
	if (c->result < 0)
		ROUSE_ASYNC_RETURN();

	printf("%4ld ms: sleeping 20 ms more\n", elapsed_ms(c));
	c->result = rouse_sleep_init(&c->sleep, c->r, 20 * MS);
	if (c->result < 0)
		ROUSE_ASYNC_RETURN();
	ROUSE_AWAIT(&c->sleep.base);
	c->result = c->sleep.result;
	rouse_future_drop(&c->sleep.base);
	printf("%4ld ms: done\n", elapsed_ms(c));
	ROUSE_ASYNC_END();
}

/*
 * Dropped while suspended, the chain drops the sub-future it waits for.
 * The body drops each one once it is done with it, and a dropped (or
 * never initialised, zeroed) future has a NULL vtable, on which
 * rouse_future_drop() does nothing: so dropping both is always right.
 */
static void chain_drop(struct rouse_future *f)
{
	struct chain *c = (struct chain *)f;

	rouse_future_drop(&c->sleep.base);
	rouse_future_drop(&c->wait.op.base);
}

static const struct rouse_future_vtable chain_vtable = {
	.poll = chain_poll,
	.drop = chain_drop,
};

static void *worker(void *arg)
{
	struct timespec d = { 0, 80 * MS };

	nanosleep(&d, NULL);	/* the work */
	rouse_event_notify(arg);
	return NULL;
}

int main(void)
{
	struct chain c;
	struct rouse_parker parker;
	pthread_t t;
	int err;

	memset(&c, 0, sizeof(c));	/* co at its start, no live futures */
	c.base.vtable = &chain_vtable;
	setvbuf(stdout, NULL, _IOLBF, 0);
	err = rouse_reactor_new(&c.r, 0);
	if (err == 0)
		err = rouse_reactor_parker(c.r, &parker);
	if (err == 0)
		err = rouse_event_new(c.r, &c.ev);
	if (err < 0) {
		fprintf(stderr, "async-chain: reactor: %s\n", strerror(-err));
		return 1;
	}
	err = pthread_create(&t, NULL, worker, c.ev);
	if (err != 0) {
		fprintf(stderr, "async-chain: pthread_create: %s\n",
			strerror(err));
		return 1;
	}
	err = rouse_block_on_with(&c.base, &parker);
	if (err == 0)
		err = c.result;
	rouse_future_drop(&c.base);
	pthread_join(t, NULL);
	rouse_event_free(c.ev);
	rouse_reactor_free(c.r);
	if (err < 0) {
		fprintf(stderr, "async-chain: %s\n", strerror(-err));
		return 1;
	}
	return 0;
}
