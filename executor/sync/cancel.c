// SPDX-License-Identifier: MIT
/*
 * executor/sync/cancel.c - cancellation tokens: a tree of flags, cancelled
 * from any node down through its descendants, from any thread or from a
 * signal handler, with futures that wait for the cancel.  It calls
 * sync-internal.h (the waiter queue, the wake batch), lib/, pthreads and
 * a POSIX semaphore; the cancel itself calls only atomics and sem_post().
 * Its one thread is the wake-up thread (below).
 *
 * Being cancelled is a property of the path to the root: a token is
 * cancelled when its own flag or that of an ancestor is set.  So a cancel
 * sets one flag and touches nothing else in the tree, which it could not
 * walk without the tree's lock; is_cancelled walks up, which needs no lock
 * because a token holds a reference to its parent for its whole life
 * (parent pointers never change, and the memory above a live token stays).
 * A child made under a cancelled ancestor is therefore born cancelled, and
 * a cancel never reaches upwards.
 *
 * The waits of a token queue on it, under the lock of the tree's root,
 * which also guards every token's list of children.  Waking them is the
 * part that a signal handler cannot do: a waker may take an executor's
 * lock that the interrupted thread holds, or free memory.  So the cancel
 * does only what is async-signal-safe, in this order:
 *
 *   1. exchange its own flag to 1 (a second cancel stops here, so the
 *      token is handed on at most once);
 *   2. take a reference for the wake-up thread (an atomic addition);
 *   3. push the token on the wake-up stack, a lock-free stack whose only
 *      pop takes it whole with one exchange, so there is no ABA;
 *   4. sem_post(3) the wake-up thread's semaphore.
 *
 * The wake-up thread is one detached thread per process, started by the
 * first token and never stopped, with every signal blocked.  It takes the
 * stack, oldest cancel first, and for each token walks its subtree under
 * the root's lock, moving the wakers of the queued waits into a batch
 * (GRANTED) and waking the batch after the unlock, then drops its
 * reference.  A wait that a walk has not reached yet is not late: its
 * poll looks at the flags, under the same lock, and is ready.  A wait
 * that queues after the flag was set sees it; one that queued before is
 * in the queue when the walk, which starts after the flag was set, takes
 * the lock.  Every queued wait is therefore woken exactly once (handing it
 * out unlinks it), and no wait is left behind.
 *
 * When a batch is full the walk drops the lock to wake it.  It pins the
 * token it stopped at with a reference first (that token has queued waits,
 * which hold references to it, so its count is not 0 and cannot be
 * revived from 0), so the token stays in the tree and the walk resumes
 * there; the reference is let go outside the lock, since the last one
 * takes the lock to unlink the token from its parent.
 *
 * In a child of fork(2) the wake-up thread is gone.  The first call that
 * may start it (new, child, wait_init) starts another; cancels made in
 * the child before that wait on the stack for it.
 *
 * Known limit: one lock per tree.  Every wait and every child made in a
 * tree takes the root's lock, so a tree shared by very many busy tasks
 * contends on it; a lock per token would need a walk that locks hand over
 * hand.
 */
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>

#include "sync-internal.h"

#define ROUSE__LOG_MODULE "cancel"

struct rouse_cancel_token {
	/* Atomic, since a signal handler reads and writes them. */
	int cancelled;		/* this token's own flag: set once */
	unsigned long refs;
	/* The wake-up stack: written by the one cancel that pushes it. */
	struct rouse_cancel_token *wake_next;
	/* Fixed at creation. */
	struct rouse_cancel_token *parent;	/* holds a reference, or NULL */
	struct rouse_cancel_token *root;	/* whose lock is the tree's */
	/* Under the root's lock. */
	struct rouse_link sibling;		/* in parent->children */
	struct rouse_link children;
	struct rouse_link waiters;
	/* The root's: guards the lists above in the whole tree. */
	pthread_mutex_t lock;
};

#define token_of_sibling(l) \
	rouse__list_entry(l, struct rouse_cancel_token, sibling)

/* ---- the wake-up thread ------------------------------------------- */

