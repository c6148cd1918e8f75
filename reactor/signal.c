// SPDX-License-Identifier: MIT
/*
 * reactor/signal.c - the process-wide handler of each signal, and the
 * listeners it wakes.
 *
 * A listener is a user event on its reactor (rouse_event_new()), linked
 * into its signal's list.  The handler, installed with the first listener
 * of a signal and replaced by the saved old disposition when the last
 * one goes, notifies the event of every listener on the list: one atomic
 * addition each, and a write(2) only for the first delivery since a wait
 * took the count, all async-signal-safe.  The event's count is the
 * listener's count of deliveries; its single waiter slot is the
 * listener's.  This file uses the reactor only through the events' public
 * functions (io.c), and the reactor knows nothing of it.
 *
 * Handlers walk a list that rouse_signal_new() and rouse_signal_free()
 * change under them, from any thread, while other threads run handlers
 * of the same signal.  The walk takes no lock (a handler that waited for
 * a thread it interrupted would wait for ever); instead, a listener that
 * was unlinked is freed only after a grace period, once every handler
 * that could have reached it has returned.  Handlers count themselves in
 * and out of one of two counters, chosen by a phase that the freeing
 * thread moves on; the proof is at sig_synchronize().  Two counters and
 * not one, so that a storm of signals keeps no free waiting: handlers
 * that start after a flip count on the other side.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>

#include <rouse/signal.h>

#include "reactor-internal.h"

#define ROUSE__LOG_MODULE "signal"

/*
 * The kernel's first realtime signal.  glibc keeps the two below its
 * SIGRTMIN (32 and 33) for threads and timers of its own.
 */
#define KERNEL_SIGRTMIN 32

struct rouse_signal {
	struct rouse_event *ev;		/* the count and the wake */
	struct rouse_reactor *reactor;
	int signo;
	/* The next listener of the signal; written under sig_lock. */
	_Atomic(struct rouse_signal *) next;
};

/*
 * One signal's state.  head and next are read by handlers without the
 * lock; everything is written under sig_lock.
 */
struct sig_state {
	_Atomic(struct rouse_signal *) head;
	atomic_uint phase;		/* parity: the counter handlers use */
	atomic_uint busy[2];		/* handlers running, by phase */
	unsigned int listeners;
	struct sigaction old;		/* the disposition to put back */
};

/* Serialises new and free: installing, linking, the grace periods. */
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sig_state sigs[NSIG];

/* ---- the handler ------------------------------------------------------ */

/*
 * It runs with every signal blocked (sa_mask is full), so nothing nests
 * in it, and it leaves errno as it found it.  A notify that fails does
 * nothing worth reporting: -ECHILD means the listener's reactor was
 * inherited through fork() (its eventfd is the parent's), and a write to
 * an eventfd of ours does not fail otherwise.
 */
static void on_signal(int signo)
{
	struct sig_state *ss = &sigs[signo];
	struct rouse_signal *s;
	unsigned int p;
	int saved = errno;

	p = atomic_load(&ss->phase) & 1;
	atomic_fetch_add(&ss->busy[p], 1);
	for (s = atomic_load(&ss->head); s != NULL; s = atomic_load(&s->next))
		rouse_event_notify(s->ev);
	/* Release: our uses of the listeners come before their free. */
	atomic_fetch_sub_explicit(&ss->busy[p], 1, memory_order_release);
	errno = saved;
}

/* ---- the grace period ------------------------------------------------- */

/*
 * Wait until no handler of ss that may have reached a listener unlinked
 * before the call is still running.  Called with sig_lock held, so that
 * only one thread moves the phase.
 *
 * Every access here and in on_signal() to head, next, phase and busy is
 * sequentially consistent (the counters' decrements aside), so they fall
 * into one total order S.  Take a handler H that reached a listener X
 * unlinked before this call.  H loaded the link to X before the unlink
 * in S, and before that incremented busy[v & 1], v being the phase it had
 * loaded earlier still; so its increment, and its load of the phase,
 * come before both flips below.  Hence v is the phase at entry, p0, or
 * older.  If v has p0's parity, the first loop waits for busy[p0 & 1];
 * its loads come after the flip, which comes after H's increment, so
 * they see it until H's decrement.  Otherwise the second loop waits for
 * busy[(p0 + 1) & 1] the same way.  Either way H is done when this
 * returns, and its release decrement makes its uses of X happen before
 * the free that follows.
 *
 * Each loop waits only for handlers that loaded the phase before its
 * flip: those that start later count on the other side.  So however
 * fast the signals come, the wait ends once the handlers in flight do.
 */
static void sig_synchronize(struct sig_state *ss)
{
	int i;

	for (i = 0; i < 2; i++) {
		unsigned int p = atomic_load(&ss->phase);

		atomic_store(&ss->phase, p + 1);
		while (atomic_load(&ss->busy[p & 1]) != 0)
			sched_yield();
	}
}

/* ---- fork ------------------------------------------------------------- */

/*
 * fork() waits for a new or free that is under way, so that the child's
 * lists and dispositions are whole and its lock free.  Handlers that were
 * running on the parent's other threads do not exist in the child: their
 * counts go, or a free in the child would wait for them for ever.  (The
 * forking thread runs none: handlers block every signal, and call no
 * fork().)
 */
static void sig_prepare(void)
{
	pthread_mutex_lock(&sig_lock);
}

static void sig_parent(void)
{
	pthread_mutex_unlock(&sig_lock);
}

static void sig_child(void)
{
	int i;

	for (i = 0; i < NSIG; i++) {
		atomic_store(&sigs[i].busy[0], 0);
		atomic_store(&sigs[i].busy[1], 0);
	}
	pthread_mutex_unlock(&sig_lock);
}

