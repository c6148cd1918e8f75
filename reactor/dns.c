// SPDX-License-Identifier: MIT
/*
 * reactor/dns.c - name lookups: getaddrinfo(3) on resolver threads, as a
 * future.
 *
 * Its one job is to run getaddrinfo() on a thread other than the one that
 * polls, and to hand the answer back through a waker.  It calls
 * getaddrinfo(3), freeaddrinfo(3), pthreads, lib/ (the list, the
 * allocator, the log) and wakers; of the reactor it reads the fork
 * generation and nothing else.  tcp_host.c calls it.
 *
 * Why not getaddrinfo_a(3), which glibc offers for this very job:
 *   - Since glibc 2.34 its helper and notification threads are started by
 *     an internal pthread_create() that no sanitizer intercepts.  Their
 *     first malloc() crashes ThreadSanitizer, in any program that makes a
 *     lookup (glibc's aio has the same trouble: llvm-project issue 109742).
 *   - gai_cancel() of a request that is still queued never frees glibc's
 *     bookkeeping for it: about 150 bytes per cancelled lookup, measured
 *     with mallinfo2() on glibc 2.36.  A program that drops lookups under
 *     load would grow for ever.
 *   - SIGEV_THREAD starts a thread for every completed lookup, and when
 *     that start fails the notification is silently lost: the future would
 *     never be woken.  Its error returns are ambiguous too (after
 *     EAI_SYSTEM the notification may still come; after EAI_AGAIN the
 *     lookup runs but none comes).
 * A queue and threads of our own take fewer lines than the work-arounds.
 *
 * The resolver is process-wide: a mutex, a FIFO of queued lookups and a
 * few counters, made at the first lookup and never freed.  Threads start
 * on demand (a lookup that finds more lookups queued than threads idle
 * starts one, up to MAX_THREADS, which is what getaddrinfo_a() allows)
 * and exit after IDLE_NS without work.  They are detached: nothing waits
 * for them, and the library is linked with -z nodelete so that their code
 * stays mapped.  In a child of fork() the parent's resolver, whose lock
 * and threads are not the child's, is left alone and a new one is made.
 *
 * A request is one allocation shared by the future and the resolver: the
 * strings and hints are copied into it, and a state word (below) says who
 * owns what.  The thread that ran the lookup wakes the future's waker
 * itself: for a reactor driven through rouse_reactor_parker() that waker
 * is the reactor's own wake-up, for a threaded reactor it unparks the
 * executor.  The resolver never touches the reactor, so a lookup may
 * outlive it.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <rouse/dns.h>

#include "reactor-internal.h"

#define ROUSE__LOG_MODULE "dns"

#define MAX_THREADS 20
#define IDLE_NS INT64_C(10000000000)

/*
 * The state word of a request: two flags and a reference count.  (The
 * blocking pool's jobs hand their waker over the same way; the two
 * libraries share no code, so each has its own.)
 *
 * DONE     The outputs (addrs, gai, sys_errno) are written for good.  Set
 *          once, with release, by the side that completes the lookup: the
 *          resolver thread that ran it, or the submitter that found no
 *          thread for it.  If WAKER was set at that moment, the waker in
 *          the slot is the completer's, to wake.
 * WAKER    The slot holds a waker clone of the future's.  The future sets
 *          it after writing the slot, and clears it to take the slot back
 *          (to replace the waker, or at a drop); clearing is a
 *          compare-and-swap that fails once DONE is set, so the slot never
 *          has two owners.
 * REF_ONE  The unit of the count kept above the flags: the future holds
 *          one until it is ready or dropped, the resolver one until the
 *          lookup is complete (or cancelled in the queue).  Whoever drops
 *          the last frees the request.
 */
#define REQ_DONE 1u
#define REQ_WAKER 2u
#define REQ_REF_ONE 4u

struct resolver;

struct rouse_dns_req {
	struct rouse_link link;		/* in res->queue, under res->lock */
	struct resolver *res;
	unsigned int fork_gen;		/* see rouse__inherited() */
	atomic_uint state;		/* REQ_* above */
	struct rouse_waker waker;	/* owned as WAKER says */
	const char *host;		/* into names[], or NULL */
	const char *service;		/* likewise */
	struct addrinfo hints;
	struct addrinfo *addrs;		/* written before DONE */
	int gai;			/* written before DONE */
	int sys_errno;			/* errno, for EAI_SYSTEM */
	char names[];
};

