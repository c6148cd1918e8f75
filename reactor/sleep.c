// SPDX-License-Identifier: MIT
/*
 * reactor/sleep.c - timer futures: sleep, sleep until, interval, timeout;
 * firing the timers that are due; and the test clock, which fires them
 * as it is moved.  It calls clock.c, the timer set (timer.h) and lib/;
 * reactor.c calls it to fire the timers that are due and to cancel them
 * at free.
 *
 * A timer future holds its own entry in the reactor's timer set and its
 * own waker; both are touched only under the reactor's lock.  When the
 * timer fires, the reactor marks it FIRED and takes its waker out to wake
 * it after the lock is dropped, so a future dropped at that moment has
 * nothing left to cancel.
 */
#include <errno.h>
#include <limits.h>

#include "reactor-internal.h"

#define ROUSE__LOG_MODULE "reactor"

static struct rouse_sleep *sleep_of(struct rouse_timer_entry *e)
{
	return rouse__container_of(e, struct rouse_sleep, entry);
}

/*
 * The state is written under the reactor's lock, but read without it by
 * a future that only wants to know whether it is done, or whether it
 * still has anything in the reactor (a fired or cancelled timer, or one
 * never polled, has not: it may be dropped after the reactor is gone).
 * The release store publishes the waker having been taken out.
 */
static void timer_set_state(struct rouse_timer_entry *e, uint32_t state)
{
	__atomic_store_n(&e->state, state, __ATOMIC_RELEASE);
}

static uint32_t timer_state(const struct rouse_timer_entry *e)
{
	return __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);
}

/*
 * Take the due timers (every timer, when cancelling) out of the set, a
 * batch at a time, and wake them after the lock is dropped.  Fired ones
 * become FIRED; cancelled ones CANCELED, and forget the reactor.
 */
static int take_timers(struct rouse_reactor *r, bool cancel)
{
	struct rouse__wake_list wl;
	int total = 0;

	for (;;) {
		struct rouse_timer_entry *e;
		int64_t now;
		int batch;

		wl.n = 0;
		rouse__reactor_lock(r);
		now = cancel ? INT64_MAX : rouse__clock_now_locked(r);
		while (wl.n < ROUSE__WAKE_BATCH &&
		       (e = rouse__timers_pop_expired(&r->timers, now))) {
			struct rouse_sleep *s = sleep_of(e);

			if (cancel)
				s->reactor = NULL;
			/* Every armed timer was polled, so it has a waker. */
			wl.w[wl.n++] = s->waker;
			s->waker.vtable = NULL;
			timer_set_state(e, cancel ? ROUSE__TIMER_CANCELED
						  : ROUSE__TIMER_FIRED);
		}
		batch = wl.n;
		if (!cancel && batch < ROUSE__WAKE_BATCH)
			rouse__clock_rearm(r, true);
		rouse__reactor_unlock(r);
		if (batch > 0)
			rouse__trace("timers: %d %s, waking them", batch,
				     cancel ? "cancelled" : "fired");
		rouse__wake_list_wake(&wl);
		total += batch;
		if (batch < ROUSE__WAKE_BATCH)
			return total;
	}
}

int rouse__fire_timers(struct rouse_reactor *r)
{
	return take_timers(r, false);
}

void rouse__timers_cancel_all(struct rouse_reactor *r)
{
	take_timers(r, true);
}

/* ---- sleep ------------------------------------------------------------- */

/* Whether deadline has passed, as far as the reactor knows without a clock read. */
static bool surely_passed(struct rouse_reactor *r, int64_t deadline)
{
	if (r->paused)
		return deadline <= r->paused_now;
	return deadline <= r->timers.elapsed << ROUSE__TICK_SHIFT;
}

/* Put s in the timer set with a clone of cx's waker (lock held). */
static void sleep_arm_locked(struct rouse_reactor *r, struct rouse_sleep *s,
			     struct rouse_context *cx)
{
	rouse_waker_clone(cx->waker, &s->waker);
	timer_set_state(&s->entry, ROUSE__TIMER_ARMED);
	rouse__timers_insert(&r->timers, &s->entry);
	/*
	 * A deadline at or after the armed one cannot make the timerfd
	 * late: it fires first, and that turn re-arms.
	 */
	if (s->entry.deadline < r->armed)
		rouse__clock_rearm(r, false);
	rouse__trace("sleep %p: registered for %lld", (void *)s,
		     (long long)s->entry.deadline);
}

static enum rouse_poll sleep_poll(struct rouse_future *f,
				  struct rouse_context *cx)
{
	struct rouse_sleep *s = (struct rouse_sleep *)f;
	struct rouse_waker old = { NULL, NULL };
	enum rouse_poll ret = ROUSE_PENDING;
	struct rouse_reactor *r;

