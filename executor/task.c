// SPDX-License-Identifier: MIT
/*
 * executor/task.c - the task core: spawning, the task waker, one poll of
 * a task, join handles, abort and detach, and cancelling every task when
 * an executor is freed.
 *
 * Every state change of a task is one of the named transitions of
 * task_state.h.  A task that must be queued goes to its executor's
 * scheduler through the table of operations in ex->sched (sched.h): this
 * file knows no scheduler by name and calls no other file of the
 * executor but through that table.  executor.c, current.c and multi.c
 * call it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"
#include "task_state.h"

#define ROUSE__LOG_MODULE "task"

ROUSE__TLS struct rouse__worker *rouse__cur_worker;
ROUSE__TLS struct rouse__task *rouse__cur_task;
ROUSE__TLS struct rouse_executor *rouse__blockon_ex;

/* Set by a task's wake of itself during its own poll; see task_run. */
static ROUSE__TLS bool self_woken;

/* The largest future rouse_spawn() copies: anything bigger is a mistake. */
#define TASK_BODY_MAX ((size_t)1 << 30)

/*
 * A reference other than the executor's goes (a waker's, the handle's).
 * The executor's own goes first, when the task finishes, so the last one
 * here is always of a finished task whose memory holds a reference to the
 * executor's memory (task_drop_executor_ref()).
 */
static void task_unref(struct rouse__task *t)
{
	struct rouse_executor *ex = t->ex;

	if (!task_state_unref(&t->state))
		return;
	rouse__trace("task %llu: freed", (unsigned long long)t->id);
	rouse__free(t);
	executor_unkeep(ex);
}

/*
 * The executor lets go of a task that has finished.  With no other
 * reference left (a detached task whose wakers are all dropped) the
 * memory goes now, and nobody can take a new reference: that needs one.
 * Otherwise a waker or the join handle keeps the memory, and may still
 * look at t->ex after the executor is freed: the memory first takes a
 * reference on the executor's memory (sched.h), which the last
 * task_unref() drops.  So only tasks that outlive their finish touch the
 * executor's count.
 */