struct resolver {
	pthread_mutex_t lock;
	pthread_cond_t work;		/* idle threads wait here */
	pthread_attr_t attr;		/* detached, every signal blocked */
	struct rouse_link queue;	/* queued lookups, oldest first */
	unsigned int queued;
	unsigned int threads;		/* started or starting, alive */
	unsigned int idle;		/* of them, waiting for work */
	unsigned int fork_gen;
};

static _Atomic(struct resolver *) the_resolver;

/* ---- requests ------------------------------------------------------- */

static void req_free(struct rouse_dns_req *req)
{
	if (req->addrs != NULL)
		freeaddrinfo(req->addrs);
	rouse__free(req);
}

static void req_release(struct rouse_dns_req *req)
{
	unsigned int old;

	/* Acq_rel: every use of req, on either side, comes before the free. */
	old = atomic_fetch_sub_explicit(&req->state, REQ_REF_ONE,
					memory_order_acq_rel);
	if (old / REQ_REF_ONE == 1)
		req_free(req);
}

/*
 * The resolver's end of a request, once its outputs are written: publish
 * them, wake the waker if the future left one, let go.
 */
static void req_complete(struct rouse_dns_req *req)
{
	unsigned int old;

	/*
	 * Release publishes the outputs to the future's acquire load; acquire
	 * makes the future's filling of the slot visible here.
	 */
	old = atomic_fetch_or_explicit(&req->state, REQ_DONE,
				       memory_order_acq_rel);
	if (old & REQ_WAKER) {
		/* Woken from a copy: a poll may be reading the slot still. */
		struct rouse_waker w = req->waker;

		rouse_waker_wake(&w);
	}
	req_release(req);
}

static void req_run(struct rouse_dns_req *req)
{
	struct addrinfo *addrs = NULL;
	int gai;

	rouse__trace("lookup %p: running", (void *)req);
	errno = 0;
	gai = getaddrinfo(req->host, req->service, &req->hints, &addrs);
	/* This thread's errno: the one place it can still be read. */
	req->sys_errno = gai == EAI_SYSTEM ? errno : 0;
	req->gai = gai;
	req->addrs = gai == 0 ? addrs : NULL;
	rouse__trace("lookup %p: done, %d", (void *)req, gai);
	req_complete(req);
}

/* ---- the resolver's queue: the caller holds res->lock ---------------- */

static struct rouse_dns_req *req_of(struct rouse_link *l)
{
	return rouse__list_entry(l, struct rouse_dns_req, link);
}

/* The oldest queued lookup, or NULL. */
static struct rouse_dns_req *queue_first(struct resolver *res)
{
	struct rouse_link *l = rouse__list_first(&res->queue);

	return l == NULL ? NULL : req_of(l);
}

static void queue_push(struct resolver *res, struct rouse_dns_req *req)
{
	rouse__list_push_back(&res->queue, &req->link);
	res->queued++;
}

/* Whether req is in the queue: no thread has taken it. */
static bool queue_has(const struct rouse_dns_req *req)
{
	return rouse__link_linked(&req->link);
}

static void queue_unlink(struct resolver *res, struct rouse_dns_req *req)
{
	rouse__list_remove(&req->link);
	res->queued--;
}

/* ---- resolver threads ----------------------------------------------- */

/*
 * Wait, with res->lock held, until a lookup is queued or the idle time
 * runs out.  Returns true when there is one to run.
 */
static bool wait_for_work(struct resolver *res)
{
	struct timespec deadline;

	deadline = rouse__ns_to_timespec(rouse__now_ns() + IDLE_NS);
	res->idle++;
	while (rouse__list_empty(&res->queue)) {
		/* A lookup queued at the last moment is still taken. */
		if (pthread_cond_timedwait(&res->work, &res->lock,
					   &deadline) == ETIMEDOUT)
			break;
	}
	res->idle--;
	return !rouse__list_empty(&res->queue);
}

