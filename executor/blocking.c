// SPDX-License-Identifier: MIT
/*
 * executor/blocking.c - the blocking pool: functions that block run on
 * their own bounded set of threads, each call a future of its result.  It
 * calls pthreads, lib/ (the list, the allocator, the fork generation, the
 * log) and the wakers of future.h; nothing else of the executor, and
 * nothing of the executor calls it.
 *
 * A pool is a mutex, a FIFO queue of jobs and a few counters.  Threads are
 * started on demand: a job that finds more queued jobs than idle threads
 * starts one, up to the cap; otherwise it waits in the queue.  A thread
 * that finds the queue empty waits on a condition variable (on
 * CLOCK_MONOTONIC) and exits when its idle time runs out.
 *
 * Exited threads are joined without a list of threads: a thread on its way
 * out takes the pool's one "zombie" slot, leaving its own pthread_t there,
 * and joins the thread it found in it.  So at most one thread is ever
 * unjoined, and joining the last zombie joins the whole chain.  The next
 * thread start reaps it, and so does rouse_blocking_pool_free(), after it
 * has waited for the count of live threads to fall to zero.
 *
 * A job is one allocation shared by the pool and the future, with a state
 * word (bits below) that holds a reference count for the two.  The job
 * holds a reference to the pool, so a future may be polled and dropped
 * safely after its pool was freed: only the pool's memory outlives the
 * free, until its last job is released.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>

#include <rouse/blocking.h>

#include "executor-internal.h"
#include "../lib/list.h"

#define ROUSE__LOG_MODULE "blocking"

#define DEFAULT_MAX_THREADS 64
#define DEFAULT_IDLE_TIMEOUT_NS INT64_C(10000000000)

/*
 * The state word of a job.
 *
 * CLAIMED  the pool took the job out of its queue, to run it or to cancel
 *          it; set under the pool's lock, never cleared.  Until it is set,
 *          the future's drop may unlink the job itself.
 * DONE     result and value are final (release); set once, by the pool
 *          side, after CLAIMED.  From then on the pool side owns the waker
 *          slot if WAKER was set, and it has woken (or is waking) it.
 * WAKER    the waker slot holds a waker for the pool side to wake.  Only
 *          the future sets it, after filling the slot (release); the
 *          future clears it to replace or drop the waker, which it may do
 *          only while DONE is clear (a CAS checks both).
 * REF_ONE  the reference count above: one for the future until it is
 *          ready or dropped, one for the pool side until it has completed
 *          the job.  The last one frees the job.
 */
#define JOB_CLAIMED 1u
#define JOB_DONE 2u
#define JOB_WAKER 4u
#define JOB_REF_ONE 8u

struct job {
	struct rouse_link link;		/* in pool->queue, under pool->lock */
	struct rouse_blocking_pool *pool;	/* one reference */
	rouse_blocking_fn *fn;
	void *arg;
	void *value;			/* written before DONE */
	int result;			/* written before DONE */
	atomic_uint state;		/* JOB_* above */
	struct rouse_waker waker;	/* owned as WAKER says */
};

struct rouse_blocking_pool {
	pthread_mutex_t lock;
	pthread_cond_t work;		/* idle threads wait here */
	pthread_cond_t gone;		/* free waits here for no threads */
	pthread_attr_t attr;		/* all signals blocked */
	struct rouse_link queue;	/* unclaimed jobs, oldest first */
	uint64_t queued;
	unsigned int threads;		/* started or starting, alive */
	unsigned int idle;
	unsigned int max_threads;
	int64_t idle_timeout_ns;
	bool shutdown;			/* free has begun */
	bool have_zombie;		/* zombie holds an unjoined thread */
	pthread_t zombie;
	uint64_t threads_started;
	/*
	 * Counted outside the lock, before the job's completion is
	 * published, so that a caller who saw a future ready sees them.
	 */
	atomic_uint running;
	atomic_uint_fast64_t completed;
	/* The owner's (until free returns) + one per job alive. */
	atomic_uint refs;
	unsigned int fork_gen;		/* see rouse__inherited() */
};

/* The pool whose thread this is, so that it cannot free itself. */
static __thread struct rouse_blocking_pool *tls_pool;

static _Atomic(struct rouse_blocking_pool *) default_pool;

static void pool_release(struct rouse_blocking_pool *p)
{
	/* Acq_rel: every use of p happens before the free below. */
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
		return;
	pthread_attr_destroy(&p->attr);
	pthread_cond_destroy(&p->gone);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
	rouse__free(p);
}

