// SPDX-License-Identifier: MIT
/*
 * tests/check_random.c - seeded random sequences of operations on the whole
 * runtime, with invariants checked at each step and at the end.
 *
 * Each sequence has a seed.  The seed chooses (modulo 5) the configuration (a
 * current-thread or a multi-thread executor with two workers; a reactor on
 * its own thread, one driven through rouse_reactor_parker(3), or a
 * ROUSE_REACTOR_LOCAL one driven by a current-thread executor) and the
 * script that the root future of rouse_executor_block_on(3) runs: spawn
 * tasks of many kinds, abort, detach, join and drop their handles, poll
 * handles once, open gates by waking the wakers their tasks left,
 * wake them for nothing, sleep, yield, take the async mutex, send into
 * bounded mpsc channels and release the root's sender, make socket pairs
 * whose writer half-closes and whose reader reads until end of file,
 * notify user events, and spin on a task's end.  The tasks themselves
 * sleep, tick intervals, send, receive (and close), lock, read, write,
 * spawn children and spin.
 *
 * What is checked:
 *   - every task's future is dropped exactly once, and never polled after
 *     it answered ready or was dropped;
 *   - a task completes or is cancelled, never both: a join that says 0
 *     finds the output computed from the task's input, one that says
 *     -ECANCELED finds the task aborted, never completed, and dropped;
 *   - no timer fires early: a sleep or an interval tick is ready only
 *     once rouse_reactor_now(3) has passed its deadline, measured from a
 *     reading taken before the timer was made;
 *   - every value that a send queued is received exactly once, in order
 *     per sender, or is counted as discarded by the receiver's drop;
 *   - a reader sees every byte its writer wrote, in order, then 0;
 *   - the mutex is never held twice, and is free at the end;
 *   - every notification of a user event is taken exactly once;
 *   - once everything is freed, no block is left through the allocator
 *     hooks of both libraries (rouse_executor_set_allocator(3)).
 *
 * ROUSE_SEED=N runs the sequences N, N+1, ...; ROUSE_RANDOM_ITERS=K runs K
 * of them (so ROUSE_SEED=N ROUSE_RANDOM_ITERS=1 reruns one sequence);
 * ROUSE_RANDOM_VERBOSE=1 prints each operation as the root runs it.  The
 * first seed is printed; a failure names the sequence's seed.  Sleeps are
 * 0 to 3 ms and only "not early" is checked: nothing depends on timing.
 * Only a hang is timed: a sequence that makes no progress for 30 seconds
 * (ROUSE_RANDOM_WATCHDOG=S to change) has its log and the state of every
 * task printed, and the test aborts.
 */
#include <stdarg.h>
#include <inttypes.h>
#include <sys/socket.h>

#include <rouse/alloc.h>
#include <rouse/async.h>
#include <rouse/combinator.h>
#include <rouse/sync.h>

#include "testutil.h"

#define US INT64_C(1000)
#define MS INT64_C(1000000)

#define DEFAULT_ITERS 250
#define MAX_RECS 160		/* tasks of one sequence, children included */
#define MAX_CHANS 3
#define MAX_SENDERS 6		/* per channel; sender 0 is the root */
#define MAX_PAIRS 3
#define MAX_EVTS 2
#define MIN_OPS 8
#define MAX_OPS 40
#define LOG_LINES 96
#define LOG_LEN 112
#define IO_BUF 8192
/* A sequence that makes no progress for this long is dumped and aborted. */
#define WATCHDOG_S 30

/* ---- counting allocator -------------------------------------------- */

static atomic_long heap_live;
static atomic_long heap_total;

static void *count_malloc(void *data, size_t size)
{
	void *p = malloc(size);

	(void)data;
	if (p != NULL) {
		atomic_fetch_add(&heap_live, 1);
		atomic_fetch_add(&heap_total, 1);
	}
	return p;
}

static void *count_realloc(void *data, void *ptr, size_t size)
{
	(void)data;
	return realloc(ptr, size);
}

static void count_free(void *data, void *ptr)
{
	(void)data;
	atomic_fetch_sub(&heap_live, 1);
	free(ptr);
}

static const struct rouse_allocator count_allocator = {
	.malloc = count_malloc,
	.realloc = count_realloc,
	.free = count_free,
	.data = NULL,
};

/* ---- configurations -------------------------------------------------- */

enum cfg {
	CFG_CUR_THREADED,	/* current-thread, reactor on its thread */
	CFG_CUR_DRIVEN,		/* current-thread, parks in the reactor */
	CFG_MULTI_THREADED,	/* two workers, reactor on its thread */
	CFG_MULTI_DRIVEN,	/* two workers, worker 0 parks in it */
	CFG_CUR_LOCAL,		/* current-thread, ROUSE_REACTOR_LOCAL */
	CFGS,
};

static const char *const cfg_name[CFGS] = {
	"current/threaded", "current/driven", "multi/threaded",
	"multi/driven", "current/local",
};

static bool cfg_multi(int c)
{
	return c == CFG_MULTI_THREADED || c == CFG_MULTI_DRIVEN;
}

static bool cfg_threaded(int c)
{
	return c == CFG_CUR_THREADED || c == CFG_MULTI_THREADED;
}

/* ---- the state of one sequence --------------------------------------- */

enum kind {
	K_VALUE,	/* ready at once */
	K_YIELD,	/* yields n times */
	K_SLEEP,	/* one sleep, checked not early */
	K_INTERVAL,	/* n ticks of an interval, each checked */
	K_GATE,		/* waits until the root opens its gate */
	K_SEND,		/* sends n values into a channel */
	K_RECV,		/* receives until the channel says EPIPE */
	K_MUTEX,	/* one section under the mutex */
	K_READ,		/* reads a socket until end of file */
	K_WRITE,	/* writes a socket, then shuts it down for writing */
	K_EVENT,	/* takes a user event's notifications */
	K_PARENT,	/* spawns a child and joins, aborts or drops it */
	K_SPIN,		/* yields until another task has finished */
	KINDS,
};

static const char *const kind_name[KINDS] = {
	"value", "yield", "sleep", "interval", "gate", "send", "recv",
	"mutex", "read", "write", "event", "parent", "spin",
};

/* What the seq knows of one task, whoever spawned it. */
struct rec {
	bool made;		/* by task_make: the id may be only reserved */
	int kind;
	int parent;		/* the spawning task's rec, or -1: the root */
	int obj;		/* channel, pair, event or spin target */
	uint64_t expect;	/* output of a completion, if deterministic */
	bool counted_out;	/* the output is aux, not expect */
	atomic_int polls;
	atomic_int ready;	/* answered ready */
	atomic_int drops;
	atomic_int late;	/* polls after ready or drop */
	atomic_int aborted;	/* an abort was asked for */
	atomic_llong aux;	/* the count a counted output must equal */
	/* K_GATE: the waker the task left, and whether it may go on. */
	pthread_mutex_t glock;
	struct rouse_waker gw;
	atomic_int open;
};

struct chan {
	struct rouse_mpsc *m;
	int cap;
	bool root_sender;	/* the root still holds its sender */
	int nsenders;		/* sender ids handed out, the root's is 0 */
	uint32_t next[MAX_SENDERS];	/* the receiver's: next seqno */
	uint32_t root_seq;
	int recv_rec;
	atomic_llong sent;	/* sends that answered 0 */
	atomic_llong received;	/* taken by the receiver's futures */
	atomic_llong drained;	/* taken by the receiver's drop */
};

struct pair {
	int fd[2];		/* [0] the reader's end, [1] the writer's */
	struct rouse_io *io[2];
	uint8_t pat;
	int64_t n;		/* bytes the writer means to write */
	int rrec, wrec;
	atomic_llong written;
	atomic_llong read;
	atomic_int eof;
	atomic_int shut;
	atomic_int werr;
};

struct evt {
	struct rouse_event *ev;
	int target;		/* notifications the root makes in all */
	int notified;
	int rec;
	atomic_llong taken;
};

struct seq;

/* A sleep whose end is checked against the reactor's clock. */
struct csleep {
	struct rouse_future base;
	struct seq *sq;
	const char *who;
	int64_t t0, d;
	bool armed;
	struct rouse_sleep s;
};

/* Lock the mutex, hold it across a sleep or a yield, unlock. */
struct msec {
	struct rouse_future base;
	struct seq *sq;
	int who;		/* rec + 1, or 0 for the root */
	int state;		/* 0 locking, 1 holding, 2 done */
	bool by_sleep;
	int64_t d;
	struct rouse_mutex_lock lock;
	struct csleep sl;
	struct rouse_yield y;
};

/* What the root keeps of each task it spawned. */
struct rslot {
	struct rouse_join_handle h;
	bool spawned;		/* by the root */
	bool held;		/* h is live */
	bool done;		/* h answered ready */
	bool kept;		/* dropped only after the executor's free */
	bool forever;		/* K_GATE that is never opened */
};

enum op {
	OP_SPAWN, OP_CHAN_NEW, OP_PAIR_NEW, OP_EVT_NEW, OP_NOTIFY, OP_ABORT,
	OP_DETACH, OP_DROP, OP_POLL, OP_JOIN, OP_WAKE, OP_SPURIOUS, OP_SLEEP,
	OP_YIELD, OP_MUTEX, OP_TRYSEND, OP_SEND, OP_RELEASE, OP_SPIN, OPS,
};

static const struct {
	const char *name;
	int weight;
} op_info[OPS] = {
	[OP_SPAWN] = { "spawn", 30 },
	[OP_CHAN_NEW] = { "chan", 4 },
	[OP_PAIR_NEW] = { "pair", 5 },
	[OP_EVT_NEW] = { "event", 3 },
	[OP_NOTIFY] = { "notify", 5 },
	[OP_ABORT] = { "abort", 6 },
	[OP_DETACH] = { "detach", 4 },
	[OP_DROP] = { "drop", 4 },
	[OP_POLL] = { "poll", 4 },
	[OP_JOIN] = { "join", 10 },
	[OP_WAKE] = { "wake", 6 },
	[OP_SPURIOUS] = { "spurious", 3 },
	[OP_SLEEP] = { "sleep", 5 },
	[OP_YIELD] = { "yield", 3 },
	[OP_MUTEX] = { "mutex", 4 },
	[OP_TRYSEND] = { "try_send", 3 },
	[OP_SEND] = { "send", 3 },
	[OP_RELEASE] = { "release", 3 },
	[OP_SPIN] = { "spin", 2 },
};