static void *resolver_thread(void *arg)
{
	struct resolver *res = arg;
	struct rouse_dns_req *req;

	pthread_setname_np(pthread_self(), "rouse-dns");
	pthread_mutex_lock(&res->lock);
	do {
		while ((req = queue_first(res)) != NULL) {
			queue_unlink(res, req);
			pthread_mutex_unlock(&res->lock);
			req_run(req);
			pthread_mutex_lock(&res->lock);
		}
	} while (wait_for_work(res));
	res->threads--;
	rouse__trace("resolver thread exits, %u left", res->threads);
	pthread_mutex_unlock(&res->lock);
	return NULL;
}

/* ---- the resolver --------------------------------------------------- */

static void resolver_destroy(struct resolver *res)
{
	pthread_attr_destroy(&res->attr);
	pthread_cond_destroy(&res->work);
	pthread_mutex_destroy(&res->lock);
	rouse__free(res);
}

static int resolver_make(struct resolver **out)
{
	struct resolver *res;
	pthread_condattr_t ca;
	sigset_t all;
	int err;

	res = rouse__calloc(1, sizeof(*res));
	if (res == NULL)
		return -ENOMEM;
	res->fork_gen = rouse__fork_now();
	rouse__list_init(&res->queue);
	err = pthread_condattr_init(&ca);
	if (err != 0)
		goto fail_free;
	/* The idle deadline is on the clock that never jumps. */
	err = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (err == 0)
		err = pthread_cond_init(&res->work, &ca);
	pthread_condattr_destroy(&ca);
	if (err != 0)
		goto fail_free;
	err = pthread_mutex_init(&res->lock, NULL);
	if (err != 0)
		goto fail_work;
	err = pthread_attr_init(&res->attr);
	if (err != 0)
		goto fail_lock;
	/*
	 * Resolver threads take no asynchronous signal: a handler belongs
	 * on the program's threads, and a signal that the program blocks
	 * everywhere, to read it from a signalfd, must stay blocked here.
	 * Set in the attributes, so there is no window at the start.
	 */
	sigfillset(&all);
	err = pthread_attr_setsigmask_np(&res->attr, &all);
	if (err == 0)
		err = pthread_attr_setdetachstate(&res->attr,
						  PTHREAD_CREATE_DETACHED);
	if (err != 0)
		goto fail_attr;
	*out = res;
	return 0;

fail_attr:
	pthread_attr_destroy(&res->attr);
fail_lock:
	pthread_mutex_destroy(&res->lock);
fail_work:
	pthread_cond_destroy(&res->work);
fail_free:
	rouse__free(res);
	return -err;
}

/* This process's resolver, made at the first call (and in a fork child). */
static int resolver_get(struct resolver **out)
{
	struct resolver *res, *expected;
	int err;

	res = atomic_load_explicit(&the_resolver, memory_order_acquire);
	if (ROUSE__LIKELY(res != NULL) && !rouse__inherited(res->fork_gen)) {
		*out = res;
		return 0;
	}
	expected = res;
	err = resolver_make(&res);
	if (err < 0)
		return err;
	/* A new resolver has no thread yet: the loser frees it at once. */
	if (!atomic_compare_exchange_strong_explicit(&the_resolver, &expected,
						     res, memory_order_acq_rel,
						     memory_order_acquire)) {
		resolver_destroy(res);
		res = expected;
	}
	*out = res;
	return 0;
}

/*
 * Queue req, and start a thread for it if the queued lookups outnumber
 * the idle threads.  Returns 0, or -errno when no thread could be started
 * and none is left to run req (req is then out of the queue again, and
 * other lookups that were waiting for a thread complete with the error).
 */
