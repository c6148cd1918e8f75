/* SPDX-License-Identifier: MIT */
/* executor/task.h - placeholder. */
#ifndef ROUSE_EXECUTOR_TASK_H
#define ROUSE_EXECUTOR_TASK_H
#include "executor-internal.h"
#endif