	switch (timer_state(&s->entry)) {
	case ROUSE__TIMER_FIRED:
		s->result = 0;
		return ROUSE_READY;
	case ROUSE__TIMER_CANCELED:
		/* The reactor was freed while this timer was pending. */
		s->result = -ECANCELED;
		return ROUSE_READY;
	}
	r = s->reactor;
	if (rouse__inherited(r->fork_gen)) {
		s->result = -ECHILD;
		return ROUSE_READY;
	}
	rouse__reactor_lock(r);
	switch (s->entry.state) {
	case ROUSE__TIMER_IDLE:
		if (surely_passed(r, s->entry.deadline)) {
			/* Due already: no round trip through the timerfd. */
			timer_set_state(&s->entry, ROUSE__TIMER_FIRED);
			s->result = 0;
			ret = ROUSE_READY;
			break;
		}
		sleep_arm_locked(r, s, cx);
		break;
	case ROUSE__TIMER_ARMED:
		/* Polled by another task, or by a moved one: swap wakers. */
		if (!rouse_waker_will_wake(&s->waker, cx->waker)) {
			old = s->waker;
			rouse_waker_clone(cx->waker, &s->waker);
		}
		break;
	default:
		/* Fired between the check above and the lock. */
		s->result = 0;
		ret = ROUSE_READY;
		break;
	}
	rouse__reactor_unlock(r);
	if (old.vtable != NULL)
		rouse_waker_drop(&old);
	return ret;
}

/*
 * A sleep, interval or timeout is being dropped: take its timer out of
 * the reactor if it is in it.  A timer that is not armed has nothing in
 * the reactor, so this does not touch the reactor at all then: such a
 * future may be dropped after its reactor was freed.
 */
static void sleep_cancel(struct rouse_sleep *s)
{
	struct rouse_waker w = { NULL, NULL };

	if (timer_state(&s->entry) == ROUSE__TIMER_ARMED) {
		struct rouse_reactor *r = s->reactor;

		/* The parent's timer: not the child's to take out. */
		if (rouse__inherited(r->fork_gen))
			return;
		rouse__reactor_lock(r);
		if (s->entry.state == ROUSE__TIMER_ARMED) {
			rouse__timers_remove(&r->timers, &s->entry);
			if (r->timers.count == 0)
				rouse__clock_rearm(r, false);
			w = s->waker;
			s->waker.vtable = NULL;
		}
		rouse__reactor_unlock(r);
	}
	if (w.vtable != NULL)
		rouse_waker_drop(&w);
}

static void sleep_drop(struct rouse_future *f)
{
	sleep_cancel((struct rouse_sleep *)f);
}

static const struct rouse_future_vtable sleep_vtable = {
	.poll = sleep_poll,
	.drop = sleep_drop,
};

static void sleep_setup(struct rouse_sleep *s, struct rouse_reactor *r,
			int64_t deadline)
{
	s->base.vtable = &sleep_vtable;
	s->reactor = r;
	s->waker.data = NULL;
	s->waker.vtable = NULL;
	s->entry.deadline = deadline < 0 ? 0 : deadline;
	s->entry.seq = 0;
	s->entry.child = s->entry.next = s->entry.prev = NULL;
	s->entry.where = ROUSE__TIMER_NONE;
	s->entry.state = ROUSE__TIMER_IDLE;
	s->result = 0;
}

ROUSE__PUBLIC int rouse_sleep_until_init(struct rouse_sleep *s,
					 struct rouse_reactor *r,
					 int64_t deadline_ns)
{
	if (s == NULL || r == NULL || deadline_ns < 0)
		return -EINVAL;
	if (rouse__inherited(r->fork_gen))
		return -ECHILD;
	sleep_setup(s, r, deadline_ns);
	return 0;
}

ROUSE__PUBLIC int rouse_sleep_init(struct rouse_sleep *s,
				   struct rouse_reactor *r, int64_t duration_ns)
{
	if (s == NULL || r == NULL || duration_ns < 0)
		return -EINVAL;
	if (rouse__inherited(r->fork_gen))
		return -ECHILD;
	sleep_setup(s, r, rouse__add_sat(rouse_reactor_now(r), duration_ns));
	return 0;
}

/* ---- interval ---------------------------------------------------------- */

static enum rouse_poll interval_poll(struct rouse_future *f,
				     struct rouse_context *cx)
{
	struct rouse_interval *iv = (struct rouse_interval *)f;
	struct rouse_sleep *s = &iv->sleep;
	struct rouse_reactor *r;
	int64_t deadline, now, late;

	if (sleep_poll(&s->base, cx) == ROUSE_PENDING)
		return ROUSE_PENDING;
	if (s->result < 0) {
		iv->result = s->result;
		return ROUSE_READY;
	}
	/*
	 * Fired: count the periods that passed, and arm the next tick at
	 * once, on the period's grid.  Between two ticks the interval is
	 * therefore always in the reactor, so freeing the reactor reaches
	 * it (its next poll says -ECANCELED) and its drop cancels it.
	 */
	r = s->reactor;
	rouse__reactor_lock(r);
	deadline = s->entry.deadline;
	now = rouse__clock_now_locked(r);
	late = now > deadline ? (now - deadline) / iv->period : 0;
	iv->ticks = 1 + (uint64_t)late;
	iv->result = 0;
	if (late + 1 > (INT64_MAX - deadline) / iv->period)
		s->entry.deadline = INT64_MAX;
	else
		s->entry.deadline = deadline + (late + 1) * iv->period;
	sleep_arm_locked(r, s, cx);
	rouse__reactor_unlock(r);
	return ROUSE_READY;
}

