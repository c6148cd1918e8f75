// SPDX-License-Identifier: MIT
/*
 * lib/alloc.c - the allocator hook: rouse_executor_set_allocator() and
 * rouse_reactor_set_allocator(), and the allocation helpers that are not
 * inline in internal.h.  It calls the C library's allocator, pthreads and
 * lib/list.h; nothing of either library.  Every file that allocates calls
 * it, through internal.h.
 *
 * This file is built into each library, so each has a hook of its own; the
 * public setter's name is made from the library's (ROUSE__LIB).
 *
 * Setting a hook publishes a copy of the caller's struct with one atomic
 * pointer store.  An allocation that loaded the old pointer may still be
 * using the old copy, and nothing tells when it is done, so copies are
 * never freed: they stay on a list, and setting an allocator equal to one
 * on the list reuses it.  A program that switches between a few allocators
 * therefore keeps a few copies, however often it switches.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "list.h"

#define ROUSE__SET_ALLOCATOR \
	ROUSE__CAT(ROUSE__CAT(rouse_, ROUSE__LIB), _set_allocator)

const struct rouse_allocator *rouse__alloc_hook;

struct alloc_copy {
	struct rouse_allocator a;
	struct rouse__slink link;	/* in copies */
};

static pthread_mutex_t copies_lock = PTHREAD_MUTEX_INITIALIZER;
/* Every copy ever published, oldest first; under copies_lock. */
static struct rouse__fifo copies = ROUSE__FIFO_INIT;

static bool alloc_equal(const struct rouse_allocator *x,
			const struct rouse_allocator *y)
{
	return x->malloc == y->malloc && x->realloc == y->realloc &&
	       x->free == y->free && x->data == y->data;
}

/* The copy equal to a, or NULL; with copies_lock held. */
static struct alloc_copy *copy_find(const struct rouse_allocator *a)
{
	struct rouse__slink *l;

	rouse__fifo_for_each(l, &copies) {
		struct alloc_copy *c =
			rouse__list_entry(l, struct alloc_copy, link);

		if (alloc_equal(&c->a, a))
			return c;
	}
	return NULL;
}

/* rouse_executor_set_allocator() or rouse_reactor_set_allocator(). */
ROUSE__PUBLIC int ROUSE__SET_ALLOCATOR(const struct rouse_allocator *a)
{
	struct alloc_copy *c;

	if (a == NULL) {
		__atomic_store_n(&rouse__alloc_hook, NULL, __ATOMIC_RELEASE);
		return 0;
	}
	if (a->malloc == NULL || a->realloc == NULL || a->free == NULL)
		return -EINVAL;
	pthread_mutex_lock(&copies_lock);
	c = copy_find(a);
	if (c == NULL) {
		/* The C library's: the copy must not depend on a hook. */
		c = malloc(sizeof(*c));
		if (c == NULL) {
			pthread_mutex_unlock(&copies_lock);
			return -ENOMEM;
		}
		c->a = *a;
		rouse__fifo_push(&copies, &c->link);
	}
	/* Release: an allocation that loads the pointer sees c->a whole. */
	__atomic_store_n(&rouse__alloc_hook, &c->a, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&copies_lock);
	return 0;
}

void *rouse__calloc(size_t n, size_t size)
{
	const struct rouse_allocator *a;
	void *p;

	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	a = __atomic_load_n(&rouse__alloc_hook, __ATOMIC_ACQUIRE);
	if (ROUSE__LIKELY(a == NULL))
		return calloc(n, size);
	p = a->malloc(a->data, n * size != 0 ? n * size : 1);
	if (p != NULL)
		memset(p, 0, n * size);
	return p;
}

void *rouse__realloc(void *p, size_t size)
{
	const struct rouse_allocator *a;

	if (p == NULL)
		return rouse__malloc(size);
	a = __atomic_load_n(&rouse__alloc_hook, __ATOMIC_ACQUIRE);
	if (ROUSE__LIKELY(a == NULL))
		return realloc(p, size);
	return a->realloc(a->data, p, size != 0 ? size : 1);
}

/*
 * Over-allocate by align bytes, and keep the pointer that malloc returned
 * in the word just below the aligned block.  An executor is the only user
 * (once per executor), so the slack costs nothing that matters; doing it
 * this way under every allocator, the C library's included, means a block
 * is freed right even if the hook changed in between.
 */
void *rouse__aligned_alloc(size_t align, size_t size)
{
	uintptr_t q;
	void *p;

	if (align < sizeof(void *) || (align & (align - 1)) != 0 ||
	    size > SIZE_MAX - align)
		return NULL;
	p = rouse__malloc(size + align);
	if (p == NULL)
		return NULL;
	/* At least one word above p, and at most align bytes. */
	q = ((uintptr_t)p + align) & ~(uintptr_t)(align - 1);
	((void **)q)[-1] = p;
	return (void *)q;
}

void rouse__aligned_free(void *p)
{
	if (p != NULL)
		rouse__free(((void **)p)[-1]);
}