static void job_release(struct job *j)
{
	unsigned int old;

	old = atomic_fetch_sub_explicit(&j->state, JOB_REF_ONE,
					memory_order_acq_rel);
	if (old / JOB_REF_ONE != 1)
		return;
	pool_release(j->pool);
	rouse__free(j);
}

/* Queue operations; the caller holds p->lock. */
static struct job *job_of(struct rouse_link *l)
{
	return rouse__list_entry(l, struct job, link);
}

/* The oldest queued job, or NULL. */
static struct job *queue_first(struct rouse_blocking_pool *p)
{
	struct rouse_link *l = rouse__list_first(&p->queue);

	return l == NULL ? NULL : job_of(l);
}

static void queue_push(struct rouse_blocking_pool *p, struct job *j)
{
	rouse__list_push_back(&p->queue, &j->link);
	p->queued++;
}

static void queue_unlink(struct rouse_blocking_pool *p, struct job *j)
{
	rouse__list_remove(&j->link);
	p->queued--;
}

/*
 * Take the whole queue out, every job CLAIMED, onto the empty list out
 * (a head of the caller's), for the caller to cancel outside the lock.
 */
static void queue_claim_all(struct rouse_blocking_pool *p,
			    struct rouse_link *out)
{
	struct rouse_link *l;

	rouse__list_for_each(l, &p->queue)
		atomic_fetch_or_explicit(&job_of(l)->state, JOB_CLAIMED,
					 memory_order_relaxed);
	rouse__list_splice_back(out, &p->queue);
	p->queued = 0;
}

/*
 * The pool side's end of a job: publish result and value, wake the waker
 * if the future left one, release the pool side's reference.
 */
static void job_complete(struct job *j)
{
	unsigned int old;

	/*
	 * Release publishes result and value to the future's acquire load;
	 * acquire makes the future's filling of the slot visible here.
	 */
	old = atomic_fetch_or_explicit(&j->state, JOB_DONE,
				       memory_order_acq_rel);
	if (old & JOB_WAKER) {
		/* A copy: the future may still read the slot (will_wake). */
		struct rouse_waker w = j->waker;

		rouse_waker_wake(&w);
	}
	job_release(j);
}

/* Complete every job of list (from queue_claim_all) with result err. */
static void cancel_list(struct rouse_link *list, int err)
{
	struct rouse_link *l;

	while ((l = rouse__list_pop_front(list)) != NULL) {
		struct job *j = job_of(l);

		j->result = err;
		j->value = NULL;
		job_complete(j);
	}
}

/* ---- pool threads --------------------------------------------------- */

/*
 * Wait, with p->lock held, until there is work, the pool is freed, or the
 * idle time runs out.  Returns true when there is work.
 */
static bool wait_for_work(struct rouse_blocking_pool *p)
{
	struct timespec deadline = { 0, 0 };
	int64_t at;

	if (p->idle_timeout_ns == 0)
		return false;
	if (p->idle_timeout_ns > 0) {
		at = rouse__now_ns();
		at = at > INT64_MAX - p->idle_timeout_ns ?
			INT64_MAX : at + p->idle_timeout_ns;
		deadline = rouse__ns_to_timespec(at);
	}
	p->idle++;
	while (rouse__list_empty(&p->queue) && !p->shutdown) {
		if (p->idle_timeout_ns < 0) {
			pthread_cond_wait(&p->work, &p->lock);
		} else if (pthread_cond_timedwait(&p->work, &p->lock,
						  &deadline) == ETIMEDOUT) {
			/* A job queued at the last moment is still taken. */
			break;
		}
	}
	p->idle--;
	return !rouse__list_empty(&p->queue);
}

static void *pool_thread(void *arg)
{
	struct rouse_blocking_pool *p = arg;
	bool have_prev;
	pthread_t prev;
	struct job *j;

	tls_pool = p;
	pthread_setname_np(pthread_self(), "rouse-blocking");
	pthread_mutex_lock(&p->lock);
	p->threads_started++;
	rouse__trace("thread %llu started, %u alive",
		     (unsigned long long)p->threads_started, p->threads);
	do {
		while ((j = queue_first(p)) != NULL) {
			queue_unlink(p, j);
			atomic_fetch_or_explicit(&j->state, JOB_CLAIMED,
						 memory_order_relaxed);
			atomic_fetch_add_explicit(&p->running, 1,
						  memory_order_relaxed);
			pthread_mutex_unlock(&p->lock);

			j->value = j->fn(j->arg);
			j->result = 0;
			/* Release: whoever sees running drop sees this. */
			atomic_fetch_add_explicit(&p->completed, 1,
						  memory_order_relaxed);
			atomic_fetch_sub_explicit(&p->running, 1,
						  memory_order_release);
			job_complete(j);

			pthread_mutex_lock(&p->lock);
		}
	} while (!p->shutdown && wait_for_work(p));

	/* Leave, and join the thread that left before (see the top). */
	p->threads--;
	have_prev = p->have_zombie;
	prev = p->zombie;
	p->zombie = pthread_self();
	p->have_zombie = true;
	rouse__trace("thread exits, %u alive", p->threads);
	if (p->threads == 0)
		pthread_cond_broadcast(&p->gone);
	pthread_mutex_unlock(&p->lock);
	if (have_prev)
		pthread_join(prev, NULL);
	return NULL;
}

