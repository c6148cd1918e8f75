// SPDX-License-Identifier: MIT
/*
 * reactor/reactor.c - the reactor: one epoll fd, one timerfd for all
 * timers, one eventfd for its own wake-up; a turn; the two ways to run it.
 * It calls lib/ (the wake word among it), io.c, sleep.c and clock.c for
 * what a turn hands on (reactor-internal.h), and timer.c to set up the
 * timer set; none of them calls it.  Of the service layer only process.c
 * calls it, for the default reactor (rouse_reactor_default()).
 *
 * A turn is: decide whether to block, epoll_wait, hand fd events to their
 * sources, fire the timers that are due.  Wakers are collected under the
 * reactor's lock and woken after it is dropped.
 *
 * Both the timerfd and the wake eventfd are edge-triggered and never read.
 * An eventfd or timerfd reports an edge on every write or expiry, whatever
 * its counter holds, so the read that would reset it is a system call
 * saved per wake-up.  (The eventfd counter would need 2^64 - 2 wakes to
 * saturate.)  Re-arming the timerfd with timerfd_settime() resets its
 * expiry count.
 *
 * The wake word (lib/wake.h, shared with the executor's parker) decides
 * whether an unpark writes the eventfd: a turn parks the word before it
 * blocks in epoll_wait, and only an unpark that finds it parked makes the
 * system call; one that lands while the turn runs costs one atomic
 * exchange.  A turn that finds a notification pending does not block: it
 * takes it and returns at once, and only every 32nd such turn in a row
 * looks at epoll, so that a future that keeps waking itself cannot starve
 * I/O and timers.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "reactor-internal.h"

#define ROUSE__LOG_MODULE "reactor"

/*
 * epoll_data of the reactor's own descriptors.  Sources use gen << 32 |
 * slot, and no generation is ever 0xffffffff, so these never collide.
 */
#define TAG_TIMER (ROUSE__TAG_OWN | 1)
#define TAG_WAKE (ROUSE__TAG_OWN | 2)

#define EVENTS_PER_TURN 256
#define SKIP_POLL_LIMIT 32

/* ---- the wake handle and the reactor's parker ----------------------- */

static void wake_release(struct rouse__unpark *w)
{
	if (atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) != 1)
		return;
	close(w->efd);
	rouse__free(w);
}

