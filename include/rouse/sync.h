/* SPDX-License-Identifier: MIT */
/* rouse/sync.h - placeholder. */
#ifndef ROUSE_SYNC_H
#define ROUSE_SYNC_H

#include <rouse/future.h>

#endif /* ROUSE_SYNC_H */