static int resolver_submit(struct resolver *res, struct rouse_dns_req *req)
{
	struct rouse_link orphans, *l;
	bool start, mine = false;
	pthread_t t;
	int err;

	pthread_mutex_lock(&res->lock);
	queue_push(res, req);
	if (res->idle > 0)
		pthread_cond_signal(&res->work);
	start = res->queued > res->idle && res->threads < MAX_THREADS;
	if (start)
		res->threads++;
	pthread_mutex_unlock(&res->lock);
	if (!start)
		return 0;
	err = pthread_create(&t, &res->attr, resolver_thread, res);
	if (ROUSE__LIKELY(err == 0))
		return 0;

	rouse__warn("pthread_create: error %d", err);
	rouse__list_init(&orphans);
	pthread_mutex_lock(&res->lock);
	res->threads--;
	/* With no thread left, nothing would ever run what is queued. */
	if (res->threads == 0) {
		mine = queue_has(req);
		if (mine)
			queue_unlink(res, req);
		rouse__list_splice_back(&orphans, &res->queue);
		res->queued = 0;
	}
	pthread_mutex_unlock(&res->lock);
	/* Wakers may do anything: complete the others without the lock. */
	while ((l = rouse__list_pop_front(&orphans)) != NULL) {
		struct rouse_dns_req *o = req_of(l);

		o->addrs = NULL;
		o->gai = EAI_SYSTEM;
		o->sys_errno = err;
		req_complete(o);
	}
	/* Not in the queue, and not mine: a thread ran it, and has left. */
	return mine ? -err : 0;
}

/* ---- the future ----------------------------------------------------- */

/* getaddrinfo()'s code as -errno; see ERRORS in rouse_dns_lookup_init(3). */
static int gai_to_errno(int gai, int sys_errno)
{
	switch (gai) {
	case 0:
		return 0;
	case EAI_NONAME:
		return -ENOENT;
	case EAI_NODATA:
	case EAI_ADDRFAMILY:
		return -ENODATA;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_FAIL:
		return -EIO;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SERVICE:
		return -ESRCH;
	case EAI_FAMILY:
		return -EAFNOSUPPORT;
	case EAI_SOCKTYPE:
		return -ESOCKTNOSUPPORT;
	case EAI_BADFLAGS:
		return -EINVAL;
	case EAI_IDN_ENCODE:
		return -EILSEQ;
	case EAI_SYSTEM:
		return sys_errno > 0 ? -sys_errno : -EIO;
	default:
		return -EIO;
	}
}

/* Move req's outputs into f and let go of req. */
static enum rouse_poll lookup_ready(struct rouse_dns_lookup *f,
				    struct rouse_dns_req *req)
{
	f->gai_error = req->gai;
	f->result = gai_to_errno(req->gai, req->sys_errno);
	f->addrs = req->addrs;
	req->addrs = NULL;
	f->req = NULL;
	req_release(req);
	return ROUSE_READY;
}

static enum rouse_poll lookup_poll(struct rouse_future *fut,
				   struct rouse_context *cx)
{
	struct rouse_dns_lookup *f = (struct rouse_dns_lookup *)fut;
	struct rouse_dns_req *req = f->req;
	unsigned int s;

	if (req == NULL)
		return ROUSE_READY;
	if (rouse__inherited(req->fork_gen)) {
		/*
		 * The parent's lookup: the thread that would answer it is
		 * not in this process, and the parent's resolver may still
		 * hold it.  Let go of it without touching it (a leak of one
		 * request, in the child only).
		 */
		f->req = NULL;
		f->result = -ECHILD;
		return ROUSE_READY;
	}
	/* Acquire: pairs with req_complete(), for the outputs. */
	s = atomic_load_explicit(&req->state, memory_order_acquire);
	for (;;) {
		if (s & REQ_DONE)
			return lookup_ready(f, req);
		if (!(s & REQ_WAKER))
			break;
		if (rouse_waker_will_wake(&req->waker, cx->waker))
			return ROUSE_PENDING;
		/* Another waker: reclaim the slot, unless DONE beat us. */
		if (atomic_compare_exchange_weak_explicit(
			    &req->state, &s, s & ~REQ_WAKER,
			    memory_order_acquire, memory_order_acquire)) {
			rouse_waker_drop(&req->waker);
			break;
		}
	}
	/* No WAKER and no DONE: nobody else reads or writes the slot. */
	rouse_waker_clone(cx->waker, &req->waker);
	/* Release: whoever sees WAKER sees the clone in the slot. */
	s = atomic_fetch_or_explicit(&req->state, REQ_WAKER,
				     memory_order_acq_rel);
	if (s & REQ_DONE) {
		/* Completed in between, before WAKER: nobody woke this one. */
		rouse_waker_drop(&req->waker);
		return lookup_ready(f, req);
	}
	return ROUSE_PENDING;
}

