/* SPDX-License-Identifier: MIT */
/*
 * rouse/future.h - the core ABI of rouse: poll results, wakers, contexts,
 * futures and parkers; and the link of the libraries' lists, which is
 * private.
 *
 * This header needs no library.  Both librouse-executor and librouse-reactor
 * speak it, and neither links the other: a future written against this file
 * runs on any executor, and a waker handed out by one library can be woken
 * by the other.
 *
 * Ownership, in one place (rouse_waker(3) has the full story):
 *   - a struct rouse_waker value is one reference to whatever its data
 *     points at; it is released by exactly one of wake() or drop();
 *   - clone() makes a second, independent reference;
 *   - wake_by_ref() wakes and keeps the reference;
 *   - the waker reached through a rouse_context is borrowed for the
 *     duration of one poll: clone it to keep it.
 */
#ifndef ROUSE_FUTURE_H
#define ROUSE_FUTURE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a poll answers. */
enum rouse_poll {
	ROUSE_PENDING = 0,	/* not done; a wake of cx's waker will follow */
	ROUSE_READY = 1,	/* done; the output is in the future's struct */
};

struct rouse_waker;

/*
 * The four operations on a waker's data.  Each receives the data pointer of
 * the waker it acts on.  All four must be safe to call from any thread.
 */
struct rouse_waker_vtable {
	/* Return a new waker for the same task; takes one more reference. */
	struct rouse_waker (*clone)(void *data);
	/* Wake the task and release this reference (consumes the waker). */
	void (*wake)(void *data);
	/* Wake the task; the reference stays with the caller. */
	void (*wake_by_ref)(void *data);
	/* Release this reference without waking. */
	void (*drop)(void *data);
};

/* One reference to something that can be asked to poll a task again. */
struct rouse_waker {
	void *data;
	const struct rouse_waker_vtable *vtable;
};

/* What a poll gets besides its future: for now, the waker to arrange. */
struct rouse_context {
	const struct rouse_waker *waker;	/* borrowed for this poll */
};

struct rouse_future;

/* The operations of one kind of future; one static const table per kind. */
struct rouse_future_vtable {
	/*
	 * Make progress.  Return ROUSE_READY once the output is stored in the
	 * future, or ROUSE_PENDING after arranging for cx->waker (or a clone
	 * of it) to be woken when progress is possible.
	 */
	enum rouse_poll (*poll)(struct rouse_future *self,
				struct rouse_context *cx);
	/*
	 * Cancel and release: deregister every waker, free what the future
	 * holds.  Called once, whether or not the future completed; may be
	 * NULL when there is nothing to release.
	 */
	void (*drop)(struct rouse_future *self);
};

/* Embed this as the first member of a future's own struct. */
struct rouse_future {
	const struct rouse_future_vtable *vtable;
};

/*
 * A parker blocks one thread until it is unparked.  An executor parks
 * through it when its futures are pending; whoever owns the thread's events
 * (an eventfd, an epoll loop) provides it.  The executor's eventfd parker
 * and the reactor's epoll parker both have this shape, so neither library
 * needs the other.
 */
struct rouse_parker_vtable {
	/*
	 * Block the calling thread (the parker's owner) until unparked, or
	 * until timeout_ns nanoseconds have passed (negative: no limit; 0:
	 * do not block; a parker may round the timeout up to the
	 * granularity of what it waits in, never down).  Returns 0 when an unpark was consumed, -ETIMEDOUT when the
	 * time ran out, another -errno on failure.  May return 0 spuriously.
	 */
	int (*park)(void *data, int64_t timeout_ns);
	/* Make the next or the current park return.  Any thread. */
	void (*unpark)(void *data);
	/*
	 * Store in *out a new waker whose wake unparks this parker; the
	 * caller owns it.  The waker stays safe to wake and to drop after
	 * the parker's owner is gone.  Returns 0 or -errno.
	 */
	int (*waker)(void *data, struct rouse_waker *out);
};

struct rouse_parker {
	void *data;
	const struct rouse_parker_vtable *vtable;
};

/*
 * Private: a link of the intrusive lists inside the libraries.  It is
 * declared here only because some caller-owned structs that may wait in
 * such a list embed one (struct rouse_sync_waiter); its fields are the
 * libraries' alone.
 */
struct rouse_link {
	struct rouse_link *next;
	struct rouse_link *prev;
};

/* ---- inline helpers ------------------------------------------------ */

static inline bool rouse__waker_valid(const struct rouse_waker *w)
{
	return w != NULL && w->vtable != NULL;
}

