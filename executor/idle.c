// SPDX-License-Identifier: MIT
/*
 * executor/idle.c - the idle protocol of the multi-thread scheduler: who
 * sleeps, who is woken, who searches for work to steal, and which idle
 * worker drives the executor's parker (a reactor's epoll turn).
 *
 * multi.c calls it; it calls lib/ and the parkers, through their tables,
 * and nothing else of the executor's.  Its memory is freed with the
 * executor's (sched.h).
 *
 * One atomic word packs the two counts that every decision reads:
 *
 *   bits  0..15  searching  workers looking for work outside their ring
 *   bits 16..31  sleeping   workers on the sleepers stack
 *
 * Invariants:
 *
 *  1. A worker is on the sleepers stack exactly when its `sleeping` flag
 *     is set.  Both change under the lock, together with the word's
 *     sleeping count, which is therefore the size of the stack.
 *  2. A worker that adds work publishes it, then (full fence) reads the
 *     word, and wakes a sleeper unless one is searching already or none
 *     sleeps.  A worker that goes to sleep pushes itself, then (full
 *     fence) looks for work, and takes itself off again if it finds
 *     some.  Of the two, one sees the other: no work is left with every
 *     worker asleep.
 *  3. A worker woken for work counts as searching from the moment it is
 *     taken off the stack, so that the next piece of work does not wake
 *     a second one before the first has looked.  A searcher that finds
 *     work stops searching; if it was the last searcher it wakes another
 *     worker, for the work that notifiers left to it meanwhile.
 *  4. The driver.  At most one worker holds it (an atomic flag taken
 *     with an exchange); only the holder parks in the executor's parker,
 *     and its stack entry says so, so that a notifier wakes it through
 *     that parker's waker rather than its own.  The holder gives it up
 *     as soon as its park returns, so the next worker to sleep takes it:
 *     I/O and timers never wait on one particular worker.  A busy worker
 *     takes it for a zero-timeout turn every event_interval polls.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "sched.h"

#define ROUSE__LOG_MODULE "executor"

#define SEARCHER 1u
#define SLEEPER	 (1u << 16)

static inline unsigned int word_searching(uint32_t w)
{
	return w & 0xffffu;
}

static inline unsigned int word_sleeping(uint32_t w)
{
	return w >> 16;
}

int rouse__idle_init(struct rouse__idle *id, unsigned int nworkers)
{
	id->stack = rouse__calloc(nworkers, sizeof(unsigned int));
	if (id->stack == NULL)
		return -ENOMEM;
	pthread_mutex_init(&id->lock, NULL);
	return 0;
}

/* ---- waking ------------------------------------------------------------ */

/* Under the lock: take the sleeper at position pos off, as a searcher. */
static struct rouse__worker *take_locked(struct rouse_executor *ex,
					 unsigned int pos)
{
	struct rouse__idle *id = &ex->idle;
	struct rouse__worker *w = &ex->workers[id->stack[pos]];

	id->stack[pos] = id->stack[--id->n];
	w->sleeping = false;
	__atomic_fetch_add(&id->word, SEARCHER - SLEEPER, __ATOMIC_SEQ_CST);
	return w;
}

bool rouse__idle_pick(struct rouse_executor *ex, struct rouse_waker *out)
{
	struct rouse__idle *id = &ex->idle;
	struct rouse__worker *w = NULL;
	uint32_t word;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	word = __atomic_load_n(&id->word, __ATOMIC_SEQ_CST);
	if (word_searching(word) != 0 || word_sleeping(word) == 0)
		return false;
	pthread_mutex_lock(&id->lock);
	if (id->n > 0) {
		/* The most recent sleeper: its cache is the warmest. */
		w = take_locked(ex, id->n - 1);
		*out = w->via->vtable->clone(w->via->data);
	}
	pthread_mutex_unlock(&id->lock);
	return w != NULL;
}

void rouse__idle_notify(struct rouse_executor *ex)
{
	struct rouse_waker w;

	if (rouse__idle_pick(ex, &w)) {
		rouse__trace("worker: unpark an idle worker");
		rouse_waker_wake(&w);
	}
}

void rouse__idle_found_work(struct rouse__worker *w)
{
	struct rouse_executor *ex = w->ex;
	uint32_t old;

	if (!w->searching)
		return;
	w->searching = false;
	old = __atomic_fetch_sub(&ex->idle.word, SEARCHER, __ATOMIC_SEQ_CST);
	if (word_searching(old) == 1)
		rouse__idle_notify(ex);
}

