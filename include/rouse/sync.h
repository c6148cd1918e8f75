/* SPDX-License-Identifier: MIT */
/*
 * rouse/sync.h - synchronisation between tasks that never blocks a thread:
 * a oneshot channel, an mpsc channel (bounded or unbounded), a FIFO-fair
 * async mutex, a FIFO semaphore, notify, an atomic waker slot, a
 * broadcast channel, a watch channel, a barrier, a FIFO-fair read-write
 * lock, and cancellation tokens.
 *
 * The shared objects are opaque and heap-allocated.  Waiting is done by
 * futures in caller-provided structs (base first), initialised by the
 * *_init functions: poll them with any executor, read their outputs once
 * ready, and drop them with rouse_future_drop() exactly once.  A pending
 * future links the intrusive node inside it into its object, so waiting
 * allocates nothing; the future must not move from its first poll until
 * it is dropped.  Dropping a pending future takes it out of the queue and
 * passes on whatever had been handed to it (see each man page).
 *
 * Fields marked private belong to the library; their layout is fixed so
 * that callers can allocate the structs.
 */
#ifndef ROUSE_SYNC_H
#define ROUSE_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include <rouse/future.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The queue node of a pending future; every field is private. */
struct rouse_sync_waiter {
	struct rouse_link link;		/* in its object's queue */
	struct rouse_waker waker;	/* the clone to wake, or vtable NULL */
	uint64_t aux;			/* per primitive: epoch, permits */
	int state;
};

/* ---- oneshot: one value, once ---------------------------------------- */

struct rouse_oneshot;

int rouse_oneshot_new(size_t elem_size, struct rouse_oneshot **out);
/* Sender end: deliver *value (elem_size bytes) and release the end. */
int rouse_oneshot_send(struct rouse_oneshot *o, const void *value);
/* Sender end: release it without a value; the receiver gets -EPIPE. */
int rouse_oneshot_close(struct rouse_oneshot *o);
/* Receiver end: take the value now: 0, -EAGAIN or -EPIPE. */
int rouse_oneshot_try_recv(struct rouse_oneshot *o, void *out);
/* Receiver end: release it; a later send fails with -EPIPE. */
int rouse_oneshot_free(struct rouse_oneshot *o);

/* Ready with the value copied to out (result 0), or result -EPIPE. */
struct rouse_oneshot_recv {
	struct rouse_future base;
	struct rouse_oneshot *oneshot;	/* private */
	void *out;			/* private */
	struct rouse_sync_waiter node;	/* private */
	int result;			/* output */
};

int rouse_oneshot_recv_init(struct rouse_oneshot_recv *f,
			    struct rouse_oneshot *o, void *out);

/* ---- mpsc: many senders, one receiver -------------------------------- */

struct rouse_mpsc;

/* capacity 0: unbounded.  The caller holds one sender and the receiver. */
int rouse_mpsc_new(size_t elem_size, size_t capacity, struct rouse_mpsc **out);
int rouse_mpsc_sender_clone(struct rouse_mpsc *m);
int rouse_mpsc_sender_release(struct rouse_mpsc *m);
int rouse_mpsc_try_send(struct rouse_mpsc *m, const void *value);
int rouse_mpsc_try_recv(struct rouse_mpsc *m, void *out);
/* Receiver: refuse further sends; what is queued can still be received. */
int rouse_mpsc_close(struct rouse_mpsc *m);
/* Receiver: close, discard what is queued, release the receiver end. */
int rouse_mpsc_free(struct rouse_mpsc *m);

/* Ready once *value was queued (result 0), or result -EPIPE / -ENOMEM. */
struct rouse_mpsc_send {
	struct rouse_future base;
	struct rouse_mpsc *mpsc;	/* private */
	const void *value;		/* private */
	struct rouse_sync_waiter node;	/* private */
	int result;			/* output */
};

/* Ready with an element copied to out (result 0), or result -EPIPE. */
struct rouse_mpsc_recv {
	struct rouse_future base;
	struct rouse_mpsc *mpsc;	/* private */
	void *out;			/* private */
	struct rouse_sync_waiter node;	/* private */
	int result;			/* output */
};

int rouse_mpsc_send_init(struct rouse_mpsc_send *f, struct rouse_mpsc *m,
			 const void *value);
int rouse_mpsc_recv_init(struct rouse_mpsc_recv *f, struct rouse_mpsc *m,
			 void *out);

/* ---- mutex: FIFO fair, held across awaits ---------------------------- */

struct rouse_mutex;

int rouse_mutex_new(struct rouse_mutex **out);
int rouse_mutex_free(struct rouse_mutex *m);
int rouse_mutex_try_lock(struct rouse_mutex *m);
int rouse_mutex_unlock(struct rouse_mutex *m);

/* Ready once the caller holds the mutex. */
struct rouse_mutex_lock {
	struct rouse_future base;
	struct rouse_mutex *mutex;	/* private */
	struct rouse_sync_waiter node;	/* private */
};

