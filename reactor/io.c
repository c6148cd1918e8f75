// SPDX-License-Identifier: MIT
/*
 * reactor/io.c - fd sources, the futures that wait for them, and user
 * events.  It calls the reactor's own state through reactor-internal.h
 * (its lock, slots, list of sources and epoll set), lib/ and the system,
 * and no other file.  reactor.c calls it to dispatch a turn's events, at
 * fork and at free; the service layer calls its public functions.
 *
 * An fd is registered once, edge-triggered, for input, output and
 * read hang-up.  Each event ORs its bits into the source's cached
 * readiness and bumps the source's tick.  An operation tries its system
 * call when its direction's table entry (dir_bits) says the cache allows
 * it; on EAGAIN it clears that direction's drained bit, but only if the tick
 * has not moved since before the call (an event that came in between
 * proves the fd may be ready again, so it retries instead), and then
 * leaves its waker in the source's slot for that direction.
 *
 * epoll_data holds (generation << 32 | slot), never a pointer.  A slot's
 * generation moves on when its source is removed, so an event that was
 * already queued for it, in this batch or a later one, no longer matches
 * and is dropped rather than delivered to whoever has the slot now.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "reactor-internal.h"

#define ROUSE__LOG_MODULE "reactor"

/*
 * The readiness cache of a source: its ready bits, and a tick that counts
 * the events that set them.  Polls read both without the lock; every write
 * is made under the reactor lock (or by the one thread of a
 * ROUSE_REACTOR_LOCAL reactor), so writes never race each other and need
 * no read-modify-write instruction: a load and a store will do.
 */
static inline void ready_set(struct rouse_io *io, uint32_t bits)
{
	uint32_t r = atomic_load_explicit(&io->ready, memory_order_relaxed);
	unsigned int t = atomic_load_explicit(&io->tick, memory_order_relaxed);

	atomic_store_explicit(&io->ready, r | bits, memory_order_relaxed);
	/* Release: a poll that sees the new tick sees the bits too. */
	atomic_store_explicit(&io->tick, t + 1, memory_order_release);
}

static inline void ready_clear(struct rouse_io *io, uint32_t bits)
{
	uint32_t r = atomic_load_explicit(&io->ready, memory_order_relaxed);

	atomic_store_explicit(&io->ready, r & ~bits, memory_order_relaxed);
}

/*
 * What the cached readiness means to each direction; every place that
 * reads or clears the cache goes through this table.
 *
 * try      Any of these bits set: an operation in this direction makes
 *          its system call.  An error or a hang-up is an answer too (the
 *          call returns it, or 0 for the end of a stream), so they count.
 * drained  What a would-block result (EAGAIN, or a short read of a
 *          stream) clears.  Only the plain readiness bit: a hang-up or
 *          an error lasts, so an end of file that came in the same event
 *          as data is still seen after the read that took the data.
 */
static const struct io_dir_bits {
	uint32_t try;
	uint32_t drained;
} dir_bits[2] = {
	[ROUSE__DIR_READ] = {
		.try = ROUSE_IO_READABLE | ROUSE_IO_READ_HANGUP |
		       ROUSE_IO_HANGUP | ROUSE_IO_ERROR,
		.drained = ROUSE_IO_READABLE,
	},
	[ROUSE__DIR_WRITE] = {
		.try = ROUSE_IO_WRITABLE | ROUSE_IO_HANGUP | ROUSE_IO_ERROR,
		.drained = ROUSE_IO_WRITABLE,
	},
};

_Static_assert((int)ROUSE_IO_READABLE == (int)EPOLLIN &&
		       (int)ROUSE_IO_WRITABLE == (int)EPOLLOUT &&
		       (int)ROUSE_IO_ERROR == (int)EPOLLERR &&
		       (int)ROUSE_IO_HANGUP == (int)EPOLLHUP &&
		       (int)ROUSE_IO_READ_HANGUP == (int)EPOLLRDHUP,
	       "ROUSE_IO_* are epoll's bits");

/* ---- the slot table ----------------------------------------------------- */

static int slot_take(struct rouse_reactor *r, uint32_t *out)
{
	uint32_t s;

	if (r->free_slot == UINT32_MAX) {
		uint32_t n = r->nslots ? r->nslots * 2 : 64, i;
		struct rouse_io **slots;
		uint32_t *gens, *next;

		slots = rouse__realloc(r->slots, n * sizeof(*slots));
		if (slots == NULL)
			return -ENOMEM;
		r->slots = slots;
		gens = rouse__realloc(r->gens, n * sizeof(*gens));
		if (gens == NULL)
			return -ENOMEM;
		r->gens = gens;
		next = rouse__realloc(r->next_free, n * sizeof(*next));
		if (next == NULL)
			return -ENOMEM;
		r->next_free = next;
		for (i = r->nslots; i < n; i++) {
			slots[i] = NULL;
			gens[i] = 0;
			next[i] = i + 1 < n ? i + 1 : UINT32_MAX;
		}
		r->free_slot = r->nslots;
		r->nslots = n;
	}
	s = r->free_slot;
	r->free_slot = r->next_free[s];
	*out = s;
	return 0;
}

