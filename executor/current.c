// SPDX-License-Identifier: MIT
/*
 * executor/current.c - the current-thread scheduler: tasks run on the
 * thread inside rouse_executor_block_on(), between polls of the root
 * future.
 *
 * The run queue is a plain linked list that only that thread touches, so
 * spawning or waking from a task costs no lock and no atomic beyond the
 * task's state word.  Other threads go through the injection queue and
 * unpark the thread.  Tasks still queued or pending when the root future
 * completes stay in the executor and run at the next block_on; freeing
 * the executor drops them.
 *
 * It offers the task core its operations through rouse__sched_current
 * (sched.h), which executor.c and task.c call.  It calls task.c to run
 * tasks, parker.c for the thread's parker when it is given none, and
 * parkers through their tables; it sets block_on.c's thread flag and
 * task.c's current worker.  None of these calls back but through the
 * table.
 */
#include <errno.h>
#include <stdlib.h>

#include "sched.h"

#define ROUSE__LOG_MODULE "executor"

static void ct_schedule_local(struct rouse__worker *w, struct rouse__task *t,
			      bool by_task)
{
	(void)by_task;
	rouse__fifo_push(&w->runq, &t->qlink);
}

static struct rouse__task *ct_pop(struct rouse__worker *w)
{
	return task_of_qlink(rouse__fifo_pop(&w->runq));
}

/* Move everything injected by other threads to the local queue. */
static void ct_take_injected(struct rouse_executor *ex, struct rouse__worker *w)
{
	struct rouse__task *t;

	rouse__mutex_lock(&ex->inject_lock);
	while ((t = inject_pop_locked(ex)) != NULL)
		ct_schedule_local(w, t, false);
	rouse__mutex_unlock(&ex->inject_lock);
}

/*
 * The root future's waker.  It may outlive the block_on call and the
 * executor, so it is a small reference-counted object of its own: a flag
 * that says "poll the root again" and a waker of the thread's parker.
 */
struct root_waker {
	uint64_t refs;
	uint32_t woken;
	struct rouse_waker unpark;
};

static const struct rouse_waker_vtable root_vt;

static struct rouse_waker root_clone(void *data)
{
	struct root_waker *r = data;
	struct rouse_waker w = { data, &root_vt };

	__atomic_fetch_add(&r->refs, 1, __ATOMIC_RELAXED);
	return w;
}

static void root_wake_by_ref(void *data)
{
	struct root_waker *r = data;

	if (__atomic_exchange_n(&r->woken, 1, __ATOMIC_ACQ_REL) == 0)
		rouse_waker_wake_by_ref(&r->unpark);
}

static void root_drop(void *data)
{
	struct root_waker *r = data;

	if (__atomic_fetch_sub(&r->refs, 1, __ATOMIC_ACQ_REL) == 1) {
		rouse_waker_drop(&r->unpark);
		rouse__free(r);
	}
}

static void root_wake(void *data)
{
	root_wake_by_ref(data);
	root_drop(data);
}

static const struct rouse_waker_vtable root_vt = {
	root_clone, root_wake, root_wake_by_ref, root_drop,
};

