/* SPDX-License-Identifier: MIT */
/*
 * lib/wake.h - the wake word: the three-state machine that lets a wake skip
 * the system call when the thread it wakes is not blocked.  It calls
 * nothing but the C11 atomics; what to block in, and how to signal the
 * blocked thread, is its user's (the executor's eventfd parker,
 * executor/parker.c; the reactor's epoll turn, reactor/reactor.c).
 *
 * One thread owns the word: the one that blocks.  Any thread may notify.
 *
 *   EMPTY     the owner is running: polling, or deciding to block;
 *   PARKED    the owner is blocked, or about to be;
 *   NOTIFIED  a notification came that the owner has not taken yet.
 *
 *                     try_park
 *          +-------+ -----------> +--------+
 *          | EMPTY |              | PARKED |
 *          +-------+ <----------- +--------+
 *            ^   |    cancel_park,     |
 *            |   |    end_park         |
 *            |   | notify              | notify, which signals
 *            |   v                     v
 *            |  +--------------------------+
 *            +--|         NOTIFIED         |
 *               +--------------------------+
 *     take, peek, clear, end_park, or a try_park that fails
 *
 * notify exchanges NOTIFIED in, from any thread, and reports whether it
 * replaced PARKED: only then must the notifier make the system call that
 * ends the owner's block.  So a notification that lands while the owner
 * runs, from the owner itself or from any other thread, is one atomic
 * exchange and nothing else; the owner finds NOTIFIED when it next tries
 * to park, and polls again instead of blocking.  Only the owner leaves
 * NOTIFIED, and only the owner enters PARKED.
 *
 * No notification is lost to a race with the decision to block: try_park
 * moves EMPTY -> PARKED with a compare-and-swap and notify is an exchange,
 * both read-modify-writes of one word, so one of them comes first in its
 * modification order.  Either the CAS reads NOTIFIED (it fails, and the
 * owner does not block), or the exchange reads PARKED (and the notifier
 * signals).  There is no third interleaving.
 *
 * Memory ordering.  notify is acq_rel: its release half publishes what the
 * notifier did before it to the owner.  Every step by which the owner
 * takes NOTIFIED is an acquire read-modify-write, or an acquire load that
 * read NOTIFIED followed by one, so the owner's next poll sees that work.
 * A taking step is an exchange rather than a store: a second notify may
 * have swapped NOTIFIED in again since the owner read the first, and only
 * a read-modify-write, which reads the last value in the modification
 * order, synchronises with that second notifier's release as well.
 * try_park's CAS and end_park's exchange are acq_rel, cancel_park's CAS
 * is acquire on both outcomes, peek's load is acquire, and take's CAS is
 * acquire when it takes (relaxed when it fails: it then reads EMPTY or
 * PARKED, which only the owner writes): what the notifier published is
 * seen whichever step reads its NOTIFIED.
 *
 * Signals and tokens.  A notifier signals only on PARKED -> NOTIFIED, and
 * only the owner makes PARKED again, so each park episode gets at most one
 * signal.  A user whose signal leaves a token to read (the executor's
 * eventfd) reads it before its episode ends, even when it timed out
 * meanwhile (cancel_park failed); one whose signal leaves nothing (the
 * reactor's edge-triggered eventfd) just ends the episode with end_park.
 */
#ifndef ROUSE_LIB_WAKE_H
#define ROUSE_LIB_WAKE_H

#include <stdatomic.h>
#include <stdbool.h>

enum {
	ROUSE__WAKE_EMPTY = 0,
	ROUSE__WAKE_PARKED = 1,
	ROUSE__WAKE_NOTIFIED = 2,
};

struct rouse__wakeword {
	atomic_int state;	/* ROUSE__WAKE_* above */
};

/* A new word, EMPTY, not yet shared with another thread. */
static inline void rouse__wakeword_init(struct rouse__wakeword *ww)
{
	atomic_init(&ww->state, ROUSE__WAKE_EMPTY);
}

/*
 * EMPTY again, whatever it was: for a child of fork(), whose copy of the
 * word may say PARKED for a thread that the child does not have.
 */
static inline void rouse__wakeword_reset(struct rouse__wakeword *ww)
{
	atomic_store(&ww->state, ROUSE__WAKE_EMPTY);
}

