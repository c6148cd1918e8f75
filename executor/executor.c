// SPDX-License-Identifier: MIT
/*
 * executor/executor.c - an executor's life: its configuration, making it
 * with one of the two schedulers, block_on, and free.
 *
 * It calls the chosen scheduler through its table (sched.h), which it
 * takes from current.c or multi.c, and the task core (task.c) to count
 * and cancel what is left at free; it reads block_on.c's thread flag.
 * Nothing in the library calls back here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sched.h"

#define ROUSE__LOG_MODULE "executor"

ROUSE__PUBLIC int rouse_executor_config_init(struct rouse_executor_config *c)
{
	if (c == NULL)
		return -EINVAL;
	memset(c, 0, sizeof(*c));
	c->kind = ROUSE_EXECUTOR_CURRENT_THREAD;
	c->workers = 0;
	c->event_interval = 61;
	c->lifo_cap = 3;
	c->parker = NULL;
	return 0;
}

static unsigned int workers_wanted(const struct rouse_executor_config *cfg)
{
	long cpus;

	if (cfg->kind == ROUSE_EXECUTOR_CURRENT_THREAD)
		return 1;
	if (cfg->workers != 0)
		return cfg->workers;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	return cpus > 0 ? (unsigned int)cpus : 1;
}

ROUSE__PUBLIC int rouse_executor_new(const struct rouse_executor_config *cfg,
				     struct rouse_executor **out)
{
	struct rouse_executor_config def;
	struct rouse_executor *ex;
	unsigned int i;
	int err, cancel_state;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if (cfg == NULL) {
		rouse_executor_config_init(&def);
		cfg = &def;
	}
	if ((cfg->kind != ROUSE_EXECUTOR_CURRENT_THREAD &&
	     cfg->kind != ROUSE_EXECUTOR_MULTI_THREAD) ||
	    cfg->event_interval == 0 ||
	    (cfg->kind == ROUSE_EXECUTOR_MULTI_THREAD && cfg->workers > 1024) ||
	    (cfg->parker != NULL && !rouse__parker_valid(cfg->parker)))
		return -EINVAL;
	ex = rouse__aligned_alloc(64, sizeof(*ex));
	if (ex == NULL)
		return -ENOMEM;
	memset(ex, 0, sizeof(*ex));
	ex->refs = EXECUTOR_BIAS;
	ex->sched = cfg->kind == ROUSE_EXECUTOR_CURRENT_THREAD ?
		    &rouse__sched_current : &rouse__sched_multi;
	ex->cfg = *cfg;
	ex->cfg.parker = NULL;
	ex->fork_gen = rouse__fork_now();
	if (cfg->parker != NULL) {
		ex->parker = *cfg->parker;
		ex->has_parker = true;
	}
	rouse__mutex_init(&ex->inject_lock);
	for (i = 0; i < TASK_SHARDS; i++) {
		rouse__mutex_init(&ex->lists[i].lock);
		rouse__list_init(&ex->lists[i].head);
	}
	ex->nworkers = workers_wanted(cfg);
	ex->cfg.workers = ex->nworkers;
	ex->workers = rouse__aligned_alloc(64, sizeof(*ex->workers) *
						  ex->nworkers);
	if (ex->workers == NULL) {
		executor_destroy(ex);
		return -ENOMEM;
	}
	memset(ex->workers, 0, sizeof(*ex->workers) * ex->nworkers);
	for (i = 0; i < ex->nworkers; i++) {
		ex->workers[i].ex = ex;
		ex->workers[i].index = i;
		ex->workers[i].rng = 0x9e3779b9u * (i + 1);
	}
	/* Starting threads waits on each: not a place to be cancelled. */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
	err = ex->sched->start(ex);
	pthread_setcancelstate(cancel_state, NULL);
	if (err < 0) {
		executor_destroy(ex);
		return err;
	}
	rouse__debug("executor %p: new, %s, %u worker(s)", (void *)ex,
		     ex->sched->name, ex->nworkers);
	*out = ex;
	return 0;
}

/*
 * Stop the threads, close the injection queue and cancel every task left:
 * what free and the end of a shutdown share.  Returns the tasks cancelled.
 */
