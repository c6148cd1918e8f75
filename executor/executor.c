// SPDX-License-Identifier: MIT
/*
 * executor/executor.c - an executor's life: its configuration, making it
 * with one of the two schedulers, block_on, and free.
 *
 * It calls the chosen scheduler through its table (sched.h) and the task
 * core (task.c) to cancel what is left at free; neither calls back here.
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
	ex->refs = 1;
	ex->sched = cfg->kind == ROUSE_EXECUTOR_CURRENT_THREAD ?
		    &rouse__sched_current : &rouse__sched_multi;
	ex->cfg = *cfg;
	ex->cfg.parker = NULL;
	ex->fork_gen = rouse__fork_now();
	if (cfg->parker != NULL) {
		ex->parker = *cfg->parker;
		ex->has_parker = true;
	}
	pthread_mutex_init(&ex->inject_lock, NULL);
	for (i = 0; i < TASK_SHARDS; i++) {
		struct rouse__task_link *h = &ex->lists[i].head;

		pthread_mutex_init(&ex->lists[i].lock, NULL);
		h->next = h->prev = h;
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
	pthread_mutex_lock(&ex->inject_lock);
	if (ex->ct_unpark != NULL || ex->blockon_count != 0 || ex->freeing) {
		pthread_mutex_unlock(&ex->inject_lock);
		return -EBUSY;
	}
	/* From here on, block_on refuses to start. */
	ex->freeing = true;
	pthread_mutex_unlock(&ex->inject_lock);
	/* Joining workers is a cancellation point: finish what we start. */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
	ex->sched->stop(ex);
	pthread_mutex_lock(&ex->inject_lock);
	__atomic_store_n(&ex->closed, true, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&ex->inject_lock);
	rouse__task_cancel_all(ex);
	rouse__debug("executor %p: freed", (void *)ex);
	executor_unref(ex);
	pthread_setcancelstate(cancel_state, NULL);
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
	return ex->sched->block_on(ex, f);
}
