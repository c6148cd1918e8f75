/* SPDX-License-Identifier: MIT */
/*
 * executor/task_state.h - a task's state word and every change it may
 * make, each as one named function.  Included by task.c only: no other
 * file reads or writes a task's state.  Calls nothing.
 *
 * The word holds flags in its low bits and a reference count from bit 12
 * up, so that a flag change and the count are read together.
 *
 * SCHEDULED  The task is in a run queue, or about to be put in one by
 *            whoever set the bit.  A wake that finds it set does nothing.
 * TAKEN      A worker has taken the task: it is inside its poll, or it
 *            woke itself during the poll and went back to a queue still
 *            taken (a yield), so that its next run needs no compare-and-
 *            swap to take it again.  Either way the body belongs to the
 *            executor's threads: a wake only sets SCHEDULED, and an abort
 *            only sets CANCELLED, leaving the rest to the worker.
 * HAS_OUTPUT The poll returned READY; the future has been dropped and its
 *            output fields are in the body for the join handle.
 * CANCELLED  An abort or the executor's shutdown asked for the task to
 *            end; whoever owns it next drops the body instead of polling.
 * FINISHED   The body has been dropped, once, after READY or a cancel.
 * HANDLE     A join handle exists.
 * JOIN_WAKER Who owns t->join_waker (see task.c): while clear and not
 *            FINISHED, the join handle, which may write it; while set,
 *            the task's side, which wakes it at FINISHED and clears the
 *            bit to hand it back.
 *
 * The life of a task (F = FINISHED):
 *
 *   spawn --> SCHEDULED --take--> TAKEN --poll-+-- READY -----> HAS_OUTPUT|F
 *                ^                  ^          |
 *                |                  +- yield --+ (queued, still TAKEN)
 *                +--- requeue ------+- woken --+ (SCHEDULED set meanwhile)
 *                |                             |
 *     idle (no flag) <----------- release -----+ (PENDING, nobody woke it)
 *       |
 *       +--- wake --> SCHEDULED
 *
 *   CANCELLED may be set in any unfinished state; take, release and the
 *   shutdown of the executor then drop the body:  ... --> CANCELLED|F.
 *
 * References: one for the executor while the task is unfinished (it is
 * in the executor's task list), one for the join handle, one per waker.
 * Queue entries hold none: a queued task is unfinished.
 */
#ifndef ROUSE_EXECUTOR_TASK_STATE_H
#define ROUSE_EXECUTOR_TASK_STATE_H

#include <stdbool.h>
#include <stdint.h>

#define TASK_SCHEDULED	 0x001u
#define TASK_TAKEN	 0x002u
#define TASK_HAS_OUTPUT	 0x004u
#define TASK_CANCELLED	 0x008u
#define TASK_FINISHED	 0x010u
#define TASK_HANDLE	 0x020u
#define TASK_JOIN_WAKER	 0x040u
#define TASK_REF_SHIFT	 12
#define TASK_REF	 ((uint64_t)1 << TASK_REF_SHIFT)

/* The word of a new task: queued, with the executor's reference. */
static inline uint64_t task_state_initial(bool handle)
{
	uint64_t s = TASK_SCHEDULED | TASK_REF;

	return handle ? s + (TASK_HANDLE | TASK_REF) : s;
}

static inline uint64_t task_state_load(const uint64_t *w)
{
	return __atomic_load_n(w, __ATOMIC_ACQUIRE);
}

static inline bool task_state_cas(uint64_t *w, uint64_t *old, uint64_t new)
{
	return __atomic_compare_exchange_n(w, old, new, true,
					   __ATOMIC_ACQ_REL,
					   __ATOMIC_ACQUIRE);
}

/* ---- references -------------------------------------------------------- */

static inline void task_state_ref(uint64_t *w)
{
	__atomic_fetch_add(w, TASK_REF, __ATOMIC_RELAXED);
}

/* True when this was the last reference: the memory may go. */
static inline bool task_state_unref(uint64_t *w)
{
	return (__atomic_fetch_sub(w, TASK_REF, __ATOMIC_ACQ_REL) >>
		TASK_REF_SHIFT) == 1;
}

/* ---- running ----------------------------------------------------------- */

enum task_take { TAKE_POLL, TAKE_CANCEL };

/*
 * A worker has the task from a queue.  Take it to poll (a task queued
 * still TAKEN is the worker's already), unless it was cancelled.
 */
static inline enum task_take task_state_take(uint64_t *w)
{
	uint64_t s = task_state_load(w);

	while (!(s & (TASK_TAKEN | TASK_CANCELLED)) &&
	       !task_state_cas(w, &s, (s & ~TASK_SCHEDULED) | TASK_TAKEN))
		;
	return s & TASK_CANCELLED ? TAKE_CANCEL : TAKE_POLL;
}

enum task_release { RELEASE_IDLE, RELEASE_REQUEUE, RELEASE_CANCEL };

/*
 * The poll returned PENDING without the task waking itself: let go of
 * it.  A wake or an abort that came during the poll left its flag for us
 * to act on.
 */