__attribute__((constructor))
static void sig_fork_watch(void)
{
	/* Fails only for want of memory, at load; as in lib/fork.c. */
	pthread_atfork(sig_prepare, sig_parent, sig_child);
}

/* ---- listeners -------------------------------------------------------- */

/*
 * Whether signo can have a listener: a signal the kernel lets a process
 * catch, and not one that glibc keeps for itself.
 */
static bool signo_ok(int signo)
{
	if (signo <= 0 || signo >= NSIG || signo == SIGKILL ||
	    signo == SIGSTOP)
		return false;
	return signo < KERNEL_SIGRTMIN || signo >= SIGRTMIN;
}

/* Install the handler for signo, keeping the old disposition (lock held). */
static int sig_install(int signo, struct sig_state *ss)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigfillset(&sa.sa_mask);
	/*
	 * SA_RESTART: a listener should not make the program's blocking
	 * calls fail with EINTR where they did not before.  SA_ONSTACK:
	 * a thread that runs on an alternate stack may be near the end of
	 * its own.
	 */
	sa.sa_flags = SA_RESTART | SA_ONSTACK;
	if (sigaction(signo, &sa, &ss->old) < 0)
		return -errno;
	rouse__debug("signal %d: handler installed", signo);
	return 0;
}

/*
 * Put back the disposition found at install (lock held) -- unless the
 * program has installed its own since, which stays.
 */
static void sig_restore(int signo, struct sig_state *ss)
{
	struct sigaction cur;

	if (sigaction(signo, NULL, &cur) < 0)
		return;
	if ((cur.sa_flags & SA_SIGINFO) || cur.sa_handler != on_signal) {
		rouse__debug("signal %d: handler replaced by the program; "
			     "left in place", signo);
		return;
	}
	sigaction(signo, &ss->old, NULL);
	rouse__debug("signal %d: old disposition restored", signo);
}

ROUSE__PUBLIC int rouse_signal_new(struct rouse_reactor *r, int signo,
				   struct rouse_signal **out)
{
	struct sig_state *ss;
	struct rouse_signal *s;
	int err;

	if (r == NULL || out == NULL || !signo_ok(signo))
		return -EINVAL;
	if (rouse__inherited(r->fork_gen))
		return -ECHILD;
	s = rouse__malloc(sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	err = rouse_event_new(r, &s->ev);
	if (err < 0) {
		rouse__free(s);
		return err;
	}
	s->reactor = r;
	s->signo = signo;
	ss = &sigs[signo];

	pthread_mutex_lock(&sig_lock);
	/*
	 * The handler first: a delivery between the two steps comes before
	 * the listener exists, and is counted for nobody.
	 */
	if (ss->listeners == 0) {
		err = sig_install(signo, ss);
		if (err < 0) {
			pthread_mutex_unlock(&sig_lock);
			rouse_event_free(s->ev);
			rouse__free(s);
			return err;
		}
	}
	ss->listeners++;
	atomic_store(&s->next, atomic_load(&ss->head));
	atomic_store(&ss->head, s);
	pthread_mutex_unlock(&sig_lock);
	*out = s;
	return 0;
}

ROUSE__PUBLIC int rouse_signal_free(struct rouse_signal *s)
{
	_Atomic(struct rouse_signal *) *link;
	struct sig_state *ss;

	if (s == NULL)
		return -EINVAL;
	/* Its event, and so the listener, is not the child's to free. */
	if (rouse__inherited(s->reactor->fork_gen))
		return -ECHILD;
	ss = &sigs[s->signo];

	pthread_mutex_lock(&sig_lock);
	link = &ss->head;
	while (atomic_load(link) != s)
		link = &atomic_load(link)->next;
	/* Handlers on s go on to its next, which stays linked. */
	atomic_store(link, atomic_load(&s->next));
	if (--ss->listeners == 0)
		sig_restore(s->signo, ss);
	sig_synchronize(ss);
	pthread_mutex_unlock(&sig_lock);

	/* No handler can reach s now; a pending wait ends -ECANCELED. */
	rouse_event_free(s->ev);
	rouse__free(s);
	return 0;
}

/* ---- the wait --------------------------------------------------------- */

static enum rouse_poll signal_wait_poll(struct rouse_future *f,
					struct rouse_context *cx)
{
	struct rouse_signal_wait *w = (struct rouse_signal_wait *)f;
	struct rouse_future *inner = &w->wait.op.base;

	if (inner->vtable->poll(inner, cx) == ROUSE_PENDING)
		return ROUSE_PENDING;
	w->count = w->wait.count;
	w->result = w->wait.result;
	return ROUSE_READY;
}

/*
 * The event's wait takes the count only in the poll that answers READY,
 * so a drop before then leaves every delivery counted.
 */
static void signal_wait_drop(struct rouse_future *f)
{
	struct rouse_signal_wait *w = (struct rouse_signal_wait *)f;

	rouse_future_drop(&w->wait.op.base);
}

static const struct rouse_future_vtable signal_wait_vtable = {
	.poll = signal_wait_poll,
	.drop = signal_wait_drop,
};

ROUSE__PUBLIC int rouse_signal_wait_init(struct rouse_signal_wait *w,
					 struct rouse_signal *s)
{
	int err;

	if (w == NULL || s == NULL)
		return -EINVAL;
	err = rouse_event_wait_init(&w->wait, s->ev);
	if (err < 0)
		return err;
	w->base.vtable = &signal_wait_vtable;
	w->count = 0;
	w->result = 0;
	return 0;
}
