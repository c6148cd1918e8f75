/* SPDX-License-Identifier: MIT */
/*
 * rouse/reactor.h - librouse-reactor: kernel readiness turned into wakes.
 *
 * Link with `pkg-config --cflags --libs rouse-reactor`.
 *
 * A reactor owns one epoll fd, one timerfd and one eventfd.  Futures that
 * wait for it (timers, user events, fd readiness) register their waker
 * with it, and a turn of the reactor wakes the ones whose event came.  It
 * runs on a thread of its own (rouse_reactor_start()) or is driven by the
 * thread that waits for it (rouse_reactor_turn(), rouse_reactor_parker()).
 *
 * The futures below live in caller-owned structs: initialise one with its
 * _init function, poll it (rouse_block_on() or any executor), read its
 * output fields once it is ready, and drop it with rouse_future_drop()
 * exactly once, ready or not.  Fields marked private are the reactor's.
 */
#ifndef ROUSE_REACTOR_H
#define ROUSE_REACTOR_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <rouse/future.h>
#include <rouse/log.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rouse_reactor;

/* ---- the reactor ---------------------------------------------------- */

/*
 * Flag of rouse_reactor_new(): one thread at a time uses the reactor (its
 * turns, its futures, its registrations), so it takes no lock.  Wakers it
 * hands out and rouse_event_notify() stay safe from any thread.
 */
#define ROUSE_REACTOR_LOCAL 0x1u

int rouse_reactor_new(struct rouse_reactor **out, unsigned int flags);
void rouse_reactor_free(struct rouse_reactor *r);
int rouse_reactor_default(struct rouse_reactor **out);
/*
 * In a child of fork(): make a reactor inherited from the parent the
 * child's own (new epoll set, timerfd and eventfd; every source registered
 * again).  Until then every other call on it fails with -ECHILD.
 */
int rouse_reactor_fork(struct rouse_reactor *r);

int rouse_reactor_fd(const struct rouse_reactor *r);
int rouse_reactor_turn(struct rouse_reactor *r, int64_t timeout_ns);
int rouse_reactor_parker(struct rouse_reactor *r, struct rouse_parker *out);
int rouse_reactor_start(struct rouse_reactor *r);
int rouse_reactor_stop(struct rouse_reactor *r);

int64_t rouse_reactor_now(struct rouse_reactor *r);
int rouse_reactor_clock_pause(struct rouse_reactor *r);
int rouse_reactor_clock_resume(struct rouse_reactor *r);
int rouse_reactor_clock_advance(struct rouse_reactor *r, int64_t ns);

int rouse_reactor_set_log_level(enum rouse_log_level level);
int rouse_reactor_set_log_sink(rouse_log_fn *sink, void *data);

/* ---- timers --------------------------------------------------------- */

/* Private: the reactor's bookkeeping for one pending timer (48 bytes). */
struct rouse_timer_entry {
	int64_t deadline;
	uint64_t seq;
	struct rouse_timer_entry *child;
	struct rouse_timer_entry *next;
	struct rouse_timer_entry *prev;
	uint32_t where;
	uint32_t state;
};

/* Ready at or after a deadline on the reactor's clock. */
struct rouse_sleep {
	struct rouse_future base;
	struct rouse_reactor *reactor;	/* private */
	struct rouse_waker waker;	/* private */
	struct rouse_timer_entry entry;	/* private */
	int result;	/* output: 0, or -ECANCELED if the reactor went away */
};

int rouse_sleep_init(struct rouse_sleep *s, struct rouse_reactor *r,
		     int64_t duration_ns);
int rouse_sleep_until_init(struct rouse_sleep *s, struct rouse_reactor *r,
			   int64_t deadline_ns);

/*
 * Ready once per period.  Polling it again after it was ready waits for
 * the next tick.  Missed ticks are not replayed: the next deadline is the
 * first multiple of the period after now, and ticks counts the periods
 * that passed since the previous tick (1 when none was missed).
 */
struct rouse_interval {
	struct rouse_sleep sleep;	/* private */
	int64_t period;			/* private */
	uint64_t ticks;			/* output */
	int result;			/* output: 0 or -ECANCELED */
};