/* Cancelled tokens not yet walked, newest first; popped whole. */
static struct rouse_cancel_token *wake_stack;
/* Posted once per push; initialised by the first start in a process tree. */
static sem_t wake_sem;
static bool wake_sem_ready;

/*
 * The thread's state: the fork generation it was started in, shifted
 * left by 2, and one of these.  A generation other than the current one
 * means "not started in this process".
 */
enum {
	WAKE_NONE = 0,
	WAKE_STARTING = 1,
	WAKE_RUNNING = 2,
};
static unsigned int wake_state;

static void token_wake_tree(struct rouse_cancel_token *t);
static void token_unref(struct rouse_cancel_token *t);

static void *wake_thread(void *arg)
{
	struct rouse_cancel_token *list, *t, *fifo;

	(void)arg;
	for (;;) {
		list = __atomic_exchange_n(&wake_stack, NULL, __ATOMIC_ACQUIRE);
		if (list == NULL) {
			/* Every signal is blocked here: no EINTR. */
			sem_wait(&wake_sem);
			continue;
		}
		/* Oldest cancel first. */
		fifo = NULL;
		while (list != NULL) {
			t = list;
			list = t->wake_next;
			t->wake_next = fifo;
			fifo = t;
		}
		while (fifo != NULL) {
			t = fifo;
			fifo = t->wake_next;
			token_wake_tree(t);
			token_unref(t);		/* the cancel's reference */
		}
	}
	return NULL;
}

static int wake_thread_start(void)
{
	pthread_attr_t attr;
	sigset_t all;
	pthread_t th;
	int err;

	/*
	 * Once per process tree: a child of fork() keeps the parent's
	 * semaphore, which a handler in the child may be posting already.
	 */
	if (!wake_sem_ready) {
		if (sem_init(&wake_sem, 0, 0) != 0)
			return -errno;
		wake_sem_ready = true;
	}
	err = pthread_attr_init(&attr);
	if (err != 0)
		return -err;
	/* No handler runs here, and a signal blocked everywhere stays so. */
	sigfillset(&all);
	err = pthread_attr_setsigmask_np(&attr, &all);
	if (err == 0)
		err = pthread_attr_setdetachstate(&attr,
						  PTHREAD_CREATE_DETACHED);
	if (err == 0)
		err = pthread_create(&th, &attr, wake_thread, NULL);
	pthread_attr_destroy(&attr);
	if (err != 0) {
		rouse__warn("wake-up thread: pthread_create: error %d", err);
		return -err;
	}
	rouse__debug("wake-up thread started");
	return 0;
}

/*
 * Make sure that this process has its wake-up thread.  One load when it
 * has; otherwise the caller that moves the state to STARTING starts it,
 * and the others wait for that to end.  No lock: a lock held by a parent
 * thread at fork() would stay locked in the child.
 */
static int wake_thread_ensure(void)
{
	unsigned int gen = rouse__fork_now() << 2;
	unsigned int s = __atomic_load_n(&wake_state, __ATOMIC_ACQUIRE);
	int err;

	for (;;) {
		if (s == (gen | WAKE_RUNNING))
			return 0;
		if (s == (gen | WAKE_STARTING)) {
			sched_yield();
			s = __atomic_load_n(&wake_state, __ATOMIC_ACQUIRE);
			continue;
		}
		/* Never started, failed, or started before a fork. */
		if (__atomic_compare_exchange_n(&wake_state, &s,
						gen | WAKE_STARTING, false,
						__ATOMIC_ACQUIRE,
						__ATOMIC_ACQUIRE))
			break;
	}
	err = wake_thread_start();
	__atomic_store_n(&wake_state, err == 0 ? gen | WAKE_RUNNING :
			 gen | WAKE_NONE, __ATOMIC_RELEASE);
	return err;
}

/* ---- the tree ----------------------------------------------------- */

/* Whether t or one of its ancestors is cancelled.  No lock. */
static bool token_cancelled(const struct rouse_cancel_token *t)
{
	for (; t != NULL; t = t->parent)
		if (__atomic_load_n(&t->cancelled, __ATOMIC_ACQUIRE))
			return true;
	return false;
}