/* Take the unjoined thread, if any, to join outside the lock. */
static bool take_zombie(struct rouse_blocking_pool *p, pthread_t *out)
{
	bool have = p->have_zombie;

	*out = p->zombie;
	p->have_zombie = false;
	return have;
}

/* ---- pools ---------------------------------------------------------- */

ROUSE__PUBLIC int
rouse_blocking_pool_config_init(struct rouse_blocking_pool_config *cfg)
{
	if (cfg == NULL)
		return -EINVAL;
	cfg->max_threads = DEFAULT_MAX_THREADS;
	cfg->idle_timeout_ns = DEFAULT_IDLE_TIMEOUT_NS;
	return 0;
}

static int pool_make(const struct rouse_blocking_pool_config *cfg,
		     struct rouse_blocking_pool **out)
{
	struct rouse_blocking_pool_config defaults;
	struct rouse_blocking_pool *p;
	pthread_condattr_t ca;
	sigset_t all;
	int err;

	if (cfg == NULL) {
		rouse_blocking_pool_config_init(&defaults);
		cfg = &defaults;
	}
	if (cfg->max_threads == 0)
		return -EINVAL;
	p = rouse__calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->max_threads = cfg->max_threads;
	p->idle_timeout_ns = cfg->idle_timeout_ns;
	p->fork_gen = rouse__fork_now();
	rouse__list_init(&p->queue);
	atomic_init(&p->refs, 1);
	atomic_init(&p->running, 0);
	atomic_init(&p->completed, 0);

	err = pthread_condattr_init(&ca);
	if (err != 0)
		goto fail_free;
	err = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (err == 0)
		err = pthread_cond_init(&p->work, &ca);
	pthread_condattr_destroy(&ca);
	if (err != 0)
		goto fail_free;
	err = pthread_cond_init(&p->gone, NULL);
	if (err != 0)
		goto fail_work;
	err = pthread_mutex_init(&p->lock, NULL);
	if (err != 0)
		goto fail_gone;
	err = pthread_attr_init(&p->attr);
	if (err != 0)
		goto fail_lock;
	/*
	 * Pool threads take no asynchronous signals: a handler should run
	 * on the application's threads, and a signal that the application
	 * blocks everywhere to read it from a signalfd must stay blocked
	 * here too.  Set at creation, so there is no window.
	 */
	sigfillset(&all);
	err = pthread_attr_setsigmask_np(&p->attr, &all);
	if (err != 0)
		goto fail_attr;
	*out = p;
	return 0;

fail_attr:
	pthread_attr_destroy(&p->attr);
fail_lock:
	pthread_mutex_destroy(&p->lock);
fail_gone:
	pthread_cond_destroy(&p->gone);
fail_work:
	pthread_cond_destroy(&p->work);
fail_free:
	rouse__free(p);
	return -err;
}

ROUSE__PUBLIC int
rouse_blocking_pool_new(const struct rouse_blocking_pool_config *cfg,
			struct rouse_blocking_pool **out)
{
	if (out == NULL)
		return -EINVAL;
	return pool_make(cfg, out);
}

ROUSE__PUBLIC int rouse_blocking_pool_default(struct rouse_blocking_pool **out)
{
	struct rouse_blocking_pool *p, *expected = NULL;
	int err;

	if (out == NULL)
		return -EINVAL;
	p = atomic_load_explicit(&default_pool, memory_order_acquire);
	if (ROUSE__LIKELY(p != NULL) && !rouse__inherited(p->fork_gen)) {
		*out = p;
		return 0;
	}
	/*
	 * None yet, or the parent's, whose threads are not in this child of
	 * fork(): the child gets a pool of its own (the parent's copy is
	 * left as it is).
	 */
	expected = p;
	/* A new pool has no threads: the loser of a race frees it cheaply. */
	err = pool_make(NULL, &p);
	if (err < 0)
		return err;
	if (!atomic_compare_exchange_strong_explicit(&default_pool, &expected,
						     p, memory_order_acq_rel,
						     memory_order_acquire)) {
		pool_release(p);
		p = expected;
	}
	*out = p;
	return 0;
}

