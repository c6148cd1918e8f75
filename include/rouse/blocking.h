/* SPDX-License-Identifier: MIT */
/* rouse/blocking.h - placeholder. */
#ifndef ROUSE_BLOCKING_H
#define ROUSE_BLOCKING_H

#include <rouse/future.h>

#endif /* ROUSE_BLOCKING_H */