/*
 * Let go of one reference to t; the last frees t and lets go of the one
 * t held on its parent, and so on up.  Never with the tree's lock held.
 */
static void token_unref(struct rouse_cancel_token *t)
{
	struct rouse_cancel_token *parent;

	while (t != NULL) {
		if (__atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) != 0)
			return;
		parent = t->parent;
		if (parent != NULL) {
			sync_lock(&t->root->lock);
			rouse__list_remove(&t->sibling);
			sync_unlock(&t->root->lock);
		} else {
			pthread_mutex_destroy(&t->lock);
		}
		rouse__free(t);
		t = parent;
	}
}

/* The token after n in a preorder walk of top's subtree, or NULL. */
static struct rouse_cancel_token *
token_walk_next(struct rouse_cancel_token *top, struct rouse_cancel_token *n)
{
	if (!rouse__list_empty(&n->children))
		return token_of_sibling(n->children.next);
	for (; n != top; n = n->parent)
		if (n->sibling.next != &n->parent->children)
			return token_of_sibling(n->sibling.next);
	return NULL;
}

/* Wake every wait queued on t and its descendants (see the top). */
static void token_wake_tree(struct rouse_cancel_token *t)
{
	struct rouse_cancel_token *root = t->root, *n = t, *pinned = NULL;
	struct sync_batch b;

	sync_batch_init(&b);
	sync_lock(&root->lock);
	while (n != NULL) {
		if (rouse__list_empty(&n->waiters)) {
			n = token_walk_next(t, n);
			continue;
		}
		if (!sync_batch_full(&b)) {
			sync_queue_hand_head(&n->waiters, SYNC_GRANTED, &b);
			continue;
		}
		/* n has waits, which hold references: its count is not 0. */
		__atomic_fetch_add(&n->refs, 1, __ATOMIC_RELAXED);
		sync_unlock(&root->lock);
		token_unref(pinned);
		pinned = n;
		sync_batch_wake(&b);
		sync_lock(&root->lock);
	}
	sync_unlock(&root->lock);
	token_unref(pinned);
	sync_batch_wake(&b);
}

/* A new token under parent (NULL: a root), with one reference. */
static int token_make(struct rouse_cancel_token *parent,
		      struct rouse_cancel_token **out)
{
	struct rouse_cancel_token *t;
	int err;

	err = wake_thread_ensure();
	if (err < 0)
		return err;
	t = rouse__malloc(sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	t->cancelled = 0;
	t->refs = 1;
	t->wake_next = NULL;
	t->parent = parent;
	rouse__list_init(&t->children);
	rouse__list_init(&t->waiters);
	if (parent == NULL) {
		t->root = t;
		pthread_mutex_init(&t->lock, NULL);
	} else {
		t->root = parent->root;
		__atomic_fetch_add(&parent->refs, 1, __ATOMIC_RELAXED);
		sync_lock(&t->root->lock);
		rouse__list_push_back(&parent->children, &t->sibling);
		sync_unlock(&t->root->lock);
	}
	*out = t;
	return 0;
}

ROUSE__PUBLIC int rouse_cancel_token_new(struct rouse_cancel_token **out)
{
	if (out == NULL)
		return -EINVAL;
	return token_make(NULL, out);
}

ROUSE__PUBLIC int rouse_cancel_token_child(struct rouse_cancel_token *parent,
					   struct rouse_cancel_token **out)
{
	if (parent == NULL || out == NULL)
		return -EINVAL;
	return token_make(parent, out);
}

ROUSE__PUBLIC int rouse_cancel_token_clone(struct rouse_cancel_token *t)
{
	if (t == NULL)
		return -EINVAL;
	__atomic_fetch_add(&t->refs, 1, __ATOMIC_RELAXED);
	return 0;
}

ROUSE__PUBLIC int rouse_cancel_token_free(struct rouse_cancel_token *t)
{
	if (t == NULL)
		return -EINVAL;
	token_unref(t);
	return 0;
}

/* Async-signal-safe: see the top of the file. */
ROUSE__PUBLIC int rouse_cancel_token_cancel(struct rouse_cancel_token *t)
{
	struct rouse_cancel_token *head;
	int saved = errno;

	if (t == NULL)
		return -EINVAL;
	/* Release: what was written before is seen by who sees the flag. */
	if (__atomic_exchange_n(&t->cancelled, 1, __ATOMIC_ACQ_REL) != 0)
		return 0;
	__atomic_fetch_add(&t->refs, 1, __ATOMIC_RELAXED);
	head = __atomic_load_n(&wake_stack, __ATOMIC_RELAXED);
	do
		t->wake_next = head;
	while (!__atomic_compare_exchange_n(&wake_stack, &head, t, true,
					    __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED));
	sem_post(&wake_sem);
	errno = saved;
	return 0;
}

ROUSE__PUBLIC int rouse_cancel_token_is_cancelled(struct rouse_cancel_token *t)
{
	if (t == NULL)
		return -EINVAL;
	return token_cancelled(t);
}

/* ---- the wait future ---------------------------------------------- */

static enum rouse_poll cancel_wait_poll(struct rouse_future *f,
					struct rouse_context *cx)
{
	struct rouse_cancel_token_wait *w = (struct rouse_cancel_token_wait *)f;
	struct rouse_cancel_token *t = w->token;
	struct rouse_waker old = { NULL, NULL };
	int state;

