/* SPDX-License-Identifier: MIT */
/* rouse/combinator.h - placeholder. */
#ifndef ROUSE_COMBINATOR_H
#define ROUSE_COMBINATOR_H

#include <rouse/future.h>

#endif /* ROUSE_COMBINATOR_H */
