/* SPDX-License-Identifier: MIT */
/*
 * reactor/reactor-internal.h - shared between the reactor's sources: the
 * reactor, its sources and its wake-up handle, and the calls between
 * reactor.c, io.c, sleep.c and clock.c.  It uses lib/ (the list, the wake
 * word) and the timer set (timer.h); its inline functions call only
 * pthreads and wakers.  The service layer includes it too, for lib/ and a
 * reactor's fork generation.
 */
#ifndef ROUSE_REACTOR_INTERNAL_H
#define ROUSE_REACTOR_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <stdbool.h>

#include <rouse/reactor.h>

#include "../lib/internal.h"
#include "../lib/list.h"
#include "../lib/wake.h"
#include "timer.h"

/*
 * The reactor's wake-up: an eventfd in the epoll set and the wake word
 * (lib/wake.h) that says whether a thread is blocked in epoll_wait; the
 * driving thread owns it.  It is reference counted apart from the
 * reactor, so that a waker handed out by rouse_reactor_parker() stays safe
 * to wake and drop after the reactor is freed.
 */
struct rouse__unpark {
	struct rouse__wakeword word;
	atomic_uint refs;	/* the reactor's + one per waker */
	int efd;		/* in the epoll set, edge-triggered, never read */
};

/* The high half of the epoll_data of the reactor's own descriptors. */
#define ROUSE__TAG_OWN UINT64_C(0xffffffff00000000)

/* Kinds of registered sources. */
enum {
	ROUSE__SRC_IO = 1,
	ROUSE__SRC_EVENT = 2,
};

/* Timer states (rouse_timer_entry.state). */
enum {
	ROUSE__TIMER_IDLE = 0,
	ROUSE__TIMER_ARMED = 1,
	ROUSE__TIMER_FIRED = 2,
	ROUSE__TIMER_CANCELED = 3,
};

/* I/O directions: the two waiter slots of a source. */
enum {
	ROUSE__DIR_READ = 0,
	ROUSE__DIR_WRITE = 1,
};

/*
 * A registered fd (or user event).  epoll_data carries slot and gen, not
 * a pointer, so an event that was queued for a source that has since gone
 * (or whose slot was reused) is recognised and dropped.
 */
struct rouse_io {
	struct rouse_reactor *reactor;
	int fd;
	int kind;			/* ROUSE__SRC_* */
	uint32_t slot;
	uint32_t gen;
	atomic_uint ready;		/* cached readiness, ROUSE_IO_* */
	atomic_uint tick;		/* bumped on every event */
	/*
	 * A short read drains it.  Cleared for good by the first event with
	 * EPOLLPRI: a read stops short at urgent data (TCP, and Unix stream
	 * sockets' MSG_OOB) with more queued behind it.
	 */
	atomic_bool short_read_drains;
	bool socket;			/* recv/send rather than read/write */
	unsigned int seen_tick[2];	/* tick when readiness was last reported,
					   per direction */
	struct rouse_io_op *waiter[2];	/* pending op per direction */
	struct rouse_waker waker[2];	/* its waker, owned */
	struct rouse_link live;		/* in the reactor's list of sources */
};

struct rouse_event {
	struct rouse_io io;		/* first: kind ROUSE__SRC_EVENT */
	atomic_uint_fast64_t count;	/* notifications not yet taken */
};

struct rouse_reactor {
	/*
	 * The fork generation it was made in, or made the child's own in by
	 * rouse_reactor_fork(): while rouse__inherited() says so, every call
	 * but rouse_reactor_fork() is refused with -ECHILD.
	 */
	unsigned int fork_gen;
	int epfd;
	int tfd;
	struct rouse__unpark *wake;

	bool local;			/* ROUSE_REACTOR_LOCAL: no lock */
	pthread_mutex_t lock;		/* everything below */
	struct rouse__timers timers;
	int64_t armed;			/* timerfd deadline; INT64_MAX: off */
	bool paused;			/* test clock stopped */
	int64_t paused_now;		/* its reading while stopped */
	int64_t offset;			/* reactor clock - CLOCK_MONOTONIC */