static void slot_release(struct rouse_reactor *r, uint32_t s)
{
	r->slots[s] = NULL;
	/* 0xffffffff is the tag of the reactor's own descriptors. */
	if (++r->gens[s] == UINT32_MAX)
		r->gens[s] = 0;
	r->next_free[s] = r->free_slot;
	r->free_slot = s;
}

static uint64_t io_tag(const struct rouse_io *io)
{
	return (uint64_t)io->gen << 32 | io->slot;
}

/*
 * The newest source of each fd number.  A source whose fd was closed
 * without being deregistered, and whose number now belongs to a newer
 * source, must not EPOLL_CTL_DEL that number when it goes: the
 * registration under it is the newer one's.
 */
static int fd_owner_reserve(struct rouse_reactor *r, int fd)
{
	if (fd >= r->nfd_owner) {
		size_t n = r->nfd_owner ? (size_t)r->nfd_owner : 64, i;
		struct rouse_io **v;

		while (n <= (size_t)fd)
			n *= 2;
		if (n > INT_MAX)
			n = (size_t)fd + 1;
		v = rouse__realloc(r->fd_owner, n * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		for (i = (size_t)r->nfd_owner; i < n; i++)
			v[i] = NULL;
		r->fd_owner = v;
		r->nfd_owner = (int)n;
	}
	return 0;
}

/* ---- registration --------------------------------------------------- */

/*
 * Set io->socket for io->fd, and return whether a read of it that comes
 * back short proves it drained.  A TCP socket's read returns whatever is
 * queued, up to urgent data (seen in the events: dispatch clears
 * io->short_read_drains then).  Not a Unix stream socket's: its read
 * stops after a message that carried descriptors, which the peer may
 * send at any time, and where the sender's credentials change once
 * SO_PASSCRED is set, which may happen after this probe.  Not a pipe's: when its writer
 * opened it in packet mode (O_DIRECT, which the reading end cannot see),
 * each read returns one write.
 */
static bool io_probe(struct rouse_io *io)
{
	int type = 0, domain = 0;
	socklen_t len = sizeof(type);

	if (getsockopt(io->fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
		return false;
	io->socket = true;
	if (type != SOCK_STREAM)
		return false;
	len = sizeof(domain);
	getsockopt(io->fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
	return domain == AF_INET || domain == AF_INET6;
}

static int io_add(struct rouse_reactor *r, struct rouse_io *io, int fd,
		  int kind, uint32_t events)
{
	struct epoll_event ev;
	int err;

	io->reactor = r;
	io->fd = fd;
	io->kind = kind;
	atomic_init(&io->ready, 0);
	atomic_init(&io->tick, 0);
	io->socket = false;
	atomic_init(&io->short_read_drains, kind == ROUSE__SRC_IO && io_probe(io));
	io->waiter[0] = io->waiter[1] = NULL;
	io->waker[0].vtable = io->waker[1].vtable = NULL;

	io->seen_tick[0] = io->seen_tick[1] = 0;
	rouse__reactor_lock(r);
	err = slot_take(r, &io->slot);
	if (err < 0)
		goto out;
	io->gen = r->gens[io->slot];
	ev.events = events | EPOLLET;
	ev.data.u64 = io_tag(io);
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		err = -errno;
		slot_release(r, io->slot);
		goto out;
	}
	/* Only now: epoll has proved fd is an open descriptor. */
	err = fd_owner_reserve(r, fd);
	if (err < 0) {
		epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);
		slot_release(r, io->slot);
		goto out;
	}
	r->slots[io->slot] = io;
	r->fd_owner[fd] = io;
	rouse__list_push_front(&r->live, &io->live);
	rouse__debug("fd %d registered (slot %u, generation %u)", fd,
		     io->slot, io->gen);
out:
	rouse__reactor_unlock(r);
	return err;
}

/*
 * Take io out of the reactor (lock held): its slot moves on to the next
 * generation, and its waiting operations are told it is gone.
 */
static void io_remove_locked(struct rouse_reactor *r, struct rouse_io *io,
			     struct rouse__wake_list *wl)
{
	int dir;

	slot_release(r, io->slot);
	rouse__list_remove(&io->live);
	for (dir = 0; dir < 2; dir++) {
		struct rouse_io_op *op = io->waiter[dir];

		if (op == NULL)
			continue;
		op->io = NULL;
		op->registered = 0;
		io->waiter[dir] = NULL;
		if (io->waker[dir].vtable != NULL) {
			wl->w[wl->n++] = io->waker[dir];
			io->waker[dir].vtable = NULL;
		}
	}
}

ROUSE__PUBLIC int rouse_io_register(struct rouse_reactor *r, int fd,
				    struct rouse_io **out)
{
	struct rouse_io *io;
	int err;

	if (r == NULL || out == NULL)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	if (rouse__inherited(r->fork_gen))
		return -ECHILD;
	io = rouse__malloc(sizeof(*io));
	if (io == NULL)
		return -ENOMEM;
	err = io_add(r, io, fd, ROUSE__SRC_IO,
		     EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI);
	if (err < 0) {
		rouse__free(io);
		return err;
	}
	*out = io;
	return 0;
}

static void io_destroy(struct rouse_io *io)
{
	struct rouse_reactor *r = io->reactor;
	struct rouse__wake_list wl = { .n = 0 };

	rouse__reactor_lock(r);
	/*
	 * The fd may be closed already, which took it out of epoll; and if
	 * its number was reused by a newer source, that registration is not
	 * ours to delete.
	 */
	if (r->fd_owner[io->fd] == io) {
		epoll_ctl(r->epfd, EPOLL_CTL_DEL, io->fd, NULL);
		r->fd_owner[io->fd] = NULL;
	}
	io_remove_locked(r, io, &wl);
	rouse__reactor_unlock(r);
	rouse__debug("fd %d deregistered", io->fd);
	rouse__wake_list_wake(&wl);
}

ROUSE__PUBLIC int rouse_io_deregister(struct rouse_io *io)
{
	if (io == NULL || io->kind != ROUSE__SRC_IO)
		return -EINVAL;
	if (rouse__inherited(io->reactor->fork_gen))
		return -ECHILD;
	io_destroy(io);
	rouse__free(io);
	return 0;
}

ROUSE__PUBLIC int rouse_io_fd(const struct rouse_io *io)
{
	if (io == NULL)
		return -EINVAL;
	return io->fd;
}

/*
 * Clear readiness the caller has used up (it saw EAGAIN) -- unless an
 * event has come since a readiness future last reported on this source,
 * in which case the fd may be ready again and the bits stay.  Without
 * that guard, an edge landing between the caller's EAGAIN and this call
 * would be erased, and the next wait would never end.
 */
ROUSE__PUBLIC int rouse_io_clear(struct rouse_io *io, uint32_t events)
{
	unsigned int tick;
	uint32_t clear = 0;

	if (io == NULL)
		return -EINVAL;
	if (rouse__inherited(io->reactor->fork_gen))
		return -ECHILD;
	rouse__reactor_lock(io->reactor);
	tick = atomic_load_explicit(&io->tick, memory_order_relaxed);
	/* Each direction by the tick its own readiness was reported at. */
	if (tick == io->seen_tick[ROUSE__DIR_READ])
		clear |= events & dir_bits[ROUSE__DIR_READ].try;
	if (tick == io->seen_tick[ROUSE__DIR_WRITE])
		clear |= events & dir_bits[ROUSE__DIR_WRITE].try;
	ready_clear(io, clear);
	rouse__reactor_unlock(io->reactor);
	return 0;
}

/* ---- the reactor's side ------------------------------------------------- */

int rouse__io_dispatch(struct rouse_reactor *r, const struct epoll_event *evs,
		       int n)
{
	struct rouse__wake_list wl;	/* only n is set: w[] is filled */
	int i, total = 0;

	wl.n = 0;
	rouse__reactor_lock(r);
	for (i = 0; i < n; i++) {
		uint64_t tag = evs[i].data.u64;
		uint32_t slot = (uint32_t)tag, gen = (uint32_t)(tag >> 32);
		uint32_t bits = evs[i].events;
		struct rouse_io *io;
		int dir;

		if ((tag & ROUSE__TAG_OWN) == ROUSE__TAG_OWN)
			continue;	/* the reactor's own, handled */
		if (slot >= r->nslots || r->slots[slot] == NULL ||
		    r->gens[slot] != gen) {
			rouse__trace("event for a removed source dropped "
				     "(slot %u, generation %u)", slot, gen);
			continue;
		}
		io = r->slots[slot];
		/*
		 * Urgent data: reads stop short at it from now on.  Before
		 * ready_set, whose tick store publishes this to any read
		 * that starts after the event (one already running sees the
		 * tick move, and does not clear the bit).
		 */
		if (bits & EPOLLPRI) {
			atomic_store_explicit(&io->short_read_drains, false,
					      memory_order_relaxed);
			bits &= ~(uint32_t)EPOLLPRI;
		}
		ready_set(io, bits);
		for (dir = 0; dir < 2; dir++) {
			if (!(bits & dir_bits[dir].try) ||
			    io->waker[dir].vtable == NULL)
				continue;
			rouse__trace("fd %d ready (0x%x): wake its %s", io->fd,
				     bits, dir ? "writer" : "reader");
			wl.w[wl.n++] = io->waker[dir];
			io->waker[dir].vtable = NULL;
		}
		/*
		 * Flush between events only (one adds at most two): after
		 * the lock was dropped, io may be gone, and the next event
		 * is looked up afresh.
		 */
		if (wl.n > ROUSE__WAKE_BATCH - 2) {
			rouse__reactor_unlock(r);
			total += wl.n;
			rouse__wake_list_wake(&wl);
			rouse__reactor_lock(r);
		}
	}
	rouse__reactor_unlock(r);
	total += wl.n;
	rouse__wake_list_wake(&wl);
	return total;
}

void rouse__io_cancel_all(struct rouse_reactor *r)
{
	for (;;) {
		struct rouse__wake_list wl = { .n = 0 };
		struct rouse_link *l;
		struct rouse_io *io = NULL;

		rouse__reactor_lock(r);
		l = rouse__list_first(&r->live);
		if (l != NULL) {
			io = rouse__list_entry(l, struct rouse_io, live);
			io_remove_locked(r, io, &wl);
		}
		rouse__reactor_unlock(r);
		if (io == NULL)
			return;
		rouse__wake_list_wake(&wl);
		if (io->kind == ROUSE__SRC_EVENT)
			close(io->fd);
		rouse__free(io);
	}
}

/*
 * rouse_reactor_fork(), in the child, with no other thread: register every
 * live source with the new epoll set epfd.  A user event gets an eventfd
 * of its own first, under the same number (the inherited one is the
 * parent's: a notify would wake the parent).  The readiness caches start
 * again from nothing, since the parent may have used up what they say;
 * the registration's first event fills them, and wakes the waiters.
 */
int rouse__io_fork(struct rouse_reactor *r, int epfd)
{
	static const uint64_t one = 1;
	struct rouse_link *l;

	rouse__list_for_each(l, &r->live) {
		struct rouse_io *io =
			rouse__list_entry(l, struct rouse_io, live);
		struct epoll_event ev = { .data.u64 = io_tag(io) };

		/* Closed without being deregistered: nothing to register. */
		if (r->fd_owner[io->fd] != io)
			continue;
		if (io->kind == ROUSE__SRC_EVENT) {
			struct rouse_event *e = rouse__container_of(
				io, struct rouse_event, io);
			int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

			if (fd < 0)
				return -errno;
			if (dup3(fd, io->fd, O_CLOEXEC) < 0) {
				close(fd);
				return -errno;
			}
			close(fd);
			/* Notifications not yet taken: an edge for them. */
			if (atomic_load(&e->count) != 0 &&
			    write(io->fd, &one, sizeof(one)) < 0)
				return -errno;
			ev.events = EPOLLIN | EPOLLET;
		} else {
			ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI |
				    EPOLLET;
		}
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0) {
			if (errno != EBADF)
				return -errno;
			continue;	/* closed in the child meanwhile */
		}
		atomic_store_explicit(&io->ready, 0, memory_order_relaxed);
		atomic_store_explicit(&io->tick, 0, memory_order_relaxed);
		io->seen_tick[0] = io->seen_tick[1] = 0;
	}
	return 0;
}

/* ---- the operations' side ------------------------------------------------ */

/*
 * Leave op's waker in io's slot for dir (lock held).  Returns 0, or
 * -EBUSY when another operation already waits in that direction.
 */
static int op_wait_locked(struct rouse_io_op *op, struct rouse_io *io,
			  struct rouse_context *cx,
			  struct rouse_waker *old)
{
	int dir = op->dir;

	if (io->waiter[dir] != NULL && io->waiter[dir] != op)
		return -EBUSY;
	io->waiter[dir] = op;
	op->registered = 1;
	if (io->waker[dir].vtable != NULL &&
	    rouse_waker_will_wake(&io->waker[dir], cx->waker))
		return 0;
	*old = io->waker[dir];
	rouse_waker_clone(cx->waker, &io->waker[dir]);
	return 0;
}

static void op_leave(struct rouse_io_op *op, bool drained,
		     unsigned int tick);

/*
 * With the lock held: op leaves io's slot for its direction; the waker
 * left there, if any, moves to *w for the caller to drop after the
 * unlock.  Re-read under the lock: a deregister may have run meanwhile.
 */
static void op_leave_locked(struct rouse_io_op *op, struct rouse_io *io,
			    struct rouse_waker *w)
{
	if (op->registered && op->io != NULL && io->waiter[op->dir] == op) {
		io->waiter[op->dir] = NULL;
		*w = io->waker[op->dir];
		io->waker[op->dir].vtable = NULL;
	}
	op->registered = 0;
}

/*
 * op is done or dropped: leave io's slot.  Most calls come after a READY
 * poll that has left it already, and return here without a call.
 */
static inline void op_finish(struct rouse_io_op *op)
{
	if (op->io != NULL && op->registered)
		op_leave(op, false, 0);
}

/*
 * op_finish() after a read that came back short from a source whose short
 * read proves it drained: clear the readable bit too, unless an event
 * came since tick was read (that edge may be new data).
 */
static inline void op_finish_drained(struct rouse_io_op *op,
				     unsigned int tick)
{
	op_leave(op, true, tick);
}

/*
 * What op_finish() and op_finish_drained() share: one hold of the lock
 * for leaving the slot and clearing the bit.
 */
static void op_leave(struct rouse_io_op *op, bool drained,
		     unsigned int tick)
{
	struct rouse_io *io = op->io;
	struct rouse_waker w = { NULL, NULL };

	if (io == NULL || (!op->registered && !drained) ||
	    rouse__inherited(io->reactor->fork_gen))
		return;
	rouse__reactor_lock(io->reactor);
	if (drained && atomic_load_explicit(&io->tick, memory_order_acquire) ==
			       tick)
		ready_clear(io, dir_bits[ROUSE__DIR_READ].drained);
	op_leave_locked(op, io, &w);
	rouse__reactor_unlock(io->reactor);
	if (w.vtable != NULL)
		rouse_waker_drop(&w);
}

static void op_drop(struct rouse_future *f)
{
	op_finish((struct rouse_io_op *)f);
}

static void op_setup(struct rouse_io_op *op,
		     const struct rouse_future_vtable *vt, struct rouse_io *io,
		     int dir)
{
	op->base.vtable = vt;
	op->io = io;
	op->dir = dir;
	op->registered = 0;
}

/*
 * Why op can make no progress, or 0: its source was deregistered or its
 * reactor freed (-ECANCELED), or the reactor was inherited through fork()
 * and not yet made the child's own (-ECHILD).
 */
static inline int op_refused(const struct rouse_io_op *op)
{
	if (op->io == NULL)
		return -ECANCELED;
	if (rouse__inherited(op->io->reactor->fork_gen))
		return -ECHILD;
	return 0;
}

/*
 * After a system call said EAGAIN (drained set) or the cache said it
 * would: clear the direction's drained bits (when drained) and wait,
 * unless an event came since tick was read (then the caller retries, and
 * 1 is returned).  Returns 0 when waiting, or -errno.
 */
static int op_blocked(struct rouse_io_op *op, struct rouse_context *cx,
		      unsigned int tick, bool drained)
{
	struct rouse_io *io = op->io;
	struct rouse_waker old = { NULL, NULL };
	int err;

	rouse__reactor_lock(io->reactor);
	if (atomic_load_explicit(&io->tick, memory_order_acquire) != tick) {
		rouse__reactor_unlock(io->reactor);
		return 1;
	}
	if (drained)
		ready_clear(io, dir_bits[op->dir].drained);
	err = op_wait_locked(op, io, cx, &old);
	rouse__reactor_unlock(io->reactor);
	if (old.vtable != NULL)
		rouse_waker_drop(&old);
	return err;
}


/*
 * Whether an operation should skip its system call and wait: the cache
 * says the fd is not ready for it and an event has been seen since the
 * source was registered.  (Before the first event the cache knows
 * nothing, so the call is tried.)  An fd that becomes ready later
 * produces an edge, which sets the bit and moves the tick, so trusting
 * a clear bit loses nothing and saves an EAGAIN per wait.
 */
static bool op_cache_says_wait(const struct rouse_io *io, unsigned int tick,
			       int dir)
{
	return tick != 0 &&
	       !(atomic_load_explicit(&io->ready, memory_order_relaxed) &
		 dir_bits[dir].try);
}

/* ---- readiness futures ------------------------------------------------------ */

static enum rouse_poll ready_poll(struct rouse_future *f,
				  struct rouse_context *cx)
{
	struct rouse_io_ready *rf = (struct rouse_io_ready *)f;
	struct rouse_io_op *op = &rf->op;
	struct rouse_io *io = op->io;
	struct rouse_waker old = { NULL, NULL };
	uint32_t mask = dir_bits[op->dir].try;
	int err;

	err = op_refused(op);
	if (err < 0) {
		rf->result = err;
		return ROUSE_READY;
	}
	rouse__reactor_lock(io->reactor);
	if (atomic_load_explicit(&io->ready, memory_order_relaxed) & mask) {
		rf->events = atomic_load_explicit(&io->ready,
						  memory_order_relaxed);
		io->seen_tick[op->dir] = atomic_load_explicit(
			&io->tick, memory_order_relaxed);
		op_leave_locked(op, io, &old);
		rouse__reactor_unlock(io->reactor);
		if (old.vtable != NULL)
			rouse_waker_drop(&old);
		rf->result = 0;
		return ROUSE_READY;
	}
	err = op_wait_locked(op, io, cx, &old);
	rouse__reactor_unlock(io->reactor);
	if (old.vtable != NULL)
		rouse_waker_drop(&old);
	if (err < 0) {
		rf->result = err;
		return ROUSE_READY;
	}
	return ROUSE_PENDING;
}

static const struct rouse_future_vtable ready_vtable = {
	.poll = ready_poll,
	.drop = op_drop,
};

static int ready_init(struct rouse_io_ready *f, struct rouse_io *io, int dir)
{
	if (f == NULL || io == NULL)
		return -EINVAL;
	op_setup(&f->op, &ready_vtable, io, dir);
	f->events = 0;
	f->result = 0;
	return 0;
}

ROUSE__PUBLIC int rouse_io_readable_init(struct rouse_io_ready *f,
					 struct rouse_io *io)
{
	return ready_init(f, io, ROUSE__DIR_READ);
}

ROUSE__PUBLIC int rouse_io_writable_init(struct rouse_io_ready *f,
					 struct rouse_io *io)
{
	return ready_init(f, io, ROUSE__DIR_WRITE);
}

/* ---- read and write ----------------------------------------------------------- */

static enum rouse_poll rw_poll(struct rouse_future *f,
			       struct rouse_context *cx)
{
	struct rouse_io_rw *rw = (struct rouse_io_rw *)f;
	struct rouse_io_op *op = &rw->op;
	bool reading = op->dir == ROUSE__DIR_READ;

	for (;;) {
		unsigned int tick;
		ssize_t n;
		int err;

		err = op_refused(op);
		if (err < 0) {
			rw->result = err;
			return ROUSE_READY;
		}
		tick = atomic_load_explicit(&op->io->tick,
					    memory_order_acquire);
		if (op_cache_says_wait(op->io, tick, op->dir)) {
			err = op_blocked(op, cx, tick, false);
			if (err == 0)
				return ROUSE_PENDING;
			if (err < 0) {
				rw->result = err;
				return ROUSE_READY;
			}
			continue;
		}
		/*
		 * On a socket, recv/send skip the VFS layer of read/write
		 * (about 45 ns a call here), and send does not raise
		 * SIGPIPE: a closed peer is -EPIPE, as any other error.
		 * A zero-length write too: write(2) of 0 bytes still
		 * raises SIGPIPE on a socket shut down for writing.  (A
		 * zero-length read stays read(2): recv(2) would wait for
		 * data that it then does not take.)
		 */
		if (op->io->socket && (rw->len > 0 || !reading))
			n = reading ? recv(op->io->fd, rw->buf, rw->len, 0)
				    : send(op->io->fd, rw->buf, rw->len,
					   MSG_NOSIGNAL);
		else
			n = reading ? read(op->io->fd, rw->buf, rw->len)
				    : write(op->io->fd, rw->buf, rw->len);
		if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK &&
			       errno != EINTR)) {
			rw->result = n >= 0 ? n : -errno;
			/*
			 * A short read of a stream: the fd was empty at
			 * that moment, which an EAGAIN would only confirm.
			 * Clear the readable bit (unless an event came
			 * since tick was read: that edge may be new data),
			 * so that the next read waits without a system
			 * call; data that arrives later is an edge, which
			 * sets the bit again.
			 */
			if (reading && n > 0 && (size_t)n < rw->len &&
			    atomic_load_explicit(&op->io->short_read_drains,
						 memory_order_relaxed))
				op_finish_drained(op, tick);
			else
				op_finish(op);
			return ROUSE_READY;
		}
		if (errno == EINTR)
			continue;
		err = op_blocked(op, cx, tick, true);
		if (err == 0)
			return ROUSE_PENDING;
		if (err < 0) {
			rw->result = err;
			return ROUSE_READY;
		}
	}
}

