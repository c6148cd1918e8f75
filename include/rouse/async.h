/* SPDX-License-Identifier: MIT */
/* rouse/async.h - placeholder. */
#ifndef ROUSE_ASYNC_H
#define ROUSE_ASYNC_H

#include <rouse/future.h>

#endif /* ROUSE_ASYNC_H */
