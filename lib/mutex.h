/* SPDX-License-Identifier: MIT */
/*
 * lib/mutex.h - a lock for short critical sections: one 32-bit word and
 * the futex(2) system call, with a fast path of one compare-and-swap to
 * take it and one exchange to give it back.  It is the executor's lock
 * of its task lists and of its injection queue (executor/sched.h): taken
 * twice in the life of every task, and twice more for a task spawned or
 * woken from another thread, where pthread_mutex_lock() and
 * pthread_mutex_unlock() spent some 55 instructions a pair on checks of
 * mutex types and robustness that these locks do not need.
 *
 * The word:
 *
 *   0  free;
 *   1  held, and nobody sleeps on it;
 *   2  held, and a thread may be asleep in futex(FUTEX_WAIT) on it.
 *
 * lock:    0 -> 1 by CAS; otherwise spin a little, then exchange 2 in
 *          and sleep while the word stays 2, until an exchange finds 0.
 * unlock:  exchange 0 in; if the old word was 2, wake one sleeper.
 *
 * A thread that sleeps re-enters with 2, never 1, so a waiter left behind
 * is always woken: the word says 2 until the last of them has the lock.
 *
 * While the process has a single thread (glibc's __libc_single_threaded,
 * which pthread_create() clears before the second thread exists), nobody
 * can contend: lock and unlock are a plain load and store, as glibc's own
 * mutexes do in that case.  A lock taken that way and given back after a
 * thread was created is given back atomically: the word is the same.
 * It is not recursive, checks no owner and keeps no fairness.  In a child
 * of fork() a lock held by a thread of the parent stays held for good, as
 * a pthread mutex would: its users refuse inherited objects first
 * (lib/fork.c).
 *
 * It calls the C11 atomics and, on the slow paths, futex(2) (lib/mutex.c).
 */
#ifndef ROUSE_LIB_MUTEX_H
#define ROUSE_LIB_MUTEX_H

#include <stdbool.h>
#include <stdint.h>

#ifdef HAVE_SYS_SINGLE_THREADED_H
#include <sys/single_threaded.h>
#define ROUSE__ONE_THREAD() (__libc_single_threaded != 0)
#else
#define ROUSE__ONE_THREAD() false
#endif

#include "internal.h"

struct rouse__mutex {
	uint32_t word;			/* atomic: 0, 1 or 2, see above */
};

#define ROUSE__MUTEX_INIT { 0 }

#define rouse__mutex_lock_slow ROUSE__NS(mutex_lock_slow)
#define rouse__mutex_wake ROUSE__NS(mutex_wake)

void rouse__mutex_lock_slow(struct rouse__mutex *m);
void rouse__mutex_wake(struct rouse__mutex *m);

static inline void rouse__mutex_init(struct rouse__mutex *m)
{
	m->word = 0;
}

static inline void rouse__mutex_lock(struct rouse__mutex *m)
{
	uint32_t free_word = 0;

	if (ROUSE__ONE_THREAD() &&
	    __atomic_load_n(&m->word, __ATOMIC_RELAXED) == 0) {
		__atomic_store_n(&m->word, 1, __ATOMIC_RELAXED);
		return;
	}
	if (ROUSE__UNLIKELY(!__atomic_compare_exchange_n(
		    &m->word, &free_word, 1, false, __ATOMIC_ACQUIRE,
		    __ATOMIC_RELAXED)))
		rouse__mutex_lock_slow(m);
}

static inline void rouse__mutex_unlock(struct rouse__mutex *m)
{
	if (ROUSE__ONE_THREAD()) {
		/* 1: nobody else exists to have marked it 2. */
		__atomic_store_n(&m->word, 0, __ATOMIC_RELAXED);
		return;
	}
	if (ROUSE__UNLIKELY(__atomic_exchange_n(&m->word, 0,
						__ATOMIC_RELEASE) == 2))
		rouse__mutex_wake(m);
}

#endif /* ROUSE_LIB_MUTEX_H */
