/* SPDX-License-Identifier: MIT */
/*
 * rouse/alloc.h - the allocator hook of both rouse libraries.
 *
 * By default the libraries take memory from the C library.  A program, or a
 * test that wants to see what happens when memory runs out, can hand each
 * library an allocator of its own; rouse_executor_set_allocator(3) has the
 * rules.
 */
#ifndef ROUSE_ALLOC_H
#define ROUSE_ALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Where a library gets its memory.  The three functions behave as malloc(3),
 * realloc(3) and free(3) and receive data first; they may be called from any
 * thread.  The library never asks malloc or realloc for 0 bytes, never calls
 * realloc with a NULL pointer, and never calls free with one.  Alignment
 * needed beyond malloc's is arranged by the library itself.
 */
struct rouse_allocator {
	void *(*malloc)(void *data, size_t size);
	void *(*realloc)(void *data, void *ptr, size_t size);
	void (*free)(void *data, void *ptr);
	void *data;
};

/*
 * Make *a (copied) the allocator of librouse-executor, or restore the C
 * library's with a NULL a.  Returns 0, -EINVAL when a function is missing,
 * or -ENOMEM.
 */
int rouse_executor_set_allocator(const struct rouse_allocator *a);

/* The same for librouse-reactor, which keeps an allocator of its own. */
int rouse_reactor_set_allocator(const struct rouse_allocator *a);

#ifdef __cplusplus
}
#endif

#endif /* ROUSE_ALLOC_H */
