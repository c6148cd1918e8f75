// SPDX-License-Identifier: MIT
/*
 * examples/pipeline.c - tasks that talk through a channel: three producer
 * tasks send numbers into a bounded mpsc channel, one consumer task adds
 * them up, all on a multi-thread executor.
 *
 *   examples/pipeline
 *
 * Every task is an async function (rouse/async.h): its loop counter and
 * its pending send or receive live in its struct.  The channel holds four
 * numbers, so a producer that gets ahead waits in its send (back-pressure)
 * and takes no thread while it waits.  When the last producer lets go of
 * its sender, the consumer's receive reports -EPIPE and it finishes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rouse/async.h>
#include <rouse/executor.h>
#include <rouse/sync.h>

#define PRODUCERS 3
#define PER_PRODUCER 1000

struct producer {
	struct rouse_future base;
	struct rouse_async co;
	struct rouse_mpsc *ch;
	int id, i;
	long value;			/* what the pending send copies in */
	struct rouse_mpsc_send send;
	int result;			/* output: 0 or -errno */
};

static enum rouse_poll producer_poll(struct rouse_future *f,
				     struct rouse_context *cx)
{
	struct producer *p = (struct producer *)f;

	ROUSE_ASYNC_BEGIN(&p->co, cx);
	for (p->i = 1; p->i <= PER_PRODUCER; p->i++) {
		p->value = (long)p->id * PER_PRODUCER + p->i;
		p->result = rouse_mpsc_send_init(&p->send, p->ch, &p->value);
		if (p->result < 0)
			break;
		ROUSE_AWAIT(&p->send.base);
		p->result = p->send.result;
		rouse_future_drop(&p->send.base);
		if (p->result < 0)
			break;
	}
	rouse_mpsc_sender_release(p->ch);	/* this producer's sender */
	ROUSE_ASYNC_END();
}

/*
 * A producer dropped before it finished (say, by rouse_executor_free())
 * drops its pending send and lets go of its sender.
 */
static void producer_drop(struct rouse_future *f)
{
	struct producer *p = (struct producer *)f;

	if (p->co.line > 0)
		rouse_future_drop(&p->send.base);
	if (p->co.line != -1)
		rouse_mpsc_sender_release(p->ch);	/* not done: still ours */
}

static const struct rouse_future_vtable producer_vtable = {
	.poll = producer_poll,
	.drop = producer_drop,
};

struct consumer {
	struct rouse_future base;
	struct rouse_async co;
	struct rouse_mpsc *ch;
	long value;			/* where the pending receive copies */
	struct rouse_mpsc_recv recv;
	long sum, count;		/* output */
	int result;			/* output: 0 or -errno */
};

static enum rouse_poll consumer_poll(struct rouse_future *f,
				     struct rouse_context *cx)
{
	struct consumer *c = (struct consumer *)f;

	ROUSE_ASYNC_BEGIN(&c->co, cx);
	for (;;) {
		c->result = rouse_mpsc_recv_init(&c->recv, c->ch, &c->value);
		if (c->result < 0)
			break;
		ROUSE_AWAIT(&c->recv.base);
		c->result = c->recv.result;
		rouse_future_drop(&c->recv.base);
		if (c->result == -EPIPE) {
			c->result = 0;	/* every sender is gone: done */
			break;
		}
		if (c->result < 0)
			break;
		c->sum += c->value;
		c->count++;
	}
	ROUSE_ASYNC_END();
}

static void consumer_drop(struct rouse_future *f)
{
	struct consumer *c = (struct consumer *)f;

	if (c->co.line > 0)
		rouse_future_drop(&c->recv.base);
}

static const struct rouse_future_vtable consumer_vtable = {
	.poll = consumer_poll,
	.drop = consumer_drop,
};

int main(void)
{
	struct rouse_executor_config cfg;
	struct rouse_executor *ex;
	struct rouse_join_handle h[PRODUCERS], ch;
	struct rouse_mpsc *m;
	struct consumer c, *out;
	/* Producer i sends i*1000+1 .. i*1000+1000: 1 .. 3000 in all. */
	long n = (long)PRODUCERS * PER_PRODUCER, want = n * (n + 1) / 2;
	int i, err;

	rouse_executor_config_init(&cfg);
	cfg.kind = ROUSE_EXECUTOR_MULTI_THREAD;
	cfg.workers = 2;
	err = rouse_executor_new(&cfg, &ex);
	if (err < 0 || (err = rouse_mpsc_new(sizeof(long), 4, &m)) < 0) {
		fprintf(stderr, "pipeline: %s\n", strerror(-err));
		return 1;
	}
	memset(&c, 0, sizeof(c));
	c.base.vtable = &consumer_vtable;
	c.ch = m;
	rouse_spawn(ex, &c.base, sizeof(c), &ch);
	/*
	 * The channel came with one sender; each producer owns one.  Take
	 * them all before the first producer runs: one that finished and
	 * let go of the only sender would close the channel for the rest.
	 */
	for (i = 1; i < PRODUCERS; i++)
		rouse_mpsc_sender_clone(m);
	for (i = 0; i < PRODUCERS; i++) {
		struct producer p;

		memset(&p, 0, sizeof(p));
		p.base.vtable = &producer_vtable;
		p.ch = m;
		p.id = i;
		rouse_spawn(ex, &p.base, sizeof(p), &h[i]);
	}

	/* The consumer finishes once every producer has. */
	rouse_executor_block_on(ex, &ch.base);
	out = (struct consumer *)ch.output;
	printf("%ld numbers from %d producers through a channel of 4: sum "
	       "%ld (expected %ld)\n", out->count, PRODUCERS, out->sum, want);
	err = out->result;
	if (err == 0 && (out->count != n || out->sum != want))
		err = -EPROTO;
	rouse_future_drop(&ch.base);
	for (i = 0; i < PRODUCERS; i++) {
		rouse_executor_block_on(ex, &h[i].base);
		if (err == 0 && h[i].result == 0)
			err = ((struct producer *)h[i].output)->result;
		rouse_future_drop(&h[i].base);
	}
	rouse_mpsc_free(m);
	rouse_executor_free(ex);
	return err == 0 ? 0 : 1;
}