static uint64_t stop_and_cancel(struct rouse_executor *ex)
{
	ex->sched->stop(ex);
	rouse__mutex_lock(&ex->inject_lock);
	__atomic_store_n(&ex->closed, true, __ATOMIC_RELAXED);
	rouse__mutex_unlock(&ex->inject_lock);
	return rouse__task_cancel_all(ex);
}

/*
 * Shutdown.  Once the scheduler's threads are stopped (a current-thread
 * executor is not inside block_on) nothing polls, and once the injection
 * queue is closed nothing is queued: every task still unfinished, queued
 * or waiting, is cancelled where it lies.  The memory goes with the last
 * reference (sched.h), which may be a waker's: free waits for nobody.
 */
ROUSE__PUBLIC int rouse_executor_free(struct rouse_executor *ex)
{
	int cancel_state;

	if (ex == NULL)
		return -EINVAL;
	/* Its threads are the parent's: nothing here to stop or join. */
	if (rouse__inherited(ex->fork_gen))
		return -ECHILD;
	if (rouse_executor_current() == ex)
		return -EDEADLK;
	rouse__mutex_lock(&ex->inject_lock);
	if (ex->shut_down) {
		/* rouse_executor_shutdown() did the rest. */
		rouse__mutex_unlock(&ex->inject_lock);
		rouse__debug("executor %p: freed", (void *)ex);
		executor_release(ex);
		return 0;
	}
	if (ex->ct_unpark != NULL || ex->blockon_count != 0 || ex->freeing) {
		rouse__mutex_unlock(&ex->inject_lock);
		return -EBUSY;
	}
	/* From here on, block_on refuses to start. */
	ex->freeing = true;
	rouse__mutex_unlock(&ex->inject_lock);
	/* Joining workers is a cancellation point: finish what we start. */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
	stop_and_cancel(ex);
	rouse__debug("executor %p: freed", (void *)ex);
	executor_release(ex);
	pthread_setcancelstate(cancel_state, NULL);
	return 0;
}

/* ---- shutdown with a deadline ----------------------------------------- */

/* Ready when the executor has no unfinished task (see task.c). */
struct all_done {
	struct rouse_future base;
	struct rouse_executor *ex;
};

static enum rouse_poll all_done_poll(struct rouse_future *f,
				     struct rouse_context *cx)
{
	struct rouse_executor *ex = ((struct all_done *)f)->ex;
	enum rouse_poll r = ROUSE_PENDING;

	rouse__mutex_lock(&ex->inject_lock);
	if (rouse__task_none(ex)) {
		r = ROUSE_READY;
	} else if (!rouse_waker_will_wake(&ex->shutdown_waker, cx->waker)) {
		if (ex->shutdown_waker.vtable != NULL)
			rouse_waker_drop(&ex->shutdown_waker);
		rouse_waker_clone(cx->waker, &ex->shutdown_waker);
	}
	rouse__mutex_unlock(&ex->inject_lock);
	return r;
}

static const struct rouse_future_vtable all_done_vt = { all_done_poll, NULL };

ROUSE__PUBLIC int rouse_executor_shutdown(struct rouse_executor *ex,
					  int64_t timeout_ns,
					  struct rouse_shutdown_report *out)
{
	struct all_done wait = { { &all_done_vt }, ex };
	int64_t deadline = -1;
	uint64_t alive, aborted;
	int cancel_state, err;