static int ct_block_on(struct rouse_executor *ex, struct rouse_future *f,
		       int64_t deadline)
{
	struct rouse__worker *w = &ex->workers[0];
	struct rouse_parker parker;
	struct rouse_waker rw;
	struct rouse_context cx;
	struct root_waker *root;
	unsigned int budget;
	uint64_t polls = 0;		/* not yet in w->m.polls */
	int err, cancel_state;

	if (ex->has_parker) {
		parker = ex->parker;
	} else {
		err = rouse_thread_parker(&parker);
		if (err < 0)
			return err;
	}
	root = rouse__malloc(sizeof(*root));
	if (root == NULL)
		return -ENOMEM;
	root->refs = 1;
	root->woken = 1;
	err = parker.vtable->waker(parker.data, &root->unpark);
	if (err < 0) {
		rouse__free(root);
		return err;
	}
	rw.data = root;
	rw.vtable = &root_vt;
	cx.waker = &rw;

	rouse__mutex_lock(&ex->inject_lock);
	if (ex->ct_unpark != NULL || ex->freeing) {
		err = ex->freeing ? -ECANCELED : -EBUSY;
		rouse__mutex_unlock(&ex->inject_lock);
		rouse_waker_drop(&rw);
		return err;
	}
	ex->ct_unpark = &root->unpark;	/* rw keeps root alive till cleared */
	rouse__mutex_unlock(&ex->inject_lock);

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
	rouse__cur_worker = w;
	rouse__in_block_on = true;
	err = 0;
	/*
	 * One budget for every poll, the root's and the tasks' alike: after
	 * event_interval of them the thread parks with timeout 0, so that a
	 * driven reactor gets its turn however busy the polls keep it (a
	 * root that wakes itself again and again counts too).
	 */
	budget = 0;
	for (;;) {
		if (__atomic_load_n(&root->woken, __ATOMIC_RELAXED) &&
		    __atomic_exchange_n(&root->woken, 0, __ATOMIC_ACQ_REL)) {
			if (f->vtable->poll(f, &cx) == ROUSE_READY)
				break;
			budget++;
		}
		while (budget < ex->cfg.event_interval) {
			struct rouse__task *t = ct_pop(w);

			if (t == NULL)
				break;
			switch (rouse__task_run(t)) {
			case RUN_REQUEUE:
				ct_schedule_local(w, t, false);
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
			polls++;
			budget++;
		}
		if (__atomic_load_n(&ex->inject_len, __ATOMIC_ACQUIRE) != 0)
			ct_take_injected(ex, w);
		if (!rouse__fifo_empty(&w->runq) ||
		    __atomic_load_n(&root->woken, __ATOMIC_RELAXED)) {
			/* Busy: look at the parker's events now and then. */
			if (budget < ex->cfg.event_interval)
				continue;
			budget = 0;
			/* The poll count is published once a batch. */
			counter_add(&w->m.polls, polls);
			polls = 0;
			counter_add(&w->m.budget_yields, 1);
			if (ex->has_parker)
				counter_add(&w->m.driver_turns, 1);
			err = parker.vtable->park(parker.data, 0);
		} else {
			int64_t left = -1;

			budget = 0;
			counter_add(&w->m.polls, polls);
			polls = 0;
			if (deadline >= 0 &&
			    (left = deadline - rouse__now_ns()) <= 0) {
				err = -ETIMEDOUT;
				break;
			}
			rouse__trace("block_on: park");
			counter_add(&w->m.parks, 1);
			if (ex->has_parker)
				counter_add(&w->m.driver_turns, 1);
			err = parker.vtable->park(parker.data, left);
		}
		if (err < 0 && err != -ETIMEDOUT && err != -EINTR) {
			rouse__error("block_on: park failed: %d", err);
			break;
		}
		err = 0;
		/* A child of fork() went on in its parent's block_on. */
		if (rouse__inherited(ex->fork_gen)) {
			err = -ECHILD;
			break;
		}
	}
	counter_add(&w->m.polls, polls);
	rouse__in_block_on = false;
	rouse__cur_worker = NULL;
	pthread_setcancelstate(cancel_state, NULL);

	/* In a child, the parent's threads may have left the lock held. */
	if (err != -ECHILD) {
		rouse__mutex_lock(&ex->inject_lock);
		ex->ct_unpark = NULL;
		rouse__mutex_unlock(&ex->inject_lock);
	}
	rouse_waker_drop(&rw);
	return err;
}

/*
 * Another thread queued a task.  A queue that was not empty has been
 * announced already, and the thread looks at the queue before it parks.
 * The waker is valid under the lock: block_on clears it under the lock
 * before it lets it go.
 */
static void ct_injected(struct rouse_executor *ex, bool was_empty,
			struct rouse_waker *out)
{
	(void)out;
	if (was_empty && ex->ct_unpark != NULL)
		rouse_waker_wake_by_ref(ex->ct_unpark);
}

/* No threads of its own: block_on's thread is the only one. */
static int ct_start(struct rouse_executor *ex)
{
	(void)ex;
	return 0;
}

static void ct_stop(struct rouse_executor *ex)
{
	(void)ex;
}

const struct rouse__sched rouse__sched_current = {
	.name = "current-thread",
	.start = ct_start,
	.block_on = ct_block_on,
	.schedule_local = ct_schedule_local,
	.injected = ct_injected,
	.stop = ct_stop,
};
