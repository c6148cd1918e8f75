// SPDX-License-Identifier: MIT
/*
 * reactor/timer.c - a hierarchical timing wheel feeding an exact heap.  It
 * calls nothing but memcpy and memset; reactor.c (to set it up), sleep.c
 * and clock.c call it, with the reactor's lock held (timer.h).
 *
 * Deadlines are nanoseconds; the wheel works in ticks of 2^20 ns.  A timer
 * whose tick is after the current one ("elapsed") sits in the wheel: level
 * L holds the timers whose tick first differs from elapsed in the L-th
 * group of six bits, in the slot named by that group.  Insert and cancel
 * are a list push and an unlink, whatever the number of timers: no
 * comparison with other timers happens there.
 *
 * A timer whose tick is the current one (or already past) sits in a pairing
 * heap ordered by (deadline, seq), so that timers fire in exact deadline
 * order, first-in first-out for equal deadlines, and never before their
 * deadline.  The heap only ever holds the timers of one tick.
 *
 * Invariants:
 *   - a wheel timer at level L is in the same level-(L+1) span as elapsed,
 *     and its slot index is greater than elapsed's digit at level L; so the
 *     lowest set bit of occupied[L] is the next slot of that level to come
 *     due, and the lowest level with any bit set comes due first;
 *   - elapsed only moves forward, and never past the start of an occupied
 *     slot: pop_expired moves it to a slot's start and cascades that slot
 *     at once (its timers go down a level or into the heap);
 *   - every heap timer's tick is at most elapsed;
 *   - slot_min[L][s] is at most the earliest deadline in that slot (a
 *     cancel may leave it too early, which costs at most an early
 *     wake-up), so the next wake-up can be that deadline rather than the
 *     slot's start.
 *
 * The wheel's chains and the heap's sibling lists are linked here by hand,
 * not with lib/list.h, on purpose.  They share the entry's three links
 * (timer.h), and the heap's prev is the previous sibling or, for a first
 * child, the parent: no list shape.  And a chain's head is one pointer,
 * 4,096 of them in a reactor (32 KB), copied and cleared as an array when
 * a slot cascades; a lib/list.h head is two pointers that must point at
 * themselves, which would double that, make every reactor initialise it,
 * and spread a slot's eight heads over two cache lines instead of one.
 */
#include <limits.h>
#include <string.h>

#include "timer.h"

#define LEVEL_SPAN_BITS(level) (ROUSE__WHEEL_BITS * ((level) + 1))

static inline int64_t tick_of(int64_t ns)
{
	return ns >> ROUSE__TICK_SHIFT;
}

static inline bool timer_before(const struct rouse_timer_entry *a,
				const struct rouse_timer_entry *b)
{
	return a->deadline < b->deadline ||
	       (a->deadline == b->deadline && a->seq < b->seq);
}

/* ---- the pairing heap -------------------------------------------- */

/* Join two heap roots (either may be NULL); returns the new root. */
static struct rouse_timer_entry *heap_meld(struct rouse_timer_entry *a,
				      struct rouse_timer_entry *b)
{
	if (a == NULL)
		return b;
	if (b == NULL)
		return a;
	if (timer_before(b, a)) {
		struct rouse_timer_entry *t = a;

		a = b;
		b = t;
	}
	/* b becomes a's first child. */
	b->prev = a;
	b->next = a->child;
	if (a->child != NULL)
		a->child->prev = b;
	a->child = b;
	a->next = NULL;
	a->prev = NULL;
	return a;
}

/*
 * Merge a list of sibling subtrees into one: meld them in pairs left to
 * right, then meld the pairs right to left (the two-pass rule that gives
 * the pairing heap its amortised O(log n) delete).
 */
static struct rouse_timer_entry *heap_merge_siblings(struct rouse_timer_entry *first)
{
	struct rouse_timer_entry *pairs = NULL;	/* pairs, linked through next */
	struct rouse_timer_entry *root;