	if (ex == NULL)
		return -EINVAL;
	if (rouse__inherited(ex->fork_gen))
		return -ECHILD;
	if (rouse_executor_current() == ex || rouse__in_block_on)
		return -EDEADLK;
	rouse__mutex_lock(&ex->inject_lock);
	if (ex->shut_down) {
		rouse__mutex_unlock(&ex->inject_lock);
		return -ESHUTDOWN;
	}
	if (ex->ct_unpark != NULL || ex->blockon_count != 0 || ex->freeing) {
		rouse__mutex_unlock(&ex->inject_lock);
		return -EBUSY;
	}
	/* No new spawns (task.c reads it under each list's lock). */
	__atomic_store_n(&ex->shutting, true, __ATOMIC_RELAXED);
	rouse__mutex_unlock(&ex->inject_lock);
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
	alive = rouse__task_count(ex);
	if (timeout_ns >= 0) {
		int64_t now = rouse__now_ns();

		deadline = timeout_ns > INT64_MAX - now ? INT64_MAX
							: now + timeout_ns;
	}
	/* The tasks' grace: run them (current-thread) or wait for them. */
	err = ex->sched->block_on(ex, &wait.base, deadline);
	rouse__mutex_lock(&ex->inject_lock);
	ex->freeing = true;
	if (ex->shutdown_waker.vtable != NULL)
		rouse_waker_drop(&ex->shutdown_waker);
	rouse__mutex_unlock(&ex->inject_lock);
	if (err < 0 && err != -ETIMEDOUT)
		rouse__error("executor %p: shutdown: %d", (void *)ex, err);
	aborted = stop_and_cancel(ex);
	rouse__mutex_lock(&ex->inject_lock);
	ex->shut_down = true;
	rouse__mutex_unlock(&ex->inject_lock);
	pthread_setcancelstate(cancel_state, NULL);
	rouse__debug("executor %p: shut down, %llu of %llu task(s) aborted",
		     (void *)ex, (unsigned long long)aborted,
		     (unsigned long long)alive);
	if (out != NULL) {
		out->completed = alive - aborted;
		out->aborted = aborted;
	}
	return 0;
}

/* ---- metrics -------------------------------------------------------------- */

static uint64_t read_u64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void worker_read(const struct rouse__worker *w,
			struct rouse_worker_metrics *m)
{
	m->spawned = read_u64(&w->m.spawned);
	m->completed = read_u64(&w->m.completed);
	m->aborted = read_u64(&w->m.aborted);
	m->polls = read_u64(&w->m.polls);
	m->steals = read_u64(&w->m.steals);
	m->parks = read_u64(&w->m.parks);
	m->driver_turns = read_u64(&w->m.driver_turns);
	m->budget_yields = read_u64(&w->m.budget_yields);
}

ROUSE__PUBLIC int rouse_executor_worker_metrics(
	const struct rouse_executor *ex, unsigned int worker,
	struct rouse_worker_metrics *out)
{
	if (ex == NULL || out == NULL || worker >= ex->nworkers)
		return -EINVAL;
	worker_read(&ex->workers[worker], out);
	return 0;
}

ROUSE__PUBLIC int rouse_executor_metrics(const struct rouse_executor *ex,
					 struct rouse_executor_metrics *out)
{
	struct rouse_worker_metrics m;
	uint64_t finished = 0;
	unsigned int i;

	if (ex == NULL || out == NULL)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->workers = ex->nworkers;
	/* Finishes first, then spawns: alive never comes out negative. */
	for (i = 0; i < ex->nworkers; i++) {
		worker_read(&ex->workers[i], &m);
		out->completed += m.completed;
		out->aborted += m.aborted;
		out->polls += m.polls;
		out->steals += m.steals;
		out->parks += m.parks;
		out->driver_turns += m.driver_turns;
		out->budget_yields += m.budget_yields;
	}
	out->aborted += read_u64(&ex->shutdown_aborted);
	finished = out->completed + out->aborted;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	for (i = 0; i < ex->nworkers; i++)
		out->spawned += read_u64(&ex->workers[i].m.spawned);
	out->spawned += read_u64(&ex->foreign_spawned);
	out->tasks_alive = out->spawned > finished ? out->spawned - finished
						   : 0;
	out->inject_depth = __atomic_load_n(&ex->inject_len, __ATOMIC_RELAXED);
	return 0;
}

ROUSE__PUBLIC int rouse_executor_block_on(struct rouse_executor *ex,
					  struct rouse_future *f)
{
	if (ex == NULL || f == NULL || f->vtable == NULL ||
	    f->vtable->poll == NULL)
		return -EINVAL;
	if (rouse__in_block_on)
		return -EDEADLK;
	if (rouse__inherited(ex->fork_gen))
		return -ECHILD;
	return ex->sched->block_on(ex, f, -1);
}
