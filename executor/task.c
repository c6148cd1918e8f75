// SPDX-License-Identifier: MIT
/* executor/task.c - placeholder. */
#include <errno.h>

#include "task.h"

ROUSE__PUBLIC int rouse_executor_config_init(struct rouse_executor_config *c)
{ return -ENOSYS; }
ROUSE__PUBLIC int rouse_executor_new(const struct rouse_executor_config *cfg,
		       struct rouse_executor **out)
{ return -ENOSYS; }
ROUSE__PUBLIC int rouse_executor_free(struct rouse_executor *ex)
{ return -ENOSYS; }
ROUSE__PUBLIC int rouse_executor_block_on(struct rouse_executor *ex, struct rouse_future *f)
{ return -ENOSYS; }
ROUSE__PUBLIC struct rouse_executor *rouse_executor_current(void)
{ return 0; }
ROUSE__PUBLIC int rouse_spawn(struct rouse_executor *ex, const struct rouse_future *f,
		size_t size, struct rouse_join_handle *out)
{ return -ENOSYS; }
ROUSE__PUBLIC int rouse_join_handle_abort(struct rouse_join_handle *h)
{ return -ENOSYS; }
ROUSE__PUBLIC int rouse_join_handle_detach(struct rouse_join_handle *h)
{ return -ENOSYS; }
ROUSE__PUBLIC uint64_t rouse_join_handle_id(const struct rouse_join_handle *h)
{ return 0; }
ROUSE__PUBLIC uint64_t rouse_task_current_id(void)
{ return 0; }
