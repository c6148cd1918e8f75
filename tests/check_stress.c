// SPDX-License-Identifier: MIT
/* tests/check_stress.c - the reactor under four threads at once. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rouse/executor.h>
#include <rouse/reactor.h>

#include "testutil.h"

#define WORKERS 4
#define ITERS 4000
#define MS INT64_C(1000000)

/*
 * Four workers share one reactor.  Each iteration a worker writes one
 * byte into the socketpair of the next worker and makes sure it has read
 * as many bytes from its own as iterations have begun (so it waits for
 * the previous worker at times), and in between does one random thing:
 * sleep a little (0 to 2 ms, or not at all), register a timer and cancel
 * it, wait for its event with a timeout, notify another worker's event,
 * start a read and cancel it, or register a fresh socketpair for one
 * round trip.  Every block_on must return (the tcase timeout catches a
 * lost wake-up), and at the end every byte and every notification is
 * accounted for.
 *
 * With a driven reactor, worker 0 drives it: its futures run under
 * rouse_block_on_with() on the reactor's parker, so its parks are the
 * turns that wake everyone; the others park on their own eventfds.  It
 * keeps driving until the others are done.
 */

struct shared;

struct worker {
	struct shared *sh;
	int id;
	bool driver;
	uint64_t rng;
	struct rouse_io *rio;		/* my pair's reading end */
	struct rouse_io *wio;		/* the next worker's writing end */
	struct counting_waker cw;	/* for futures polled and dropped */
	struct rouse_waker w;
	uint64_t received;
	uint64_t taken;			/* notifications of my event */
	uint64_t slept, cancelled, timeouts, timed_out;
};

struct shared {
	struct rouse_reactor *r;
	struct rouse_parker parker;
	bool driven;
	int pair[WORKERS][2];
	struct rouse_event *ev[WORKERS];
	struct rouse_event *done_ev;	/* worker 0 waits on it */
	atomic_uint_fast64_t notified[WORKERS];
	atomic_int notifying_done;	/* workers past their loop */
	atomic_int finished;		/* workers other than 0, all done */
	struct test_barrier start;
	struct worker w[WORKERS];
};

static uint64_t rng(struct worker *w)
{
	return test_splitmix64(&w->rng);
}

static int block_on(struct worker *w, struct rouse_future *f)
{
	if (w->driver)
		return rouse_block_on_with(f, &w->sh->parker);
	return rouse_block_on(f);
}

static int poll_once(struct worker *w, struct rouse_future *f)
{
	return test_poll_with(f, &w->w);
}

/* 0, or up to 2 ms. */
static int64_t short_ns(struct worker *w)
{
	if (rng(w) % 4 == 0)
		return 0;
	return (int64_t)(rng(w) % (uint64_t)(2 * MS + 1));
}

static void do_sleep(struct worker *w)
{
	struct rouse_sleep s;
	int64_t d = short_ns(w), t0 = rouse_reactor_now(w->sh->r);

	if (rng(w) % 2)
		ck_assert_int_eq(rouse_sleep_init(&s, w->sh->r, d), 0);
	else
		ck_assert_int_eq(rouse_sleep_until_init(&s, w->sh->r, t0 + d),
				 0);
	s.result = 1;
	ck_assert_int_eq(block_on(w, &s.base), 0);
	ck_assert_int_eq(s.result, 0);
	ck_assert_int_ge(rouse_reactor_now(w->sh->r) - t0, d);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	w->slept++;
}

static void do_cancel_sleep(struct worker *w)
{
	struct rouse_sleep s;

	/* It may fire (and wake w->w) just before the drop: either is fine. */
	ck_assert_int_eq(rouse_sleep_init(&s, w->sh->r, short_ns(w)), 0);
	if (poll_once(w, &s.base) == ROUSE_READY)
		ck_assert_int_eq(s.result, 0);
	ck_assert_int_eq(rouse_future_drop(&s.base), 0);
	w->cancelled++;
}