ROUSE__PUBLIC int rouse_blocking_pool_free(struct rouse_blocking_pool *pool)
{
	struct rouse_link cancelled;
	pthread_t zombie;
	bool have_zombie;
	int cancel_state;

	if (pool == NULL ||
	    pool == atomic_load_explicit(&default_pool, memory_order_acquire))
		return -EINVAL;
	if (rouse__inherited(pool->fork_gen))
		return -ECHILD;
	/* Its own thread would wait for itself below. */
	if (pool == tls_pool)
		return -EDEADLK;
	/* Half a free cannot be undone: hold cancellation off. */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
	pthread_mutex_lock(&pool->lock);
	pool->shutdown = true;
	rouse__list_init(&cancelled);
	queue_claim_all(pool, &cancelled);
	pthread_cond_broadcast(&pool->work);
	pthread_mutex_unlock(&pool->lock);

	/* Wakers may do anything: call them without the lock. */
	cancel_list(&cancelled, -ECANCELED);

	pthread_mutex_lock(&pool->lock);
	while (pool->threads > 0)
		pthread_cond_wait(&pool->gone, &pool->lock);
	have_zombie = take_zombie(pool, &zombie);
	pthread_mutex_unlock(&pool->lock);
	if (have_zombie)
		pthread_join(zombie, NULL);
	pthread_setcancelstate(cancel_state, NULL);
	rouse__debug("pool freed");
	pool_release(pool);
	return 0;
}

ROUSE__PUBLIC int
rouse_blocking_pool_get_stats(struct rouse_blocking_pool *pool,
			      struct rouse_blocking_pool_stats *out)
{
	if (pool == NULL || out == NULL)
		return -EINVAL;
	if (rouse__inherited(pool->fork_gen))
		return -ECHILD;
	pthread_mutex_lock(&pool->lock);
	out->threads = pool->threads;
	out->running = atomic_load_explicit(&pool->running,
					    memory_order_acquire);
	out->idle = pool->idle;
	out->max_threads = pool->max_threads;
	out->queued = pool->queued;
	out->threads_started = pool->threads_started;
	out->completed = atomic_load_explicit(&pool->completed,
					      memory_order_relaxed);
	pthread_mutex_unlock(&pool->lock);
	return 0;
}

/* ---- the future ----------------------------------------------------- */

/* Move j's output into b and let go of j. */
static enum rouse_poll blocking_ready(struct rouse_blocking *b, struct job *j)
{
	b->result = j->result;
	b->value = j->value;
	b->job = NULL;
	job_release(j);
	return ROUSE_READY;
}

static enum rouse_poll blocking_poll(struct rouse_future *f,
				     struct rouse_context *cx)
{
	struct rouse_blocking *b = (struct rouse_blocking *)f;
	struct job *j = b->job;
	unsigned int s;

	if (j == NULL)
		return ROUSE_READY;
	/* Acquire: pairs with job_complete(), for result and value. */
	s = atomic_load_explicit(&j->state, memory_order_acquire);
	for (;;) {
		if (s & JOB_DONE)
			return blocking_ready(b, j);
		if (!(s & JOB_WAKER))
			break;
		if (rouse_waker_will_wake(&j->waker, cx->waker))
			return ROUSE_PENDING;
		/* Take the slot back to change the waker; fails once DONE. */
		if (atomic_compare_exchange_weak_explicit(
			    &j->state, &s, s & ~JOB_WAKER,
			    memory_order_acquire, memory_order_acquire)) {
			rouse_waker_drop(&j->waker);
			break;
		}
	}
	/* The slot is the future's: WAKER is clear and DONE was not set. */
	rouse_waker_clone(cx->waker, &j->waker);
	/* Release: the pool side reads the slot after seeing WAKER. */
	s = atomic_fetch_or_explicit(&j->state, JOB_WAKER,
				     memory_order_acq_rel);
	if (s & JOB_DONE) {
		/* It completed meanwhile and saw no waker: drop ours. */
		rouse_waker_drop(&j->waker);
		return blocking_ready(b, j);
	}
	return ROUSE_PENDING;
}