struct root {
	struct rouse_future base;
	struct seq *sq;
	int nops, ops;		/* ops to run, ops begun */
	bool finale;		/* the closing list is built */
	int nfin, fin;
	int fin_ids[MAX_RECS];
	struct rouse_future *wait;	/* what the current op awaits */
	int wop, wid;		/* that op, and its rec or channel */
	union {
		struct csleep sl;
		struct msec ms;
		struct rouse_yield y;
		struct rouse_mpsc_send send;
	} f;
	uint64_t send_val;
	struct rslot rs[MAX_RECS];
};

struct seq {
	uint64_t seed;
	int cfg;
	uint64_t rng;		/* the root's */
	struct rouse_reactor *r;
	struct rouse_parker parker;
	struct rouse_executor *ex;
	struct rec rec[MAX_RECS];
	atomic_int nrec;
	struct chan chan[MAX_CHANS];
	int nchan;
	struct pair pair[MAX_PAIRS];
	int npair;
	struct evt evt[MAX_EVTS];
	int nevt;
	atomic_int holder;	/* who holds the mutex: rec + 1, root 0 ... */
	atomic_int holding;	/* ... and whether anyone does */
	atomic_llong sections;
	atomic_long timers;	/* deadlines checked */
	long joins;		/* handles that answered, checked */
	struct rouse_mutex *mutex;
	pthread_mutex_t elock;
	int nerr;
	char err[512];
	int nlog;
	char log[LOG_LINES][LOG_LEN];
	struct root root;
};

static bool verbose;

/* What a run did, all sequences together, printed at the end. */
static struct {
	long cfgs[CFGS];
	long tasks, completed, cancelled, joins, timers, values, drained;
	long bytes, eofs, sections, notified;
} stats;
static atomic_long progress;	/* moves whenever the root does something */
static struct seq *_Atomic current_seq;	/* for the watchdog's dump */

static uint64_t rnd(uint64_t *state)
{
	return test_splitmix64(state);
}

/* A number in [0, n). */
static uint64_t rnd_below(uint64_t *state, uint64_t n)
{
	return n == 0 ? 0 : rnd(state) % n;
}

/* 0 to 3 ms, often very short. */
static int64_t rnd_duration(uint64_t *state)
{
	switch (rnd_below(state, 4)) {
	case 0:
		return 0;
	case 1:
		return (int64_t)rnd_below(state, 100 * US);
	default:
		return (int64_t)rnd_below(state, 3 * MS + 1);
	}
}