/*
 * Any thread: notify the owner.  Returns true when the owner is parked:
 * the caller must then signal it (one system call, which must not be
 * skipped, or the owner sleeps on); false when the owner will see
 * NOTIFIED by itself.
 */
static inline bool rouse__wakeword_notify(struct rouse__wakeword *ww)
{
	/* Release: what the notifier did before is seen by the owner. */
	return atomic_exchange_explicit(&ww->state, ROUSE__WAKE_NOTIFIED,
					memory_order_acq_rel) ==
	       ROUSE__WAKE_PARKED;
}

/*
 * Owner, running: EMPTY -> PARKED, before it blocks.  Returns false when a
 * notification was pending instead; it has been taken (the word is EMPTY)
 * and the owner must not block but poll again.
 */
static inline bool rouse__wakeword_try_park(struct rouse__wakeword *ww)
{
	int expected = ROUSE__WAKE_EMPTY;

	/* The acquire on failure makes the notifier's work visible. */
	if (atomic_compare_exchange_strong_explicit(
		    &ww->state, &expected, ROUSE__WAKE_PARKED,
		    memory_order_acq_rel, memory_order_acquire))
		return true;
	/* An exchange, not a store: see "Memory ordering" above. */
	atomic_exchange_explicit(&ww->state, ROUSE__WAKE_EMPTY,
				 memory_order_acquire);
	return false;
}

/*
 * Owner: take a pending notification, if there is one, without parking.
 * Returns true when there was one (the word is EMPTY now), false when
 * there was none (the word is as it was: EMPTY, or PARKED for a parked
 * owner that woke for a reason of its own, such as a stray signal).
 *
 * take is one compare-and-swap, whatever the word holds: for an owner
 * that expects a notification (it was signalled), or that checks seldom.
 * peek is a load, and an exchange only when there is something to take:
 * for an owner that checks on every turn and mostly finds nothing, where
 * a read-modify-write would claim the cache line from the notifiers each
 * time for nothing.  They differ in cost only.
 */
static inline bool rouse__wakeword_take(struct rouse__wakeword *ww)
{
	int expected = ROUSE__WAKE_NOTIFIED;

	return atomic_compare_exchange_strong_explicit(
		&ww->state, &expected, ROUSE__WAKE_EMPTY,
		memory_order_acquire, memory_order_relaxed);
}

static inline bool rouse__wakeword_peek(struct rouse__wakeword *ww)
{
	if (atomic_load_explicit(&ww->state, memory_order_acquire) !=
	    ROUSE__WAKE_NOTIFIED)
		return false;
	/*
	 * Nobody but the owner leaves NOTIFIED, so this reads NOTIFIED
	 * still; an exchange, so that a later notify is acquired too.
	 */
	atomic_exchange_explicit(&ww->state, ROUSE__WAKE_EMPTY,
				 memory_order_acquire);
	return true;
}

/*
 * Owner, parked, its wait over with no signal seen (a timeout): PARKED ->
 * EMPTY.  Returns false when a notify came first: the word is NOTIFIED,
 * and the notifier has signalled or is about to.
 */
static inline bool rouse__wakeword_cancel_park(struct rouse__wakeword *ww)
{
	int expected = ROUSE__WAKE_PARKED;

	return atomic_compare_exchange_strong_explicit(
		&ww->state, &expected, ROUSE__WAKE_EMPTY,
		memory_order_acquire, memory_order_acquire);
}

/*
 * Owner, parked, back from blocking for whatever reason: EMPTY, and any
 * notification taken.  A notifier that saw PARKED has signalled, or is
 * about to; what its signal leaves behind is the caller's to deal with.
 */
static inline void rouse__wakeword_end_park(struct rouse__wakeword *ww)
{
	atomic_exchange_explicit(&ww->state, ROUSE__WAKE_EMPTY,
				 memory_order_acq_rel);
}

/*
 * Owner: EMPTY, and any notification taken.  For an owner that polls next
 * whatever the word says: the executor's parker once it has read the token
 * of a notify that beat its timeout, the reactor after a turn that woke
 * its parked thread's tasks (left NOTIFIED, the word would only make the
 * next park return at once, for a second, empty poll).
 */
static inline void rouse__wakeword_clear(struct rouse__wakeword *ww)
{
	atomic_exchange_explicit(&ww->state, ROUSE__WAKE_EMPTY,
				 memory_order_acquire);
}

#endif /* ROUSE_LIB_WAKE_H */
