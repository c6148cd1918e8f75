// SPDX-License-Identifier: MIT
/*
 * lib/fork.c - telling an object inherited through fork(2) from one made
 * in this process.
 *
 * A counter moves on in every child of fork(), from a pthread_atfork()
 * handler registered when the library is loaded.  Executors and reactors
 * record it when they are made; one that finds it moved was made by the
 * parent, and its threads, locks and kernel objects are not the child's
 * to use (see rouse_reactor_fork(3)).  Reading the counter is one plain
 * load, cheap enough for every poll; a getpid() would be a system call.
 *
 * It calls pthread_atfork() and nothing else; the files of both libraries
 * read the counter through internal.h (rouse__inherited()).
 */
#include <pthread.h>

#include "internal.h"

unsigned int rouse__fork_gen;

static void fork_child(void)
{
	/* The child has one thread: nothing races this. */
	__atomic_store_n(&rouse__fork_gen, rouse__fork_gen + 1,
			 __ATOMIC_RELAXED);
}

__attribute__((constructor))
static void fork_watch(void)
{
	/* Fails only for want of memory, at load: then forks go unseen. */
	pthread_atfork(NULL, NULL, fork_child);
}