static void interval_drop(struct rouse_future *f)
{
	sleep_cancel(&((struct rouse_interval *)f)->sleep);
}

static const struct rouse_future_vtable interval_vtable = {
	.poll = interval_poll,
	.drop = interval_drop,
};

ROUSE__PUBLIC int rouse_interval_init(struct rouse_interval *iv,
				      struct rouse_reactor *r,
				      int64_t period_ns)
{
	if (iv == NULL || r == NULL || period_ns <= 0)
		return -EINVAL;
	if (rouse__inherited(r->fork_gen))
		return -ECHILD;
	sleep_setup(&iv->sleep, r, rouse__add_sat(rouse_reactor_now(r), period_ns));
	iv->sleep.base.vtable = &interval_vtable;
	iv->period = period_ns;
	iv->ticks = 0;
	iv->result = 0;
	return 0;
}

/* ---- timeout ------------------------------------------------------------ */

static enum rouse_poll timeout_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct rouse_timeout *t = (struct rouse_timeout *)f;

	if (!t->inner_dropped &&
	    t->inner->vtable->poll(t->inner, cx) == ROUSE_READY) {
		t->result = 0;
		return ROUSE_READY;
	}
	if (sleep_poll(&t->sleep.base, cx) == ROUSE_PENDING)
		return ROUSE_PENDING;
	/* The deadline won (or the reactor went away): cancel the inner. */
	if (!t->inner_dropped) {
		rouse_future_drop(t->inner);
		t->inner_dropped = 1;
	}
	t->result = t->sleep.result < 0 ? t->sleep.result : -ETIMEDOUT;
	return ROUSE_READY;
}

static void timeout_drop(struct rouse_future *f)
{
	struct rouse_timeout *t = (struct rouse_timeout *)f;

	sleep_cancel(&t->sleep);
	if (!t->inner_dropped) {
		rouse_future_drop(t->inner);
		t->inner_dropped = 1;
	}
}

static const struct rouse_future_vtable timeout_vtable = {
	.poll = timeout_poll,
	.drop = timeout_drop,
};

ROUSE__PUBLIC int rouse_timeout_init(struct rouse_timeout *t,
				     struct rouse_reactor *r,
				     struct rouse_future *inner,
				     int64_t duration_ns)
{
	int err;

	if (t == NULL || inner == NULL || inner->vtable == NULL ||
	    inner->vtable->poll == NULL)
		return -EINVAL;
	err = rouse_sleep_init(&t->sleep, r, duration_ns);
	if (err < 0)
		return err;
	t->base.vtable = &timeout_vtable;
	t->inner = inner;
	t->inner_dropped = 0;
	t->result = 0;
	return 0;
}

/* ---- the test clock --------------------------------------------------- */

ROUSE__PUBLIC int rouse_reactor_clock_pause(struct rouse_reactor *r)
{
	if (r == NULL)
		return -EINVAL;
	if (rouse__inherited(r->fork_gen))
		return -ECHILD;
	rouse__reactor_lock(r);
	if (!r->paused) {
		r->paused_now = rouse__clock_now_locked(r);
		r->paused = true;
		rouse__clock_rearm(r, true);
		rouse__debug("clock paused at %lld", (long long)r->paused_now);
	}
	rouse__reactor_unlock(r);
	return 0;
}

ROUSE__PUBLIC int rouse_reactor_clock_resume(struct rouse_reactor *r)
{
	if (r == NULL)
		return -EINVAL;
	if (rouse__inherited(r->fork_gen))
		return -ECHILD;
	rouse__reactor_lock(r);
	if (r->paused) {
		/*
		 * Go on from the paused reading: the clock never goes back,
		 * and never jumps.  The offset is negative when the pause
		 * lasted longer than the advances made in it.
		 */
		r->offset = r->paused_now - rouse__now_ns();
		r->paused = false;
		rouse__clock_rearm(r, true);
		rouse__debug("clock resumed at %lld", (long long)r->paused_now);
	}
	rouse__reactor_unlock(r);
	return 0;
}

ROUSE__PUBLIC int rouse_reactor_clock_advance(struct rouse_reactor *r,
					      int64_t ns)
{
	if (r == NULL || ns < 0)
		return -EINVAL;
	if (rouse__inherited(r->fork_gen))
		return -ECHILD;
	rouse__reactor_lock(r);
	if (!r->paused) {
		rouse__reactor_unlock(r);
		return -EPERM;
	}
	r->paused_now = rouse__add_sat(r->paused_now, ns);
	rouse__reactor_unlock(r);
	return rouse__fire_timers(r);
}