static const struct rouse_future_vtable rw_vtable = {
	.poll = rw_poll,
	.drop = op_drop,
};

ROUSE__PUBLIC int rouse_io_read_init(struct rouse_io_rw *f,
				     struct rouse_io *io, void *buf,
				     size_t len)
{
	if (f == NULL || io == NULL || (buf == NULL && len > 0))
		return -EINVAL;
	op_setup(&f->op, &rw_vtable, io, ROUSE__DIR_READ);
	f->buf = buf;
	f->len = len;
	f->result = 0;
	return 0;
}

ROUSE__PUBLIC int rouse_io_write_init(struct rouse_io_rw *f,
				      struct rouse_io *io, const void *buf,
				      size_t len)
{
	if (f == NULL || io == NULL || (buf == NULL && len > 0))
		return -EINVAL;
	op_setup(&f->op, &rw_vtable, io, ROUSE__DIR_WRITE);
	f->buf = (void *)buf;
	f->len = len;
	f->result = 0;
	return 0;
}

/* ---- accept and connect ------------------------------------------------------- */

static enum rouse_poll accept_poll(struct rouse_future *f,
				   struct rouse_context *cx)
{
	struct rouse_io_accept *a = (struct rouse_io_accept *)f;
	struct rouse_io_op *op = &a->op;