int rouse_interval_init(struct rouse_interval *iv, struct rouse_reactor *r,
			int64_t period_ns);

/*
 * Runs inner, which it owns from now on, against a deadline.  result is 0
 * when inner finished first (its output is in its own struct until the
 * timeout is dropped), or -ETIMEDOUT when the deadline won, in which case
 * inner has been dropped already.
 */
struct rouse_timeout {
	struct rouse_future base;
	struct rouse_future *inner;	/* private */
	struct rouse_sleep sleep;	/* private */
	int inner_dropped;		/* private */
	int result;			/* output */
};

int rouse_timeout_init(struct rouse_timeout *t, struct rouse_reactor *r,
		       struct rouse_future *inner, int64_t duration_ns);

/* ---- user events ---------------------------------------------------- */

struct rouse_event;

int rouse_event_new(struct rouse_reactor *r, struct rouse_event **out);
void rouse_event_free(struct rouse_event *ev);
int rouse_event_notify(struct rouse_event *ev);



/* ---- fd readiness and I/O ------------------------------------------- */

struct rouse_io;

/* Readiness bits, as in epoll(7). */
enum {
	ROUSE_IO_READABLE = 0x01,
	ROUSE_IO_WRITABLE = 0x04,
	ROUSE_IO_ERROR = 0x08,
	ROUSE_IO_HANGUP = 0x10,
	ROUSE_IO_READ_HANGUP = 0x2000,
};

int rouse_io_register(struct rouse_reactor *r, int fd, struct rouse_io **out);
int rouse_io_deregister(struct rouse_io *io);
int rouse_io_fd(const struct rouse_io *io);
int rouse_io_clear(struct rouse_io *io, uint32_t events);

/* Private state shared by the I/O futures. */
struct rouse_io_op {
	struct rouse_future base;
	struct rouse_io *io;
	int dir;
	int registered;
};

/* Ready once the event was notified; count is the notifications taken. */
struct rouse_event_wait {
	struct rouse_io_op op;		/* private */
	uint64_t count;			/* output */
	int result;			/* output: 0 or -ECANCELED */
};

int rouse_event_wait_init(struct rouse_event_wait *w, struct rouse_event *ev);

/* Ready when the fd is readable (or writable); events has all bits seen. */
struct rouse_io_ready {
	struct rouse_io_op op;		/* private */
	uint32_t events;		/* output: ROUSE_IO_* */
	int result;			/* output: 0 or -errno */
};

int rouse_io_readable_init(struct rouse_io_ready *f, struct rouse_io *io);
int rouse_io_writable_init(struct rouse_io_ready *f, struct rouse_io *io);

/* read(2)/write(2) of up to len bytes, waiting while the fd would block. */
struct rouse_io_rw {
	struct rouse_io_op op;		/* private */
	void *buf;			/* private */
	size_t len;			/* private */
	ssize_t result;			/* output: bytes, 0 at EOF, or -errno */
};

int rouse_io_read_init(struct rouse_io_rw *f, struct rouse_io *io, void *buf,
		       size_t len);
int rouse_io_write_init(struct rouse_io_rw *f, struct rouse_io *io,
			const void *buf, size_t len);

/* accept4(2) a connection: result is the new fd, nonblocking and CLOEXEC. */
struct rouse_io_accept {
	struct rouse_io_op op;		/* private */
	struct sockaddr_storage addr;	/* output: the peer */
	socklen_t addrlen;		/* output */
	int result;			/* output: fd or -errno */
};

int rouse_io_accept_init(struct rouse_io_accept *f, struct rouse_io *io);

/* connect(2) a nonblocking socket and wait until it is done. */
struct rouse_io_connect {
	struct rouse_io_op op;		/* private */
	struct sockaddr_storage addr;	/* private */
	socklen_t addrlen;		/* private */
	int started;			/* private */
	int result;			/* output: 0 or -errno */
};

int rouse_io_connect_init(struct rouse_io_connect *f, struct rouse_io *io,
			  const struct sockaddr *addr, socklen_t addrlen);

#ifdef __cplusplus
}
#endif

#endif /* ROUSE_REACTOR_H */