static void blocking_drop(struct rouse_future *f)
{
	struct rouse_blocking *b = (struct rouse_blocking *)f;
	struct job *j = b->job;
	struct rouse_blocking_pool *p;
	unsigned int s;

	if (j == NULL)
		return;
	b->job = NULL;
	s = atomic_load_explicit(&j->state, memory_order_acquire);
	if (!(s & JOB_CLAIMED)) {
		/* Still queued, perhaps: then it never runs. */
		p = j->pool;
		pthread_mutex_lock(&p->lock);
		s = atomic_load_explicit(&j->state, memory_order_acquire);
		if (!(s & JOB_CLAIMED)) {
			queue_unlink(p, j);
			pthread_mutex_unlock(&p->lock);
			/* Nobody else will look at the job again. */
			if (s & JOB_WAKER)
				rouse_waker_drop(&j->waker);
			pool_release(p);
			rouse__free(j);
			return;
		}
		pthread_mutex_unlock(&p->lock);
	}
	/*
	 * Claimed: it runs, or is cancelled, to the end without us.  Take
	 * back the waker unless the pool side already owns it (DONE).
	 */
	while ((s & JOB_WAKER) && !(s & JOB_DONE)) {
		if (atomic_compare_exchange_weak_explicit(
			    &j->state, &s, s & ~JOB_WAKER,
			    memory_order_acquire, memory_order_acquire)) {
			rouse_waker_drop(&j->waker);
			break;
		}
	}
	job_release(j);
}

static const struct rouse_future_vtable blocking_vtable = {
	blocking_poll,
	blocking_drop,
};

/*
 * Start a thread for p, which the caller counted in p->threads already.
 * On failure, uncount it; if no thread is left to serve the queue, take
 * the queue out: mine is removed (the caller reports the error), the
 * others are completed with -EAGAIN.  Returns 0, or -errno when mine did
 * not stay queued.
 */
static int start_thread(struct rouse_blocking_pool *p, struct job *mine)
{
	struct rouse_link orphans, *l;
	pthread_t t, zombie;
	bool have_zombie;
	int err, cancel_state;

	pthread_mutex_lock(&p->lock);
	have_zombie = take_zombie(p, &zombie);
	pthread_mutex_unlock(&p->lock);
	if (have_zombie) {
		/* It has left already, or is about to: a short join. */
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
		pthread_join(zombie, NULL);
		pthread_setcancelstate(cancel_state, NULL);
	}
	err = pthread_create(&t, &p->attr, pool_thread, p);
	if (ROUSE__LIKELY(err == 0))
		return 0;

	rouse__warn("pthread_create: error %d", err);
	rouse__list_init(&orphans);
	pthread_mutex_lock(&p->lock);
	p->threads--;
	if (p->threads == 0) {
		if (p->shutdown)
			pthread_cond_broadcast(&p->gone);
		queue_claim_all(p, &orphans);
	}
	pthread_mutex_unlock(&p->lock);
	/* Mine may have been run by a thread that has left since. */
	err = 0;
	rouse__list_for_each(l, &orphans) {
		if (l == &mine->link) {
			rouse__list_remove(l);
			pool_release(p);
			rouse__free(mine);
			err = -EAGAIN;
			break;
		}
	}
	cancel_list(&orphans, -EAGAIN);
	return err;
}

ROUSE__PUBLIC int rouse_spawn_blocking(struct rouse_blocking_pool *pool,
				       rouse_blocking_fn *fn, void *arg,
				       struct rouse_blocking *out)
{
	struct job *j;
	bool start;
	int err;

	if (fn == NULL || out == NULL)
		return -EINVAL;
	if (pool == NULL) {
		err = rouse_blocking_pool_default(&pool);
		if (err < 0)
			return err;
	}
	if (rouse__inherited(pool->fork_gen))
		return -ECHILD;
	j = rouse__malloc(sizeof(*j));
	if (j == NULL)
		return -ENOMEM;
	j->pool = pool;
	j->fn = fn;
	j->arg = arg;
	j->value = NULL;
	j->result = 0;
	j->waker.data = NULL;
	j->waker.vtable = NULL;
	atomic_init(&j->state, 2 * JOB_REF_ONE);
	atomic_fetch_add_explicit(&pool->refs, 1, memory_order_relaxed);

	pthread_mutex_lock(&pool->lock);
	queue_push(pool, j);
	/*
	 * Each idle thread takes one queued job; start a thread when the
	 * queued jobs outnumber them, up to the cap.
	 */
	if (pool->idle > 0)
		pthread_cond_signal(&pool->work);
	start = pool->queued > pool->idle &&
		pool->threads < pool->max_threads;
	if (start)
		pool->threads++;
	pthread_mutex_unlock(&pool->lock);
	if (start) {
		err = start_thread(pool, j);
		if (err < 0)
			return err;
	}
	out->base.vtable = &blocking_vtable;
	out->job = j;
	out->result = 0;
	out->value = NULL;
	return 0;
}