	for (;;) {
		unsigned int tick;
		int fd, err;

		err = op_refused(op);
		if (err < 0) {
			a->result = err;
			return ROUSE_READY;
		}
		tick = atomic_load_explicit(&op->io->tick,
					    memory_order_acquire);
		if (op_cache_says_wait(op->io, tick, op->dir)) {
			err = op_blocked(op, cx, tick, false);
			if (err == 0)
				return ROUSE_PENDING;
			if (err < 0) {
				a->result = err;
				return ROUSE_READY;
			}
			continue;
		}
		a->addrlen = sizeof(a->addr);
		fd = accept4(op->io->fd, (struct sockaddr *)&a->addr,
			     &a->addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK &&
				errno != EINTR && errno != ECONNABORTED)) {
			a->result = fd >= 0 ? fd : -errno;
			op_finish(op);
			return ROUSE_READY;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		err = op_blocked(op, cx, tick, true);
		if (err == 0)
			return ROUSE_PENDING;
		if (err < 0) {
			a->result = err;
			return ROUSE_READY;
		}
	}
}

static const struct rouse_future_vtable accept_vtable = {
	.poll = accept_poll,
	.drop = op_drop,
};

ROUSE__PUBLIC int rouse_io_accept_init(struct rouse_io_accept *f,
				       struct rouse_io *io)
{
	if (f == NULL || io == NULL)
		return -EINVAL;
	op_setup(&f->op, &accept_vtable, io, ROUSE__DIR_READ);
	f->addrlen = 0;
	f->result = 0;
	return 0;
}

