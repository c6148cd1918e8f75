// SPDX-License-Identifier: MIT
/*
 * lib/mutex.c - the slow paths of lib/mutex.h: waiting for a held lock,
 * and waking a thread that waits.  Calls futex(2), nothing else.
 */
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mutex.h"

/* How many times a locker reads a held word before it sleeps. */
#define MUTEX_SPINS 100

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

void rouse__mutex_lock_slow(struct rouse__mutex *m)
{
	uint32_t w;
	int i;

	/*
	 * The holder of a short critical section is likely to be done in
	 * less time than a sleep would take: read (not write) the word a
	 * while, and take it if it comes free with nobody asleep.
	 */
	for (i = 0; i < MUTEX_SPINS; i++) {
		w = __atomic_load_n(&m->word, __ATOMIC_RELAXED);
		if (w == 0) {
			if (__atomic_compare_exchange_n(&m->word, &w, 1,
							false,
							__ATOMIC_ACQUIRE,
							__ATOMIC_RELAXED))
				return;
		} else if (w == 2) {
			break;
		}
		cpu_relax();
	}
	/* From here on the word says 2 while we may sleep. */
	while (__atomic_exchange_n(&m->word, 2, __ATOMIC_ACQUIRE) != 0)
		syscall(SYS_futex, &m->word, FUTEX_WAIT_PRIVATE, 2, NULL,
			NULL, 0);
}

void rouse__mutex_wake(struct rouse__mutex *m)
{
	syscall(SYS_futex, &m->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
