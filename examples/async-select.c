// SPDX-License-Identifier: MIT
/*
 * examples/async-select.c - an async function that waits for each of
 * three jobs with a deadline: a select between the job's event and a
 * sleep, in a loop.
 *
 *   examples/async-select
 *
 * Three worker threads finish at 20, 400 and 170 ms and notify their
 * event.  For each job in turn the function awaits the first of "the
 * event came" and "100 ms have passed".  The select drops the loser the
 * moment the winner is ready; the winner is still live, and the function
 * reads its output and drops it.  Expect job 1 and job 3 to be in time,
 * and job 2 to time out.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rouse/async.h>
#include <rouse/combinator.h>
#include <rouse/executor.h>
#include <rouse/reactor.h>

#define MS 1000000LL
#define JOBS 3

struct job {
	struct rouse_event *done;
	long ms;			/* how long the job takes */
	pthread_t thread;
};

struct waiter {
	struct rouse_future base;
	struct rouse_async co;
	struct rouse_reactor *r;
	struct job *jobs;
	int i;				/* the job waited for */
	int64_t start;
	struct rouse_event_wait wait;	/* select's index 0 */
	struct rouse_sleep sleep;	/* select's index 1 */
	struct rouse_future *pair[2];	/* what the select picks from */
	struct rouse_select sel;
	int in_time;			/* output: jobs done in time */
	int result;			/* output: 0 or -errno */
};

static long elapsed_ms(struct waiter *w)
{
	return (long)((rouse_reactor_now(w->r) - w->start) / MS);
}

static enum rouse_poll waiter_poll(struct rouse_future *f,
				   struct rouse_context *cx)
{
	struct waiter *w = (struct waiter *)f;

	ROUSE_ASYNC_BEGIN(&w->co, cx);
	w->start = rouse_reactor_now(w->r);
	for (w->i = 0; w->i < JOBS; w->i++) {
		w->result = rouse_event_wait_init(&w->wait,
						  w->jobs[w->i].done);
		if (w->result == 0)
			w->result = rouse_sleep_init(&w->sleep, w->r,
						     100 * MS);
		w->pair[0] = &w->wait.op.base;
		w->pair[1] = &w->sleep.base;
		if (w->result == 0)
			w->result = rouse_select_init(&w->sel, w->pair, 2, 0);
		if (w->result < 0)
			ROUSE_ASYNC_RETURN();
		ROUSE_AWAIT(&w->sel.base);
		/* The loser is dropped already; the winner is ours. */
		rouse_future_drop(w->pair[w->sel.index]);
		rouse_future_drop(&w->sel.base);
		if (w->sel.index == 0) {
			printf("%4ld ms: job %d is done, in time\n",
			       elapsed_ms(w), w->i + 1);
			w->in_time++;
		} else {
			printf("%4ld ms: job %d timed out\n", elapsed_ms(w),
			       w->i + 1);
		}
	}
	ROUSE_ASYNC_END();
}

/* Whatever is still live: the select (and through it both), or one. */
static void waiter_drop(struct rouse_future *f)
{
	struct waiter *w = (struct waiter *)f;

	rouse_future_drop(&w->sel.base);
	rouse_future_drop(&w->wait.op.base);
	rouse_future_drop(&w->sleep.base);
}

static const struct rouse_future_vtable waiter_vtable = {
	.poll = waiter_poll,
	.drop = waiter_drop,
};

static void *worker(void *arg)
{
	struct job *job = arg;
	struct timespec d = { job->ms / 1000, (job->ms % 1000) * MS };

	nanosleep(&d, NULL);	/* the work */
	rouse_event_notify(job->done);
	return NULL;
}

int main(void)
{
	struct job jobs[JOBS] = { { NULL, 20, 0 }, { NULL, 400, 0 },
				  { NULL, 170, 0 } };
	struct rouse_parker parker;
	struct waiter w;
	int err, i, started = 0;

	memset(&w, 0, sizeof(w));
	w.base.vtable = &waiter_vtable;
	w.jobs = jobs;
	setvbuf(stdout, NULL, _IOLBF, 0);
	err = rouse_reactor_new(&w.r, 0);
	if (err < 0) {
		fprintf(stderr, "async-select: reactor: %s\n", strerror(-err));
		return 1;
	}
	err = rouse_reactor_parker(w.r, &parker);
	for (i = 0; i < JOBS && err == 0; i++)
		err = rouse_event_new(w.r, &jobs[i].done);
	for (i = 0; i < JOBS && err == 0; i++) {
		err = -pthread_create(&jobs[i].thread, NULL, worker, &jobs[i]);
		if (err == 0)
			started++;
	}
	if (err == 0)
		err = rouse_block_on_with(&w.base, &parker);
	if (err == 0)
		err = w.result;
	rouse_future_drop(&w.base);
	for (i = 0; i < started; i++)
		pthread_join(jobs[i].thread, NULL);
	if (err == 0)
		printf("%d of %d jobs in time\n", w.in_time, JOBS);
	rouse_reactor_free(w.r);	/* frees the events too */
	if (err < 0) {
		fprintf(stderr, "async-select: %s\n", strerror(-err));
		return 1;
	}
	return 0;
}