static enum rouse_poll connect_poll(struct rouse_future *f,
				    struct rouse_context *cx)
{
	struct rouse_io_connect *c = (struct rouse_io_connect *)f;
	struct rouse_io_op *op = &c->op;
	int fd, err;

	err = op_refused(op);
	if (err < 0) {
		c->result = err;
		return ROUSE_READY;
	}
	fd = op->io->fd;
	if (!c->started) {
		c->started = 1;
		if (connect(fd, (struct sockaddr *)&c->addr, c->addrlen) == 0) {
			c->result = 0;
			return ROUSE_READY;
		}
		if (errno != EINPROGRESS && errno != EINTR) {
			c->result = -errno;
			return ROUSE_READY;
		}
	}
	for (;;) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		unsigned int tick;
		int soerr = 0;

		tick = atomic_load_explicit(&op->io->tick,
					    memory_order_acquire);
		len = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			soerr = errno;
		if (soerr != 0) {
			c->result = -soerr;
			op_finish(op);
			return ROUSE_READY;
		}
		/*
		 * No error yet: connected, or still in progress.  (An
		 * unconnected socket reports EPOLLOUT too, so readiness
		 * alone proves nothing.)
		 */
		len = sizeof(peer);
		if (getpeername(fd, (struct sockaddr *)&peer, &len) == 0) {
			c->result = 0;
			op_finish(op);
			return ROUSE_READY;
		}
		err = op_blocked(op, cx, tick, true);
		if (err == 0)
			return ROUSE_PENDING;
		if (err < 0) {
			c->result = err;
			return ROUSE_READY;
		}
	}
}

