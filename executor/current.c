// SPDX-License-Identifier: MIT
/* executor/current.c - placeholder. */
#include "task.h"