	while (first != NULL) {
		struct rouse_timer_entry *a = first, *b = first->next;

		if (b == NULL) {
			first = NULL;
		} else {
			first = b->next;
			b->next = NULL;
		}
		a->next = NULL;
		a = heap_meld(a, b);
		a->next = pairs;	/* stack the pair */
		pairs = a;
	}
	root = NULL;
	while (pairs != NULL) {
		struct rouse_timer_entry *a = pairs;

		pairs = a->next;
		a->next = NULL;
		root = heap_meld(root, a);
	}
	return root;
}

static void heap_insert(struct rouse__timers *ts, struct rouse_timer_entry *t)
{
	t->child = NULL;
	t->next = NULL;
	t->prev = NULL;
	t->where = ROUSE__TIMER_HEAP;
	ts->heap = heap_meld(ts->heap, t);
}

static void heap_remove(struct rouse__timers *ts, struct rouse_timer_entry *t)
{
	struct rouse_timer_entry *sub = heap_merge_siblings(t->child);

	if (t == ts->heap) {
		ts->heap = sub;
		if (sub != NULL)
			sub->prev = NULL;
		return;
	}
	/* Cut t out of its sibling list (prev is a sibling or the parent). */
	if (t->prev->child == t)
		t->prev->child = t->next;
	else
		t->prev->next = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	ts->heap = heap_meld(ts->heap, sub);
}

/* ---- the wheel ----------------------------------------------------- */

static void wheel_insert(struct rouse__timers *ts, struct rouse_timer_entry *t,
			 int64_t tick)
{
	uint64_t diff = (uint64_t)(tick ^ ts->elapsed);
	int level = (63 - __builtin_clzll(diff)) / ROUSE__WHEEL_BITS;
	int slot = (int)((uint64_t)tick >> (ROUSE__WHEEL_BITS * level)) &
		   (ROUSE__WHEEL_SLOTS - 1);
	unsigned int chain = ts->next_chain++ & (ROUSE__WHEEL_CHAINS - 1);
	struct rouse_timer_entry **head = &ts->slot[level][slot][chain];

	t->child = NULL;
	t->prev = NULL;
	t->next = *head;
	if (*head != NULL)
		(*head)->prev = t;
	*head = t;
	if (t->deadline < ts->slot_min[level][slot])
		ts->slot_min[level][slot] = t->deadline;
	ts->occupied[level] |= UINT64_C(1) << slot;
	t->where = (uint32_t)((level * ROUSE__WHEEL_SLOTS + slot) *
			      ROUSE__WHEEL_CHAINS + chain);
}

static void wheel_remove(struct rouse__timers *ts, struct rouse_timer_entry *t)
{
	unsigned int chain = t->where % ROUSE__WHEEL_CHAINS;
	unsigned int ls = t->where / ROUSE__WHEEL_CHAINS;
	int level = (int)(ls / ROUSE__WHEEL_SLOTS);
	int slot = (int)(ls % ROUSE__WHEEL_SLOTS);
	struct rouse_timer_entry **heads = ts->slot[level][slot];
	unsigned int c;

	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		heads[chain] = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	if (heads[chain] != NULL)
		return;
	for (c = 0; c < ROUSE__WHEEL_CHAINS; c++)
		if (heads[c] != NULL)
			return;
	ts->occupied[level] &= ~(UINT64_C(1) << slot);
	ts->slot_min[level][slot] = INT64_MAX;
}

/* The tick at which the next occupied slot starts; -1 when none. */
static int64_t wheel_next_slot(const struct rouse__timers *ts, int *level_out,
			       int *slot_out)
{
	int level;

	for (level = 0; level < ROUSE__WHEEL_LEVELS; level++) {
		uint64_t span_mask;
		int slot;

		if (ts->occupied[level] == 0)
			continue;
		slot = __builtin_ctzll(ts->occupied[level]);
		span_mask = (UINT64_C(1) << LEVEL_SPAN_BITS(level)) - 1;
		*level_out = level;
		*slot_out = slot;
		return (int64_t)(((uint64_t)ts->elapsed & ~span_mask) |
				 ((uint64_t)slot
				  << (ROUSE__WHEEL_BITS * level)));
	}
	return -1;
}