int rouse_mutex_lock_init(struct rouse_mutex_lock *f, struct rouse_mutex *m);

/* ---- semaphore: counted permits, FIFO -------------------------------- */

struct rouse_semaphore;

int rouse_semaphore_new(size_t permits, struct rouse_semaphore **out);
int rouse_semaphore_free(struct rouse_semaphore *s);
int rouse_semaphore_try_acquire(struct rouse_semaphore *s, size_t n);
int rouse_semaphore_release(struct rouse_semaphore *s, size_t n);
/* Permits free now (a snapshot), or -EINVAL. */
long rouse_semaphore_available(struct rouse_semaphore *s);

/* Ready once the caller holds permits permits. */
struct rouse_semaphore_acquire {
	struct rouse_future base;
	struct rouse_semaphore *sem;	/* private */
	size_t permits;			/* private */
	struct rouse_sync_waiter node;	/* private */
};

int rouse_semaphore_acquire_init(struct rouse_semaphore_acquire *f,
				 struct rouse_semaphore *s, size_t n);

/* ---- notify: wake one waiter or all ---------------------------------- */

struct rouse_notify;

int rouse_notify_new(struct rouse_notify **out);
int rouse_notify_free(struct rouse_notify *n);
/* Wake the oldest waiter, or store one permit when none waits. */
int rouse_notify_one(struct rouse_notify *n);
/* Wake every current waiter; store nothing. */
int rouse_notify_all(struct rouse_notify *n);

/* Ready once notified. */
struct rouse_notify_wait {
	struct rouse_future base;
	struct rouse_notify *notify;	/* private */
	struct rouse_sync_waiter node;	/* private */
};

int rouse_notify_wait_init(struct rouse_notify_wait *f, struct rouse_notify *n);

/* ---- atomic waker: one waker slot, lock-free ------------------------- */

/* Initialise with rouse_atomic_waker_init(); both fields are private. */
struct rouse_atomic_waker {
	unsigned int state;
	struct rouse_waker waker;
};

int rouse_atomic_waker_init(struct rouse_atomic_waker *aw);
int rouse_atomic_waker_register(struct rouse_atomic_waker *aw,
				const struct rouse_waker *w);
/* Wake and release the stored waker: 1 if there was one, else 0. */
int rouse_atomic_waker_wake(struct rouse_atomic_waker *aw);
/* Move the stored waker to *out: 1 if there was one, else 0. */
int rouse_atomic_waker_take(struct rouse_atomic_waker *aw,
			    struct rouse_waker *out);
int rouse_atomic_waker_destroy(struct rouse_atomic_waker *aw);

/* ---- broadcast: every receiver sees every value ---------------------- */

struct rouse_broadcast;

/*
 * A receiver: caller-owned, set up by rouse_broadcast_subscribe(); every
 * field is private.
 */
struct rouse_broadcast_receiver {
	struct rouse_broadcast *chan;
	uint64_t next;			/* position of its next value */
	unsigned long pending;		/* its queued or woken futures */
};

/* capacity >= 1 values are kept.  The caller holds one sender. */
int rouse_broadcast_new(size_t elem_size, size_t capacity,
			struct rouse_broadcast **out);
int rouse_broadcast_sender_clone(struct rouse_broadcast *b);
/* The last one ends the stream: receivers drain, then get -EPIPE. */
int rouse_broadcast_sender_release(struct rouse_broadcast *b);
/* Never waits: overwrites the oldest.  Receivers subscribed, or -errno. */
int rouse_broadcast_send(struct rouse_broadcast *b, const void *value);
/* rx sees the values sent from now on. */
int rouse_broadcast_subscribe(struct rouse_broadcast *b,
			      struct rouse_broadcast_receiver *rx);
int rouse_broadcast_unsubscribe(struct rouse_broadcast_receiver *rx);
/* 0, -EAGAIN, -EPIPE, or -EOVERFLOW with *missed (may be NULL) set. */
int rouse_broadcast_try_recv(struct rouse_broadcast_receiver *rx, void *out,
			     uint64_t *missed);

/*
 * Ready with a value copied to out (result 0), result -EOVERFLOW with
 * missed set (rx fell behind; the next receive gets the oldest value
 * kept), or result -EPIPE (every sender is gone and rx has drained).
 */
struct rouse_broadcast_recv {
	struct rouse_future base;
	struct rouse_broadcast_receiver *rx;	/* private */
	void *out;				/* private */
	struct rouse_sync_waiter node;		/* private */
	int result;				/* output */
	uint64_t missed;			/* output */
};

int rouse_broadcast_recv_init(struct rouse_broadcast_recv *f,
			      struct rouse_broadcast_receiver *rx, void *out);

/* ---- watch: the latest value, and news of a newer one ---------------- */

struct rouse_watch;

/* A receiver: caller-owned, set up by rouse_watch_subscribe(). */
struct rouse_watch_receiver {
	struct rouse_watch *chan;	/* private */
	uint64_t seen;			/* private: version it last saw */
	unsigned long pending;		/* private */
};