static void wake_unpark(struct rouse__unpark *w)
{
	static const uint64_t one = 1;
	int state;

	if (!rouse__wakeword_notify(&w->word)) {
		rouse__trace("wake: reactor is running, no syscall");
		return;
	}
	rouse__trace("wake: write eventfd %d to interrupt epoll_wait", w->efd);
	/* Cancelled here, the word would say NOTIFIED with nothing sent. */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state);
	while (write(w->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	pthread_setcancelstate(state, NULL);
}

static void reactor_unpark(struct rouse_reactor *r)
{
	wake_unpark(r->wake);
}

static const struct rouse_waker_vtable wake_waker_vtable;

static struct rouse_waker wake_waker_clone(void *data)
{
	struct rouse__unpark *w = data;
	struct rouse_waker out = { w, &wake_waker_vtable };

	atomic_fetch_add_explicit(&w->refs, 1, memory_order_relaxed);
	rouse__trace("waker clone: reactor parker");
	return out;
}

static void wake_waker_drop(void *data)
{
	rouse__trace("waker drop: reactor parker");
	wake_release(data);
}

static void wake_waker_wake_by_ref(void *data)
{
	rouse__trace("waker wake_by_ref: reactor parker");
	wake_unpark(data);
}

static void wake_waker_wake(void *data)
{
	rouse__trace("waker wake: reactor parker");
	wake_unpark(data);
	wake_release(data);
}

static const struct rouse_waker_vtable wake_waker_vtable = {
	.clone = wake_waker_clone,
	.wake = wake_waker_wake,
	.wake_by_ref = wake_waker_wake_by_ref,
	.drop = wake_waker_drop,
};

static int parker_park(void *data, int64_t timeout_ns)
{
	int n = rouse_reactor_turn(data, timeout_ns);

	return n < 0 ? n : 0;
}

static void parker_unpark(void *data)
{
	reactor_unpark(data);
}

static int parker_waker(void *data, struct rouse_waker *out)
{
	struct rouse_reactor *r = data;

	atomic_fetch_add_explicit(&r->wake->refs, 1, memory_order_relaxed);
	out->data = r->wake;
	out->vtable = &wake_waker_vtable;
	rouse__trace("waker create: reactor parker");
	return 0;
}

static const struct rouse_parker_vtable reactor_parker_vtable = {
	.park = parker_park,
	.unpark = parker_unpark,
	.waker = parker_waker,
};

ROUSE__PUBLIC int rouse_reactor_parker(struct rouse_reactor *r,
				       struct rouse_parker *out)
{
	if (r == NULL || out == NULL)
		return -EINVAL;
	out->data = r;
	out->vtable = &reactor_parker_vtable;
	return 0;
}

/* ---- turns ----------------------------------------------------------- */

static int timeout_ms(int64_t timeout_ns)
{
	if (timeout_ns < 0)
		return -1;
	/* Round up, so that a turn never returns before its timeout. */
	if (timeout_ns > (int64_t)INT_MAX * 1000000)
		return INT_MAX;
	return (int)((timeout_ns + 999999) / 1000000);
}

static int reactor_turn(struct rouse_reactor *r, int64_t timeout_ns)
{
	struct epoll_event evs[EVENTS_PER_TURN];
	struct rouse__unpark *w = r->wake;
	bool parked = false, notified, timers_due = false;
	int i, n, own = 0, woken;

	if (timeout_ns == 0) {
		notified = rouse__wakeword_peek(&w->word);
	} else {
		parked = rouse__wakeword_try_park(&w->word);
		notified = !parked;
	}
	/* An unpark came while we ran: it is taken; do not block. */
	if (notified && ++r->skipped_polls < SKIP_POLL_LIMIT) {
		rouse__trace("turn: already notified");
		return 0;
	}
	r->skipped_polls = 0;

	if (parked)
		rouse__trace("turn: epoll_wait (timeout %lld ns)",
			     (long long)timeout_ns);
	n = epoll_wait(r->epfd, evs, EVENTS_PER_TURN,
		       parked ? timeout_ms(timeout_ns) : 0);
	if (parked) {
		/*
		 * A notification taken here means an unpark wrote (or is
		 * about to write) the eventfd; its edge at worst makes one
		 * later turn return early.
		 */
		rouse__wakeword_end_park(&w->word);
	}
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		return -errno;
	}
	for (i = 0; i < n; i++) {
		if (evs[i].data.u64 == TAG_TIMER) {
			timers_due = true;
			own++;
		} else if (evs[i].data.u64 == TAG_WAKE) {
			rouse__trace("turn: woken through eventfd");
			own++;
		}
	}
	woken = n > own ? rouse__io_dispatch(r, evs, n) : 0;
	if (timers_due) {
		rouse__trace("turn: timerfd fired");
		woken += rouse__fire_timers(r);
	}
	/*
	 * The wakes this turn made have notified the word; whoever parked
	 * will poll as soon as the turn returns, which is what they asked
	 * for, so take the notification now.  Left in place, it would only
	 * make the next park return at once for a second, empty poll.
	 */
	if (woken > 0)
		rouse__wakeword_clear(&w->word);
	return woken;
}

ROUSE__PUBLIC int rouse_reactor_turn(struct rouse_reactor *r,
				     int64_t timeout_ns)
{
	int n, state;

	if (r == NULL)
		return -EINVAL;
	if (rouse__inherited(r->fork_gen))
		return -ECHILD;
	/* One thread drives a reactor at a time. */
	if (atomic_exchange_explicit(&r->driving, true, memory_order_acquire))
		return -EBUSY;
	/* A turn cancelled in epoll_wait would leave driving set. */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state);
	n = reactor_turn(r, timeout_ns);
	atomic_store_explicit(&r->driving, false, memory_order_release);
	pthread_setcancelstate(state, NULL);
	return n;
}

ROUSE__PUBLIC int rouse_reactor_fd(const struct rouse_reactor *r)
{
	if (r == NULL)
		return -EINVAL;
	if (rouse__inherited(r->fork_gen))
		return -ECHILD;
	return r->epfd;
}

/* ---- threaded mode --------------------------------------------------- */