static const struct rouse_future_vtable connect_vtable = {
	.poll = connect_poll,
	.drop = op_drop,
};

ROUSE__PUBLIC int rouse_io_connect_init(struct rouse_io_connect *f,
					struct rouse_io *io,
					const struct sockaddr *addr,
					socklen_t addrlen)
{
	if (f == NULL || io == NULL || addr == NULL || addrlen == 0 ||
	    addrlen > sizeof(f->addr))
		return -EINVAL;
	op_setup(&f->op, &connect_vtable, io, ROUSE__DIR_WRITE);
	memcpy(&f->addr, addr, addrlen);
	f->addrlen = addrlen;
	f->started = 0;
	f->result = 0;
	return 0;
}

/* ---- user events ------------------------------------------------------------- */

ROUSE__PUBLIC int rouse_event_new(struct rouse_reactor *r,
				  struct rouse_event **out)
{
	struct rouse_event *ev;
	int fd, err;

	if (r == NULL || out == NULL)
		return -EINVAL;
	if (rouse__inherited(r->fork_gen))
		return -ECHILD;
	ev = rouse__malloc(sizeof(*ev));
	if (ev == NULL)
		return -ENOMEM;
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0) {
		err = -errno;
		rouse__free(ev);
		return err;
	}
	atomic_init(&ev->count, 0);
	err = io_add(r, &ev->io, fd, ROUSE__SRC_EVENT, EPOLLIN);
	if (err < 0) {
		close(fd);
		rouse__free(ev);
		return err;
	}
	*out = ev;
	return 0;
}