/* Wake and release *w; *w must not be used afterwards. */
static inline int rouse_waker_wake(struct rouse_waker *w)
{
	if (!rouse__waker_valid(w))
		return -EINVAL;
	w->vtable->wake(w->data);
	w->vtable = NULL;
	return 0;
}

/* Wake, keeping the reference. */
static inline int rouse_waker_wake_by_ref(const struct rouse_waker *w)
{
	if (!rouse__waker_valid(w))
		return -EINVAL;
	w->vtable->wake_by_ref(w->data);
	return 0;
}

/* Store a new reference to the same task in *out. */
static inline int rouse_waker_clone(const struct rouse_waker *w,
				    struct rouse_waker *out)
{
	if (!rouse__waker_valid(w) || out == NULL)
		return -EINVAL;
	*out = w->vtable->clone(w->data);
	return 0;
}

/* Release *w without waking; *w must not be used afterwards. */
static inline int rouse_waker_drop(struct rouse_waker *w)
{
	if (!rouse__waker_valid(w))
		return -EINVAL;
	w->vtable->drop(w->data);
	w->vtable = NULL;
	return 0;
}

/*
 * True when a and b would wake the same task: same data and same vtable.
 * A false answer proves nothing; use it to skip replacing a stored waker.
 */
static inline bool rouse_waker_will_wake(const struct rouse_waker *a,
					 const struct rouse_waker *b)
{
	if (!rouse__waker_valid(a) || !rouse__waker_valid(b))
		return false;
	return a->data == b->data && a->vtable == b->vtable;
}

static inline struct rouse_waker rouse_waker_noop(void);

static inline struct rouse_waker rouse__noop_clone(void *data)
{
	(void)data;
	return rouse_waker_noop();
}

static inline void rouse__noop_op(void *data)
{
	(void)data;
}

/*
 * A waker that does nothing, for tests and for futures polled outside any
 * executor.  It holds no resource: dropping it is optional, and its clones
 * are no-op wakers too.
 */
static inline struct rouse_waker rouse_waker_noop(void)
{
	static const struct rouse_waker_vtable vt = {
		rouse__noop_clone, rouse__noop_op, rouse__noop_op,
		rouse__noop_op,
	};
	struct rouse_waker w;

	w.data = NULL;
	w.vtable = &vt;
	return w;
}

/*
 * Poll f once.  Returns ROUSE_READY or ROUSE_PENDING, or -EINVAL when f,
 * its vtable, its poll or cx is missing.
 */
static inline int rouse_future_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	if (f == NULL || f->vtable == NULL || f->vtable->poll == NULL ||
	    cx == NULL || !rouse__waker_valid(cx->waker))
		return -EINVAL;
	return (int)f->vtable->poll(f, cx);
}

/*
 * Cancel and release f (its vtable's drop, when it has one).  f's vtable
 * is cleared, so a second drop returns -EINVAL instead of running twice.
 */
static inline int rouse_future_drop(struct rouse_future *f)
{
	const struct rouse_future_vtable *vt;

	if (f == NULL || f->vtable == NULL)
		return -EINVAL;
	vt = f->vtable;
	if (vt->drop != NULL)
		vt->drop(f);
	f->vtable = NULL;
	return 0;
}

static inline bool rouse__parker_valid(const struct rouse_parker *p)
{
	return p != NULL && p->vtable != NULL && p->vtable->park != NULL &&
	       p->vtable->unpark != NULL && p->vtable->waker != NULL;
}

/* Park the calling thread; see struct rouse_parker_vtable.park. */
static inline int rouse_parker_park(const struct rouse_parker *p,
				    int64_t timeout_ns)
{
	if (!rouse__parker_valid(p))
		return -EINVAL;
	return p->vtable->park(p->data, timeout_ns);
}

/* Unpark p's thread, now or at its next park. */
static inline int rouse_parker_unpark(const struct rouse_parker *p)
{
	if (!rouse__parker_valid(p))
		return -EINVAL;
	p->vtable->unpark(p->data);
	return 0;
}

/* Store in *out a new waker that unparks p; the caller owns it. */
static inline int rouse_parker_waker(const struct rouse_parker *p,
				     struct rouse_waker *out)
{
	if (!rouse__parker_valid(p) || out == NULL)
		return -EINVAL;
	return p->vtable->waker(p->data, out);
}

#ifdef __cplusplus
}
#endif

#endif /* ROUSE_FUTURE_H */