static void *reactor_thread(void *arg)
{
	struct rouse_reactor *r = arg;

	rouse__debug("reactor %p: thread running", arg);
	while (!atomic_load_explicit(&r->stopping, memory_order_acquire)) {
		int n = reactor_turn(r, -1);

		if (n < 0) {
			rouse__error("reactor %p: turn failed: %s", arg,
				     strerror(-n));
			break;
		}
	}
	rouse__debug("reactor %p: thread stopped", arg);
	return NULL;
}

ROUSE__PUBLIC int rouse_reactor_start(struct rouse_reactor *r)
{
	int err;

	if (r == NULL || r->local)
		return -EINVAL;	/* a thread of its own is a second thread */
	if (rouse__inherited(r->fork_gen))
		return -ECHILD;
	if (atomic_exchange_explicit(&r->driving, true, memory_order_acquire))
		return -EBUSY;
	atomic_store(&r->stopping, false);
	err = pthread_create(&r->thread, NULL, reactor_thread, r);
	if (err != 0) {
		atomic_store(&r->driving, false);
		return -err;
	}
	r->threaded = true;
	return 0;
}

ROUSE__PUBLIC int rouse_reactor_stop(struct rouse_reactor *r)
{
	int state;

	if (r == NULL)
		return -EINVAL;
	if (rouse__inherited(r->fork_gen))
		return -ECHILD;
	if (!r->threaded)
		return -ESRCH;
	if (pthread_equal(r->thread, pthread_self()))
		return -EDEADLK;
	atomic_store_explicit(&r->stopping, true, memory_order_release);
	reactor_unpark(r);
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state);
	pthread_join(r->thread, NULL);
	pthread_setcancelstate(state, NULL);
	r->threaded = false;
	atomic_store_explicit(&r->driving, false, memory_order_release);
	return 0;
}

/* ---- creation ---------------------------------------------------------- */

static int add_own_fd(int epfd, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void close_if_open(int fd)
{
	if (fd >= 0)
		close(fd);
}

ROUSE__PUBLIC int rouse_reactor_new(struct rouse_reactor **out,
				    unsigned int flags)
{
	struct rouse_reactor *r;
	struct rouse__unpark *w;
	int err;

	if (out == NULL || (flags & ~ROUSE_REACTOR_LOCAL) != 0)
		return -EINVAL;
	r = rouse__calloc(1, sizeof(*r));
	w = rouse__calloc(1, sizeof(*w));
	if (r == NULL || w == NULL) {
		rouse__free(r);
		rouse__free(w);
		return -ENOMEM;
	}
	r->wake = w;
	atomic_init(&w->refs, 1);
	rouse__wakeword_init(&w->word);
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	r->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->epfd < 0 || r->tfd < 0 || w->efd < 0) {
		err = -errno;
		goto fail;
	}
	err = add_own_fd(r->epfd, r->tfd, TAG_TIMER);
	if (err == 0)
		err = add_own_fd(r->epfd, w->efd, TAG_WAKE);
	if (err < 0)
		goto fail;
	r->local = (flags & ROUSE_REACTOR_LOCAL) != 0;
	r->fork_gen = rouse__fork_now();
	pthread_mutex_init(&r->lock, NULL);
	rouse__timers_init(&r->timers, rouse__now_ns());
	r->armed = INT64_MAX;
	r->free_slot = UINT32_MAX;
	rouse__list_init(&r->live);
	rouse__debug("reactor %p: epoll %d, timerfd %d, eventfd %d",
		     (void *)r, r->epfd, r->tfd, w->efd);
	*out = r;
	return 0;
fail:
	close_if_open(r->epfd);
	close_if_open(r->tfd);
	close_if_open(w->efd);
	rouse__free(w);
	rouse__free(r);
	return err;
}