	/*
	 * Not queued, so no other thread looks at the node: a wait that is
	 * done, or that finds the token cancelled before it ever queued,
	 * needs no lock.
	 */
	state = sync_state(&w->node);
	if (state == SYNC_DONE)
		return ROUSE_READY;
	if (state == SYNC_IDLE && token_cancelled(t)) {
		sync_set_state(&w->node, SYNC_DONE);
		return ROUSE_READY;
	}
	sync_lock(&t->root->lock);
	/* Only this future makes it DONE: IDLE, WAITING or GRANTED. */
	state = sync_state(&w->node);
	if (state == SYNC_GRANTED || token_cancelled(t)) {
		if (state == SYNC_WAITING) {
			sync_queue_unlink(&w->node);
			old = w->node.waker;
			w->node.waker.vtable = NULL;
		}
		sync_set_state(&w->node, SYNC_DONE);
		sync_unlock(&t->root->lock);
		rouse_waker_drop(&old);
		return ROUSE_READY;
	}
	if (state == SYNC_IDLE) {
		rouse_waker_clone(cx->waker, &w->node.waker);
		sync_queue_push(&t->waiters, &w->node);
		sync_set_state(&w->node, SYNC_WAITING);
	} else {
		sync_waiter_set_waker(&w->node, cx, &old);
	}
	sync_unlock(&t->root->lock);
	rouse_waker_drop(&old);
	return ROUSE_PENDING;
}

static void cancel_wait_drop(struct rouse_future *f)
{
	struct rouse_cancel_token_wait *w = (struct rouse_cancel_token_wait *)f;
	struct rouse_cancel_token *t = w->token;

	if (!sync_waiter_settled(&w->node)) {
		sync_lock(&t->root->lock);
		/* Granted: the walk has its waker; nothing else to undo. */
		if (sync_state(&w->node) == SYNC_WAITING)
			sync_queue_unlink(&w->node);
		sync_drop_finish(&t->root->lock, &w->node, NULL);
	}
	token_unref(t);
}

static const struct rouse_future_vtable cancel_wait_vtable = {
	cancel_wait_poll, cancel_wait_drop,
};

ROUSE__PUBLIC int
rouse_cancel_token_wait_init(struct rouse_cancel_token_wait *f,
			     struct rouse_cancel_token *t)
{
	int err;

	if (f == NULL || t == NULL)
		return -EINVAL;
	/* A token inherited through fork() needs a thread here. */
	err = wake_thread_ensure();
	if (err < 0)
		return err;
	__atomic_fetch_add(&t->refs, 1, __ATOMIC_RELAXED);
	f->base.vtable = &cancel_wait_vtable;
	f->token = t;
	sync_waiter_init(&f->node);
	return 0;
}