static inline enum task_release task_state_release(uint64_t *w)
{
	uint64_t s = __atomic_fetch_and(w, ~(uint64_t)TASK_TAKEN,
					__ATOMIC_ACQ_REL);

	if (s & TASK_CANCELLED)
		return RELEASE_CANCEL;
	return s & TASK_SCHEDULED ? RELEASE_REQUEUE : RELEASE_IDLE;
}

/*
 * The poll returned READY and the body was dropped.  Returns the new
 * word, for the join handshake.
 */
static inline uint64_t task_state_complete(uint64_t *w)
{
	uint64_t s = task_state_load(w), n;

	do {
		n = (s & ~(uint64_t)(TASK_TAKEN | TASK_SCHEDULED)) |
		    TASK_HAS_OUTPUT | TASK_FINISHED;
	} while (!task_state_cas(w, &s, n));
	return n;
}

/* A cancelled task's body was dropped.  Returns the new word. */
static inline uint64_t task_state_finish_cancelled(uint64_t *w)
{
	return __atomic_fetch_or(w, TASK_FINISHED, __ATOMIC_ACQ_REL) |
	       TASK_FINISHED;
}

/* ---- from other threads ------------------------------------------------ */

/*
 * A wake.  True when the caller must queue the task: it was idle, and
 * the caller's SCHEDULED bit now says it is on its way to a queue.  A
 * taken task is queued again by its worker; a finished or cancelled one
 * ignores wakes.
 */
static inline bool task_state_wake(uint64_t *w)
{
	uint64_t s = __atomic_load_n(w, __ATOMIC_RELAXED);

	do {
		if (s & (TASK_SCHEDULED | TASK_HAS_OUTPUT | TASK_CANCELLED))
			return false;
	} while (!task_state_cas(w, &s, s | TASK_SCHEDULED));
	return !(s & TASK_TAKEN);
}

enum task_cancel { CANCEL_NOTHING, CANCEL_LEFT_TO_OWNER, CANCEL_QUEUE };

/*
 * An abort.  An idle task is marked SCHEDULED too and the caller queues
 * it, so that its own executor drops it; a queued or taken one is dropped
 * by whoever has it next.
 */
static inline enum task_cancel task_state_cancel(uint64_t *w)
{
	uint64_t s = task_state_load(w), n;

	do {
		if (s & (TASK_HAS_OUTPUT | TASK_CANCELLED))
			return CANCEL_NOTHING;
		n = s | TASK_CANCELLED;
		if (!(s & (TASK_SCHEDULED | TASK_TAKEN)))
			n |= TASK_SCHEDULED;
	} while (!task_state_cas(w, &s, n));
	return s & (TASK_SCHEDULED | TASK_TAKEN) ? CANCEL_LEFT_TO_OWNER
						 : CANCEL_QUEUE;
}

/*
 * Shutdown, the executor's threads gone: cancel whatever the task was
 * doing.  The caller then owns the body (nobody polls any more).
 */
static inline void task_state_cancel_for_shutdown(uint64_t *w)
{
	__atomic_fetch_or(w, TASK_CANCELLED | TASK_SCHEDULED,
			  __ATOMIC_ACQ_REL);
	__atomic_fetch_and(w, ~(uint64_t)TASK_TAKEN, __ATOMIC_ACQ_REL);
}

/* ---- the join waker handshake ----------------------------------------- */

/*
 * The handle takes the field back from the task's side (to put another
 * waker in it).  False when the task finished first: the field stays.
 */
static inline bool task_state_join_waker_take_back(uint64_t *w, uint64_t *s)
{
	do {
		if (*s & TASK_FINISHED)
			return false;
	} while (!task_state_cas(w, s, *s & ~(uint64_t)TASK_JOIN_WAKER));
	return true;
}

/*
 * The handle has written the field: give it to the task's side (release,
 * so the side that sees the bit sees the waker).  False when the task
 * finished first.
 */
static inline bool task_state_join_waker_give(uint64_t *w, uint64_t *s)
{
	do {
		if (*s & TASK_FINISHED)
			return false;
	} while (!task_state_cas(w, s, *s | TASK_JOIN_WAKER));
	return true;
}

/* The task's side, having woken it, hands the field back.  Old word. */
static inline uint64_t task_state_join_waker_return(uint64_t *w)
{
	return __atomic_fetch_and(w, ~(uint64_t)TASK_JOIN_WAKER,
				  __ATOMIC_ACQ_REL);
}

/*
 * The handle goes.  On an unfinished task the waker field comes back to
 * the handle with the bit (it drops what it left there).  Old word.
 */
static inline uint64_t task_state_drop_handle(uint64_t *w)
{
	uint64_t s = task_state_load(w), n;

	do {
		n = s & ~(uint64_t)TASK_HANDLE;
		if (!(s & TASK_FINISHED))
			n &= ~(uint64_t)TASK_JOIN_WAKER;
	} while (!task_state_cas(w, &s, n));
	return s;
}

#endif /* ROUSE_EXECUTOR_TASK_STATE_H */
