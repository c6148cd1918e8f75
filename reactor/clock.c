// SPDX-License-Identifier: MIT
/*
 * reactor/clock.c - the reactor's clock and its one timerfd: what time it
 * is for a reactor (the monotonic clock, or the test clock while paused),
 * and arming the timerfd for the next timer's deadline.
 *
 * It calls the timer set (timer.h) for that deadline and lib/; nothing
 * else.  reactor.c and sleep.c (its timer futures and the test clock)
 * call it.
 */
#include <errno.h>
#include <string.h>
#include <sys/timerfd.h>

#include "reactor-internal.h"

#define ROUSE__LOG_MODULE "reactor"

int64_t rouse__clock_now_locked(struct rouse_reactor *r)
{
	if (r->paused)
		return r->paused_now;
	return rouse__add_sat(rouse__now_ns(), r->offset);
}

static void timerfd_arm(struct rouse_reactor *r, int64_t when)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	if (when == INT64_MIN) {
		its.it_value.tv_nsec = 1;	/* long past: fire now */
	} else if (when != INT64_MAX) {
		/*
		 * Reactor time to CLOCK_MONOTONIC (saturating: with a
		 * negative offset, a deadline near INT64_MAX would
		 * overflow); 0 would mean "disarm".
		 */
		int64_t mono = r->offset < 0 && when > INT64_MAX + r->offset
				       ? INT64_MAX
				       : when - r->offset;

		its.it_value = rouse__ns_to_timespec(mono > 0 ? mono : 1);
	}
	if (timerfd_settime(r->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		rouse__error("timerfd_settime: %s", strerror(errno));
	else if (when == INT64_MAX)
		rouse__trace("timerfd %d disarmed", r->tfd);
	else
		rouse__trace("timerfd %d armed for %lld", r->tfd,
			     (long long)when);
	r->armed = when;
}

void rouse__clock_rearm(struct rouse_reactor *r, bool force)
{
	int64_t next;

	if (r->paused) {
		/*
		 * Paused time moves only by rouse_reactor_clock_advance(),
		 * which fires what it makes due.  What is due already (it
		 * was due before the pause, say) is left to the next turn:
		 * a timerfd set in the past fires at once.
		 */
		next = rouse__timers_next_wakeup(&r->timers) <= r->paused_now
			       ? INT64_MIN
			       : INT64_MAX;
		if (next != r->armed)
			timerfd_arm(r, next);
		return;
	}
	next = rouse__timers_next_wakeup(&r->timers);
	/*
	 * Arm only when the next wake-up moved earlier, or when the set is
	 * empty: a timerfd that fires too early costs one empty turn, which
	 * is cheaper than a system call on every cancel.
	 */
	if (next < r->armed || (next == INT64_MAX && r->armed != INT64_MAX) ||
	    (force && next != r->armed))
		timerfd_arm(r, next);
}

ROUSE__PUBLIC int64_t rouse_reactor_now(struct rouse_reactor *r)
{
	int64_t now;

	if (r == NULL)
		return -EINVAL;
	if (rouse__inherited(r->fork_gen))
		return -ECHILD;
	rouse__reactor_lock(r);
	now = rouse__clock_now_locked(r);
	rouse__reactor_unlock(r);
	return now;
}