/* ---- the driver ---------------------------------------------------------- */

static bool driver_take(struct rouse_executor *ex)
{
	if (!ex->has_parker ||
	    __atomic_load_n(&ex->driver_failed, __ATOMIC_RELAXED) ||
	    __atomic_load_n(&ex->driver_held, __ATOMIC_RELAXED))
		return false;
	return !__atomic_exchange_n(&ex->driver_held, true, __ATOMIC_ACQUIRE);
}

static void driver_release(struct rouse_executor *ex)
{
	__atomic_store_n(&ex->driver_held, false, __ATOMIC_RELEASE);
}

/*
 * The executor's parker failed (say, a reactor parker whose reactor runs
 * on a thread of its own, -EBUSY).  Workers must go on, or the tasks they
 * would run starve: from now on every worker parks on its own eventfd.
 */
static void driver_failed(struct rouse__worker *w, int err)
{
	if (!__atomic_exchange_n(&w->ex->driver_failed, true,
				 __ATOMIC_RELAXED))
		rouse__error("worker %u: the executor's parker failed: %d; "
			     "workers park on their eventfds", w->index, err);
}

/* ---- sleeping ------------------------------------------------------------ */

/* Anything a sleeping worker would be woken for. */
static bool has_work(struct rouse_executor *ex)
{
	unsigned int i;

	if (__atomic_load_n(&ex->inject_len, __ATOMIC_SEQ_CST) != 0 ||
	    __atomic_load_n(&ex->stop, __ATOMIC_SEQ_CST))
		return true;
	for (i = 0; i < ex->nworkers; i++)
		if (!ring_empty(&ex->workers[i].ring))
			return true;
	return false;
}

void rouse__idle_sleep(struct rouse__worker *w)
{
	struct rouse_executor *ex = w->ex;
	struct rouse__idle *id = &ex->idle;
	bool driving = driver_take(ex), still;
	struct rouse_parker *p = driving ? &ex->parker : &w->parker;
	uint32_t delta = SLEEPER;
	int err;

	if (w->searching) {
		w->searching = false;
		delta -= SEARCHER;
	}
	pthread_mutex_lock(&id->lock);
	w->sleeping = true;
	w->via = driving ? &ex->driver_unpark : &w->unpark;
	id->stack[id->n++] = w->index;
	__atomic_fetch_add(&id->word, delta, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&id->lock);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	for (;;) {
		if (has_work(ex)) {
			/* Off the stack again, unless a notifier took us. */
			pthread_mutex_lock(&id->lock);
			if (w->sleeping) {
				unsigned int i = 0;

				while (id->stack[i] != w->index)
					i++;
				take_locked(ex, i);
			}
			pthread_mutex_unlock(&id->lock);
			break;
		}
		rouse__trace("worker %u: park%s", w->index,
			     driving ? " (driver)" : "");
		counter_add(&w->m.parks, 1);
		if (driving)
			counter_add(&w->m.driver_turns, 1);
		err = p->vtable->park(p->data, -1);
		if (err < 0 && err != -ETIMEDOUT && err != -EINTR) {
			if (!driving) {
				/* Its own eventfd parker: nothing else to use. */
				rouse__error("worker %u: park failed: %d",
					     w->index, err);
				sched_yield();
			} else {
				/* Wake through the worker's own parker now. */
				driver_failed(w, err);
				pthread_mutex_lock(&id->lock);
				w->via = &w->unpark;
				pthread_mutex_unlock(&id->lock);
				driver_release(ex);
				driving = false;
				p = &w->parker;
			}
		}
		pthread_mutex_lock(&id->lock);
		still = w->sleeping;
		pthread_mutex_unlock(&id->lock);
		if (!still)
			break;	/* a notifier chose us */
	}
	if (driving)
		driver_release(ex);
	w->searching = true;
}

/*
 * A busy worker's look at the outside world, every event_interval polls:
 * a zero-timeout turn of the driver if no one holds it, and its own
 * parker's pending token, if any, consumed.
 */
void rouse__idle_maintain(struct rouse__worker *w)
{
	struct rouse_executor *ex = w->ex;

	counter_add(&w->m.budget_yields, 1);
	if (driver_take(ex)) {
		int err = ex->parker.vtable->park(ex->parker.data, 0);

		counter_add(&w->m.driver_turns, 1);
		if (err < 0 && err != -ETIMEDOUT && err != -EINTR)
			driver_failed(w, err);
		driver_release(ex);
	}
	w->parker.vtable->park(w->parker.data, 0);
}
