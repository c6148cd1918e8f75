/* SPDX-License-Identifier: MIT */
/*
 * rouse/group.h - task groups: tasks spawned into a group are taken back
 * in the order they finish, each completion in O(1) however many tasks
 * the group holds; they can be aborted together, and freeing the group
 * cancels them and waits until their futures are gone.
 *
 * Part of librouse-executor; rouse_group_new(3) has the whole story.
 */
#ifndef ROUSE_GROUP_H
#define ROUSE_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include <rouse/executor.h>
#include <rouse/future.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A set of tasks, opaque; made by rouse_group_new(). */
struct rouse_group;

int rouse_group_new(struct rouse_group **out);
/*
 * Abort every task still in g, wait until their futures were dropped,
 * and free g.  -EDEADLK, with nothing done, from inside a poll while a
 * task of g has not finished: see rouse_group_free(3).
 */
int rouse_group_free(struct rouse_group *g);

/*
 * rouse_spawn() into g: the task runs on ex (NULL: the executor the
 * calling thread works for), and its completion is taken back through g.
 * *id (when id is not NULL) receives the task's id.
 */
int rouse_group_spawn(struct rouse_group *g, struct rouse_executor *ex,
		      const struct rouse_future *f, size_t size, uint64_t *id);

/* rouse_join_handle_abort() on every task in g. */
int rouse_group_abort_all(struct rouse_group *g);

/* Tasks in g whose completion has not been taken back, or -EINVAL. */
long rouse_group_len(const struct rouse_group *g);

/* Ready with the next task of g to finish, taken out of g. */
struct rouse_group_next {
	struct rouse_future base;
	struct rouse_group *group;		/* private */
	struct rouse_join_handle handle;	/* private */
	/* output: the task's id; 0 when no task was taken (see result) */
	uint64_t id;
	/*
	 * output: with id set, the task's result as its join handle gives
	 * it (0, -ECANCELED, -ECHILD); with id 0, why no task was taken:
	 * -ENOENT (g is empty), -EBUSY (another future waits on g),
	 * -ECANCELED (g is being freed).
	 */
	int result;
	/*
	 * output: with result 0, the task's future, holding its output;
	 * valid until this future is dropped.
	 */
	struct rouse_future *output;
};

int rouse_group_next_init(struct rouse_group_next *f, struct rouse_group *g);

/* Ready once g is empty, taking back (and discarding) every completion. */
struct rouse_group_join_all {
	struct rouse_future base;
	struct rouse_group *group;	/* private */
	uint64_t completed;	/* output: tasks taken that completed */
	uint64_t cancelled;	/* output: tasks taken that did not */
	int result;		/* output: 0, -EBUSY or -ECANCELED */
};

int rouse_group_join_all_init(struct rouse_group_join_all *f,
			      struct rouse_group *g);

/* What a group did so far; each count only grows. */
struct rouse_group_stats {
	uint64_t spawned;	/* tasks spawned into the group */
	uint64_t taken;		/* completions taken back out of it */
	uint64_t wakes;		/* wakes that queued a task's completion */
	uint64_t polls;		/* polls of the tasks' join handles */
};

int rouse_group_get_stats(struct rouse_group *g,
			  struct rouse_group_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* ROUSE_GROUP_H */
