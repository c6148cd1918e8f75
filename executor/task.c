// SPDX-License-Identifier: MIT
/*
 * executor/task.c - tasks: spawning, the task waker, polling, join handles,
 * abort and detach, and the executor object both schedulers share.
 *
 * Every state change of a task is one compare-and-swap on its state word
 * (task.h lists the bits).  The schedulers (current.c, multi.c) only move
 * task pointers between queues; what a task is allowed to do next is
 * decided here.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "task.h"

#define ROUSE__LOG_MODULE "task"

ROUSE__TLS struct rouse__worker *rouse__cur_worker;
ROUSE__TLS struct rouse__task *rouse__cur_task;
ROUSE__TLS struct rouse_executor *rouse__blockon_ex;

/* Set by a task's wake of itself during its own poll; see task_run. */
static ROUSE__TLS bool self_woken;

/* The largest future rouse_spawn() copies: anything bigger is a mistake. */
#define TASK_BODY_MAX ((size_t)1 << 30)

/* ---- the state word ---------------------------------------------------- */

static inline uint64_t state_load(struct rouse__task *t)
{
	return __atomic_load_n(&t->state, __ATOMIC_ACQUIRE);
}

static inline bool state_cas(struct rouse__task *t, uint64_t *old,
			     uint64_t new)
{
	return __atomic_compare_exchange_n(&t->state, old, new, true,
					   __ATOMIC_ACQ_REL,
					   __ATOMIC_ACQUIRE);
}

static void task_free(struct rouse__task *t)
{
	rouse__trace("task %llu: freed", (unsigned long long)t->id);
	rouse__free(t);
}

static inline void task_unref(struct rouse__task *t)
{
	uint64_t old = __atomic_fetch_sub(&t->state, TASK_REF,
					  __ATOMIC_ACQ_REL);

	if ((old >> TASK_REF_SHIFT) == 1)
		task_free(t);
}

/* ---- ids: handed out in blocks so that spawning threads do not share a
 * counter's cache line on every spawn ------------------------------------ */

#define ID_BLOCK 1024u

static uint64_t next_id_block = 1;
static ROUSE__TLS uint64_t id_next, id_end;

static uint64_t task_new_id(void)
{
	if (ROUSE__UNLIKELY(id_next == id_end)) {
		id_next = __atomic_fetch_add(&next_id_block, ID_BLOCK,
					     __ATOMIC_RELAXED);
		id_end = id_next + ID_BLOCK;
	}
	return id_next++;
}

static const struct rouse_waker_vtable task_waker_vt;

/* ---- the executor's task list ------------------------------------------ */

static inline struct rouse__task_list *task_list(struct rouse__task *t)
{
	return &t->ex->lists[t->id % TASK_SHARDS];
}

static void list_insert(struct rouse__task *t)
{
	struct rouse__task_list *l = task_list(t);
	struct rouse__task_link *h = &l->head;

	pthread_mutex_lock(&l->lock);
	t->all.next = h->next;
	t->all.prev = h;
	h->next->prev = &t->all;
	h->next = &t->all;
	pthread_mutex_unlock(&l->lock);
}

static void list_remove(struct rouse__task *t)
{
	struct rouse__task_list *l = task_list(t);

	pthread_mutex_lock(&l->lock);
	t->all.prev->next = t->all.next;
	t->all.next->prev = t->all.prev;
	pthread_mutex_unlock(&l->lock);
}

/* ---- the join waker: a handshake on the state word, no lock ----------- */

/*
 * t->join_waker belongs to one side at a time, and JOIN_WAKER says which:
 * while it is clear and the task is not DONE, to the join handle, which
 * may write it; while it is set, to the task's side, which wakes it when
 * the task finishes and then clears the bit to hand it back.  Once DONE
 * is set the handle no longer writes the field; whoever sees, in the same
 * atomic operation, the last of HANDLE and JOIN_WAKER go drops it.
 */

/*
 * The task has just been marked DONE; s is the state that this made.
 * Wake the join handle if it left a waker, then hand the waker back, or
 * drop it if the handle is gone meanwhile.
 */
static void notify_join(struct rouse__task *t, uint64_t s)
{
	if ((s & (TASK_HANDLE | TASK_JOIN_WAKER)) !=
	    (TASK_HANDLE | TASK_JOIN_WAKER))
		return;
	rouse_waker_wake_by_ref(&t->join_waker);
	s = __atomic_fetch_and(&t->state, ~(uint64_t)TASK_JOIN_WAKER,
			       __ATOMIC_ACQ_REL);
	if (!(s & TASK_HANDLE))
		rouse_waker_drop(&t->join_waker);
}

