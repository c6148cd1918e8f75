/* SPDX-License-Identifier: MIT */
/*
 * rouse/async.h - async functions written as straight-line C: stackless
 * coroutine macros.  Header-only; no library needed.
 *
 * An async function is a future whose struct holds, besides its base, a
 * struct rouse_async (the resume point), its sub-futures and every value
 * that must outlive an await.  Its poll function reads top to bottom:
 *
 *	struct job *j = (struct job *)f;
 *
 *	ROUSE_ASYNC_BEGIN(&j->co, cx);
 *	rouse_sleep_init(&j->sleep, j->reactor, 1000000);
 *	ROUSE_AWAIT(&j->sleep.base);
 *	rouse_future_drop(&j->sleep.base);
 *	ROUSE_ASYNC_END();
 *
 * The macros are a switch on the resume point with one case label per
 * await (the await's __LINE__), so:
 *   - C locals do not survive an await: keep what is needed after one in
 *     the struct (loop counters included);
 *   - at most one await per source line (a second one on the same line is
 *     a duplicate case label, which the compiler rejects);
 *   - no await inside a switch statement of the function's own, and no
 *     break or continue that would leave the macros' switch.
 * rouse_async(3) has the whole story, rouse(7) a walk-through.
 */
#ifndef ROUSE_ASYNC_H
#define ROUSE_ASYNC_H

#include <rouse/future.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The resume point of an async function; 0 before its first poll. */
struct rouse_async {
	int line;	/* 0: start; an await's __LINE__; -1: finished */
};

/* Put co at the start of its function (a zeroed struct is there too). */
static inline int rouse_async_init(struct rouse_async *co)
{
	if (co == NULL)
		return -EINVAL;
	co->line = 0;
	return 0;
}

/* An await falls into its own case label on purpose. */
#if defined(__has_attribute)
#if __has_attribute(fallthrough)
#define ROUSE__ASYNC_FALLTHROUGH __attribute__((fallthrough))
#endif
#endif
#ifndef ROUSE__ASYNC_FALLTHROUGH
#define ROUSE__ASYNC_FALLTHROUGH do { } while (0)
#endif

/*
 * Open the body of the poll function: resume where the last poll stopped.
 * co is the function's struct rouse_async, cx the poll's context.
 */
#define ROUSE_ASYNC_BEGIN(co, cx)					\
	struct rouse_async *const rouse__async_co = (co);		\
	struct rouse_context *const rouse__async_cx = (cx);		\
	(void)rouse__async_cx;						\
	switch (rouse__async_co->line) {				\
	case 0:

/*
 * Poll the future sub (a struct rouse_future *, evaluated at each poll)
 * with the same context; while it answers pending, answer pending and
 * resume here at the next poll.  sub's output is then in its struct.
 */
#define ROUSE_AWAIT(sub)						\
	do {								\
		rouse__async_co->line = __LINE__;			\
		ROUSE__ASYNC_FALLTHROUGH;				\
	case __LINE__: {						\
		struct rouse_future *const rouse__async_f = (sub);	\
									\
		if (rouse__async_f->vtable->poll(rouse__async_f,	\
						 rouse__async_cx) ==	\
		    ROUSE_PENDING)					\
			return ROUSE_PENDING;				\
	}								\
	} while (0)

/* Let the task's other work run: wake by reference, pending once. */
#define ROUSE_ASYNC_YIELD()						\
	do {								\
		rouse__async_co->line = __LINE__;			\
		rouse__async_cx->waker->vtable->wake_by_ref(		\
			rouse__async_cx->waker->data);			\
		return ROUSE_PENDING;					\
	case __LINE__:;							\
	} while (0)

/* Finish now: answer ready at this poll and every later one. */
#define ROUSE_ASYNC_RETURN()						\
	do {								\
		rouse__async_co->line = -1;				\
		return ROUSE_READY;					\
	} while (0)

/* Close the body: reaching it finishes the function, as a return does. */
#define ROUSE_ASYNC_END()						\
	}								\
	rouse__async_co->line = -1;					\
	return ROUSE_READY

#ifdef __cplusplus
}
#endif

#endif /* ROUSE_ASYNC_H */
