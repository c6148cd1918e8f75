// SPDX-License-Identifier: MIT
/*
 * executor/sync/atomic_waker.c - one waker slot that a future registers
 * into and any thread wakes, without a lock.
 *
 * The state word has two bits:
 *
 *   REGISTERING  a register owns the slot and is writing it;
 *   WAKING       a wake (or take) claimed the slot, or arrived while a
 *                register owned it.
 *
 * 0: nobody touches the slot.  register moves 0 -> REGISTERING with a
 * compare-and-swap (acquire: it sees the slot as the last owner left it),
 * writes the slot, and tries REGISTERING -> 0 (release: the next owner
 * sees what it wrote).  A take ORs in WAKING: if the word was 0, the take
 * owns the slot, moves the waker out, and clears WAKING (acquire and
 * release: a take that found the bit set already trusts this one).  If a
 * register owned the slot, the take leaves; the register's final CAS then
 * fails on the WAKING bit, and the register itself takes the waker it has
 * just stored, resets the word to 0, and wakes it, so the wake that raced
 * it is not lost.  A register that finds WAKING set (a take is moving the
 * old waker out) cannot use the slot; it wakes its own waker by reference
 * instead, so its task polls again and registers anew.
 *
 * A register is the only one that clears REGISTERING, and a take that
 * found 0 the only one that clears its WAKING, so each bit has one owner.
 * Registers must not race each other (the slot has one owner task);
 * takes and wakes may come from any number of threads.
 */
#include "sync-internal.h"

enum {
	AW_REGISTERING = 1,
	AW_WAKING = 2,
};

ROUSE__PUBLIC int rouse_atomic_waker_init(struct rouse_atomic_waker *aw)
{
	if (aw == NULL)
		return -EINVAL;
	aw->waker.data = NULL;
	aw->waker.vtable = NULL;
	__atomic_store_n(&aw->state, 0, __ATOMIC_RELEASE);
	return 0;
}

ROUSE__PUBLIC int rouse_atomic_waker_register(struct rouse_atomic_waker *aw,
					      const struct rouse_waker *w)
{
	struct rouse_waker old = { NULL, NULL }, woke;
	unsigned int cur = 0;

	if (aw == NULL || w == NULL || w->vtable == NULL)
		return -EINVAL;
	if (!__atomic_compare_exchange_n(&aw->state, &cur, AW_REGISTERING,
					 false, __ATOMIC_ACQUIRE,
					 __ATOMIC_ACQUIRE)) {
		/*
		 * WAKING: a take is moving the old waker out and will wake
		 * it, but that may not be ours: wake ours now instead.
		 * REGISTERING: a racing register, which is a misuse; the
		 * same wake keeps the task from hanging.
		 */
		rouse_waker_wake_by_ref(w);
		return 0;
	}
	/* The slot is ours: skip the clone when it wakes the same task. */
	if (!rouse_waker_will_wake(&aw->waker, w)) {
		old = aw->waker;
		rouse_waker_clone(w, &aw->waker);
	}
	cur = AW_REGISTERING;
	if (!__atomic_compare_exchange_n(&aw->state, &cur, 0, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		/* A wake came meanwhile (cur is REGISTERING | WAKING). */
		woke = aw->waker;
		aw->waker.vtable = NULL;
		__atomic_store_n(&aw->state, 0, __ATOMIC_RELEASE);
		rouse_waker_drop(&old);
		rouse_waker_wake(&woke);
		return 0;
	}
	rouse_waker_drop(&old);
	return 0;
}

ROUSE__PUBLIC int rouse_atomic_waker_take(struct rouse_atomic_waker *aw,
					  struct rouse_waker *out)
{
	unsigned int prev;

	if (aw == NULL || out == NULL)
		return -EINVAL;
	out->data = NULL;
	out->vtable = NULL;
	prev = __atomic_fetch_or(&aw->state, AW_WAKING, __ATOMIC_ACQ_REL);
	if (prev != 0)
		return 0;	/* a register or another take has it */
	*out = aw->waker;
	aw->waker.vtable = NULL;
	/*
	 * Acquire too: a take that came meanwhile found WAKING and left it
	 * to us, so what it published before must be seen by our wake.
	 */
	__atomic_fetch_and(&aw->state, ~(unsigned int)AW_WAKING,
			   __ATOMIC_ACQ_REL);
	return out->vtable != NULL;
}

ROUSE__PUBLIC int rouse_atomic_waker_wake(struct rouse_atomic_waker *aw)
{
	struct rouse_waker w;
	int n;

	if (aw == NULL)
		return -EINVAL;
	n = rouse_atomic_waker_take(aw, &w);
	if (n > 0)
		rouse_waker_wake(&w);
	return n;
}

ROUSE__PUBLIC int rouse_atomic_waker_destroy(struct rouse_atomic_waker *aw)
{
	if (aw == NULL)
		return -EINVAL;
	rouse_waker_drop(&aw->waker);
	return 0;
}
