// SPDX-License-Identifier: MIT
/*
 * executor/multi.c - the multi-thread scheduler: N workers, each with a
 * bounded ring of runnable tasks that the others may steal half of, a
 * LIFO slot for the task the current one just woke, and the executor's
 * injection queue for tasks that come from other threads.
 *
 * Finding work, in order: every event_interval polls, a look outside (a
 * zero-timeout turn of the executor's parker, so a driven reactor's
 * events are never starved by local work) and one task from the injection
 * queue; then the LIFO slot (at most lifo_cap times in a row); the ring;
 * the injection queue (a batch); half of another worker's ring.  A worker
 * that finds nothing goes to sleep, and whoever adds work wakes a
 * sleeper: that protocol, and which sleeper drives the parker, is idle.c.
 *
 * It offers the task core its operations through rouse__sched_multi
 * (sched.h), which executor.c and task.c call.  It calls task.c to run
 * tasks, idle.c to sleep and wake, parker.c for each thread's parker,
 * and block_on.c's rouse__block_on_until() for a block_on on a thread
 * that is not a worker.  None of these calls back but through the table.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"

#define ROUSE__LOG_MODULE "executor"

/* ---- the ring ---------------------------------------------------------- */

static inline uint32_t load_u32(const uint32_t *p, int order)
{
	return __atomic_load_n(p, order);
}

static inline struct rouse__task *slot_get(struct rouse__ring *r, uint32_t i)
{
	return __atomic_load_n(&r->slots[i & RING_MASK], __ATOMIC_RELAXED);
}

static inline void slot_set(struct rouse__ring *r, uint32_t i,
			    struct rouse__task *t)
{
	__atomic_store_n(&r->slots[i & RING_MASK], t, __ATOMIC_RELAXED);
}

/* Owner only.  Take the oldest task; stealers race on head. */
static struct rouse__task *ring_pop(struct rouse__ring *r)
{
	uint32_t head = load_u32(&r->head, __ATOMIC_ACQUIRE);
	uint32_t tail = r->tail;
	struct rouse__task *t;