static void do_wait_event(struct worker *w)
{
	struct rouse_event_wait ew;
	struct rouse_timeout t;

	ck_assert_int_eq(rouse_event_wait_init(&ew, w->sh->ev[w->id]), 0);
	ew.count = 0;
	ck_assert_int_eq(rouse_timeout_init(&t, w->sh->r, &ew.op.base,
					    short_ns(w)), 0);
	t.result = 1;
	ck_assert_int_eq(block_on(w, &t.base), 0);
	if (t.result == 0) {
		ck_assert_int_eq(ew.result, 0);
		ck_assert_uint_ge(ew.count, 1);
		w->taken += ew.count;
	} else {
		ck_assert_int_eq(t.result, -ETIMEDOUT);
		w->timed_out++;
	}
	ck_assert_int_eq(rouse_future_drop(&t.base), 0);
	w->timeouts++;
}

static void do_notify(struct worker *w)
{
	int to = (int)(rng(w) % WORKERS);

	atomic_fetch_add(&w->sh->notified[to], 1);
	ck_assert_int_eq(rouse_event_notify(w->sh->ev[to]), 0);
}

static void do_cancel_read(struct worker *w)
{
	struct rouse_io_rw rd;
	char buf[4];

	ck_assert_int_eq(rouse_io_read_init(&rd, w->rio, buf, sizeof(buf)),
			 0);
	if (poll_once(w, &rd.op.base) == ROUSE_READY) {
		ck_assert_int_gt(rd.result, 0);
		w->received += (uint64_t)rd.result;
	}
	ck_assert_int_eq(rouse_future_drop(&rd.op.base), 0);
}

static void do_fresh_pair(struct worker *w)
{
	struct rouse_io *a, *b;
	struct rouse_io_rw op;
	unsigned char c = (unsigned char)w->id, d = 0;
	int sv[2];

	test_pair_make(sv);
	ck_assert_int_eq(rouse_io_register(w->sh->r, sv[0], &a), 0);
	ck_assert_int_eq(rouse_io_register(w->sh->r, sv[1], &b), 0);
	/* Read first: it has to wait for the write. */
	ck_assert_int_eq(rouse_io_read_init(&op, b, &d, 1), 0);
	if (poll_once(w, &op.op.base) == ROUSE_PENDING) {
		ck_assert_int_eq(write(sv[0], &c, 1), 1);
		ck_assert_int_eq(block_on(w, &op.op.base), 0);
	}
	ck_assert_int_eq(op.result, 1);
	ck_assert_int_eq(d, c);
	ck_assert_int_eq(rouse_future_drop(&op.op.base), 0);
	ck_assert_int_eq(rouse_io_deregister(a), 0);
	ck_assert_int_eq(rouse_io_deregister(b), 0);
	close(sv[0]);
	close(sv[1]);
}

/* One byte to the next worker, through a write future. */
static void send_byte(struct worker *w)
{
	struct rouse_io_rw op;
	unsigned char c = (unsigned char)w->id;

	ck_assert_int_eq(rouse_io_write_init(&op, w->wio, &c, 1), 0);
	op.result = 0;
	ck_assert_int_eq(block_on(w, &op.op.base), 0);
	ck_assert_int_eq(op.result, 1);
	ck_assert_int_eq(rouse_future_drop(&op.op.base), 0);
}

/* Read until at least n bytes have come from the previous worker. */
static void receive_until(struct worker *w, uint64_t n)
{
	unsigned char buf[64];
	int from = (w->id + WORKERS - 1) % WORKERS;

	while (w->received < n) {
		struct rouse_io_rw op;
		ssize_t i;

		if (rng(w) % 2) {
			/* Wait for readability first, sometimes. */
			struct rouse_io_ready rf;

			ck_assert_int_eq(rouse_io_readable_init(&rf, w->rio),
					 0);
			ck_assert_int_eq(block_on(w, &rf.op.base), 0);
			ck_assert_int_eq(rf.result, 0);
			ck_assert(rf.events & ROUSE_IO_READABLE);
			ck_assert_int_eq(rouse_future_drop(&rf.op.base), 0);
		}
		ck_assert_int_eq(rouse_io_read_init(&op, w->rio, buf,
						    sizeof(buf)), 0);
		ck_assert_int_eq(block_on(w, &op.op.base), 0);
		ck_assert_int_gt(op.result, 0);
		for (i = 0; i < op.result; i++)
			ck_assert_int_eq(buf[i], from);
		w->received += (uint64_t)op.result;
		ck_assert_int_eq(rouse_future_drop(&op.op.base), 0);
	}
}