/*
 * The handle (not DONE seen) leaves cx's waker in t for notify_join.
 * Returns false when the task turned DONE first: then the handle reads
 * the output instead, and the field stays with whoever has it.
 */
static bool join_waker_set(struct rouse__task *t, uint64_t s,
			   const struct rouse_waker *waker)
{
	if (s & TASK_JOIN_WAKER) {
		/* Read-only while the task's side has it: it only wakes it. */
		if (rouse_waker_will_wake(&t->join_waker, waker))
			return true;
		/* Take the field back to put another waker in it. */
		do {
			if (s & TASK_DONE)
				return false;
		} while (!state_cas(t, &s, s & ~(uint64_t)TASK_JOIN_WAKER));
		rouse_waker_drop(&t->join_waker);
	}
	rouse_waker_clone(waker, &t->join_waker);
	/* Release: notify_join, seeing the bit, sees the waker too. */
	do {
		if (s & TASK_DONE) {
			rouse_waker_drop(&t->join_waker);
			return false;
		}
	} while (!state_cas(t, &s, s | TASK_JOIN_WAKER));
	return true;
}

/* ---- finishing --------------------------------------------------------- */

/* Drop the task's future, once (rouse_future_drop clears its vtable). */
static inline void body_drop(struct rouse__task *t)
{
	rouse_future_drop(task_body(t));
}

/*
 * The caller has the right to drop t's body: t is CLOSED, not COMPLETE,
 * and no one polls it.  Drop it, tell the join handle, and let go of the
 * executor's reference.
 */
static void task_cancel(struct rouse__task *t)
{
	uint64_t s;

	rouse__trace("task %llu: cancelled", (unsigned long long)t->id);
	body_drop(t);
	list_remove(t);
	s = __atomic_fetch_or(&t->state, TASK_DONE, __ATOMIC_ACQ_REL);
	notify_join(t, s | TASK_DONE);
	task_unref(t);
}

/*
 * Poll returned READY on this thread: t was RUNNING.  The future is
 * dropped now, not when the join handle goes: what it holds for its work
 * (a channel's sender, a registration) is released as soon as the work is
 * done.  Its output fields stay where they are, for the handle to read.
 */
static void task_complete(struct rouse__task *t)
{
	uint64_t s, n;

	body_drop(t);
	s = state_load(t);
	do {
		n = (s & ~(uint64_t)(TASK_RUNNING | TASK_SCHEDULED)) |
		    TASK_COMPLETE | TASK_DONE;
	} while (!state_cas(t, &s, n));
	rouse__trace("task %llu: complete", (unsigned long long)t->id);
	list_remove(t);
	notify_join(t, n);
	task_unref(t);
}

/*
 * A task that woke itself in its own poll (a yield) goes back to the
 * queue still RUNNING: it is "held" by the executor's threads, and its
 * next run needs no compare-and-swap to take it, nor this one to let go.
 * To everyone else a held task looks like one being polled: a wake sets
 * SCHEDULED and leaves the queueing to the runner, an abort sets CLOSED
 * and leaves the drop to the runner.  Queues move a held task between
 * threads with release/acquire (a steal), which orders its polls.
 */
void rouse__task_run(struct rouse__task *t)
{
	struct rouse_waker waker;
	struct rouse_context cx;
	struct rouse_future *f = task_body(t);
	enum rouse_poll r;
	uint64_t s = state_load(t);

	/* Take it (a held task is ours already), unless it was closed. */
	while (!(s & (TASK_RUNNING | TASK_CLOSED)) &&
	       !state_cas(t, &s, (s & ~TASK_SCHEDULED) | TASK_RUNNING))
		;
	if (s & TASK_CLOSED) {
		task_cancel(t);
		return;
	}

	waker.data = t;
	waker.vtable = &task_waker_vt;
	cx.waker = &waker;
	rouse__cur_task = t;
	r = f->vtable->poll(f, &cx);
	rouse__cur_task = NULL;
	if (r == ROUSE_READY) {
		self_woken = false;
		task_complete(t);
		return;
	}
	if (self_woken) {
		/* To the back of the queue, held. */
		self_woken = false;
		rouse__task_schedule(t, false);
		return;
	}
	s = __atomic_fetch_and(&t->state, ~(uint64_t)TASK_RUNNING,
			       __ATOMIC_ACQ_REL);
	if (s & TASK_CLOSED) {
		/* Aborted during the poll: the wake it queued was refused. */
		task_cancel(t);
	} else if (s & TASK_SCHEDULED) {
		/* Woken from elsewhere during its poll: queue it again. */
		rouse__task_schedule(t, false);
	}
}

