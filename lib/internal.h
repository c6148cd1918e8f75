/* SPDX-License-Identifier: MIT */
/*
 * lib/internal.h - support shared by librouse-executor and librouse-reactor.
 *
 * The files under lib/ are compiled into each library separately.  So that
 * both static archives can be linked into one program, every non-static
 * internal name is spelled through ROUSE__NS(), which prefixes it with the
 * library it is built into (ROUSE__LIB, set by Makefile.am).
 *
 * It declares what alloc.c, fork.c and log.c define; its inline functions
 * and macros call only those three and the C library.  The source files
 * of both libraries include it.
 */
#ifndef ROUSE_LIB_INTERNAL_H
#define ROUSE_LIB_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <rouse/alloc.h>
#include <rouse/log.h>

#ifndef ROUSE__LIB
#error "ROUSE__LIB must name the library being built"
#endif

#define ROUSE__CAT_(a, b) a##b
#define ROUSE__CAT(a, b) ROUSE__CAT_(a, b)
#define ROUSE__NS(name) ROUSE__CAT(ROUSE__CAT(rouse__, ROUSE__LIB), _##name)

/* Marks the definition of an exported function. */
#define ROUSE__PUBLIC __attribute__((visibility("default")))

/*
 * Thread-locals on hot paths: the initial-exec model makes each access one
 * load relative to the thread pointer instead of a __tls_get_addr() call.
 * The few bytes come from the static TLS surplus glibc keeps for this.
 */
#define ROUSE__TLS __thread __attribute__((tls_model("initial-exec")))

#define ROUSE__LIKELY(x) __builtin_expect(!!(x), 1)
#define ROUSE__UNLIKELY(x) __builtin_expect(!!(x), 0)

#define rouse__container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* ---- fork ---------------------------------------------------------- */

#define rouse__fork_gen ROUSE__NS(fork_gen)

/* Moves on in every child of fork(); see lib/fork.c. */
extern unsigned int rouse__fork_gen;

/* The current generation, for an object being made to record. */
static inline unsigned int rouse__fork_now(void)
{
	return __atomic_load_n(&rouse__fork_gen, __ATOMIC_RELAXED);
}

/* Whether an object that recorded gen was made before a fork(). */
static inline int rouse__inherited(unsigned int gen)
{
	return ROUSE__UNLIKELY(gen != rouse__fork_now());
}

/* ---- logging ------------------------------------------------------- */

#define rouse__log_level ROUSE__NS(log_level)
#define rouse__log_write ROUSE__NS(log_write)
#define rouse__log_set_level ROUSE__NS(log_set_level)
#define rouse__log_set_sink ROUSE__NS(log_set_sink)

/* The current level; read relaxed on every log site, so "off" is a branch. */
extern atomic_int rouse__log_level;

__attribute__((format(printf, 3, 4)))
void rouse__log_write(enum rouse_log_level level, const char *module,
		      const char *fmt, ...);
int rouse__log_set_level(enum rouse_log_level level);
int rouse__log_set_sink(rouse_log_fn *sink, void *data);

#define rouse__log_enabled(level) \
	ROUSE__UNLIKELY(atomic_load_explicit(&rouse__log_level, \
					     memory_order_relaxed) >= (level))

/* Each source file defines ROUSE__LOG_MODULE before using these. */
#define rouse__log(level, ...)                                             \
	do {                                                               \
		if (rouse__log_enabled(level))                             \
			rouse__log_write(level, ROUSE__LOG_MODULE,         \
					 __VA_ARGS__);                     \
	} while (0)
#define rouse__error(...) rouse__log(ROUSE_LOG_ERROR, __VA_ARGS__)
#define rouse__warn(...) rouse__log(ROUSE_LOG_WARN, __VA_ARGS__)
#define rouse__info(...) rouse__log(ROUSE_LOG_INFO, __VA_ARGS__)
#define rouse__debug(...) rouse__log(ROUSE_LOG_DEBUG, __VA_ARGS__)
#define rouse__trace(...) rouse__log(ROUSE_LOG_TRACE, __VA_ARGS__)

/* ---- memory (lib/alloc.c) ------------------------------------------ */

#define rouse__alloc_hook ROUSE__NS(alloc_hook)
#define rouse__calloc ROUSE__NS(calloc)
#define rouse__realloc ROUSE__NS(realloc)
#define rouse__aligned_alloc ROUSE__NS(aligned_alloc)
#define rouse__aligned_free ROUSE__NS(aligned_free)

/*
 * The library's allocator: NULL for the C library's, else a copy of what
 * the program set, which is never freed.  Loaded with acquire, so that the
 * copy's fields are seen as they were stored.
 */
extern const struct rouse_allocator *rouse__alloc_hook;

/*
 * Every allocation of the library goes through these.  With no hook set,
 * malloc and free cost one load and a predicted branch more than the C
 * library's; a failure is NULL, as there.
 */
static inline void *rouse__malloc(size_t size)
{
	const struct rouse_allocator *a =
		__atomic_load_n(&rouse__alloc_hook, __ATOMIC_ACQUIRE);

	if (ROUSE__UNLIKELY(a != NULL))
		return a->malloc(a->data, size != 0 ? size : 1);
	return malloc(size);
}

static inline void rouse__free(void *p)
{
	const struct rouse_allocator *a;

	if (p == NULL)
		return;
	a = __atomic_load_n(&rouse__alloc_hook, __ATOMIC_ACQUIRE);
	if (ROUSE__UNLIKELY(a != NULL))
		a->free(a->data, p);
	else
		free(p);
}

/* n elements of size bytes, zeroed; NULL also when n * size overflows. */
void *rouse__calloc(size_t n, size_t size);
/* realloc(3); NULL p allocates, and on failure p stays allocated. */
void *rouse__realloc(void *p, size_t size);
/*
 * size bytes aligned to align (a power of two, at least a pointer's
 * size; NULL otherwise), freed only with
 * rouse__aligned_free().  Built on rouse__malloc() whatever the hook,
 * so that a block outlives a change of allocator like any other.
 */
void *rouse__aligned_alloc(size_t align, size_t size);
void rouse__aligned_free(void *p);

/* ---- time ---------------------------------------------------------- */

static inline int64_t rouse__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline struct timespec rouse__ns_to_timespec(int64_t ns)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ns / 1000000000);
	ts.tv_nsec = (long)(ns % 1000000000);
	return ts;
}

#endif /* ROUSE_LIB_INTERNAL_H */