/* *initial (elem_size bytes) is version 0.  The caller is the sender. */
int rouse_watch_new(size_t elem_size, const void *initial,
		    struct rouse_watch **out);
/* Sender: replace the value with *value, a new version. */
int rouse_watch_send(struct rouse_watch *w, const void *value);
/* Sender: release the sender end; changed futures end with -EPIPE. */
int rouse_watch_close(struct rouse_watch *w);
/* rx has seen the current version. */
int rouse_watch_subscribe(struct rouse_watch *w,
			  struct rouse_watch_receiver *rx);
int rouse_watch_unsubscribe(struct rouse_watch_receiver *rx);
/* Copy the latest value (out may be NULL) and see it: 1 if it was new. */
int rouse_watch_read(struct rouse_watch_receiver *rx, void *out);
/* 1: a version newer than rx's is there; 0: not yet; -EPIPE: none will be. */
int rouse_watch_has_changed(struct rouse_watch_receiver *rx);

/*
 * Ready once a version newer than the one rx last saw is there: it is
 * then seen, copied to out unless out is NULL, and result is 0.  Result
 * -EPIPE: the sender is gone and rx has seen the last version.
 */
struct rouse_watch_changed {
	struct rouse_future base;
	struct rouse_watch_receiver *rx;	/* private */
	void *out;				/* private */
	struct rouse_sync_waiter node;		/* private */
	int result;				/* output */
	uint64_t version;			/* output: with result 0 */
};

int rouse_watch_changed_init(struct rouse_watch_changed *f,
			     struct rouse_watch_receiver *rx, void *out);

/* ---- barrier: N parties meet, then go on together -------------------- */

struct rouse_barrier;

int rouse_barrier_new(size_t parties, struct rouse_barrier **out);
int rouse_barrier_free(struct rouse_barrier *b);

/* Ready once parties waits have arrived; leader is 1 for one of them. */
struct rouse_barrier_wait {
	struct rouse_future base;
	struct rouse_barrier *barrier;	/* private */
	struct rouse_sync_waiter node;	/* private */
	int leader;			/* output */
};

int rouse_barrier_wait_init(struct rouse_barrier_wait *f,
			    struct rouse_barrier *b);

/* ---- rwlock: many readers or one writer, FIFO fair ------------------- */

struct rouse_rwlock;

int rouse_rwlock_new(struct rouse_rwlock **out);
int rouse_rwlock_free(struct rouse_rwlock *l);
int rouse_rwlock_try_read(struct rouse_rwlock *l);
int rouse_rwlock_try_write(struct rouse_rwlock *l);
int rouse_rwlock_read_unlock(struct rouse_rwlock *l);
int rouse_rwlock_write_unlock(struct rouse_rwlock *l);

/* Ready once the caller holds the lock for reading. */
struct rouse_rwlock_read {
	struct rouse_future base;
	struct rouse_rwlock *lock;	/* private */
	struct rouse_sync_waiter node;	/* private */
};

/* Ready once the caller holds the lock for writing. */
struct rouse_rwlock_write {
	struct rouse_future base;
	struct rouse_rwlock *lock;	/* private */
	struct rouse_sync_waiter node;	/* private */
};

int rouse_rwlock_read_init(struct rouse_rwlock_read *f, struct rouse_rwlock *l);
int rouse_rwlock_write_init(struct rouse_rwlock_write *f,
			    struct rouse_rwlock *l);

/* ---- cancellation tokens: a tree, cancelled from the top down -------- */

/* Reference counted; a child holds a reference to its parent. */
struct rouse_cancel_token;

int rouse_cancel_token_new(struct rouse_cancel_token **out);
/* A new token, cancelled with parent (at once if parent is). */
int rouse_cancel_token_child(struct rouse_cancel_token *parent,
			     struct rouse_cancel_token **out);
/* One more reference; rouse_cancel_token_free() releases one. */
int rouse_cancel_token_clone(struct rouse_cancel_token *t);
int rouse_cancel_token_free(struct rouse_cancel_token *t);
/*
 * Cancel t and its descendants.  Async-signal-safe: the waits are woken
 * by the library's wake-up thread (rouse_cancel_token_cancel(3)).
 */
int rouse_cancel_token_cancel(struct rouse_cancel_token *t);
/* 1 if t or an ancestor was cancelled, else 0.  Async-signal-safe. */
int rouse_cancel_token_is_cancelled(struct rouse_cancel_token *t);

/* Ready once the token is cancelled; holds a reference to it. */
struct rouse_cancel_token_wait {
	struct rouse_future base;
	struct rouse_cancel_token *token;	/* private */
	struct rouse_sync_waiter node;		/* private */
};

int rouse_cancel_token_wait_init(struct rouse_cancel_token_wait *f,
				 struct rouse_cancel_token *t);

#ifdef __cplusplus
}
#endif

#endif /* ROUSE_SYNC_H */