/*
 * Shutdown, with the executor's threads stopped: a task taken out of a
 * queue is made an ordinary queued task (SCHEDULED, not RUNNING), so that
 * every drained task is counted as SCHEDULED when it is closed.
 */
void rouse__task_unhold(struct rouse__task *t)
{
	uint64_t s = state_load(t);

	while (!state_cas(t, &s, (s & ~TASK_RUNNING) | TASK_SCHEDULED))
		;
}

/* ---- scheduling from anywhere ------------------------------------------ */

void rouse__inject_push_locked(struct rouse_executor *ex,
			       struct rouse__task *t)
{
	t->next = NULL;
	if (ex->inject_tail != NULL)
		ex->inject_tail->next = t;
	else
		ex->inject_head = t;
	ex->inject_tail = t;
	__atomic_store_n(&ex->inject_len, ex->inject_len + 1,
			 __ATOMIC_RELEASE);
}

struct rouse__task *rouse__inject_pop_locked(struct rouse_executor *ex)
{
	struct rouse__task *t = ex->inject_head;

	if (t == NULL)
		return NULL;
	ex->inject_head = t->next;
	if (ex->inject_head == NULL)
		ex->inject_tail = NULL;
	__atomic_store_n(&ex->inject_len, ex->inject_len - 1,
			 __ATOMIC_RELAXED);
	return t;
}

/*
 * From a thread that is not one of the executor's: through the injection
 * queue.  Nothing of ex is touched after the lock is released, so that an
 * executor shutting down can tell when the last such wake has left it
 * (see rouse_executor_free()).  The thread to wake is woken through a
 * clone of its parker's waker, which outlives the executor.
 */
static void schedule_remote(struct rouse_executor *ex, struct rouse__task *t)
{
	struct rouse_waker w = { NULL, NULL };
	bool was_empty;

	/* The parent's executor, in a child: nobody here runs it. */
	if (rouse__inherited(ex->fork_gen))
		return;
	pthread_mutex_lock(&ex->inject_lock);
	if (ROUSE__UNLIKELY(ex->closed)) {
		/* Shutdown owns the task now; it counts this wake. */
		ex->late_wakes++;
		pthread_mutex_unlock(&ex->inject_lock);
		return;
	}
	was_empty = ex->inject_head == NULL;
	rouse__inject_push_locked(ex, t);
	if (ex->cfg.kind == ROUSE_EXECUTOR_CURRENT_THREAD) {
		/*
		 * A queue that was not empty has been announced already, and
		 * the thread looks at the queue before it parks.  The waker
		 * is valid under the lock: block_on clears it under the lock
		 * before it lets it go.
		 */
		if (was_empty && ex->ct_unpark != NULL)
			rouse_waker_wake_by_ref(ex->ct_unpark);
	} else {
		rouse__mt_pick_idle(ex, &w);
	}
	pthread_mutex_unlock(&ex->inject_lock);
	if (w.vtable != NULL)
		rouse_waker_wake(&w);
}

void rouse__task_schedule(struct rouse__task *t, bool woken_by_task)
{
	struct rouse__worker *w = rouse__cur_worker;
	struct rouse_executor *ex = t->ex;

	if (w != NULL && w->ex == ex) {
		if (ex->cfg.kind == ROUSE_EXECUTOR_CURRENT_THREAD)
			rouse__ct_schedule_local(w, t);
		else
			rouse__mt_schedule_local(w, t, woken_by_task);
		return;
	}
	schedule_remote(ex, t);
}

/* ---- the task waker ------------------------------------------------------ */

static void task_wake_by_ref(void *data)
{
	struct rouse__task *t = data;
	uint64_t s;

	/* A task waking itself in its own poll (a yield): no atomic. */
	if (t == rouse__cur_task) {
		self_woken = true;
		return;
	}
	s = __atomic_load_n(&t->state, __ATOMIC_RELAXED);

	do {
		if (s & (TASK_SCHEDULED | TASK_COMPLETE | TASK_CLOSED))
			return;
	} while (!state_cas(t, &s, s | TASK_SCHEDULED));
	/* Running: the worker re-queues it when the poll returns. */
	if (s & TASK_RUNNING)
		return;
	rouse__task_schedule(t, rouse__cur_task != NULL);
}