/* Record the first failure of a sequence; any thread. */
static void seq_fail(struct seq *sq, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void seq_fail(struct seq *sq, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&sq->elock);
	if (sq->nerr++ == 0) {
		va_start(ap, fmt);
		vsnprintf(sq->err, sizeof(sq->err), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&sq->elock);
}

/* A line of the root's log: kept for a dump, printed when verbose. */
static void seq_log(struct seq *sq, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void seq_log(struct seq *sq, const char *fmt, ...)
{
	char *line = sq->log[sq->nlog % LOG_LINES];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, LOG_LEN, fmt, ap);
	va_end(ap);
	sq->nlog++;
	atomic_fetch_add(&progress, 1);
	if (verbose)
		fprintf(stderr, "  [%" PRIu64 "] %s\n", sq->seed, line);
}

/* Everything a reader of a failure wants: the log and each object. */
static void seq_dump(struct seq *sq)
{
	int i, n = atomic_load(&sq->nrec);
	int first = sq->nlog > LOG_LINES ? sq->nlog - LOG_LINES : 0;

	fprintf(stderr, "sequence %" PRIu64 " (%s): %d ops logged\n",
		sq->seed, cfg_name[sq->cfg], sq->nlog);
	for (i = first; i < sq->nlog; i++)
		fprintf(stderr, "  %s\n", sq->log[i % LOG_LINES]);
	for (i = 0; i < n; i++) {
		struct rec *rc = &sq->rec[i];

		if (!rc->made) {
			fprintf(stderr, "  task %d: never made\n", i);
			continue;
		}
		fprintf(stderr,
			"  task %d %s parent %d obj %d: polls %d ready %d "
			"drops %d aborted %d aux %lld\n",
			i, kind_name[rc->kind], rc->parent, rc->obj,
			atomic_load(&rc->polls), atomic_load(&rc->ready),
			atomic_load(&rc->drops), atomic_load(&rc->aborted),
			(long long)atomic_load(&rc->aux));
	}
	for (i = 0; i < sq->nchan; i++)
		fprintf(stderr,
			"  chan %d cap %d: sent %lld received %lld drained "
			"%lld root sender %d\n", i, sq->chan[i].cap,
			(long long)atomic_load(&sq->chan[i].sent),
			(long long)atomic_load(&sq->chan[i].received),
			(long long)atomic_load(&sq->chan[i].drained),
			sq->chan[i].root_sender);
	for (i = 0; i < sq->npair; i++)
		fprintf(stderr,
			"  pair %d: n %lld written %lld read %lld eof %d "
			"shut %d werr %d\n", i, (long long)sq->pair[i].n,
			(long long)atomic_load(&sq->pair[i].written),
			(long long)atomic_load(&sq->pair[i].read),
			atomic_load(&sq->pair[i].eof),
			atomic_load(&sq->pair[i].shut),
			atomic_load(&sq->pair[i].werr));
	for (i = 0; i < sq->nevt; i++)
		fprintf(stderr,
			"  event %d: target %d notified %d taken %lld\n", i,
			sq->evt[i].target, sq->evt[i].notified,
			(long long)atomic_load(&sq->evt[i].taken));
}

/* The output a completed task of this kind computes from its input. */
static uint64_t kind_value(int kind, uint64_t in)
{
	return (in ^ (uint64_t)(kind + 1)) * UINT64_C(0x9e3779b97f4a7c15);
}

/* The byte at offset off of a pair's stream. */
static uint8_t pat_byte(uint8_t pat, int64_t off)
{
	return (uint8_t)(pat + off + (off >> 9) * 31);
}

/* ---- the checked sleep ----------------------------------------------- */

static enum rouse_poll csleep_poll(struct rouse_future *f,
				   struct rouse_context *cx)
{
	struct csleep *c = (struct csleep *)f;
	int64_t now;

	if (rouse_future_poll(&c->s.base, cx) == ROUSE_PENDING)
		return ROUSE_PENDING;
	now = rouse_reactor_now(c->sq->r);
	atomic_fetch_add(&c->sq->timers, 1);
	if (c->s.result != 0)
		seq_fail(c->sq, "%s: sleep result %d", c->who, c->s.result);
	if (now < c->t0 + c->d)
		seq_fail(c->sq, "%s: sleep of %lld ns ready %lld ns early",
			 c->who, (long long)c->d,
			 (long long)(c->t0 + c->d - now));
	rouse_future_drop(&c->s.base);
	c->armed = false;
	return ROUSE_READY;
}

static void csleep_drop(struct rouse_future *f)
{
	struct csleep *c = (struct csleep *)f;

	if (c->armed)
		rouse_future_drop(&c->s.base);
	c->armed = false;
}

static const struct rouse_future_vtable csleep_vt = {
	csleep_poll, csleep_drop,
};

/* Sleep d ns, by duration or by deadline; to be polled where it lies. */
static void csleep_init(struct csleep *c, struct seq *sq, int64_t d,
			bool until, const char *who)
{
	int err;

	c->base.vtable = &csleep_vt;
	c->sq = sq;
	c->who = who;
	c->d = d;
	c->t0 = rouse_reactor_now(sq->r);
	if (until)
		err = rouse_sleep_until_init(&c->s, sq->r, c->t0 + d);
	else
		err = rouse_sleep_init(&c->s, sq->r, d);
	if (err != 0)
		seq_fail(sq, "%s: sleep init %d", who, err);
	c->armed = true;
}

/* ---- the mutex section ----------------------------------------------- */

static void cs_enter(struct seq *sq, int who)
{
	if (atomic_exchange(&sq->holding, 1) != 0)
		seq_fail(sq, "mutex: %d entered while %d holds it", who,
			 atomic_load(&sq->holder));
	atomic_store(&sq->holder, who);
}

static void cs_leave(struct seq *sq, int who)
{
	int err;

	if (atomic_load(&sq->holder) != who)
		seq_fail(sq, "mutex: %d leaves, but %d held it", who,
			 atomic_load(&sq->holder));
	atomic_store(&sq->holding, 0);
	err = rouse_mutex_unlock(sq->mutex);
	if (err != 0)
		seq_fail(sq, "mutex: unlock %d", err);
}

static enum rouse_poll msec_poll(struct rouse_future *f,
				 struct rouse_context *cx)
{
	struct msec *m = (struct msec *)f;
	struct rouse_future *hold;

	if (m->state == 0) {
		if (rouse_future_poll(&m->lock.base, cx) == ROUSE_PENDING)
			return ROUSE_PENDING;
		rouse_future_drop(&m->lock.base);
		cs_enter(m->sq, m->who);
		m->state = 1;
		if (m->by_sleep)
			csleep_init(&m->sl, m->sq, m->d, false, "mutex hold");
		else
			rouse_yield_init(&m->y);
	}
	if (m->state == 1) {
		hold = m->by_sleep ? &m->sl.base : &m->y.base;
		if (rouse_future_poll(hold, cx) == ROUSE_PENDING)
			return ROUSE_PENDING;
		rouse_future_drop(hold);
		cs_leave(m->sq, m->who);
		atomic_fetch_add(&m->sq->sections, 1);
		m->state = 2;
	}
	return ROUSE_READY;
}

static void msec_drop(struct rouse_future *f)
{
	struct msec *m = (struct msec *)f;

	if (m->state == 0) {
		rouse_future_drop(&m->lock.base);
	} else if (m->state == 1) {
		rouse_future_drop(m->by_sleep ? &m->sl.base : &m->y.base);
		cs_leave(m->sq, m->who);
	}
	m->state = 2;
}

static const struct rouse_future_vtable msec_vt = { msec_poll, msec_drop };

static void msec_init(struct msec *m, struct seq *sq, int who,
		      uint64_t *rng)
{
	m->base.vtable = &msec_vt;
	m->sq = sq;
	m->who = who;
	m->state = 0;
	m->by_sleep = rnd_below(rng, 2) == 0;
	m->d = (int64_t)rnd_below(rng, MS);
	rouse_mutex_lock_init(&m->lock, sq->mutex);
}

/* ---- tasks ------------------------------------------------------------ */

struct thead {
	struct rouse_future base;
	struct seq *sq;
	int kind;
	int id;			/* the task's rec */
	uint64_t in;
	uint64_t out;		/* the output */
	uint64_t rng;		/* the task's own random numbers */
	struct rouse_async co;
	struct rouse_yield y;	/* a yield, for the kinds that pause */
};

struct k_yield {
	int n, i;
};

struct k_sleep {
	int64_t d;
	bool until;
	struct csleep sl;
};

struct k_interval {
	int64_t period, t0;
	uint64_t n, total;
	bool armed;
	struct rouse_interval iv;
};

struct k_send {
	int chan, sender, n, i;
	bool early;		/* release the sender at completion */
	bool released;
	bool sending;
	uint64_t val;
	struct rouse_mpsc_send send;
};

struct k_recv {
	int chan;
	long close_after;	/* close after that many, or -1 */
	long count;
	bool receiving;
	uint64_t val;
	struct rouse_mpsc_recv recv;
};

struct k_mutex {
	bool started;
	struct msec ms;
};

struct k_io {
	int pair;
	bool busy;
	int64_t off;
	size_t len;		/* of the write in flight */
	struct rouse_io_rw rw;
	bool pausing;
	struct csleep sl;
	uint8_t buf[IO_BUF];
};

struct k_event {
	int evt;
	bool waiting;
	int64_t taken;
	struct rouse_event_wait w;
};

struct k_parent {
	int mode;		/* 0 join, 1 abort and join, 2 drop, 3 detach */
	int child;
	bool held;
	struct rouse_join_handle h;
};

struct k_spin {
	int target;
	long spins;
};

struct task {
	struct thead h;
	union {
		struct k_yield yield;
		struct k_sleep sleep;
		struct k_interval iv;
		struct k_send send;
		struct k_recv recv;
		struct k_mutex mutex;
		struct k_io io;
		struct k_event event;
		struct k_parent parent;
		struct k_spin spin;
	} u;
};

/* Bytes to spawn for a task of kind k: only what it uses. */
static size_t task_size(int k)
{
	size_t base = offsetof(struct task, u);

	switch (k) {
	case K_YIELD:
		return base + sizeof(struct k_yield);
	case K_SLEEP:
		return base + sizeof(struct k_sleep);
	case K_INTERVAL:
		return base + sizeof(struct k_interval);
	case K_SEND:
		return base + sizeof(struct k_send);
	case K_RECV:
		return base + sizeof(struct k_recv);
	case K_MUTEX:
		return base + sizeof(struct k_mutex);
	case K_READ:
	case K_WRITE:
		return base + sizeof(struct k_io);
	case K_EVENT:
		return base + sizeof(struct k_event);
	case K_PARENT:
		return base + sizeof(struct k_parent);
	case K_SPIN:
		return base + sizeof(struct k_spin);
	default:
		return base;
	}
}

/* Yield once from inside a task body (a macro: it awaits). */
#define TASK_YIELD(t)							\
	do {								\
		rouse_yield_init(&(t)->h.y);				\
		ROUSE_AWAIT(&(t)->h.y.base);				\
	} while (0)

static enum rouse_poll body_value(struct task *t, struct rouse_context *cx)
{
	return ROUSE_READY;
}

static enum rouse_poll body_yield(struct task *t, struct rouse_context *cx)
{
	struct k_yield *k = &t->u.yield;

	ROUSE_ASYNC_BEGIN(&t->h.co, cx);
	for (k->i = 0; k->i < k->n; k->i++)
		TASK_YIELD(t);
	ROUSE_ASYNC_END();
}

static enum rouse_poll body_sleep(struct task *t, struct rouse_context *cx)
{
	struct k_sleep *k = &t->u.sleep;

	ROUSE_ASYNC_BEGIN(&t->h.co, cx);
	csleep_init(&k->sl, t->h.sq, k->d, k->until, "sleep task");
	ROUSE_AWAIT(&k->sl.base);
	ROUSE_ASYNC_END();
}

/* Sub-futures start zeroed, and a drop clears them: drop what is set. */
static void drop_sleep(struct task *t)
{
	if (t->u.sleep.sl.base.vtable != NULL)
		rouse_future_drop(&t->u.sleep.sl.base);
}

static enum rouse_poll body_interval(struct task *t, struct rouse_context *cx)
{
	struct k_interval *k = &t->u.iv;
	struct seq *sq = t->h.sq;
	int64_t now;

	ROUSE_ASYNC_BEGIN(&t->h.co, cx);
	k->t0 = rouse_reactor_now(sq->r);
	if (rouse_interval_init(&k->iv, sq->r, k->period) != 0)
		seq_fail(sq, "interval init");
	k->armed = true;
	while (k->total < k->n) {
		ROUSE_AWAIT(&k->iv.sleep.base);
		now = rouse_reactor_now(sq->r);
		if (k->iv.result != 0 || k->iv.ticks == 0)
			seq_fail(sq, "interval: result %d ticks %llu",
				 k->iv.result, (unsigned long long)k->iv.ticks);
		k->total += k->iv.ticks;
		atomic_fetch_add(&sq->timers, 1);
		if (now < k->t0 + (int64_t)k->total * k->period)
			seq_fail(sq, "interval: tick %llu of %lld ns ready "
				 "%lld ns early", (unsigned long long)k->total,
				 (long long)k->period,
				 (long long)(k->t0 + (int64_t)k->total *
					     k->period - now));
		if (k->iv.result != 0)
			break;
	}
	rouse_future_drop(&k->iv.sleep.base);
	k->armed = false;
	ROUSE_ASYNC_END();
}

static void drop_interval(struct task *t)
{
	if (t->u.iv.armed)
		rouse_future_drop(&t->u.iv.iv.sleep.base);
}

static enum rouse_poll body_gate(struct task *t, struct rouse_context *cx)
{
	struct rec *rc = &t->h.sq->rec[t->h.id];
	bool open;

	pthread_mutex_lock(&rc->glock);
	if (rc->gw.vtable != NULL && !rouse_waker_will_wake(&rc->gw, cx->waker))
		rouse_waker_drop(&rc->gw);
	if (rc->gw.vtable == NULL)
		rouse_waker_clone(cx->waker, &rc->gw);
	open = atomic_load(&rc->open) != 0;
	if (open && rc->gw.vtable != NULL)
		rouse_waker_drop(&rc->gw);
	pthread_mutex_unlock(&rc->glock);
	return open ? ROUSE_READY : ROUSE_PENDING;
}

static void drop_gate(struct task *t)
{
	struct rec *rc = &t->h.sq->rec[t->h.id];

	pthread_mutex_lock(&rc->glock);
	if (rc->gw.vtable != NULL)
		rouse_waker_drop(&rc->gw);
	pthread_mutex_unlock(&rc->glock);
}

/* The receiver's check of one value: each sender's arrive in order. */
static void chan_take(struct seq *sq, struct chan *ch, uint64_t val,
		      const char *how)
{
	unsigned int s = (unsigned int)(val >> 32);
	uint32_t n = (uint32_t)val;

	if (s >= MAX_SENDERS) {
		seq_fail(sq, "chan %d: %s value %#llx from no sender",
			 (int)(ch - sq->chan), how, (unsigned long long)val);
		return;
	}
	if (n != ch->next[s])
		seq_fail(sq, "chan %d: %s value %u of sender %u, expected %u",
			 (int)(ch - sq->chan), how, n, s, ch->next[s]);
	ch->next[s] = n + 1;
}

static void send_release(struct task *t)
{
	struct k_send *k = &t->u.send;
	int err;

	if (k->released)
		return;
	k->released = true;
	err = rouse_mpsc_sender_release(t->h.sq->chan[k->chan].m);
	if (err != 0)
		seq_fail(t->h.sq, "send task %d: release %d", t->h.id, err);
}

static enum rouse_poll body_send(struct task *t, struct rouse_context *cx)
{
	struct k_send *k = &t->u.send;
	struct seq *sq = t->h.sq;
	struct chan *ch = &sq->chan[k->chan];
	int res;

	ROUSE_ASYNC_BEGIN(&t->h.co, cx);
	for (k->i = 0; k->i < k->n;) {
		k->val = ((uint64_t)k->sender << 32) | (uint32_t)k->i;
		rouse_mpsc_send_init(&k->send, ch->m, &k->val);
		k->sending = true;
		ROUSE_AWAIT(&k->send.base);
		res = k->send.result;
		rouse_future_drop(&k->send.base);
		k->sending = false;
		if (res != 0) {
			if (res != -EPIPE)
				seq_fail(sq, "send task %d: result %d",
					 t->h.id, res);
			break;
		}
		atomic_fetch_add(&ch->sent, 1);
		k->i++;
		atomic_store(&sq->rec[t->h.id].aux, k->i);
		if (rnd_below(&t->h.rng, 3) == 0)
			TASK_YIELD(t);
	}
	if (k->early)
		send_release(t);
	t->h.out = (uint64_t)k->i;
	ROUSE_ASYNC_END();
}

static void drop_send(struct task *t)
{
	if (t->u.send.sending)
		rouse_future_drop(&t->u.send.send.base);
	send_release(t);
}

static enum rouse_poll body_recv(struct task *t, struct rouse_context *cx)
{
	struct k_recv *k = &t->u.recv;
	struct seq *sq = t->h.sq;
	struct chan *ch = &sq->chan[k->chan];
	int res;

	ROUSE_ASYNC_BEGIN(&t->h.co, cx);
	for (;;) {
		rouse_mpsc_recv_init(&k->recv, ch->m, &k->val);
		k->receiving = true;
		ROUSE_AWAIT(&k->recv.base);
		res = k->recv.result;
		rouse_future_drop(&k->recv.base);
		k->receiving = false;
		if (res != 0) {
			if (res != -EPIPE)
				seq_fail(sq, "recv task %d: result %d",
					 t->h.id, res);
			break;
		}
		chan_take(sq, ch, k->val, "received");
		atomic_fetch_add(&ch->received, 1);
		k->count++;
		atomic_store(&sq->rec[t->h.id].aux, k->count);
		if (k->count == k->close_after &&
		    rouse_mpsc_close(ch->m) != 0)
			seq_fail(sq, "recv task %d: close", t->h.id);
		if (rnd_below(&t->h.rng, 4) == 0)
			TASK_YIELD(t);
	}
	t->h.out = (uint64_t)k->count;
	ROUSE_ASYNC_END();
}

/* The receiver end goes with the task: close, count the rest, free. */
static void drop_recv(struct task *t)
{
	struct k_recv *k = &t->u.recv;
	struct seq *sq = t->h.sq;
	struct chan *ch = &sq->chan[k->chan];
	uint64_t v;
	int err;

	if (k->receiving)
		rouse_future_drop(&k->recv.base);
	if (rouse_mpsc_close(ch->m) != 0)
		seq_fail(sq, "recv drop: close");
	while ((err = rouse_mpsc_try_recv(ch->m, &v)) == 0) {
		chan_take(sq, ch, v, "drained");
		atomic_fetch_add(&ch->drained, 1);
	}
	if (err != -EPIPE)
		seq_fail(sq, "recv drop: try_recv %d", err);
	err = rouse_mpsc_free(ch->m);
	if (err != 0)
		seq_fail(sq, "recv drop: free %d", err);
}

static enum rouse_poll body_mutex(struct task *t, struct rouse_context *cx)
{
	struct k_mutex *k = &t->u.mutex;

	ROUSE_ASYNC_BEGIN(&t->h.co, cx);
	msec_init(&k->ms, t->h.sq, t->h.id + 1, &t->h.rng);
	k->started = true;
	ROUSE_AWAIT(&k->ms.base);
	rouse_future_drop(&k->ms.base);
	k->started = false;
	ROUSE_ASYNC_END();
}

static void drop_mutex(struct task *t)
{
	if (t->u.mutex.started)
		rouse_future_drop(&t->u.mutex.ms.base);
}

/* A read length: sometimes tiny, so that reads stop short or split. */
static size_t io_len(uint64_t *rng)
{
	switch (rnd_below(rng, 3)) {
	case 0:
		return 1 + rnd_below(rng, 64);
	case 1:
		return 1 + rnd_below(rng, 4096);
	default:
		return 1 + rnd_below(rng, IO_BUF);
	}
}

static enum rouse_poll body_read(struct task *t, struct rouse_context *cx)
{
	struct k_io *k = &t->u.io;
	struct seq *sq = t->h.sq;
	struct pair *p = &sq->pair[k->pair];
	ssize_t n, i;

	ROUSE_ASYNC_BEGIN(&t->h.co, cx);
	for (;;) {
		rouse_io_read_init(&k->rw, p->io[0], k->buf,
				   io_len(&t->h.rng));
		k->busy = true;
		ROUSE_AWAIT(&k->rw.op.base);
		n = k->rw.result;
		rouse_future_drop(&k->rw.op.base);
		k->busy = false;
		if (n < 0) {
			seq_fail(sq, "read task %d: result %zd", t->h.id, n);
			break;
		}
		if (n == 0) {
			atomic_store(&p->eof, 1);
			break;
		}
		for (i = 0; i < n; i++) {
			if (k->buf[i] != pat_byte(p->pat, k->off + i)) {
				seq_fail(sq, "read task %d: byte %lld is "
					 "%#x, not %#x", t->h.id,
					 (long long)(k->off + i), k->buf[i],
					 pat_byte(p->pat, k->off + i));
				break;
			}
		}
		k->off += n;
		atomic_store(&p->read, k->off);
		atomic_store(&sq->rec[t->h.id].aux, k->off);
	}
	t->h.out = (uint64_t)k->off;
	ROUSE_ASYNC_END();
}

static void io_close(struct seq *sq, struct pair *p, int end)
{
	if (rouse_io_deregister(p->io[end]) != 0)
		seq_fail(sq, "pair: deregister");
	p->io[end] = NULL;
	close(p->fd[end]);
	p->fd[end] = -1;
}

static void drop_read(struct task *t)
{
	struct k_io *k = &t->u.io;

	if (k->busy)
		rouse_future_drop(&k->rw.op.base);
	io_close(t->h.sq, &t->h.sq->pair[k->pair], 0);
}

static enum rouse_poll body_write(struct task *t, struct rouse_context *cx)
{
	struct k_io *k = &t->u.io;
	struct seq *sq = t->h.sq;
	struct pair *p = &sq->pair[k->pair];
	size_t i;
	ssize_t n;

	ROUSE_ASYNC_BEGIN(&t->h.co, cx);
	while (k->off < p->n) {
		k->len = io_len(&t->h.rng);
		if ((int64_t)k->len > p->n - k->off)
			k->len = (size_t)(p->n - k->off);
		for (i = 0; i < k->len; i++)
			k->buf[i] = pat_byte(p->pat, k->off + (int64_t)i);
		rouse_io_write_init(&k->rw, p->io[1], k->buf, k->len);
		k->busy = true;
		ROUSE_AWAIT(&k->rw.op.base);
		n = k->rw.result;
		rouse_future_drop(&k->rw.op.base);
		k->busy = false;
		if (n < 0) {
			atomic_store(&p->werr, (int)n);
			if (n != -EPIPE && n != -ECONNRESET)
				seq_fail(sq, "write task %d: result %zd",
					 t->h.id, n);
			break;
		}
		if (n == 0) {
			seq_fail(sq, "write task %d: wrote 0 of %zu",
				 t->h.id, k->len);
			break;
		}
		k->off += n;
		atomic_store(&p->written, k->off);
		atomic_store(&sq->rec[t->h.id].aux, k->off);
		if (rnd_below(&t->h.rng, 4) == 0) {
			TASK_YIELD(t);
		} else if (rnd_below(&t->h.rng, 8) == 0) {
			csleep_init(&k->sl, sq,
				    (int64_t)rnd_below(&t->h.rng, MS),
				    false, "write pause");
			k->pausing = true;
			ROUSE_AWAIT(&k->sl.base);
			k->pausing = false;
		}
	}
	if (atomic_load(&p->werr) == 0) {
		if (shutdown(p->fd[1], SHUT_WR) != 0)
			seq_fail(sq, "write task %d: shutdown: %s", t->h.id,
				 strerror(errno));
		atomic_store(&p->shut, 1);
	}
	t->h.out = (uint64_t)k->off;
	ROUSE_ASYNC_END();
}

static void drop_write(struct task *t)
{
	struct k_io *k = &t->u.io;

	if (k->busy)
		rouse_future_drop(&k->rw.op.base);
	if (k->pausing)
		rouse_future_drop(&k->sl.base);
	io_close(t->h.sq, &t->h.sq->pair[k->pair], 1);
}

static enum rouse_poll body_event(struct task *t, struct rouse_context *cx)
{
	struct k_event *k = &t->u.event;
	struct seq *sq = t->h.sq;
	struct evt *e = &sq->evt[k->evt];

	ROUSE_ASYNC_BEGIN(&t->h.co, cx);
	while (k->taken < e->target) {
		rouse_event_wait_init(&k->w, e->ev);
		k->waiting = true;
		ROUSE_AWAIT(&k->w.op.base);
		rouse_future_drop(&k->w.op.base);
		k->waiting = false;
		if (k->w.result != 0) {
			seq_fail(sq, "event task %d: result %d", t->h.id,
				 k->w.result);
			break;
		}
		k->taken += (int64_t)k->w.count;
		atomic_fetch_add(&e->taken, (long long)k->w.count);
	}
	if (k->taken > e->target)
		seq_fail(sq, "event task %d: took %lld of %d", t->h.id,
			 (long long)k->taken, e->target);
	ROUSE_ASYNC_END();
}

static void drop_event(struct task *t)
{
	if (t->u.event.waiting)
		rouse_future_drop(&t->u.event.w.op.base);
}

static void task_make(struct seq *sq, struct task *t, int id, int kind,
		      int parent, uint64_t *rng);

static enum rouse_poll body_parent(struct task *t, struct rouse_context *cx)
{
	struct k_parent *k = &t->u.parent;
	struct seq *sq = t->h.sq;
	static const int kinds[] = { K_VALUE, K_YIELD, K_SLEEP };
	struct task child;
	struct rec *crc;
	int err;

	ROUSE_ASYNC_BEGIN(&t->h.co, cx);
	task_make(sq, &child, k->child, kinds[rnd_below(&t->h.rng, 3)],
		  t->h.id, &t->h.rng);
	crc = &sq->rec[k->child];
	err = rouse_spawn(NULL, &child.h.base, task_size(child.h.kind),
			  k->mode == 3 ? NULL : &k->h);
	if (err != 0) {
		seq_fail(sq, "parent %d: spawn %d", t->h.id, err);
		rouse_future_drop(&child.h.base);
		ROUSE_ASYNC_RETURN();
	}
	k->held = k->mode != 3;
	if (k->mode == 1) {
		atomic_store(&crc->aborted, 1);
		if (rouse_join_handle_abort(&k->h) != 0)
			seq_fail(sq, "parent %d: abort", t->h.id);
	}
	if (k->mode == 2) {
		rouse_future_drop(&k->h.base);
		k->held = false;
	}
	if (k->held) {
		ROUSE_AWAIT(&k->h.base);
		crc = &sq->rec[k->child];
		if (k->h.result == 0) {
			if (((struct task *)k->h.output)->h.out !=
			    crc->expect || !atomic_load(&crc->ready))
				seq_fail(sq, "parent %d: child %d's output",
					 t->h.id, k->child);
		} else if (k->h.result != -ECANCELED ||
			   !atomic_load(&crc->aborted) ||
			   atomic_load(&crc->ready) ||
			   atomic_load(&crc->drops) != 1) {
			seq_fail(sq, "parent %d: child %d result %d",
				 t->h.id, k->child, k->h.result);
		}
		rouse_future_drop(&k->h.base);
		k->held = false;
	}
	ROUSE_ASYNC_END();
}

/* A parent dropped early lets its child go (aborting it, at times). */
static void drop_parent(struct task *t)
{
	struct k_parent *k = &t->u.parent;

	if (!k->held)
		return;
	if (rnd_below(&t->h.rng, 2) == 0) {
		atomic_store(&t->h.sq->rec[k->child].aborted, 1);
		rouse_join_handle_abort(&k->h);
	}
	rouse_future_drop(&k->h.base);
}

/* Finished: completed, or dropped (which includes cancelled). */
static bool rec_finished(struct rec *rc)
{
	return atomic_load(&rc->ready) != 0 || atomic_load(&rc->drops) != 0;
}

static enum rouse_poll body_spin(struct task *t, struct rouse_context *cx)
{
	struct k_spin *k = &t->u.spin;

	ROUSE_ASYNC_BEGIN(&t->h.co, cx);
	while (!rec_finished(&t->h.sq->rec[k->target])) {
		k->spins++;
		TASK_YIELD(t);
	}
	ROUSE_ASYNC_END();
}

typedef enum rouse_poll body_fn(struct task *t, struct rouse_context *cx);
typedef void tdrop_fn(struct task *t);

static const struct {
	body_fn *body;
	tdrop_fn *drop;
} kind_ops[KINDS] = {
	[K_VALUE] = { body_value, NULL },
	[K_YIELD] = { body_yield, NULL },
	[K_SLEEP] = { body_sleep, drop_sleep },
	[K_INTERVAL] = { body_interval, drop_interval },
	[K_GATE] = { body_gate, drop_gate },
	[K_SEND] = { body_send, drop_send },
	[K_RECV] = { body_recv, drop_recv },
	[K_MUTEX] = { body_mutex, drop_mutex },
	[K_READ] = { body_read, drop_read },
	[K_WRITE] = { body_write, drop_write },
	[K_EVENT] = { body_event, drop_event },
	[K_PARENT] = { body_parent, drop_parent },
	[K_SPIN] = { body_spin, NULL },
};

static enum rouse_poll task_poll(struct rouse_future *f,
				 struct rouse_context *cx)
{
	struct task *t = (struct task *)f;
	struct seq *sq = t->h.sq;
	struct rec *rc = &sq->rec[t->h.id];
	enum rouse_poll p;

	if (atomic_load(&rc->drops) != 0 || atomic_load(&rc->ready) != 0) {
		atomic_fetch_add(&rc->late, 1);
		seq_fail(sq, "task %d (%s) polled after %s", t->h.id,
			 kind_name[t->h.kind],
			 atomic_load(&rc->drops) ? "its drop" : "ready");
		return ROUSE_READY;
	}
	atomic_fetch_add(&rc->polls, 1);
	p = kind_ops[t->h.kind].body(t, cx);
	if (p == ROUSE_READY) {
		if (!rc->counted_out)
			t->h.out = kind_value(t->h.kind, t->h.in);
		else
			atomic_store(&rc->aux, (long long)t->h.out);
		atomic_store(&rc->ready, 1);
	}
	return p;
}

static void task_drop(struct rouse_future *f)
{
	struct task *t = (struct task *)f;
	struct seq *sq = t->h.sq;
	struct rec *rc = &sq->rec[t->h.id];

	if (atomic_fetch_add(&rc->drops, 1) != 0)
		seq_fail(sq, "task %d (%s) dropped twice", t->h.id,
			 kind_name[t->h.kind]);
	if (kind_ops[t->h.kind].drop != NULL)
		kind_ops[t->h.kind].drop(t);
}

static const struct rouse_future_vtable task_vt = { task_poll, task_drop };

/*
 * A new task id.  Only the root takes them, so that they do not depend on
 * the schedule: it takes a parent's child's id when it makes the parent.
 */
static int rec_new(struct seq *sq)
{
	int id = atomic_fetch_add(&sq->nrec, 1);

	ck_assert_int_lt(id, MAX_RECS);
	return id;
}

/*
 * Make a task of kind in *t with the rec id; its parameters come from rng.
 * The kinds that need an object (channel, pair, event, target) get it set
 * by the caller afterwards.
 */
static void task_make(struct seq *sq, struct task *t, int id, int kind,
		      int parent, uint64_t *rng)
{
	struct rec *rc = &sq->rec[id];

	memset(t, 0, sizeof(*t));
	t->h.base.vtable = &task_vt;
	t->h.sq = sq;
	t->h.kind = kind;
	t->h.id = id;
	t->h.in = rnd(rng);
	t->h.rng = rnd(rng);
	rc->made = true;
	rc->kind = kind;
	rc->parent = parent;
	rc->obj = -1;
	rc->expect = kind_value(kind, t->h.in);
	rc->counted_out = kind == K_SEND || kind == K_RECV ||
			  kind == K_READ || kind == K_WRITE;
	switch (kind) {
	case K_YIELD:
		t->u.yield.n = 1 + (int)rnd_below(rng, 16);
		break;
	case K_SLEEP:
		t->u.sleep.d = rnd_duration(rng);
		t->u.sleep.until = rnd_below(rng, 2) == 0;
		break;
	case K_INTERVAL:
		t->u.iv.period = 300 * US + (int64_t)rnd_below(rng, 1200 * US);
		t->u.iv.n = 1 + rnd_below(rng, 3);
		break;
	case K_SEND:
		t->u.send.n = 1 + (int)rnd_below(rng, 24);
		t->u.send.early = rnd_below(rng, 2) == 0;
		break;
	case K_RECV:
		t->u.recv.close_after = rnd_below(rng, 4) == 0 ?
			1 + (long)rnd_below(rng, 10) : -1;
		break;
	case K_PARENT:
		t->u.parent.mode = (int)rnd_below(rng, 4);
		t->u.parent.child = rec_new(sq);
		break;
	default:
		break;
	}
}

/* ---- the root ---------------------------------------------------------- */

static struct rslot *rslot(struct root *ro, int id)
{
	return &ro->rs[id];
}

/* Check what the handle of root task id answered. */
static void check_join(struct root *ro, int id)
{
	struct seq *sq = ro->sq;
	struct rslot *s = rslot(ro, id);
	struct rec *rc = &sq->rec[id];
	struct task *t;
	uint64_t want;

	s->done = true;
	sq->joins++;
	if (s->h.result == 0) {
		t = (struct task *)s->h.output;
		want = rc->counted_out ? (uint64_t)atomic_load(&rc->aux) :
					 rc->expect;
		if (!atomic_load(&rc->ready))
			seq_fail(sq, "join %d (%s): 0, but not completed", id,
				 kind_name[rc->kind]);
		if (t == NULL || t->h.out != want)
			seq_fail(sq, "join %d (%s): output %llu, want %llu",
				 id, kind_name[rc->kind],
				 t ? (unsigned long long)t->h.out : 0ULL,
				 (unsigned long long)want);
	} else if (s->h.result == -ECANCELED) {
		if (s->h.output != NULL)
			seq_fail(sq, "join %d: cancelled with output", id);
		if (atomic_load(&rc->ready))
			seq_fail(sq, "join %d (%s): cancelled, but completed",
				 id, kind_name[rc->kind]);
		if (atomic_load(&rc->drops) != 1)
			seq_fail(sq, "join %d: cancelled, dropped %d times",
				 id, atomic_load(&rc->drops));
		if (!atomic_load(&rc->aborted))
			seq_fail(sq, "join %d (%s): cancelled, never aborted",
				 id, kind_name[rc->kind]);
	} else {
		seq_fail(sq, "join %d: result %d", id, s->h.result);
	}
}

/* Whether root task id can finish without a later op of the root. */
static bool joinable(struct root *ro, int id)
{
	struct seq *sq = ro->sq;
	struct rec *rc = &sq->rec[id];

	if (atomic_load(&rc->aborted))
		return true;
	switch (rc->kind) {
	case K_GATE:
		return atomic_load(&rc->open) != 0;
	case K_RECV:
		return !sq->chan[rc->obj].root_sender;
	case K_EVENT:
		return sq->evt[rc->obj].notified == sq->evt[rc->obj].target;
	default:
		return true;
	}
}

/* Kinds whose end depends on nobody: a spin may wait for them. */
static bool independent(int kind)
{
	return kind == K_VALUE || kind == K_YIELD || kind == K_SLEEP ||
	       kind == K_INTERVAL;
}

/* A random root task for which ok() holds, or -1. */
static int pick(struct root *ro, bool (*ok)(struct root *, int))
{
	int n = atomic_load(&ro->sq->nrec), i, found = 0, choice = -1;

	for (i = 0; i < n; i++) {
		if (!rslot(ro, i)->spawned || !ok(ro, i))
			continue;
		/* Reservoir sampling: each candidate equally likely. */
		if (rnd_below(&ro->sq->rng, (uint64_t)++found) == 0)
			choice = i;
	}
	return choice;
}

static bool ok_held(struct root *ro, int id)
{
	return rslot(ro, id)->held && !rslot(ro, id)->kept;
}

static bool ok_abortable(struct root *ro, int id)
{
	return ok_held(ro, id) && !rslot(ro, id)->done;
}

static bool ok_joinable(struct root *ro, int id)
{
	return ok_held(ro, id) && joinable(ro, id);
}

static bool ok_closed_gate(struct root *ro, int id)
{
	struct rec *rc = &ro->sq->rec[id];

	return rc->kind == K_GATE && !rslot(ro, id)->forever &&
	       !atomic_load(&rc->open);
}

static bool ok_gate(struct root *ro, int id)
{
	return ro->sq->rec[id].kind == K_GATE;
}

static bool ok_spin_target(struct root *ro, int id)
{
	return independent(ro->sq->rec[id].kind);
}

/* Spawn t (made by task_make) as root task; false if it failed. */
static bool root_spawn(struct root *ro, struct task *t)
{
	struct seq *sq = ro->sq;
	struct rslot *s = rslot(ro, t->h.id);
	bool detach = rnd_below(&sq->rng, 10) == 0;
	struct rouse_executor *ex = rnd_below(&sq->rng, 2) ? sq->ex : NULL;
	int id = t->h.id, err;

	err = rouse_spawn(ex, &t->h.base, task_size(t->h.kind),
			  detach ? NULL : &s->h);
	seq_log(sq, "spawn %d %s%s", id, kind_name[t->h.kind],
		detach ? " detached" : "");
	if (err != 0) {
		seq_fail(sq, "spawn %d: %d", id, err);
		rouse_future_drop(&t->h.base);
		return false;
	}
	s->spawned = true;
	s->held = !detach;
	return true;
}

/* A channel the root still sends on, with room for one more sender. */
static int pick_chan(struct seq *sq, bool need_sender_room)
{
	int i, found = 0, choice = -1;

	for (i = 0; i < sq->nchan; i++) {
		if (!sq->chan[i].root_sender)
			continue;
		if (need_sender_room && sq->chan[i].nsenders >= MAX_SENDERS)
			continue;
		if (rnd_below(&sq->rng, (uint64_t)++found) == 0)
			choice = i;
	}
	return choice;
}

static void op_spawn(struct root *ro)
{
	static const int kinds[] = {
		K_VALUE, K_YIELD, K_SLEEP, K_INTERVAL, K_GATE, K_GATE,
		K_SEND, K_SEND, K_MUTEX, K_PARENT, K_SPIN,
	};
	struct seq *sq = ro->sq;
	int kind = kinds[rnd_below(&sq->rng, sizeof(kinds) / sizeof(*kinds))];
	int c = -1, target = -1, err;
	bool forever = false;
	struct task t;

	if (kind == K_SEND && (c = pick_chan(sq, true)) < 0)
		kind = K_VALUE;
	if (kind == K_SPIN && (target = pick(ro, ok_spin_target)) < 0)
		kind = K_YIELD;
	if (kind == K_GATE)
		forever = rnd_below(&sq->rng, 4) == 0;
	task_make(sq, &t, rec_new(sq), kind, -1, &sq->rng);
	if (kind == K_SEND) {
		err = rouse_mpsc_sender_clone(sq->chan[c].m);
		if (err != 0) {
			seq_fail(sq, "sender clone: %d", err);
			return;
		}
		t.u.send.chan = c;
		t.u.send.sender = sq->chan[c].nsenders++;
		sq->rec[t.h.id].obj = c;
	}
	if (kind == K_SPIN) {
		t.u.spin.target = target;
		sq->rec[t.h.id].obj = target;
	}
	rslot(ro, t.h.id)->forever = forever;
	root_spawn(ro, &t);
}

static void op_chan_new(struct root *ro)
{
	struct seq *sq = ro->sq;
	struct chan *ch = &sq->chan[sq->nchan];
	struct task t;
	int err;

	ch->cap = 1 + (int)rnd_below(&sq->rng, 4);
	err = rouse_mpsc_new(sizeof(uint64_t), (size_t)ch->cap, &ch->m);
	if (err != 0) {
		seq_fail(sq, "mpsc_new: %d", err);
		return;
	}
	ch->root_sender = true;
	ch->nsenders = 1;
	task_make(sq, &t, rec_new(sq), K_RECV, -1, &sq->rng);
	t.u.recv.chan = sq->nchan;
	sq->rec[t.h.id].obj = sq->nchan;
	ch->recv_rec = t.h.id;
	seq_log(sq, "chan %d capacity %d", sq->nchan, ch->cap);
	sq->nchan++;
	root_spawn(ro, &t);
}

static void op_pair_new(struct root *ro)
{
	struct seq *sq = ro->sq;
	int pi = sq->npair;
	struct pair *p = &sq->pair[pi];
	struct task rd, wr;

	test_pair_make(p->fd);
	ck_assert_int_eq(rouse_io_register(sq->r, p->fd[0], &p->io[0]), 0);
	ck_assert_int_eq(rouse_io_register(sq->r, p->fd[1], &p->io[1]), 0);
	p->pat = (uint8_t)rnd(&sq->rng);
	switch (rnd_below(&sq->rng, 5)) {
	case 0:
		p->n = 0;
		break;
	case 1:
		p->n = 1 + (int64_t)rnd_below(&sq->rng, 512);
		break;
	case 2:
	case 3:
		p->n = 1 + (int64_t)rnd_below(&sq->rng, 16384);
		break;
	default:
		p->n = 1 + (int64_t)rnd_below(&sq->rng, 262144);
		break;
	}
	task_make(sq, &rd, rec_new(sq), K_READ, -1, &sq->rng);
	task_make(sq, &wr, rec_new(sq), K_WRITE, -1, &sq->rng);
	rd.u.io.pair = wr.u.io.pair = pi;
	sq->rec[rd.h.id].obj = sq->rec[wr.h.id].obj = pi;
	p->rrec = rd.h.id;
	p->wrec = wr.h.id;
	sq->npair++;
	seq_log(sq, "pair %d: %lld bytes", pi, (long long)p->n);
	if (rnd_below(&sq->rng, 2)) {
		root_spawn(ro, &rd);
		root_spawn(ro, &wr);
	} else {
		root_spawn(ro, &wr);
		root_spawn(ro, &rd);
	}
}

static void op_evt_new(struct root *ro)
{
	struct seq *sq = ro->sq;
	struct evt *e = &sq->evt[sq->nevt];
	struct task t;
	int err;

	err = rouse_event_new(sq->r, &e->ev);
	if (err != 0) {
		seq_fail(sq, "event_new: %d", err);
		return;
	}
	e->target = 1 + (int)rnd_below(&sq->rng, 8);
	task_make(sq, &t, rec_new(sq), K_EVENT, -1, &sq->rng);
	t.u.event.evt = sq->nevt;
	sq->rec[t.h.id].obj = sq->nevt;
	e->rec = t.h.id;
	seq_log(sq, "event %d target %d", sq->nevt, e->target);
	sq->nevt++;
	root_spawn(ro, &t);
}

static void notify(struct seq *sq, int ei, int k)
{
	struct evt *e = &sq->evt[ei];
	int err;

	seq_log(sq, "notify event %d x%d", ei, k);
	while (k-- > 0) {
		err = rouse_event_notify(e->ev);
		if (err != 0)
			seq_fail(sq, "notify: %d", err);
		e->notified++;
	}
}

static void gate_open(struct root *ro, int id)
{
	struct rec *rc = &ro->sq->rec[id];
	struct rouse_waker w = { NULL, NULL };

	seq_log(ro->sq, "open gate %d", id);
	atomic_store(&rc->open, 1);
	pthread_mutex_lock(&rc->glock);
	if (rc->gw.vtable != NULL) {
		w = rc->gw;
		rc->gw.vtable = NULL;
	}
	pthread_mutex_unlock(&rc->glock);
	if (w.vtable != NULL)
		rouse_waker_wake(&w);
}

/* Wake a gate task's waker without opening: it must stay pending. */
static void gate_spurious(struct root *ro, int id)
{
	struct rec *rc = &ro->sq->rec[id];
	struct rouse_waker w = { NULL, NULL };

	seq_log(ro->sq, "spurious wake %d", id);
	pthread_mutex_lock(&rc->glock);
	if (rc->gw.vtable != NULL)
		rouse_waker_clone(&rc->gw, &w);
	pthread_mutex_unlock(&rc->glock);
	if (w.vtable == NULL)
		return;
	if (rnd_below(&ro->sq->rng, 2)) {
		rouse_waker_wake(&w);
	} else {
		rouse_waker_wake_by_ref(&w);
		rouse_waker_drop(&w);
	}
}

static void root_abort(struct root *ro, int id)
{
	seq_log(ro->sq, "abort %d", id);
	atomic_store(&ro->sq->rec[id].aborted, 1);
	if (rouse_join_handle_abort(&rslot(ro, id)->h) != 0)
		seq_fail(ro->sq, "abort %d failed", id);
}

static void root_release(struct root *ro, int id, bool detach)
{
	struct rslot *s = rslot(ro, id);
	int err;

	seq_log(ro->sq, "%s %d", detach ? "detach" : "drop", id);
	err = detach ? rouse_join_handle_detach(&s->h) :
		       rouse_future_drop(&s->h.base);
	if (err != 0)
		seq_fail(ro->sq, "%s %d: %d", detach ? "detach" : "drop", id,
			 err);
	s->held = false;
}

static void root_join(struct root *ro, int id)
{
	seq_log(ro->sq, "join %d", id);
	ro->wait = &rslot(ro, id)->h.base;
	ro->wop = OP_JOIN;
	ro->wid = id;
}

/* Run one random op of the script. */
static void root_op(struct root *ro, struct rouse_context *cx)
{
	struct seq *sq = ro->sq;
	int total = 0, i, op = OP_YIELD, id, tries, c;
	uint64_t x;

	for (i = 0; i < OPS; i++)
		total += op_info[i].weight;
	for (tries = 0; tries < 8; tries++) {
		x = rnd_below(&sq->rng, (uint64_t)total);
		for (op = 0; op < OPS; op++) {
			if (x < (uint64_t)op_info[op].weight)
				break;
			x -= (uint64_t)op_info[op].weight;
		}
		switch (op) {
		case OP_CHAN_NEW:
			if (sq->nchan < MAX_CHANS)
				goto run;
			break;
		case OP_PAIR_NEW:
			if (sq->npair < MAX_PAIRS)
				goto run;
			break;
		case OP_EVT_NEW:
			if (sq->nevt < MAX_EVTS)
				goto run;
			break;
		default:
			goto run;
		}
	}
	op = OP_YIELD;
run:
	switch (op) {
	case OP_SPAWN:
		op_spawn(ro);
		break;
	case OP_CHAN_NEW:
		op_chan_new(ro);
		break;
	case OP_PAIR_NEW:
		op_pair_new(ro);
		break;
	case OP_EVT_NEW:
		op_evt_new(ro);
		break;
	case OP_NOTIFY:
		for (i = 0; i < sq->nevt; i++) {
			struct evt *e = &sq->evt[i];

			if (e->notified < e->target) {
				notify(sq, i, 1 + (int)rnd_below(&sq->rng,
					(uint64_t)(e->target - e->notified)));
				break;
			}
		}
		break;
	case OP_ABORT:
		if ((id = pick(ro, ok_abortable)) >= 0)
			root_abort(ro, id);
		break;
	case OP_DETACH:
	case OP_DROP:
		if ((id = pick(ro, ok_held)) >= 0)
			root_release(ro, id, op == OP_DETACH);
		break;
	case OP_POLL:
		if ((id = pick(ro, ok_held)) < 0)
			break;
		seq_log(sq, "poll %d", id);
		if (rouse_future_poll(&rslot(ro, id)->h.base, cx) ==
		    ROUSE_READY)
			check_join(ro, id);
		break;
	case OP_JOIN:
		if ((id = pick(ro, ok_joinable)) >= 0)
			root_join(ro, id);
		break;
	case OP_WAKE:
		if ((id = pick(ro, ok_closed_gate)) >= 0)
			gate_open(ro, id);
		break;
	case OP_SPURIOUS:
		if ((id = pick(ro, ok_gate)) >= 0)
			gate_spurious(ro, id);
		break;
	case OP_SLEEP:
		x = (uint64_t)rnd_duration(&sq->rng);
		csleep_init(&ro->f.sl, sq, (int64_t)x,
			    rnd_below(&sq->rng, 2) != 0, "root sleep");
		seq_log(sq, "sleep %lld ns", (long long)ro->f.sl.d);
		ro->wait = &ro->f.sl.base;
		ro->wop = OP_SLEEP;
		break;
	case OP_YIELD:
		seq_log(sq, "yield");
		rouse_yield_init(&ro->f.y);
		ro->wait = &ro->f.y.base;
		ro->wop = OP_YIELD;
		break;
	case OP_MUTEX:
		seq_log(sq, "mutex");
		msec_init(&ro->f.ms, sq, 0, &sq->rng);
		ro->wait = &ro->f.ms.base;
		ro->wop = OP_MUTEX;
		break;
	case OP_TRYSEND:
		if ((c = pick_chan(sq, false)) < 0)
			break;
		x = sq->chan[c].root_seq;
		i = rouse_mpsc_try_send(sq->chan[c].m, &x);
		seq_log(sq, "try_send chan %d: %d", c, i);
		if (i == 0) {
			sq->chan[c].root_seq++;
			atomic_fetch_add(&sq->chan[c].sent, 1);
		} else if (i != -EAGAIN && i != -EPIPE) {
			seq_fail(sq, "try_send: %d", i);
		}
		break;
	case OP_SEND:
		if ((c = pick_chan(sq, false)) < 0)
			break;
		seq_log(sq, "send chan %d", c);
		ro->send_val = sq->chan[c].root_seq;
		rouse_mpsc_send_init(&ro->f.send, sq->chan[c].m,
				     &ro->send_val);
		ro->wait = &ro->f.send.base;
		ro->wop = OP_SEND;
		ro->wid = c;
		break;
	case OP_RELEASE:
		if ((c = pick_chan(sq, false)) < 0)
			break;
		seq_log(sq, "release chan %d", c);
		sq->chan[c].root_sender = false;
		if (rouse_mpsc_sender_release(sq->chan[c].m) != 0)
			seq_fail(sq, "sender release");
		break;
	case OP_SPIN:
		if ((id = pick(ro, ok_spin_target)) < 0)
			break;
		seq_log(sq, "spin on %d", id);
		rouse_yield_init(&ro->f.y);
		ro->wait = &ro->f.y.base;
		ro->wop = OP_SPIN;
		ro->wid = id;
		break;
	}
}

/* The op that ro->wait belonged to is ready: finish it. */
static void root_finish(struct root *ro)
{
	struct seq *sq = ro->sq;
	struct chan *ch;
	int res;

	switch (ro->wop) {
	case OP_JOIN:
		check_join(ro, ro->wid);
		/* Drop now, or keep the finished handle for later. */
		if (rnd_below(&sq->rng, 2))
			root_release(ro, ro->wid, false);
		break;
	case OP_SLEEP:
		rouse_future_drop(&ro->f.sl.base);
		break;
	case OP_MUTEX:
		rouse_future_drop(&ro->f.ms.base);
		break;
	case OP_SEND:
		ch = &sq->chan[ro->wid];
		res = ro->f.send.result;
		rouse_future_drop(&ro->f.send.base);
		if (res == 0) {
			ch->root_seq++;
			atomic_fetch_add(&ch->sent, 1);
		} else if (res != -EPIPE) {
			seq_fail(sq, "root send: %d", res);
		}
		break;
	case OP_SPIN:
		if (!rec_finished(&sq->rec[ro->wid])) {
			rouse_yield_init(&ro->f.y);
			ro->wait = &ro->f.y.base;
		}
		break;
	default:
		break;
	}
}

/*
 * The end of the script: let every gate (but the forever ones), event and
 * channel go, then deal with each handle still held, in random order.
 */
static void finale_build(struct root *ro)
{
	struct seq *sq = ro->sq;
	int n = atomic_load(&sq->nrec), i, j, tmp;

	seq_log(sq, "finale");
	for (i = 0; i < sq->nevt; i++)
		if (sq->evt[i].notified < sq->evt[i].target)
			notify(sq, i, sq->evt[i].target - sq->evt[i].notified);
	for (i = 0; i < sq->nchan; i++) {
		if (sq->chan[i].root_sender) {
			seq_log(sq, "release chan %d", i);
			sq->chan[i].root_sender = false;
			if (rouse_mpsc_sender_release(sq->chan[i].m) != 0)
				seq_fail(sq, "sender release");
		}
	}
	for (i = 0; i < n; i++)
		if (rslot(ro, i)->spawned && ok_closed_gate(ro, i))
			gate_open(ro, i);
	ro->nfin = 0;
	for (i = 0; i < n; i++)
		if (rslot(ro, i)->spawned && rslot(ro, i)->held &&
		    !rslot(ro, i)->kept)
			ro->fin_ids[ro->nfin++] = i;
	for (i = ro->nfin - 1; i > 0; i--) {
		j = (int)rnd_below(&sq->rng, (uint64_t)i + 1);
		tmp = ro->fin_ids[i];
		ro->fin_ids[i] = ro->fin_ids[j];
		ro->fin_ids[j] = tmp;
	}
	ro->fin = 0;
	ro->finale = true;
}

static void finale_step(struct root *ro, int id)
{
	struct seq *sq = ro->sq;
	struct rslot *s = rslot(ro, id);

	switch (rnd_below(&sq->rng, 6)) {
	case 0:
		if (!s->done)
			root_abort(ro, id);
		root_join(ro, id);
		break;
	case 1:
		root_release(ro, id, false);
		break;
	case 2:
		root_release(ro, id, true);
		break;
	case 3:
		seq_log(sq, "keep %d past the executor", id);
		s->kept = true;
		break;
	default:
		if (!joinable(ro, id))
			root_abort(ro, id);
		root_join(ro, id);
		break;
	}
}

static enum rouse_poll root_poll(struct rouse_future *f,
				 struct rouse_context *cx)
{
	struct root *ro = (struct root *)f;

	for (;;) {
		if (ro->wait != NULL) {
			if (rouse_future_poll(ro->wait, cx) == ROUSE_PENDING)
				return ROUSE_PENDING;
			ro->wait = NULL;
			root_finish(ro);
			continue;
		}
		if (ro->ops < ro->nops) {
			ro->ops++;
			root_op(ro, cx);
			continue;
		}
		if (!ro->finale) {
			finale_build(ro);
			continue;
		}
		if (ro->fin < ro->nfin) {
			finale_step(ro, ro->fin_ids[ro->fin++]);
			continue;
		}
		return ROUSE_READY;
	}
}

static const struct rouse_future_vtable root_vt = { root_poll, NULL };

/* ---- one sequence ------------------------------------------------------ */

static struct seq *seq_new(uint64_t seed)
{
	struct seq *sq = calloc(1, sizeof(*sq));
	int i;

	ck_assert_ptr_nonnull(sq);
	sq->seed = seed;
	sq->rng = seed;
	sq->cfg = (int)(seed % CFGS);
	pthread_mutex_init(&sq->elock, NULL);
	for (i = 0; i < MAX_RECS; i++)
		pthread_mutex_init(&sq->rec[i].glock, NULL);
	for (i = 0; i < MAX_PAIRS; i++)
		sq->pair[i].fd[0] = sq->pair[i].fd[1] = -1;
	return sq;
}

static void seq_free(struct seq *sq)
{
	int i;

	for (i = 0; i < MAX_RECS; i++)
		pthread_mutex_destroy(&sq->rec[i].glock);
	pthread_mutex_destroy(&sq->elock);
	free(sq);
}

/* Everything is gone: check what the records say. */
static void seq_check(struct seq *sq)
{
	int n = atomic_load(&sq->nrec), i;
	long long sent, got;

	for (i = 0; i < n; i++) {
		struct rec *rc = &sq->rec[i];

		if (!rc->made)
			continue;	/* a child whose parent never ran */
		if (atomic_load(&rc->drops) != 1)
			seq_fail(sq, "task %d (%s) dropped %d times", i,
				 kind_name[rc->kind], atomic_load(&rc->drops));
		if (atomic_load(&rc->late) != 0)
			seq_fail(sq, "task %d (%s) polled late", i,
				 kind_name[rc->kind]);
		if (rc->kind == K_GATE && rc->gw.vtable != NULL)
			seq_fail(sq, "gate %d: waker left behind", i);
	}
	for (i = 0; i < sq->nchan; i++) {
		struct chan *ch = &sq->chan[i];

		sent = atomic_load(&ch->sent);
		got = atomic_load(&ch->received) + atomic_load(&ch->drained);
		if (sent != got)
			seq_fail(sq, "chan %d: %lld sent, %lld received and "
				 "%lld drained", i, sent,
				 (long long)atomic_load(&ch->received),
				 (long long)atomic_load(&ch->drained));
	}
	for (i = 0; i < sq->npair; i++) {
		struct pair *p = &sq->pair[i];
		bool rdone = atomic_load(&sq->rec[p->rrec].ready) != 0;
		bool wdone = atomic_load(&sq->rec[p->wrec].ready) != 0;
		long long rd = atomic_load(&p->read);

		if (rdone && (!atomic_load(&p->eof) ||
			      rd != atomic_load(&p->written)))
			seq_fail(sq, "pair %d: reader done at %lld bytes "
				 "(eof %d), writer wrote %lld", i, rd,
				 atomic_load(&p->eof),
				 (long long)atomic_load(&p->written));
		if (wdone && atomic_load(&p->werr) == 0 &&
		    atomic_load(&p->written) != p->n)
			seq_fail(sq, "pair %d: writer done at %lld of %lld",
				 i, (long long)atomic_load(&p->written),
				 (long long)p->n);
		if (atomic_load(&p->werr) != 0 && rdone)
			seq_fail(sq, "pair %d: write failed with %d, but the "
				 "reader completed", i, atomic_load(&p->werr));
		if (p->fd[0] >= 0 || p->fd[1] >= 0)
			seq_fail(sq, "pair %d: an end was never closed", i);
	}
	if (atomic_load(&sq->holding))
		seq_fail(sq, "mutex still held by %d",
			 atomic_load(&sq->holder));

	stats.cfgs[sq->cfg]++;
	for (i = 0; i < n; i++) {
		if (!sq->rec[i].made)
			continue;
		stats.tasks++;
		if (atomic_load(&sq->rec[i].ready))
			stats.completed++;
		else
			stats.cancelled++;
	}
	stats.joins += sq->joins;
	stats.timers += atomic_load(&sq->timers);
	for (i = 0; i < sq->nchan; i++) {
		stats.values += atomic_load(&sq->chan[i].sent);
		stats.drained += atomic_load(&sq->chan[i].drained);
	}
	for (i = 0; i < sq->npair; i++) {
		stats.bytes += atomic_load(&sq->pair[i].read);
		stats.eofs += atomic_load(&sq->pair[i].eof);
	}
	stats.sections += atomic_load(&sq->sections);
	for (i = 0; i < sq->nevt; i++)
		stats.notified += sq->evt[i].notified;
}

/* What an event holds that no wait took; polled by hand. */
static long long evt_leftover(struct seq *sq, struct evt *e)
{
	struct rouse_event_wait w;
	long long n = 0;

	ck_assert_int_eq(rouse_event_wait_init(&w, e->ev), 0);
	if (test_poll_noop(&w.op.base) == ROUSE_READY) {
		if (w.result != 0)
			seq_fail(sq, "leftover wait: %d", w.result);
		n = (long long)w.count;
	}
	rouse_future_drop(&w.op.base);
	return n;
}

static void run_seq(uint64_t seed)
{
	struct seq *sq = seq_new(seed);
	struct rouse_executor_config cfg;
	struct root *ro = &sq->root;
	int i, err, n;

	atomic_store(&current_seq, sq);
	ck_assert_int_eq(rouse_reactor_new(&sq->r, sq->cfg == CFG_CUR_LOCAL ?
					   ROUSE_REACTOR_LOCAL : 0), 0);
	if (cfg_threaded(sq->cfg))
		ck_assert_int_eq(rouse_reactor_start(sq->r), 0);
	else
		ck_assert_int_eq(rouse_reactor_parker(sq->r, &sq->parker), 0);
	ck_assert_int_eq(rouse_executor_config_init(&cfg), 0);
	cfg.kind = cfg_multi(sq->cfg) ? ROUSE_EXECUTOR_MULTI_THREAD :
					ROUSE_EXECUTOR_CURRENT_THREAD;
	cfg.workers = 2;
	if (!cfg_threaded(sq->cfg))
		cfg.parker = &sq->parker;
	ck_assert_int_eq(rouse_executor_new(&cfg, &sq->ex), 0);
	ck_assert_int_eq(rouse_mutex_new(&sq->mutex), 0);

	ro->base.vtable = &root_vt;
	ro->sq = sq;
	ro->nops = MIN_OPS + (int)rnd_below(&sq->rng, MAX_OPS - MIN_OPS + 1);
	seq_log(sq, "%s, %d ops", cfg_name[sq->cfg], ro->nops);

	err = rouse_executor_block_on(sq->ex, &ro->base);
	if (err != 0)
		seq_fail(sq, "block_on: %d", err);
	rouse_future_drop(&ro->base);
	ck_assert_int_eq(rouse_executor_free(sq->ex), 0);

	/* Handles kept past the free: their tasks ended one way or another. */
	n = atomic_load(&sq->nrec);
	for (i = 0; i < n; i++) {
		struct rslot *s = rslot(ro, i);

		if (!s->held)
			continue;
		/* Every task has ended: its handle answers at once. */
		if (rnd_below(&sq->rng, 2) == 0) {
			if (test_poll_noop(&s->h.base) != ROUSE_READY)
				seq_fail(sq, "kept %d: pending after the "
					 "executor's free", i);
			else if (s->h.result == 0)
				check_join(ro, i);
			else if (s->h.result != -ECANCELED ||
				 atomic_load(&sq->rec[i].ready))
				seq_fail(sq, "kept %d: result %d", i,
					 s->h.result);
		}
		rouse_future_drop(&s->h.base);
		s->held = false;
	}
	ck_assert_int_eq(rouse_mutex_free(sq->mutex), 0);
	for (i = 0; i < sq->nevt; i++) {
		struct evt *e = &sq->evt[i];
		long long left = evt_leftover(sq, e);

		if (atomic_load(&e->taken) + left != e->notified)
			seq_fail(sq, "event %d: %d notified, %lld taken, "
				 "%lld left", i, e->notified,
				 (long long)atomic_load(&e->taken), left);
		/* The reactor's free frees the others. */
		if (rnd_below(&sq->rng, 2))
			rouse_event_free(e->ev);
	}
	if (cfg_threaded(sq->cfg))
		ck_assert_int_eq(rouse_reactor_stop(sq->r), 0);
	rouse_reactor_free(sq->r);
	seq_check(sq);
	if (atomic_load(&heap_live) != 0)
		seq_fail(sq, "%ld blocks left through the allocator hooks",
			 atomic_load(&heap_live));
	atomic_store(&current_seq, NULL);
	if (sq->nerr != 0) {
		seq_dump(sq);
		ck_abort_msg("sequence %" PRIu64 " (%s) failed (%d errors; "
			     "rerun: ROUSE_SEED=%" PRIu64 " "
			     "ROUSE_RANDOM_ITERS=1): %s", seed,
			     cfg_name[sq->cfg], sq->nerr, seed, sq->err);
	}
	seq_free(sq);
}

/* ---- the watchdog ------------------------------------------------------ */

static atomic_int watchdog_stop;
static int watchdog_s = WATCHDOG_S;

/* Dump the sequence that has not moved for WATCHDOG_S seconds; abort. */
static void *watchdog(void *arg)
{
	long last = -1, now;
	int still = 0;

	(void)arg;
	while (!atomic_load(&watchdog_stop)) {
		struct timespec ts = { 0, 100 * MS };
		struct seq *sq;

		nanosleep(&ts, NULL);
		now = atomic_load(&progress);
		if (now != last) {
			last = now;
			still = 0;
			continue;
		}
		if (++still < watchdog_s * 10)
			continue;
		sq = atomic_load(&current_seq);
		fprintf(stderr, "check_random: no progress for %d s\n",
			watchdog_s);
		if (sq != NULL) {
			seq_dump(sq);
			fprintf(stderr, "rerun: ROUSE_SEED=%" PRIu64
				" ROUSE_RANDOM_ITERS=1\n", sq->seed);
		}
		abort();
	}
	return NULL;
}

/* ---- the case ---------------------------------------------------------- */

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? strtoull(v, NULL, 0) : dflt;
}