ROUSE__PUBLIC void rouse_reactor_free(struct rouse_reactor *r)
{
	if (r == NULL)
		return;
	if (rouse__inherited(r->fork_gen)) {
		rouse__error("reactor %p: inherited through fork(); call "
			     "rouse_reactor_fork() before freeing it; not freed",
			     (void *)r);
		return;
	}
	if (!r->threaded &&
	    atomic_load_explicit(&r->driving, memory_order_acquire)) {
		/* A turn is running (it may be the one that called us). */
		rouse__error("reactor %p: freed during a turn; not freed",
			     (void *)r);
		return;
	}
	if (r->threaded && rouse_reactor_stop(r) < 0) {
		/*
		 * Called on the reactor's own thread (from a waker it ran):
		 * that thread goes back into the turn when this returns, so
		 * freeing would pull the reactor from under it.  Leak it.
		 */
		rouse__error("reactor %p: freed from its own thread; "
			     "not freed", (void *)r);
		return;
	}
	rouse__timers_cancel_all(r);
	rouse__io_cancel_all(r);
	rouse__debug("reactor %p: freed", (void *)r);
	close(r->epfd);
	close(r->tfd);
	wake_release(r->wake);
	pthread_mutex_destroy(&r->lock);
	rouse__free(r->slots);
	rouse__free(r->gens);
	rouse__free(r->next_free);
	rouse__free(r->fd_owner);
	rouse__free(r);
}

/* ---- fork ---------------------------------------------------------------- */

/*
 * In a child of fork(), make an inherited reactor the child's own.  Its
 * epoll set, timerfd and eventfd are shared with the parent (a timerfd
 * re-armed here would move the parent's timers), so the child gets new
 * ones, and every source is registered again.  The lock may have been
 * held by a parent thread that does not exist here: it is made anew, and
 * so is the reactor's thread, if it had one.
 */
ROUSE__PUBLIC int rouse_reactor_fork(struct rouse_reactor *r)
{
	bool threaded;
	int epfd, tfd, efd, err;

	if (r == NULL)
		return -EINVAL;
	if (!rouse__inherited(r->fork_gen))
		return 0;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (epfd < 0 || tfd < 0 || efd < 0) {
		err = -errno;
		goto fail;
	}
	err = add_own_fd(epfd, tfd, TAG_TIMER);
	if (err == 0)
		err = add_own_fd(epfd, efd, TAG_WAKE);
	if (err == 0)
		err = rouse__io_fork(r, epfd);
	if (err < 0)
		goto fail;
	pthread_mutex_init(&r->lock, NULL);
	close(r->epfd);
	close(r->tfd);
	close(r->wake->efd);
	r->epfd = epfd;
	r->tfd = tfd;
	r->wake->efd = efd;
	rouse__wakeword_reset(&r->wake->word);
	atomic_store(&r->driving, false);
	atomic_store(&r->stopping, false);
	r->skipped_polls = 0;
	threaded = r->threaded;
	r->threaded = false;
	r->fork_gen = rouse__fork_now();
	r->armed = INT64_MAX;
	rouse__clock_rearm(r, true);
	rouse__debug("reactor %p: made the child's own: epoll %d, timerfd %d, "
		     "eventfd %d", (void *)r, epfd, tfd, efd);
	return threaded ? rouse_reactor_start(r) : 0;
fail:
	close_if_open(epfd);
	close_if_open(tfd);
	close_if_open(efd);
	return err;
}

/* ---- the process-wide default reactor ---------------------------------- */

/*
 * Made by the first call that succeeds.  A failure (out of descriptors,
 * say) is not remembered: the next call tries again.
 */
static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rouse_reactor *default_reactor;	/* atomic once set */

ROUSE__PUBLIC int rouse_reactor_default(struct rouse_reactor **out)
{
	struct rouse_reactor *r;
	int err = 0;

	if (out == NULL)
		return -EINVAL;
	r = __atomic_load_n(&default_reactor, __ATOMIC_ACQUIRE);
	if (r != NULL) {
		*out = r;
		return 0;
	}
	pthread_mutex_lock(&default_lock);
	r = default_reactor;
	if (r == NULL) {
		err = rouse_reactor_new(&r, 0);
		if (err == 0) {
			err = rouse_reactor_start(r);
			if (err < 0)
				rouse_reactor_free(r);
		}
		if (err == 0)
			__atomic_store_n(&default_reactor, r,
					 __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&default_lock);
	if (err < 0)
		return err;
	*out = r;
	return 0;
}

ROUSE__PUBLIC int rouse_reactor_set_log_level(enum rouse_log_level level)
{
	return rouse__log_set_level(level);
}

ROUSE__PUBLIC int rouse_reactor_set_log_sink(rouse_log_fn *sink, void *data)
{
	return rouse__log_set_sink(sink, data);
}