	while (head != tail) {
		t = slot_get(r, head);
		if (__atomic_compare_exchange_n(&r->head, &head, head + 1,
						true, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return t;
	}
	return NULL;
}

/*
 * Owner only.  The ring is full: move its older half and t to the
 * injection queue, where every worker can reach them.
 */
static bool ring_overflow(struct rouse_executor *ex, struct rouse__ring *r,
			  uint32_t head, struct rouse__task *t)
{
	const uint32_t n = RING_SIZE / 2;
	struct rouse__task *batch[RING_SIZE / 2];
	uint32_t i;

	for (i = 0; i < n; i++)
		batch[i] = slot_get(r, head + i);
	if (!__atomic_compare_exchange_n(&r->head, &head, head + n, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return false;	/* a stealer made room */
	rouse__mutex_lock(&ex->inject_lock);
	for (i = 0; i < n; i++)
		inject_push_locked(ex, batch[i]);
	inject_push_locked(ex, t);
	rouse__mutex_unlock(&ex->inject_lock);
	return true;
}

static void ring_push(struct rouse_executor *ex, struct rouse__ring *r,
		      struct rouse__task *t)
{
	uint32_t head, tail = r->tail;

	for (;;) {
		head = load_u32(&r->head, __ATOMIC_ACQUIRE);
		if (tail - head < RING_SIZE) {
			slot_set(r, tail, t);
			__atomic_store_n(&r->tail, tail + 1, __ATOMIC_RELEASE);
			return;
		}
		if (ring_overflow(ex, r, head, t))
			return;
	}
}

/*
 * dst's owner only, with dst empty.  Take half (rounded up) of src's
 * tasks: copy them, then claim them by moving src's head past them.  If
 * src's owner or another stealer moved head meanwhile the copy is
 * discarded and tried again.  Returns one task to run; the rest are in
 * dst.
 */
static struct rouse__task *ring_steal(struct rouse__ring *dst,
				      struct rouse__ring *src)
{
	uint32_t head, tail, n, i, dtail = dst->tail;
	struct rouse__task *t;

	for (;;) {
		head = load_u32(&src->head, __ATOMIC_ACQUIRE);
		tail = load_u32(&src->tail, __ATOMIC_ACQUIRE);
		n = tail - head;
		if (n == 0)
			return NULL;
		if (n > RING_SIZE)
			continue;	/* head and tail from different times */
		n -= n / 2;
		for (i = 0; i < n; i++)
			slot_set(dst, dtail + i, slot_get(src, head + i));
		if (__atomic_compare_exchange_n(&src->head, &head, head + n,
						false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			break;
	}
	t = slot_get(dst, dtail + n - 1);
	if (n > 1)
		__atomic_store_n(&dst->tail, dtail + n - 1, __ATOMIC_RELEASE);
	return t;
}

/* ---- scheduling ------------------------------------------------------------ */

static void mt_schedule_local(struct rouse__worker *w, struct rouse__task *t,
			      bool woken_by_task)
{
	struct rouse__task *prev;

	if (woken_by_task) {
		/* Run it next: it likely uses what the waker just made. */
		prev = w->lifo;
		w->lifo = t;
		if (prev == NULL)
			return;
		t = prev;
	}
	ring_push(w->ex, &w->ring, t);
	rouse__idle_notify(w->ex);
}

/* Move a batch from the injection queue to the ring; return one. */
static struct rouse__task *take_injected(struct rouse__worker *w,
					 unsigned int max)
{
	struct rouse_executor *ex = w->ex;
	struct rouse__task *first, *t;
	unsigned int n;

	if (__atomic_load_n(&ex->inject_len, __ATOMIC_ACQUIRE) == 0)
		return NULL;
	rouse__mutex_lock(&ex->inject_lock);
	first = inject_pop_locked(ex);
	for (n = 1; first != NULL && n < max; n++) {
		t = inject_pop_locked(ex);
		if (t == NULL)
			break;
		ring_push(ex, &w->ring, t);
	}
	rouse__mutex_unlock(&ex->inject_lock);
	/* A batch landed in this ring: an idle worker may share it. */
	if (n > 1)
		rouse__idle_notify(ex);
	return first;
}

static struct rouse__task *steal_work(struct rouse__worker *w)
{
	struct rouse_executor *ex = w->ex;
	struct rouse__task *t;
	unsigned int i, start, n = ex->nworkers;

	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 17;
	w->rng ^= w->rng << 5;
	start = w->rng % n;
	for (i = 0; i < n; i++) {
		struct rouse__worker *v = &ex->workers[(start + i) % n];

		if (v == w)
			continue;
		t = ring_steal(&w->ring, &v->ring);
		if (t != NULL) {
			counter_add(&w->m.steals, 1);
			return t;
		}
	}
	return NULL;
}

static struct rouse__task *next_task(struct rouse__worker *w,
				     uint64_t tick)
{
	struct rouse_executor *ex = w->ex;
	struct rouse__task *t;

	if (tick % ex->cfg.event_interval == 0) {
		/* The poll count is published once a batch: tick is it. */
		__atomic_store_n(&w->m.polls, tick, __ATOMIC_RELAXED);
		rouse__idle_maintain(w);
		t = take_injected(w, 1);
		if (t != NULL)
			return t;
	}
	if (w->lifo != NULL) {
		t = w->lifo;
		w->lifo = NULL;
		if (w->lifo_run < ex->cfg.lifo_cap) {
			w->lifo_run++;
			return t;
		}
		/* Two tasks waking each other: let the queue have a turn. */
		ring_push(ex, &w->ring, t);
	}
	w->lifo_run = 0;
	t = ring_pop(&w->ring);
	if (t != NULL)
		return t;
	return take_injected(w, RING_SIZE / 2);
}

static void *worker_main(void *arg)
{
	struct rouse__worker *w = arg;
	struct rouse_executor *ex = w->ex;
	struct rouse__task *t;
	uint64_t tick = 0;		/* polls; in w->m.polls at times */

	rouse__cur_worker = w;
	rouse__in_block_on = true;
	rouse__debug("worker %u: start", w->index);
	while (!__atomic_load_n(&ex->stop, __ATOMIC_ACQUIRE)) {
		t = next_task(w, tick);
		if (t == NULL) {
			t = steal_work(w);
			if (t == NULL) {
				__atomic_store_n(&w->m.polls, tick,
						 __ATOMIC_RELAXED);
				rouse__idle_sleep(w);
				continue;
			}
		}
		rouse__idle_found_work(w);
		switch (rouse__task_run(t)) {
		case RUN_REQUEUE:
			mt_schedule_local(w, t, false);
			break;
		case RUN_COMPLETED:
			counter_add(&w->m.completed, 1);
			break;
		case RUN_CANCELLED:
			counter_add(&w->m.aborted, 1);
			break;
		case RUN_IDLE:
			break;
		}
		tick++;
	}
	__atomic_store_n(&w->m.polls, tick, __ATOMIC_RELAXED);
	rouse__debug("worker %u: stop", w->index);
	rouse__in_block_on = false;
	rouse__cur_worker = NULL;
	return NULL;
}

/* ---- start, stop ------------------------------------------------------------ */

struct start_arg {
	struct rouse__worker *w;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int state;		/* 0 starting, 1 ready, <0 -errno */
};

static void *worker_start(void *arg)
{
	struct start_arg *sa = arg;
	struct rouse__worker *w = sa->w;
	int err;

	err = rouse_thread_parker(&w->parker);
	if (err == 0)
		err = w->parker.vtable->waker(w->parker.data, &w->unpark);
	pthread_mutex_lock(&sa->lock);
	sa->state = err < 0 ? err : 1;
	pthread_cond_signal(&sa->cond);
	pthread_mutex_unlock(&sa->lock);
	if (err < 0)
		return NULL;
	return worker_main(w);
}

static void mt_stop(struct rouse_executor *ex);

static int mt_start(struct rouse_executor *ex)
{
	struct start_arg sa;
	sigset_t all, old;
	unsigned int i;
	int err = 0;

	err = rouse__idle_init(&ex->idle, ex->nworkers);
	if (err < 0)
		return err;
	/* Whoever holds the driver parks in the executor's parker. */
	if (ex->has_parker) {
		err = ex->parker.vtable->waker(ex->parker.data,
					       &ex->driver_unpark);
		if (err < 0)
			return err;
	}
	pthread_mutex_init(&sa.lock, NULL);
	pthread_cond_init(&sa.cond, NULL);
	/* Workers take no signals: those belong to the program's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < ex->nworkers; i++) {
		struct rouse__worker *w = &ex->workers[i];

		sa.w = w;
		sa.state = 0;
		err = -pthread_create(&w->thread, NULL, worker_start, &sa);
		if (err < 0)
			break;
		w->thread_started = true;
		pthread_mutex_lock(&sa.lock);
		while (sa.state == 0)
			pthread_cond_wait(&sa.cond, &sa.lock);
		pthread_mutex_unlock(&sa.lock);
		if (sa.state < 0) {
			err = sa.state;
			pthread_join(w->thread, NULL);
			w->thread_started = false;
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_destroy(&sa.lock);
	pthread_cond_destroy(&sa.cond);
	if (err < 0)
		mt_stop(ex);
	return err;
}

static void mt_stop(struct rouse_executor *ex)
{
	unsigned int i;

	__atomic_store_n(&ex->stop, true, __ATOMIC_SEQ_CST);
	/* The driver's holder sleeps in the shared parker. */
	if (ex->driver_unpark.vtable != NULL)
		rouse_waker_wake_by_ref(&ex->driver_unpark);
	for (i = 0; i < ex->nworkers; i++) {
		struct rouse__worker *w = &ex->workers[i];

		if (!w->thread_started)
			continue;
		rouse_waker_wake_by_ref(&w->unpark);
		pthread_join(w->thread, NULL);
		w->thread_started = false;
		rouse_waker_drop(&w->unpark);
	}
	if (ex->driver_unpark.vtable != NULL)
		rouse_waker_drop(&ex->driver_unpark);
}

/*
 * Another thread queued a task: wake an idle worker, unless one is
 * searching already, once the caller has dropped the lock.
 */
static void mt_injected(struct rouse_executor *ex, bool was_empty,
			struct rouse_waker *out)
{
	(void)was_empty;
	rouse__idle_pick(ex, out);
}

/*
 * The calling thread is not a worker: it polls f on its own parker while
 * the workers run the tasks.  Counted, so that free refuses to run under
 * it.
 */
static int mt_block_on(struct rouse_executor *ex, struct rouse_future *f,
		       int64_t deadline)
{
	struct rouse_parker parker;
	int err;

	err = rouse_thread_parker(&parker);
	if (err < 0)
		return err;

	rouse__mutex_lock(&ex->inject_lock);
	if (ex->freeing) {
		rouse__mutex_unlock(&ex->inject_lock);
		return -ECANCELED;
	}
	ex->blockon_count++;
	rouse__mutex_unlock(&ex->inject_lock);
	/* NULL before: a block_on already running was refused. */
	rouse__blockon_ex = ex;
	err = rouse__block_on_until(f, &parker, deadline);
	rouse__blockon_ex = NULL;
	rouse__mutex_lock(&ex->inject_lock);
	ex->blockon_count--;
	rouse__mutex_unlock(&ex->inject_lock);
	return err;
}

const struct rouse__sched rouse__sched_multi = {
	.name = "multi-thread",
	.start = mt_start,
	.block_on = mt_block_on,
	.schedule_local = mt_schedule_local,
	.injected = mt_injected,
	.stop = mt_stop,
};
