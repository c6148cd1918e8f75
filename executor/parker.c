// SPDX-License-Identifier: MIT
/*
 * executor/parker.c - the per-thread eventfd parker and its waker.  It
 * calls lib/ (the wake word, the allocator, the log) and the C library;
 * nothing else of the executor.  block_on.c, current.c and multi.c reach
 * it through rouse_thread_parker(), and public.c reads its counters.
 *
 * Each thread that blocks in rouse_block_on() gets one parker: a blocking
 * eventfd and a wake word (lib/wake.h, where the state machine, the
 * argument that no wake is lost and the memory orderings are written
 * down).  unpark notifies the word and writes the eventfd only when the
 * thread was really parked; a wake that lands while the thread is polling
 * (from the thread itself or from any other) is one atomic exchange and
 * no system call.
 *
 * Every write is paired with exactly one read: a write happens only on a
 * PARKED -> NOTIFIED transition, and each park episode ends only after it
 * has read that write's token (even when the park timed out meanwhile).
 * The eventfd therefore never holds a stale token for a later park.
 *
 * The parker is reference counted: the thread holds one reference, every
 * waker handed out holds one.  A waker that outlives the thread keeps the
 * eventfd open and the word in memory; waking it then only stores
 * NOTIFIED (the word is never PARKED again), and dropping the last one
 * closes the eventfd.
 *
 * The read and the write below are cancellation points; cancellation is
 * held off around them, so that a cancelled thread can never leave the
 * word NOTIFIED with its token unwritten.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "executor-internal.h"
#include "../lib/wake.h"

#define ROUSE__LOG_MODULE "executor"

struct thread_parker {
	struct rouse__wakeword word;	/* the thread is its owner */
	atomic_uint refs;	/* the owning thread's + one per waker */
	int efd;		/* blocking eventfd, close-on-exec */
	pid_t tid;		/* owner, for the log */
};

atomic_uint_fast64_t rouse__exec_stat_parks;
atomic_uint_fast64_t rouse__exec_stat_eventfd_writes;

static ROUSE__TLS struct thread_parker *tls_parker;
static pthread_key_t parker_key;
static pthread_once_t parker_key_once = PTHREAD_ONCE_INIT;

static const struct rouse_waker_vtable parker_waker_vtable;
static const struct rouse_parker_vtable thread_parker_vtable;

static void parker_release(struct thread_parker *p)
{
	/*
	 * Release: every use of p by this reference happens before the
	 * free; acquire on the last drop, so the free comes after all of
	 * them.  (acq_rel rather than release plus an acquire fence, which
	 * ThreadSanitizer does not model.)
	 */
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
		return;
	rouse__trace("parker: eventfd %d of thread %d closed", p->efd,
		     (int)p->tid);
	close(p->efd);
	rouse__free(p);
}

/* Runs when a thread that had a parker exits: drop the thread's reference. */
static void parker_thread_exit(void *arg)
{
	tls_parker = NULL;
	parker_release(arg);
}

/* Drop the calling thread's reference to its parker, and forget it. */
static void parker_forget_current(void)
{
	struct thread_parker *p = tls_parker;

	if (p == NULL)
		return;
	tls_parker = NULL;
	pthread_setspecific(parker_key, NULL);
	parker_release(p);
}

/*
 * At exit, release the exiting thread's parker too: pthread key
 * destructors do not run for the thread that calls exit(), and a leak
 * checker should find nothing of ours left.  (The library is linked with
 * -z nodelete, so this runs at exit only, never at a dlclose().)
 */
__attribute__((destructor))
static void parker_process_exit(void)
{
	parker_forget_current();
}

/*
 * In a child of fork(), the forking thread's parker is a copy whose
 * eventfd is shared with the parent: a park in one process could eat a
 * wake meant for the other.  The child lets go of its copy (closing its
 * descriptor once no waker in the child refers to it) and makes a new
 * parker at its next block_on.
 */