static void lookup_drop(struct rouse_future *fut)
{
	struct rouse_dns_lookup *f = (struct rouse_dns_lookup *)fut;
	struct rouse_dns_req *req = f->req;
	struct resolver *res;
	unsigned int s;
	bool queued;

	if (req == NULL)
		return;
	f->req = NULL;
	/* The parent's (see lookup_poll()): not ours to free. */
	if (rouse__inherited(req->fork_gen))
		return;
	s = atomic_load_explicit(&req->state, memory_order_acquire);
	if (!(s & REQ_DONE)) {
		/* Only the lock says whether a thread has taken it. */
		res = req->res;
		pthread_mutex_lock(&res->lock);
		queued = queue_has(req);
		if (queued)
			queue_unlink(res, req);
		pthread_mutex_unlock(&res->lock);
		if (queued) {
			/*
			 * Both references are ours now.  WAKER only moves
			 * here, and DONE cannot come: s is still true.
			 */
			rouse__trace("lookup %p: cancelled", (void *)req);
			if (s & REQ_WAKER)
				rouse_waker_drop(&req->waker);
			req_free(req);
			return;
		}
	}
	/*
	 * Running or complete: its thread sees it through and lets go of its
	 * own reference.  Our waker, if we still own it (no DONE yet), goes
	 * now; one that the completer owns is its to wake.
	 */
	rouse__trace("lookup %p: dropped, %s", (void *)req,
		     s & REQ_DONE ? "done" : "running");
	while ((s & REQ_WAKER) && !(s & REQ_DONE)) {
		if (atomic_compare_exchange_weak_explicit(
			    &req->state, &s, s & ~REQ_WAKER,
			    memory_order_acquire, memory_order_acquire)) {
			rouse_waker_drop(&req->waker);
			break;
		}
	}
	req_release(req);
}

static const struct rouse_future_vtable lookup_vtable = {
	.poll = lookup_poll,
	.drop = lookup_drop,
};

ROUSE__PUBLIC int rouse_dns_lookup_init(struct rouse_dns_lookup *f,
					struct rouse_reactor *r,
					const char *host, const char *service,
					const struct addrinfo *hints)
{
	struct rouse_dns_req *req;
	struct resolver *res;
	size_t hlen, slen;
	char *p;
	int err;

	if (f == NULL || r == NULL || (host == NULL && service == NULL))
		return -EINVAL;
	if (rouse__inherited(r->fork_gen))
		return -ECHILD;
	err = resolver_get(&res);
	if (err < 0)
		return err;
	hlen = host != NULL ? strlen(host) + 1 : 0;
	slen = service != NULL ? strlen(service) + 1 : 0;
	req = rouse__malloc(sizeof(*req) + hlen + slen);
	if (req == NULL)
		return -ENOMEM;
	memset(req, 0, sizeof(*req));
	req->res = res;
	req->fork_gen = res->fork_gen;
	atomic_init(&req->state, 2 * REQ_REF_ONE);
	p = req->names;
	if (host != NULL) {
		req->host = memcpy(p, host, hlen);
		p += hlen;
	}
	if (service != NULL)
		req->service = memcpy(p, service, slen);
	/*
	 * Only the four fields that ask something: the rest of a hints
	 * struct must be zero, and one reused from an answer is not.
	 */
	if (hints != NULL) {
		req->hints.ai_flags = hints->ai_flags;
		req->hints.ai_family = hints->ai_family;
		req->hints.ai_socktype = hints->ai_socktype;
		req->hints.ai_protocol = hints->ai_protocol;
	} else {
		req->hints.ai_family = AF_UNSPEC;
		req->hints.ai_socktype = SOCK_STREAM;
	}
	rouse__trace("lookup %p: %s %s", (void *)req, host ? host : "-",
		     service ? service : "-");
	err = resolver_submit(res, req);
	if (err < 0) {
		rouse__free(req);
		return err;
	}
	f->base.vtable = &lookup_vtable;
	f->req = req;
	f->addrs = NULL;
	f->gai_error = 0;
	f->result = 0;
	return 0;
}

ROUSE__PUBLIC void rouse_dns_free(struct addrinfo *addrs)
{
	if (addrs != NULL)
		freeaddrinfo(addrs);
}