static void task_wake(void *data)
{
	task_wake_by_ref(data);
	task_unref(data);
}

static void task_drop_ref(void *data)
{
	task_unref(data);
}

static struct rouse_waker task_clone(void *data)
{
	struct rouse__task *t = data;
	struct rouse_waker w;

	__atomic_fetch_add(&t->state, TASK_REF, __ATOMIC_RELAXED);
	w.data = t;
	w.vtable = &task_waker_vt;
	return w;
}

static const struct rouse_waker_vtable task_waker_vt = {
	task_clone, task_wake, task_wake_by_ref, task_drop_ref,
};

/* ---- join handles ---------------------------------------------------------- */

static enum rouse_poll join_poll(struct rouse_future *self,
				 struct rouse_context *cx)
{
	struct rouse_join_handle *h = (struct rouse_join_handle *)self;
	struct rouse__task *t = h->task;
	uint64_t s;

	if (t == NULL)
		return ROUSE_READY;	/* polled again after READY */
	s = state_load(t);
	if (!(s & TASK_DONE) && rouse__inherited(t->ex->fork_gen)) {
		/* The parent's task, in a child: it will never finish here. */
		h->result = -ECHILD;
		h->output = NULL;
		return ROUSE_READY;
	}
	if (!(s & TASK_DONE) && join_waker_set(t, s, cx->waker))
		return ROUSE_PENDING;
	s = state_load(t);
	if (s & TASK_COMPLETE) {
		h->result = 0;
		h->output = task_body(t);
	} else {
		h->result = -ECANCELED;
		h->output = NULL;
	}
	return ROUSE_READY;
}

/* Let go of the task: the handle's reference, and the join waker. */
static void join_release(struct rouse_join_handle *h)
{
	struct rouse__task *t = h->task;
	uint64_t s, n;

	if (t == NULL)
		return;
	h->task = NULL;
	h->output = NULL;
	s = state_load(t);
	do {
		/* Unfinished: the waker comes back to us with HANDLE. */
		n = s & ~(uint64_t)TASK_HANDLE;
		if (!(s & TASK_DONE))
			n &= ~(uint64_t)TASK_JOIN_WAKER;
	} while (!state_cas(t, &s, n));
	/*
	 * The field is ours unless the task's side still has it (DONE, and
	 * JOIN_WAKER set: notify_join drops it when it sees HANDLE gone).
	 */
	if (!((s & TASK_DONE) && (s & TASK_JOIN_WAKER)) &&
	    t->join_waker.vtable != NULL)
		rouse_waker_drop(&t->join_waker);
	task_unref(t);
}

static void join_drop(struct rouse_future *self)
{
	join_release((struct rouse_join_handle *)self);
}

static const struct rouse_future_vtable join_vt = { join_poll, join_drop };

ROUSE__PUBLIC int rouse_join_handle_detach(struct rouse_join_handle *h)
{
	if (h == NULL || h->base.vtable != &join_vt)
		return -EINVAL;
	return rouse_future_drop(&h->base);
}

ROUSE__PUBLIC uint64_t rouse_join_handle_id(const struct rouse_join_handle *h)
{
	if (h == NULL || h->base.vtable != &join_vt || h->task == NULL)
		return 0;
	return ((struct rouse__task *)h->task)->id;
}

ROUSE__PUBLIC int rouse_join_handle_abort(struct rouse_join_handle *h)
{
	struct rouse__task *t;
	uint64_t s, n;

	if (h == NULL || h->base.vtable != &join_vt)
		return -EINVAL;
	t = h->task;
	if (t == NULL)
		return 0;
	s = state_load(t);
	if (!(s & TASK_DONE) && rouse__inherited(t->ex->fork_gen))
		return -ECHILD;
	do {
		if (s & (TASK_COMPLETE | TASK_CLOSED))
			return 0;
		n = s | TASK_CLOSED;
		/* Idle: queue it, so that its own executor drops it. */
		if (!(s & (TASK_SCHEDULED | TASK_RUNNING)))
			n |= TASK_SCHEDULED;
	} while (!state_cas(t, &s, n));
	rouse__trace("task %llu: abort", (unsigned long long)t->id);
	if (!(s & (TASK_SCHEDULED | TASK_RUNNING)))
		rouse__task_schedule(t, false);
	return 0;
}

