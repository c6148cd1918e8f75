// SPDX-License-Identifier: MIT
/*
 * examples/hello.c - block_on and a timer future.
 *
 * The future below is the one every walk-through of an async runtime
 * starts with: on its first poll it keeps a clone of the waker and starts
 * a helper thread that sleeps for the delay, marks the timer done and wakes
 * the waker.  Meanwhile rouse_block_on() has parked the main thread on its
 * eventfd; the wake unparks it, the future is polled again and is ready.
 *
 * With --reactor the helper thread is gone: the future is the reactor's
 * sleep.  Its first poll registers a clone of the waker with the reactor
 * and arms the reactor's timerfd; the reactor's own thread waits in
 * epoll_wait, and when the timerfd fires it wakes that waker, which
 * unparks block_on.
 *
 *   examples/hello [--reactor] [DELAY_MS]   default 1000
 *   ROUSE_LOG=trace examples/hello          the waker's life, step by step
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rouse/executor.h>
#include <rouse/reactor.h>

struct timer_future {
	struct rouse_future base;	/* first: the executor sees this */
	long delay_ms;
	bool started;
	atomic_bool done;		/* set by the helper thread */
	struct rouse_waker waker;	/* the clone the helper wakes */
	pthread_t thread;
	int polls;			/* output: how many polls it took */
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *timer_thread(void *arg)
{
	struct timer_future *t = arg;
	struct timespec d = {
		.tv_sec = t->delay_ms / 1000,
		.tv_nsec = (t->delay_ms % 1000) * 1000000L,
	};

	while (nanosleep(&d, &d) < 0 && errno == EINTR)
		;
	printf("helper: %ld ms are up, waking the main thread\n", t->delay_ms);
	/* The flag first, then the wake: the next poll must see it. */
	atomic_store(&t->done, true);
	rouse_waker_wake(&t->waker);	/* consumes the clone */
	return NULL;
}

static enum rouse_poll timer_poll(struct rouse_future *self,
				  struct rouse_context *cx)
{
	struct timer_future *t = (struct timer_future *)self;

	t->polls++;
	if (atomic_load(&t->done)) {
		printf("poll %d: the timer is done: ready\n", t->polls);
		return ROUSE_READY;
	}
	if (!t->started) {
		/* Keep our own reference: cx's waker is only lent. */
		rouse_waker_clone(cx->waker, &t->waker);
		if (pthread_create(&t->thread, NULL, timer_thread, t) != 0) {
			fprintf(stderr, "hello: pthread_create failed\n");
			exit(1);
		}
		t->started = true;
		printf("poll %d: timer started for %ld ms: pending\n",
		       t->polls, t->delay_ms);
	}
	return ROUSE_PENDING;
}

static void timer_drop(struct rouse_future *self)
{
	struct timer_future *t = (struct timer_future *)self;

	if (t->started)
		pthread_join(t->thread, NULL);
}

static const struct rouse_future_vtable timer_vtable = {
	.poll = timer_poll,
	.drop = timer_drop,
};

/* The same wait, on the reactor's timer: no thread of our own. */
static int hello_reactor(long delay_ms)
{
	struct rouse_reactor *r;
	struct rouse_sleep s;
	double t0;
	int err;

	/* The default reactor runs on a thread of its own, made on demand. */
	err = rouse_reactor_default(&r);
	if (err == 0)
		err = rouse_sleep_init(&s, r, delay_ms * 1000000);
	if (err < 0) {
		fprintf(stderr, "hello: reactor: %s\n", strerror(-err));
		return 1;
	}
	printf("main: block_on(reactor sleep of %ld ms)\n", delay_ms);
	t0 = now_ms();
	err = rouse_block_on(&s.base);
	if (err < 0) {
		fprintf(stderr, "hello: rouse_block_on: %s\n", strerror(-err));
		return 1;
	}
	printf("main: block_on returned after %.1f ms: the timerfd fired\n",
	       now_ms() - t0);
	rouse_future_drop(&s.base);
	return 0;
}

int main(int argc, char **argv)
{
	struct timer_future t = { .base.vtable = &timer_vtable };
	bool reactor = false;
	double t0;
	char *end;
	int err;

	t.delay_ms = 1000;
	if (argc > 1 && strcmp(argv[1], "--reactor") == 0) {
		reactor = true;
		argc--;
		argv++;
	}
	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--help") == 0)) {
		fprintf(stderr, "usage: hello [--reactor] [DELAY_MS]\n");
		return 2;
	}
	if (argc == 2) {
		errno = 0;
		t.delay_ms = strtol(argv[1], &end, 10);
		if (errno != 0 || *end != '\0' || end == argv[1] ||
		    t.delay_ms < 0 || t.delay_ms > 1000000000) {
			fprintf(stderr, "hello: DELAY_MS must be a number of "
				"milliseconds, not '%s'\n", argv[1]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (reactor)
		return hello_reactor(t.delay_ms);

	printf("main: block_on(timer of %ld ms)\n", t.delay_ms);
	t0 = now_ms();
	err = rouse_block_on(&t.base);
	if (err < 0) {
		fprintf(stderr, "hello: rouse_block_on: %s\n", strerror(-err));
		return 1;
	}
	printf("main: block_on returned after %.1f ms and %d polls\n",
	       now_ms() - t0, t.polls);
	rouse_future_drop(&t.base);
	return 0;
}