START_TEST(random_sequences)
{
	uint64_t seed, iters, i;
	pthread_t wd;

	seed = env_u64("ROUSE_SEED", (uint64_t)time(NULL) * 1000003u ^
			       (uint64_t)getpid());
	iters = env_u64("ROUSE_RANDOM_ITERS", DEFAULT_ITERS);
	verbose = env_u64("ROUSE_RANDOM_VERBOSE", 0) != 0;
	watchdog_s = (int)env_u64("ROUSE_RANDOM_WATCHDOG", WATCHDOG_S);
	printf("check_random: seeds %" PRIu64 "..%" PRIu64 " (rerun one: "
	       "ROUSE_SEED=N ROUSE_RANDOM_ITERS=1)\n", seed,
	       seed + iters - 1);
	fflush(stdout);

	/* This thread's parker comes from the C library, before counting. */
	test_warm_thread_parker();
	ck_assert_int_eq(rouse_executor_set_allocator(&count_allocator), 0);
	ck_assert_int_eq(rouse_reactor_set_allocator(&count_allocator), 0);
	wd = test_thread_start(watchdog, NULL);
	for (i = 0; i < iters; i++)
		run_seq(seed + i);
	atomic_store(&watchdog_stop, 1);
	test_thread_join(wd);
	ck_assert_int_eq(rouse_executor_set_allocator(NULL), 0);
	ck_assert_int_eq(rouse_reactor_set_allocator(NULL), 0);
	printf("check_random: %" PRIu64 " sequences (%ld %ld %ld %ld %ld by "
	       "configuration), %ld tasks (%ld completed, %ld cancelled), "
	       "%ld joins, %ld deadlines, %ld values sent (%ld drained), "
	       "%ld bytes read to %ld ends of file, %ld mutex sections, "
	       "%ld notifications, %ld allocations\n", iters,
	       stats.cfgs[0], stats.cfgs[1], stats.cfgs[2], stats.cfgs[3],
	       stats.cfgs[4], stats.tasks, stats.completed, stats.cancelled,
	       stats.joins, stats.timers, stats.values, stats.drained,
	       stats.bytes, stats.eofs, stats.sections, stats.notified,
	       atomic_load(&heap_total));
}
END_TEST

static Suite *random_suite(void)
{
	Suite *s = suite_create("random");
	TCase *tc = tcase_create("sequences");

	tcase_set_timeout(tc, TEST_STRESS_TIMEOUT);
	tcase_add_test(tc, random_sequences);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(random_suite());
}