/* ---- spawning ---------------------------------------------------------------- */

ROUSE__PUBLIC struct rouse_executor *rouse_executor_current(void)
{
	if (rouse__cur_worker != NULL)
		return rouse__cur_worker->ex;
	return rouse__blockon_ex;
}

ROUSE__PUBLIC uint64_t rouse_task_current_id(void)
{
	return rouse__cur_task != NULL ? rouse__cur_task->id : 0;
}

ROUSE__PUBLIC int rouse_spawn(struct rouse_executor *ex,
			      const struct rouse_future *f, size_t size,
			      struct rouse_join_handle *out)
{
	struct rouse__task *t;

	if (f == NULL || f->vtable == NULL || f->vtable->poll == NULL ||
	    size < sizeof(*f) || size > TASK_BODY_MAX)
		return -EINVAL;
	if (ex == NULL) {
		ex = rouse_executor_current();
		if (ex == NULL)
			return -ESRCH;
	}
	if (rouse__inherited(ex->fork_gen))
		return -ECHILD;
	if (ROUSE__UNLIKELY(__atomic_load_n(&ex->closed, __ATOMIC_RELAXED)))
		return -ECANCELED;
	t = rouse__malloc(sizeof(*t) + size);
	if (t == NULL)
		return -ENOMEM;
	t->state = TASK_SCHEDULED | TASK_REF;
	if (out != NULL)
		t->state += TASK_HANDLE | TASK_REF;
	t->ex = ex;
	t->id = task_new_id();
	t->join_waker.data = NULL;
	t->join_waker.vtable = NULL;
	memcpy(task_body(t), f, size);
	list_insert(t);
	if (out != NULL) {
		out->base.vtable = &join_vt;
		out->task = t;
		out->result = 0;
		out->output = NULL;
	}
	rouse__trace("task %llu: spawned", (unsigned long long)t->id);
	rouse__task_schedule(t, false);
	return 0;
}

/* ---- the executor -------------------------------------------------------------- */

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

static void executor_destroy(struct rouse_executor *ex)
{
	unsigned int i;

	for (i = 0; i < TASK_SHARDS; i++)
		pthread_mutex_destroy(&ex->lists[i].lock);
	pthread_mutex_destroy(&ex->inject_lock);
	pthread_mutex_destroy(&ex->idle_lock);
	rouse__free(ex->idle_stack);
	rouse__aligned_free(ex->workers);
	rouse__aligned_free(ex);
}

ROUSE__PUBLIC int rouse_executor_new(const struct rouse_executor_config *cfg,
				     struct rouse_executor **out)
{
	struct rouse_executor_config def;
	struct rouse_executor *ex;
	unsigned int i;
	long cpus;
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
	ex->cfg = *cfg;
	ex->cfg.parker = NULL;
	ex->fork_gen = rouse__fork_now();
	if (cfg->parker != NULL) {
		ex->parker = *cfg->parker;
		ex->has_parker = true;
	}
	pthread_mutex_init(&ex->inject_lock, NULL);
	pthread_mutex_init(&ex->idle_lock, NULL);
	for (i = 0; i < TASK_SHARDS; i++) {
		struct rouse__task_link *h = &ex->lists[i].head;

		pthread_mutex_init(&ex->lists[i].lock, NULL);
		h->next = h->prev = h;
	}
	if (cfg->kind == ROUSE_EXECUTOR_CURRENT_THREAD) {
		ex->nworkers = 1;
	} else {
		ex->nworkers = cfg->workers;
		if (ex->nworkers == 0) {
			cpus = sysconf(_SC_NPROCESSORS_ONLN);
			ex->nworkers = cpus > 0 ? (unsigned int)cpus : 1;
		}
	}
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
	if (cfg->kind == ROUSE_EXECUTOR_MULTI_THREAD) {
		ex->idle_stack = rouse__calloc(ex->nworkers,
					       sizeof(unsigned int));
		if (ex->idle_stack == NULL) {
			executor_destroy(ex);
			return -ENOMEM;
		}
		/* Starting workers waits on each: not a place to be cancelled. */
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
		err = rouse__mt_start(ex);
		pthread_setcancelstate(cancel_state, NULL);
		if (err < 0) {
			executor_destroy(ex);
			return err;
		}
	}
	rouse__debug("executor %p: new, %s, %u worker(s)", (void *)ex,
		     cfg->kind == ROUSE_EXECUTOR_CURRENT_THREAD ?
		     "current-thread" : "multi-thread", ex->nworkers);
	*out = ex;
	return 0;
}