	struct rouse_io **slots;	/* sources by slot */
	uint32_t *gens;			/* generation of each slot */
	uint32_t nslots;
	uint32_t free_slot;		/* head of the free list, or UINT32_MAX */
	uint32_t *next_free;
	struct rouse_link live;		/* every source, newest first */
	struct rouse_io **fd_owner;	/* newest source of each fd number */
	int nfd_owner;

	atomic_bool driving;		/* a thread is inside a turn */
	unsigned int skipped_polls;	/* turns that skipped epoll_wait */
	pthread_t thread;
	bool threaded;
	atomic_bool stopping;
};

/*
 * The reactor lock, which a reactor made with ROUSE_REACTOR_LOCAL does
 * without: its user promised that one thread at a time uses it (turns,
 * futures, registrations), as with libev's or libuv's loops.
 */
static inline void rouse__reactor_lock(struct rouse_reactor *r)
{
	if (!r->local)
		pthread_mutex_lock(&r->lock);
}

/* a + b, or INT64_MAX where that overflows; for a >= 0. */
static inline int64_t rouse__add_sat(int64_t a, int64_t b)
{
	return b > INT64_MAX - a ? INT64_MAX : a + b;
}

static inline void rouse__reactor_unlock(struct rouse_reactor *r)
{
	if (!r->local)
		pthread_mutex_unlock(&r->lock);
}

#define rouse__clock_now_locked ROUSE__NS(clock_now_locked)
#define rouse__clock_rearm ROUSE__NS(clock_rearm)
#define rouse__io_dispatch ROUSE__NS(io_dispatch)
#define rouse__io_cancel_all ROUSE__NS(io_cancel_all)
#define rouse__io_fork ROUSE__NS(io_fork)
#define rouse__timers_cancel_all ROUSE__NS(timers_cancel_all)
#define rouse__fire_timers ROUSE__NS(fire_timers)

/*
 * The calls between the reactor's core files go one way, down:
 *
 *   reactor.c   new, free, fork, turns, the two modes, the parker
 *     |      \
 *   io.c    sleep.c   sources; timer futures and the test clock
 *              |
 *   clock.c            the reactor's clock and its timerfd
 *
 * (io.c needs nothing below it but this header's inline lock.)
 */

/* clock.c: the reactor's time now; the lock held. */
int64_t rouse__clock_now_locked(struct rouse_reactor *r);
/*
 * clock.c: point the timerfd at the timer set's next wake-up if that
 * moved earlier (or, with force, if it moved at all); the lock held.
 */
void rouse__clock_rearm(struct rouse_reactor *r, bool force);

/* io.c: handle a batch of epoll events; returns the wakers woken. */
int rouse__io_dispatch(struct rouse_reactor *r,
		       const struct epoll_event *evs, int n);
/* io.c: in a child of fork(), register every source with the new set. */
int rouse__io_fork(struct rouse_reactor *r, int epfd);
/* io.c: at free, every pending source operation ends -ECANCELED. */
void rouse__io_cancel_all(struct rouse_reactor *r);

/* sleep.c: at free, every pending timer future ends -ECANCELED. */
void rouse__timers_cancel_all(struct rouse_reactor *r);
/* sleep.c: fire the timers that are due; returns the wakers woken. */
int rouse__fire_timers(struct rouse_reactor *r);

/*
 * Wakers collected under the lock are woken after it is dropped, a batch
 * at a time, so that a waker may call back into the reactor.
 */
#define ROUSE__WAKE_BATCH 32
struct rouse__wake_list {
	int n;
	struct rouse_waker w[ROUSE__WAKE_BATCH];
};

static inline void rouse__wake_list_wake(struct rouse__wake_list *wl)
{
	int i;

	for (i = 0; i < wl->n; i++)
		rouse_waker_wake(&wl->w[i]);
	wl->n = 0;
}

#endif /* ROUSE_REACTOR_INTERNAL_H */