static void place(struct rouse__timers *ts, struct rouse_timer_entry *t)
{
	int64_t tick = tick_of(t->deadline);

	if (tick <= ts->elapsed)
		heap_insert(ts, t);
	else
		wheel_insert(ts, t, tick);
}

/* ---- the set ------------------------------------------------------- */

void rouse__timers_init(struct rouse__timers *ts, int64_t now)
{
	int level, slot;

	ts->elapsed = tick_of(now < 0 ? 0 : now);
	ts->seq = 0;
	ts->count = 0;
	ts->heap = NULL;
	ts->next_chain = 0;
	for (level = 0; level < ROUSE__WHEEL_LEVELS; level++) {
		ts->occupied[level] = 0;
		for (slot = 0; slot < ROUSE__WHEEL_SLOTS; slot++) {
			memset(ts->slot[level][slot], 0,
			       sizeof(ts->slot[level][slot]));
			ts->slot_min[level][slot] = INT64_MAX;
		}
	}
}

void rouse__timers_insert(struct rouse__timers *ts, struct rouse_timer_entry *t)
{
	if (t->deadline < 0)
		t->deadline = 0;
	t->seq = ts->seq++;
	ts->count++;
	place(ts, t);
}

void rouse__timers_remove(struct rouse__timers *ts, struct rouse_timer_entry *t)
{
	if (t->where == ROUSE__TIMER_NONE)
		return;
	if (t->where == ROUSE__TIMER_HEAP)
		heap_remove(ts, t);
	else
		wheel_remove(ts, t);
	t->where = ROUSE__TIMER_NONE;
	ts->count--;
}

struct rouse_timer_entry *rouse__timers_pop_expired(struct rouse__timers *ts,
					       int64_t now)
{
	int64_t now_tick = tick_of(now);

	for (;;) {
		struct rouse_timer_entry *t = ts->heap;
		struct rouse_timer_entry *cur[ROUSE__WHEEL_CHAINS];
		unsigned int c;
		bool any;
		int64_t start;
		int level, slot;

		if (t != NULL && t->deadline <= now) {
			heap_remove(ts, t);
			t->where = ROUSE__TIMER_NONE;
			ts->count--;
			return t;
		}
		start = wheel_next_slot(ts, &level, &slot);
		if (start < 0 || start > now_tick)
			break;
		/* Step to the slot's start and cascade it. */
		ts->elapsed = start;
		memcpy(cur, ts->slot[level][slot], sizeof(cur));
		memset(ts->slot[level][slot], 0, sizeof(cur));
		ts->slot_min[level][slot] = INT64_MAX;
		ts->occupied[level] &= ~(UINT64_C(1) << slot);
		/*
		 * Walk the chains in turn, fetching each one's next node
		 * ahead: the misses of up to ROUSE__WHEEL_CHAINS nodes are
		 * in flight together.
		 */
		do {
			any = false;
			for (c = 0; c < ROUSE__WHEEL_CHAINS; c++) {
				struct rouse_timer_entry *e = cur[c];

				if (e == NULL)
					continue;
				cur[c] = e->next;
				if (cur[c] != NULL)
					__builtin_prefetch(cur[c], 1);
				place(ts, e);
				any = true;
			}
		} while (any);
	}
	if (now_tick > ts->elapsed)
		ts->elapsed = now_tick;
	return NULL;
}

int64_t rouse__timers_next_wakeup(const struct rouse__timers *ts)
{
	int64_t start;
	int level, slot;

	if (ts->heap != NULL)
		return ts->heap->deadline;
	start = wheel_next_slot(ts, &level, &slot);
	if (start < 0)
		return INT64_MAX;
	/*
	 * The slot must be cascaded by the time its first timer is due, not
	 * sooner: every other wheel timer comes later (lower levels are
	 * empty, later slots start later), so waking at the slot's earliest
	 * deadline saves a wake-up per level a far timer comes down.
	 */
	start <<= ROUSE__TICK_SHIFT;
	return ts->slot_min[level][slot] > start ? ts->slot_min[level][slot]
						 : start;
}