/*
 * Shutdown.  The executor's threads are gone (multi-thread workers are
 * joined; a current-thread executor is not inside block_on), so nothing
 * polls.  What may still happen: a wake or abort on another thread that
 * set a task's SCHEDULED bit and is about to take inject_lock.  Such a
 * wake finds `closed` and counts itself in late_wakes; the executor's
 * memory may go only after the last of them has.  Their number is known:
 * every task whose SCHEDULED bit was set when it was closed, and that was
 * not found in a queue, has exactly one such wake on its way.
 */
ROUSE__PUBLIC int rouse_executor_free(struct rouse_executor *ex)
{
	struct rouse__task *t;
	uint64_t scheduled = 0, drained, s;
	unsigned int i;
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

	if (ex->cfg.kind == ROUSE_EXECUTOR_MULTI_THREAD)
		rouse__mt_stop(ex);

	pthread_mutex_lock(&ex->inject_lock);
	__atomic_store_n(&ex->closed, true, __ATOMIC_RELAXED);
	drained = 0;
	while ((t = rouse__inject_pop_locked(ex)) != NULL) {
		rouse__task_unhold(t);
		drained++;
	}
	pthread_mutex_unlock(&ex->inject_lock);
	if (ex->cfg.kind == ROUSE_EXECUTOR_CURRENT_THREAD)
		drained += rouse__ct_drain(ex);
	else
		drained += rouse__mt_drain(ex);

	/* Close every unfinished task: from now on wakes ignore them. */
	for (i = 0; i < TASK_SHARDS; i++) {
		struct rouse__task_link *h = &ex->lists[i].head, *l;

		pthread_mutex_lock(&ex->lists[i].lock);
		for (l = h->next; l != h; l = l->next) {
			t = rouse__container_of(l, struct rouse__task, all);
			s = __atomic_fetch_or(&t->state, TASK_CLOSED,
					      __ATOMIC_ACQ_REL);
			if (s & TASK_SCHEDULED)
				scheduled++;
		}
		pthread_mutex_unlock(&ex->lists[i].lock);
	}
	for (;;) {
		pthread_mutex_lock(&ex->inject_lock);
		s = ex->late_wakes;
		pthread_mutex_unlock(&ex->inject_lock);
		if (s + drained >= scheduled)
			break;
		sched_yield();
	}

	/* Drop what is left; a drop may wake or abort others: all closed. */
	for (i = 0; i < TASK_SHARDS; i++) {
		struct rouse__task_link *h = &ex->lists[i].head, *l;

		for (;;) {
			pthread_mutex_lock(&ex->lists[i].lock);
			l = h->next;
			pthread_mutex_unlock(&ex->lists[i].lock);
			if (l == h)
				break;
			task_cancel(rouse__container_of(l, struct rouse__task,
							all));
		}
	}
	rouse__debug("executor %p: freed", (void *)ex);
	executor_destroy(ex);
	pthread_setcancelstate(cancel_state, NULL);
	return 0;
}

ROUSE__PUBLIC int rouse_executor_block_on(struct rouse_executor *ex,
					  struct rouse_future *f)
{
	int err;

	if (ex == NULL || f == NULL || f->vtable == NULL ||
	    f->vtable->poll == NULL)
		return -EINVAL;
	if (rouse__in_block_on)
		return -EDEADLK;
	if (rouse__inherited(ex->fork_gen))
		return -ECHILD;
	if (ex->cfg.kind == ROUSE_EXECUTOR_CURRENT_THREAD)
		return rouse__ct_block_on(ex, f);
	pthread_mutex_lock(&ex->inject_lock);
	if (ex->freeing) {
		pthread_mutex_unlock(&ex->inject_lock);
		return -ECANCELED;
	}
	ex->blockon_count++;
	pthread_mutex_unlock(&ex->inject_lock);
	/* NULL before: a block_on already running was refused above. */
	rouse__blockon_ex = ex;
	err = rouse_block_on(f);
	rouse__blockon_ex = NULL;
	pthread_mutex_lock(&ex->inject_lock);
	ex->blockon_count--;
	pthread_mutex_unlock(&ex->inject_lock);
	return err;
}
