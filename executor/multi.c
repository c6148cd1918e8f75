// SPDX-License-Identifier: MIT
/* executor/multi.c - placeholder. */
#include "task.h"