static void task_drop_executor_ref(struct rouse__task *t)
{
	if ((task_state_load(&t->state) >> TASK_REF_SHIFT) == 1) {
		rouse__trace("task %llu: freed", (unsigned long long)t->id);
		rouse__free(t);
		return;
	}
	executor_keep(t->ex);
	task_unref(t);
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

/*
 * Add t to its executor's list, unless a shutdown has begun.  The flag is
 * read under the list's lock, and rouse_executor_shutdown() sets it
 * before it counts each list under that lock: a spawn is either counted
 * there or refused here.
 */
static inline __attribute__((always_inline)) bool
list_insert(struct rouse__task *t)
{
	struct rouse__task_list *l = task_list(t);

	rouse__mutex_lock(&l->lock);
	if (ROUSE__UNLIKELY(__atomic_load_n(&t->ex->shutting,
					    __ATOMIC_RELAXED))) {
		rouse__mutex_unlock(&l->lock);
		return false;
	}
	rouse__list_push_front(&l->head, &t->all);
	rouse__mutex_unlock(&l->lock);
	return true;
}

/*
 * During a shutdown, the task that leaves the last list empty wakes the
 * shutdown.  The flag is read after the list's lock is released: a
 * shutdown that counted this list before our removal set the flag before
 * it took the lock, so we see it; one that counted after saw the removal.
 */
static void shutdown_check(struct rouse_executor *ex)
{
	rouse__mutex_lock(&ex->inject_lock);
	if (ex->shutdown_waker.vtable != NULL && rouse__task_none(ex))
		rouse_waker_wake_by_ref(&ex->shutdown_waker);
	rouse__mutex_unlock(&ex->inject_lock);
}

static inline __attribute__((always_inline)) void
list_remove(struct rouse__task *t)
{
	struct rouse__task_list *l = task_list(t);

	rouse__mutex_lock(&l->lock);
	rouse__list_remove(&t->all);
	rouse__mutex_unlock(&l->lock);
	if (ROUSE__UNLIKELY(__atomic_load_n(&t->ex->shutting,
					    __ATOMIC_RELAXED)))
		shutdown_check(t->ex);
}

uint64_t rouse__task_count(struct rouse_executor *ex)
{
	uint64_t n = 0;
	unsigned int i;

	for (i = 0; i < TASK_SHARDS; i++) {
		struct rouse_link *l;

		rouse__mutex_lock(&ex->lists[i].lock);
		rouse__list_for_each(l, &ex->lists[i].head)
			n++;
		rouse__mutex_unlock(&ex->lists[i].lock);
	}
	return n;
}

bool rouse__task_none(struct rouse_executor *ex)
{
	bool none = true;
	unsigned int i;

	for (i = 0; i < TASK_SHARDS && none; i++) {
		rouse__mutex_lock(&ex->lists[i].lock);
		none = rouse__list_first(&ex->lists[i].head) == NULL;
		rouse__mutex_unlock(&ex->lists[i].lock);
	}
	return none;
}

/* ---- the join waker: a handshake on the state word, no lock ----------- */

/*
 * t->join_waker belongs to one side at a time, and JOIN_WAKER says which:
 * while it is clear and the task is not FINISHED, to the join handle,
 * which may write it; while it is set, to the task's side, which wakes it
 * when the task finishes and then clears the bit to hand it back.  Once
 * FINISHED is set the handle no longer writes the field; whoever sees, in
 * the same atomic operation, the last of HANDLE and JOIN_WAKER go drops it.
 */

/*
 * The task has just finished; s is the word that made it so.  Wake the
 * join handle if it left a waker, then hand the waker back, or drop it if
 * the handle is gone meanwhile.
 */
static void notify_join(struct rouse__task *t, uint64_t s)
{
	if ((s & (TASK_HANDLE | TASK_JOIN_WAKER)) !=
	    (TASK_HANDLE | TASK_JOIN_WAKER))
		return;
	rouse_waker_wake_by_ref(&t->join_waker);
	s = task_state_join_waker_return(&t->state);
	if (!(s & TASK_HANDLE))
		rouse_waker_drop(&t->join_waker);
}

/*
 * The handle (not FINISHED seen in s) leaves cx's waker in t for
 * notify_join.  Returns false when the task finished first: then the
 * handle reads the output instead, and the field stays with whoever has
 * it.
 */
static bool join_waker_set(struct rouse__task *t, uint64_t s,
			   const struct rouse_waker *waker)
{
	if (s & TASK_JOIN_WAKER) {
		/* Read-only while the task's side has it: it only wakes it. */
		if (rouse_waker_will_wake(&t->join_waker, waker))
			return true;
		if (!task_state_join_waker_take_back(&t->state, &s))
			return false;
		rouse_waker_drop(&t->join_waker);
	}
	rouse_waker_clone(waker, &t->join_waker);
	if (task_state_join_waker_give(&t->state, &s))
		return true;
	rouse_waker_drop(&t->join_waker);
	return false;
}

/* ---- queueing ------------------------------------------------------------ */

/*
 * From a thread that is not one of the executor's: through the injection
 * queue, then the scheduler makes sure a thread looks.  The thread to
 * wake is woken through a clone of its parker's waker after the lock is
 * dropped.  A closed executor refuses the task: its free cancels it.
 */
static void schedule_remote(struct rouse_executor *ex, struct rouse__task *t)
{
	struct rouse_waker w = { NULL, NULL };
	bool was_empty;

	/* The parent's executor, in a child: nobody here runs it. */
	if (rouse__inherited(ex->fork_gen))
		return;
	rouse__mutex_lock(&ex->inject_lock);
	if (ROUSE__UNLIKELY(ex->closed)) {
		rouse__mutex_unlock(&ex->inject_lock);
		return;
	}
	was_empty = rouse__fifo_empty(&ex->inject);
	inject_push_locked(ex, t);
	ex->sched->injected(ex, was_empty, &w);
	rouse__mutex_unlock(&ex->inject_lock);
	if (w.vtable != NULL)
		rouse_waker_wake(&w);
}

/* Queue t, whose SCHEDULED bit the caller set (or that is TAKEN). */
static void task_schedule(struct rouse__task *t, bool by_task)
{
	struct rouse__worker *w = rouse__cur_worker;
	struct rouse_executor *ex = t->ex;

	if (w != NULL && w->ex == ex)
		ex->sched->schedule_local(w, t, by_task);
	else
		schedule_remote(ex, t);
}

/* ---- finishing --------------------------------------------------------- */

/*
 * The caller owns t's body (it is CANCELLED, not finished, and nobody
 * polls it).  Drop it, tell the join handle, and let go of the
 * executor's reference.
 */
static void task_cancel(struct rouse__task *t)
{
	rouse__trace("task %llu: cancelled", (unsigned long long)t->id);
	rouse_future_drop(task_body(t));
	list_remove(t);
	notify_join(t, task_state_finish_cancelled(&t->state));
	task_drop_executor_ref(t);
}

/*
 * The poll returned READY on this thread.  The future is dropped now, not
 * when the join handle goes: what it holds for its work (a channel's
 * sender, a registration) is released as soon as the work is done.  Its
 * output fields stay where they are, for the handle to read.
 */
static void task_complete(struct rouse__task *t)
{
	uint64_t s;

	rouse_future_drop(task_body(t));
	s = task_state_complete(&t->state);
	rouse__trace("task %llu: complete", (unsigned long long)t->id);
	list_remove(t);
	notify_join(t, s);
	task_drop_executor_ref(t);
}

/* ---- one poll ------------------------------------------------------------ */

/*
 * A task that woke itself in its own poll (a yield) goes back to the
 * queue still TAKEN, with no atomic operation either way.  To everyone
 * else it looks like a task being polled (task_state.h).  Queues move a
 * taken task between threads with release/acquire (a steal), which
 * orders its polls.  A task that goes back to a queue from here (a
 * yield, or a wake during its poll) is queued by the scheduler that ran
 * it, which needs no call through its table for that.
 */
enum rouse__run rouse__task_run(struct rouse__task *t)
{
	struct rouse_waker waker;
	struct rouse_context cx;
	struct rouse_future *f = task_body(t);

	if (task_state_take(&t->state) == TAKE_CANCEL) {
		task_cancel(t);
		return RUN_CANCELLED;
	}
	waker.data = t;
	waker.vtable = &task_waker_vt;
	cx.waker = &waker;
	rouse__cur_task = t;
	if (f->vtable->poll(f, &cx) == ROUSE_READY) {
		rouse__cur_task = NULL;
		self_woken = false;
		task_complete(t);
		return RUN_COMPLETED;
	}
	rouse__cur_task = NULL;
	if (self_woken) {
		/* To the back of the queue, still taken. */
		self_woken = false;
		return RUN_REQUEUE;
	}
	switch (task_state_release(&t->state)) {
	case RELEASE_CANCEL:
		/* Aborted during the poll: the wake it queued was refused. */
		task_cancel(t);
		return RUN_CANCELLED;
	case RELEASE_REQUEUE:
		/* Woken from elsewhere during its poll. */
		return RUN_REQUEUE;
	case RELEASE_IDLE:
		break;
	}
	return RUN_IDLE;
}

/* ---- the task waker ------------------------------------------------------ */

static void task_wake_by_ref(void *data)
{
	struct rouse__task *t = data;

	/* A task waking itself in its own poll (a yield): no atomic. */
	if (t == rouse__cur_task) {
		self_woken = true;
		return;
	}
	if (task_state_wake(&t->state))
		task_schedule(t, rouse__cur_task != NULL);
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

	task_state_ref(&t->state);
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
	s = task_state_load(&t->state);
	if (!(s & TASK_FINISHED) && rouse__inherited(t->ex->fork_gen)) {
		/* The parent's task, in a child: it will never finish here. */
		h->result = -ECHILD;
		h->output = NULL;
		return ROUSE_READY;
	}
	if (!(s & TASK_FINISHED) && join_waker_set(t, s, cx->waker))
		return ROUSE_PENDING;
	s = task_state_load(&t->state);
	if (s & TASK_HAS_OUTPUT) {
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
	uint64_t s;

	if (t == NULL)
		return;
	h->task = NULL;
	h->output = NULL;
	s = task_state_drop_handle(&t->state);
	/*
	 * The field is ours unless the task's side still has it (FINISHED,
	 * and JOIN_WAKER set: notify_join drops it when it sees HANDLE go).
	 */
	if (!((s & TASK_FINISHED) && (s & TASK_JOIN_WAKER)) &&
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

	if (h == NULL || h->base.vtable != &join_vt)
		return -EINVAL;
	t = h->task;
	if (t == NULL)
		return 0;
	if (!(task_state_load(&t->state) & TASK_FINISHED) &&
	    rouse__inherited(t->ex->fork_gen))
		return -ECHILD;
	switch (task_state_cancel(&t->state)) {
	case CANCEL_QUEUE:
		rouse__trace("task %llu: abort", (unsigned long long)t->id);
		task_schedule(t, false);
		break;
	case CANCEL_LEFT_TO_OWNER:
		rouse__trace("task %llu: abort", (unsigned long long)t->id);
		break;
	case CANCEL_NOTHING:
		break;
	}
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
	struct rouse__worker *w = rouse__cur_worker;
	struct rouse__task *t;

	if (f == NULL || f->vtable == NULL || f->vtable->poll == NULL ||
	    size < sizeof(*f) || size > TASK_BODY_MAX)
		return -EINVAL;
	if (ex == NULL) {
		ex = w != NULL ? w->ex : rouse__blockon_ex;
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
	t->state = task_state_initial(out != NULL);
	t->ex = ex;
	t->id = task_new_id();
	t->join_waker.data = NULL;
	t->join_waker.vtable = NULL;
	memcpy(task_body(t), f, size);
	/* Refused once rouse_executor_shutdown() has begun. */
	if (!list_insert(t)) {
		rouse__free(t);
		return -ESHUTDOWN;
	}
	if (out != NULL) {
		out->base.vtable = &join_vt;
		out->task = t;
		out->result = 0;
		out->output = NULL;
	}
	rouse__trace("task %llu: spawned", (unsigned long long)t->id);
	if (w != NULL && w->ex == ex) {
		counter_add(&w->m.spawned, 1);
		ex->sched->schedule_local(w, t, false);
	} else {
		__atomic_fetch_add(&ex->foreign_spawned, 1, __ATOMIC_RELAXED);
		schedule_remote(ex, t);
	}
	return 0;
}

/* ---- shutdown ------------------------------------------------------------------ */

/*
 * Nothing polls any more, and nothing is pushed on the injection queue
 * (it is closed).  A wake or an abort on another thread may still be on
 * its way with a task; it finds the queue closed and leaves, and the
 * reference its waker holds keeps the task's memory, and so the
 * executor's, until it has.  A task's drop may wake, abort or free other
 * tasks: each is cancelled already, so those are ignored.
 */
uint64_t rouse__task_cancel_all(struct rouse_executor *ex)
{
	uint64_t n = 0;
	unsigned int i;

	for (i = 0; i < TASK_SHARDS; i++) {
		struct rouse_link *l;

		rouse__mutex_lock(&ex->lists[i].lock);
		rouse__list_for_each(l, &ex->lists[i].head)
			task_state_cancel_for_shutdown(&rouse__container_of(
				l, struct rouse__task, all)->state);
		rouse__mutex_unlock(&ex->lists[i].lock);
	}
	for (i = 0; i < TASK_SHARDS; i++) {
		struct rouse_link *l;

		for (;;) {
			rouse__mutex_lock(&ex->lists[i].lock);
			l = rouse__list_first(&ex->lists[i].head);
			rouse__mutex_unlock(&ex->lists[i].lock);
			if (l == NULL)
				break;
			task_cancel(rouse__container_of(l, struct rouse__task,
							all));
			n++;
		}
	}
	__atomic_fetch_add(&ex->shutdown_aborted, n, __ATOMIC_RELAXED);
	return n;
}