/* Take my event's notifications until there are n in all. */
static void take_until(struct worker *w, uint64_t n)
{
	while (w->taken < n) {
		struct rouse_event_wait ew;

		ck_assert_int_eq(rouse_event_wait_init(&ew, w->sh->ev[w->id]),
				 0);
		ck_assert_int_eq(block_on(w, &ew.op.base), 0);
		ck_assert_int_eq(ew.result, 0);
		w->taken += ew.count;
		ck_assert_int_eq(rouse_future_drop(&ew.op.base), 0);
	}
}

/* Worker 0 waits for the others on done_ev (it may be the driver). */
static void wait_done(struct worker *w, atomic_int *what, int n)
{
	while (atomic_load(what) < n) {
		struct rouse_event_wait ew;

		ck_assert_int_eq(rouse_event_wait_init(&ew, w->sh->done_ev),
				 0);
		ck_assert_int_eq(block_on(w, &ew.op.base), 0);
		ck_assert_int_eq(ew.result, 0);
		ck_assert_int_eq(rouse_future_drop(&ew.op.base), 0);
	}
}

static void *worker_thread(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	uint64_t i;

	test_barrier_wait(&sh->start);
	for (i = 0; i < ITERS; i++) {
		send_byte(w);
		switch (rng(w) % 7) {
		case 0:
			do_sleep(w);
			break;
		case 1:
			do_cancel_sleep(w);
			break;
		case 2:
			do_wait_event(w);
			break;
		case 3:
			do_notify(w);
			break;
		case 4:
			do_cancel_read(w);
			break;
		case 5:
			if (i % 8 == 0)
				do_fresh_pair(w);
			else
				do_notify(w);
			break;
		default:
			break;
		}
		receive_until(w, i + 1);
	}
	/* Everyone has stopped notifying: the totals are final. */
	atomic_fetch_add(&sh->notifying_done, 1);
	ck_assert_int_eq(rouse_event_notify(sh->done_ev), 0);
	if (w->id == 0)
		wait_done(w, &sh->notifying_done, WORKERS);
	else
		test_spin_until_eq(&sh->notifying_done, WORKERS);
	take_until(w, atomic_load(&sh->notified[w->id]));
	ck_assert_uint_eq(w->taken, atomic_load(&sh->notified[w->id]));
	ck_assert_uint_eq(w->received, ITERS);
	/* Each kind of operation did happen. */
	ck_assert_uint_gt(w->slept, 0);
	ck_assert_uint_gt(w->cancelled, 0);
	ck_assert_uint_gt(w->timeouts, 0);
	if (w->id == 0) {
		wait_done(w, &sh->finished, WORKERS - 1);
	} else {
		atomic_fetch_add(&sh->finished, 1);
		ck_assert_int_eq(rouse_event_notify(sh->done_ev), 0);
	}
	return NULL;
}