ROUSE__PUBLIC void rouse_event_free(struct rouse_event *ev)
{
	if (ev == NULL)
		return;
	if (rouse__inherited(ev->io.reactor->fork_gen)) {
		rouse__error("event %p: its reactor was inherited through "
			     "fork(); call rouse_reactor_fork() first",
			     (void *)ev);
		return;
	}
	io_destroy(&ev->io);
	close(ev->io.fd);
	rouse__free(ev);
}

/*
 * Async-signal-safe: an atomic add, and a write(2) only for the first
 * notification since the waiter last took the count.
 */
ROUSE__PUBLIC int rouse_event_notify(struct rouse_event *ev)
{
	static const uint64_t one = 1;

	if (ev == NULL)
		return -EINVAL;
	/* Its eventfd is the parent's: a write would wake the parent. */
	if (rouse__inherited(ev->io.reactor->fork_gen))
		return -ECHILD;
	if (atomic_fetch_add_explicit(&ev->count, 1, memory_order_acq_rel) != 0)
		return 0;
	while (write(ev->io.fd, &one, sizeof(one)) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static enum rouse_poll event_wait_poll(struct rouse_future *f,
				       struct rouse_context *cx)
{
	struct rouse_event_wait *w = (struct rouse_event_wait *)f;
	struct rouse_io_op *op = &w->op;
	struct rouse_event *ev;
	struct rouse_waker old = { NULL, NULL };
	uint64_t n;
	int err;

	err = op_refused(op);
	if (err < 0) {
		w->result = err;
		return ROUSE_READY;
	}
	ev = rouse__container_of(op->io, struct rouse_event, io);
	n = atomic_exchange_explicit(&ev->count, 0, memory_order_acq_rel);
	if (n == 0) {
		rouse__reactor_lock(ev->io.reactor);
		err = op_wait_locked(op, &ev->io, cx, &old);
		rouse__reactor_unlock(ev->io.reactor);
		if (old.vtable != NULL)
			rouse_waker_drop(&old);
		if (err < 0) {
			w->result = err;
			return ROUSE_READY;
		}
		/* A notify between the exchange and the wait: take it. */
		n = atomic_exchange_explicit(&ev->count, 0,
					     memory_order_acq_rel);
		if (n == 0)
			return ROUSE_PENDING;
	}
	op_finish(op);
	w->count = n;
	w->result = 0;
	return ROUSE_READY;
}

static const struct rouse_future_vtable event_wait_vtable = {
	.poll = event_wait_poll,
	.drop = op_drop,
};

ROUSE__PUBLIC int rouse_event_wait_init(struct rouse_event_wait *w,
					struct rouse_event *ev)
{
	if (w == NULL || ev == NULL)
		return -EINVAL;
	op_setup(&w->op, &event_wait_vtable, &ev->io, ROUSE__DIR_READ);
	w->count = 0;
	w->result = 0;
	return 0;
}