static void parker_atfork_child(void)
{
	parker_forget_current();
}

static int parker_key_err;

static void parker_make_key(void)
{
	/* Fails only when the process is out of keys (EAGAIN). */
	parker_key_err = -pthread_key_create(&parker_key, parker_thread_exit);
	if (parker_key_err == 0)
		parker_key_err = -pthread_atfork(NULL, NULL,
						 parker_atfork_child);
}

static int parker_get(struct thread_parker **out)
{
	struct thread_parker *p = tls_parker;

	if (ROUSE__LIKELY(p != NULL)) {
		*out = p;
		return 0;
	}
	pthread_once(&parker_key_once, parker_make_key);
	if (parker_key_err < 0)
		return parker_key_err;
	p = rouse__malloc(sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->efd = eventfd(0, EFD_CLOEXEC);
	if (p->efd < 0) {
		int err = -errno;

		rouse__free(p);
		return err;
	}
	rouse__wakeword_init(&p->word);
	atomic_init(&p->refs, 1);
	p->tid = (pid_t)syscall(SYS_gettid);
	if (pthread_setspecific(parker_key, p) != 0) {
		close(p->efd);
		rouse__free(p);
		return -ENOMEM;
	}
	tls_parker = p;
	rouse__trace("parker: thread %d created eventfd %d", (int)p->tid,
		     p->efd);
	*out = p;
	return 0;
}

/*
 * ThreadSanitizer (GCC 12's) runs a signal's handler inside a blocked
 * poll() or epoll_wait(), but defers it while read() blocks; with
 * SA_RESTART the read then resumes and the handler waits for the next
 * token, which may never come (a rouse_signal listener, whose handler is
 * what would send it).  Under TSan the park therefore blocks in poll() and
 * reads only a token that is there.
 */
#if defined(__SANITIZE_THREAD__)
#define PARK_POLL_FIRST 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PARK_POLL_FIRST 1
#endif
#endif

/* Read one token from the eventfd, blocking; EINTR is retried. */
static void parker_consume(struct thread_parker *p)
{
	uint64_t v;
	int state;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state);
#ifdef PARK_POLL_FIRST
	{
		struct pollfd pfd = { .fd = p->efd, .events = POLLIN };

		while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
			;
	}
#endif
	while (read(p->efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	pthread_setcancelstate(state, NULL);
}

/* Wait until the eventfd is readable or deadline (monotonic ns) passes. */
static int parker_wait_until(struct thread_parker *p, int64_t deadline)
{
	struct pollfd pfd = { .fd = p->efd, .events = POLLIN };
	int state, err = 0;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state);
	while (err == 0) {
		int64_t left = deadline - rouse__now_ns();
		struct timespec ts;
		int n;

		if (left <= 0) {
			err = -ETIMEDOUT;
			break;
		}
		ts = rouse__ns_to_timespec(left);
		n = ppoll(&pfd, 1, &ts, NULL);
		if (n > 0)
			break;
		if (n == 0)
			err = -ETIMEDOUT;
		else if (errno != EINTR)
			err = -errno;
	}
	pthread_setcancelstate(state, NULL);
	return err;
}

static int parker_park(void *data, int64_t timeout_ns)
{
	struct thread_parker *p = data;
	int64_t deadline = 0;
	int err;

	/* Only take a notification that is already there. */
	if (timeout_ns == 0)
		return rouse__wakeword_take(&p->word) ? 0 : -ETIMEDOUT;

	/* A wake came while we were running: poll again, no system call. */
	if (!rouse__wakeword_try_park(&p->word)) {
		rouse__trace("park: thread %d already notified", (int)p->tid);
		return 0;
	}

	atomic_fetch_add_explicit(&rouse__exec_stat_parks, 1,
				  memory_order_relaxed);
	if (timeout_ns > 0) {
		int64_t now = rouse__now_ns();

		deadline = timeout_ns > INT64_MAX - now ? INT64_MAX
							: now + timeout_ns;
	}
	rouse__trace("park: thread %d blocks on eventfd %d", (int)p->tid,
		     p->efd);
	for (;;) {
		if (timeout_ns < 0) {
			parker_consume(p);
			err = 0;
		} else {
			err = parker_wait_until(p, deadline);
			if (err == 0)
				parker_consume(p);
		}
		if (err == 0) {
			if (rouse__wakeword_take(&p->word)) {
				rouse__trace("park: thread %d unparked",
					     (int)p->tid);
				return 0;
			}
			/*
			 * A token whose wake did not set NOTIFIED for us:
			 * only a fork child waking a copy of this parker
			 * through the shared eventfd can send one.  Wait on.
			 */
			continue;
		}
		/* Time is up (or ppoll failed). */
		if (rouse__wakeword_cancel_park(&p->word)) {
			rouse__trace("park: thread %d timed out", (int)p->tid);
			return err;
		}
		/*
		 * An unpark saw PARKED and has written, or is about to
		 * write, its token.  Take it so that it cannot wake a later
		 * park for nothing.
		 */
		parker_consume(p);
		rouse__wakeword_clear(&p->word);
		rouse__trace("park: thread %d unparked at its timeout",
			     (int)p->tid);
		return 0;
	}
}

static void parker_unpark(void *data)
{
	struct thread_parker *p = data;
	uint64_t one = 1;
	int state;

	if (!rouse__wakeword_notify(&p->word)) {
		rouse__trace("wake: thread %d is running, no syscall",
			     (int)p->tid);
		return;
	}
	rouse__trace("wake: unpark thread %d (eventfd %d)", (int)p->tid,
		     p->efd);
	atomic_fetch_add_explicit(&rouse__exec_stat_eventfd_writes, 1,
				  memory_order_relaxed);
	/* An eventfd write of 1 cannot fail while the counter is small. */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state);
	while (write(p->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	pthread_setcancelstate(state, NULL);
}

static struct rouse_waker parker_waker_clone(void *data)
{
	struct thread_parker *p = data;
	struct rouse_waker w = { p, &parker_waker_vtable };

	/* Relaxed: the caller already holds a reference, as in any refcount. */
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	rouse__trace("waker clone: thread %d", (int)p->tid);
	return w;
}

static void parker_waker_drop(void *data)
{
	struct thread_parker *p = data;

	rouse__trace("waker drop: thread %d", (int)p->tid);
	parker_release(p);
}

static void parker_waker_wake_by_ref(void *data)
{
	rouse__trace("waker wake_by_ref: thread %d",
		     (int)((struct thread_parker *)data)->tid);
	parker_unpark(data);
}

static void parker_waker_wake(void *data)
{
	rouse__trace("waker wake: thread %d",
		     (int)((struct thread_parker *)data)->tid);
	parker_unpark(data);
	parker_waker_drop(data);
}

static const struct rouse_waker_vtable parker_waker_vtable = {
	.clone = parker_waker_clone,
	.wake = parker_waker_wake,
	.wake_by_ref = parker_waker_wake_by_ref,
	.drop = parker_waker_drop,
};

static int parker_new_waker(void *data, struct rouse_waker *out)
{
	struct thread_parker *p = data;

	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	out->data = p;
	out->vtable = &parker_waker_vtable;
	rouse__trace("waker create: thread %d", (int)p->tid);
	return 0;
}

static const struct rouse_parker_vtable thread_parker_vtable = {
	.park = parker_park,
	.unpark = parker_unpark,
	.waker = parker_new_waker,
};

ROUSE__PUBLIC int rouse_thread_parker(struct rouse_parker *out)
{
	struct thread_parker *p = NULL;
	int err;

	if (out == NULL)
		return -EINVAL;
	err = parker_get(&p);
	if (err < 0)
		return err;
	out->data = p;
	out->vtable = &thread_parker_vtable;
	return 0;
}