static void run_stress(bool driven)
{
	static struct shared sh;
	pthread_t t[WORKERS];
	int threads0, fds0, i;

	test_warm_thread_parker();
	threads0 = test_count_threads_settled();
	fds0 = test_count_fds();
	memset(&sh, 0, sizeof(sh));
	sh.driven = driven;
	ck_assert_int_eq(rouse_reactor_new(&sh.r, 0), 0);
	if (driven)
		ck_assert_int_eq(rouse_reactor_parker(sh.r, &sh.parker), 0);
	else
		ck_assert_int_eq(rouse_reactor_start(sh.r), 0);
	ck_assert_int_eq(rouse_event_new(sh.r, &sh.done_ev), 0);
	for (i = 0; i < WORKERS; i++) {
		test_pair_make(sh.pair[i]);
		ck_assert_int_eq(rouse_event_new(sh.r, &sh.ev[i]), 0);
		atomic_init(&sh.notified[i], 0);
	}
	for (i = 0; i < WORKERS; i++) {
		struct worker *w = &sh.w[i];

		w->sh = &sh;
		w->id = i;
		w->driver = driven && i == 0;
		w->rng = UINT64_C(0x5eed) * (uint64_t)(i + 1) + driven;
		w->w = counting_waker(&w->cw);
		ck_assert_int_eq(rouse_io_register(sh.r, sh.pair[i][0],
						   &w->rio), 0);
		ck_assert_int_eq(rouse_io_register(sh.r,
			sh.pair[(i + 1) % WORKERS][1], &w->wio), 0);
	}
	test_barrier_init(&sh.start, WORKERS);
	for (i = 0; i < WORKERS; i++)
		t[i] = test_thread_start(worker_thread, &sh.w[i]);
	for (i = 0; i < WORKERS; i++)
		test_thread_join(t[i]);
	test_barrier_destroy(&sh.start);

	for (i = 0; i < WORKERS; i++) {
		ck_assert_int_eq(rouse_io_deregister(sh.w[i].rio), 0);
		ck_assert_int_eq(rouse_io_deregister(sh.w[i].wio), 0);
		rouse_event_free(sh.ev[i]);
	}
	rouse_event_free(sh.done_ev);
	if (!driven)
		ck_assert_int_eq(rouse_reactor_stop(sh.r), 0);
	rouse_reactor_free(sh.r);
	/* Every clone given to a cancelled future was woken or dropped. */
	for (i = 0; i < WORKERS; i++) {
		struct worker *w = &sh.w[i];

		ck_assert_int_eq(atomic_load(&w->cw.live), 1);
		counting_waker_drop_last(&w->w, &w->cw);
		ck_assert_int_eq(atomic_load(&w->cw.wake_by_refs), 0);
		close(sh.pair[i][0]);
		close(sh.pair[i][1]);
	}
	ck_assert_int_eq(test_count_fds(), fds0);
	ck_assert_int_eq(test_wait_threads(threads0), threads0);
}

START_TEST(test_stress_threaded)
{
	run_stress(false);
}
END_TEST

START_TEST(test_stress_driven)
{
	run_stress(true);
}
END_TEST

/*
 * Timers only, from four threads at once, on both kinds of reactor: many
 * short sleeps in flight per thread under one future, some of them
 * dropped before they fire.
 */
#define TIMER_ROUNDS 500
#define IN_FLIGHT 16

struct tworker {
	struct rouse_reactor *r;
	struct rouse_event *done;	/* notified when this one is done */
	atomic_int *ndone;
	struct test_barrier *start;
	uint64_t rng;
	int fired, dropped;
};

struct tbatch {
	struct rouse_future base;
	struct rouse_reactor *r;
	struct rouse_sleep s[IN_FLIGHT];
	int64_t min[IN_FLIGHT];
	bool live[IN_FLIGHT];
	int left;
};

static enum rouse_poll tbatch_poll(struct rouse_future *f,
				   struct rouse_context *cx)
{
	struct tbatch *b = (struct tbatch *)f;
	int i;

	for (i = 0; i < IN_FLIGHT; i++) {
		if (!b->live[i] ||
		    rouse_future_poll(&b->s[i].base, cx) != ROUSE_READY)
			continue;
		ck_assert_int_eq(b->s[i].result, 0);
		ck_assert_int_ge(rouse_reactor_now(b->r), b->min[i]);
		ck_assert_int_eq(rouse_future_drop(&b->s[i].base), 0);
		b->live[i] = false;
		b->left--;
	}
	return b->left == 0 ? ROUSE_READY : ROUSE_PENDING;
}

static const struct rouse_future_vtable tbatch_vtable = { tbatch_poll,
							  NULL };

static uint64_t trng(struct tworker *t)
{
	return test_splitmix64(&t->rng);
}

static void *tworker_thread(void *arg)
{
	struct tworker *t = arg;
	int round, i;

	test_barrier_wait(t->start);
	for (round = 0; round < TIMER_ROUNDS; round++) {
		struct tbatch b = { .base.vtable = &tbatch_vtable, .r = t->r };
		struct rouse_waker nw = rouse_waker_noop();
		struct rouse_context cx = { .waker = &nw };

		for (i = 0; i < IN_FLIGHT; i++) {
			int64_t d = trng(t) % 3 == 0 ? 0 :
				(int64_t)(trng(t) % (uint64_t)(2 * MS));

			b.min[i] = rouse_reactor_now(t->r) + d;
			ck_assert_int_eq(rouse_sleep_init(&b.s[i], t->r, d),
					 0);
			b.live[i] = true;
			b.left++;
		}
		/* Register them all, then drop a few while pending. */
		for (i = 0; i < IN_FLIGHT; i++)
			rouse_future_poll(&b.s[i].base, &cx);
		for (i = 0; i < IN_FLIGHT; i += 3 + (int)(trng(t) % 3)) {
			ck_assert_int_eq(rouse_future_drop(&b.s[i].base), 0);
			b.live[i] = false;
			b.left--;
			t->dropped++;
		}
		t->fired += b.left;
		ck_assert_int_eq(rouse_block_on(&b.base), 0);
	}
	atomic_fetch_add(t->ndone, 1);
	ck_assert_int_eq(rouse_event_notify(t->done), 0);
	return NULL;
}

START_TEST(test_timers_threads)
{
	struct rouse_reactor *r;
	struct rouse_parker parker;
	struct rouse_event *done;
	struct test_barrier start;
	struct tworker tw[WORKERS];
	pthread_t th[WORKERS];
	atomic_int ndone = 0;
	bool driven = _i == 1;
	int fds0, i;

	/* The main thread's eventfd parker, made now, is not a leak. */
	fds0 = test_count_fds_warm();
	ck_assert_int_eq(rouse_reactor_new(&r, 0), 0);
	ck_assert_int_eq(rouse_event_new(r, &done), 0);
	if (driven)
		ck_assert_int_eq(rouse_reactor_parker(r, &parker), 0);
	else
		ck_assert_int_eq(rouse_reactor_start(r), 0);
	test_barrier_init(&start, WORKERS);
	for (i = 0; i < WORKERS; i++) {
		tw[i] = (struct tworker){
			.r = r, .done = done, .ndone = &ndone,
			.start = &start, .rng = (uint64_t)(i + 1) * 977,
		};
		th[i] = test_thread_start(tworker_thread, &tw[i]);
	}
	/*
	 * The workers park on their own eventfds.  Driven, this thread
	 * turns the reactor for them all (each of its parks is a turn)
	 * until they are done; threaded, it just waits the same way.
	 */
	while (atomic_load(&ndone) < WORKERS) {
		struct rouse_event_wait ew;

		ck_assert_int_eq(rouse_event_wait_init(&ew, done), 0);
		if (driven)
			ck_assert_int_eq(rouse_block_on_with(&ew.op.base,
							     &parker), 0);
		else
			ck_assert_int_eq(rouse_block_on(&ew.op.base), 0);
		ck_assert_int_eq(ew.result, 0);
		ck_assert_int_eq(rouse_future_drop(&ew.op.base), 0);
	}
	for (i = 0; i < WORKERS; i++)
		test_thread_join(th[i]);
	test_barrier_destroy(&start);
	for (i = 0; i < WORKERS; i++)
		ck_assert_int_eq(tw[i].fired + tw[i].dropped,
				 TIMER_ROUNDS * IN_FLIGHT);
	rouse_event_free(done);
	if (!driven)
		ck_assert_int_eq(rouse_reactor_stop(r), 0);
	rouse_reactor_free(r);
	ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

static Suite *stress_suite(void)
{
	Suite *s = suite_create("stress");
	TCase *tc;

	tc = tcase_create("threaded");
	tcase_add_test(tc, test_stress_threaded);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = tcase_create("driven");
	tcase_add_test(tc, test_stress_driven);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	tc = tcase_create("timers");
	tcase_add_loop_test(tc, test_timers_threads, 0, 2);
	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return test_run_suite(stress_suite());
}
