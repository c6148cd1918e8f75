/* SPDX-License-Identifier: MIT */
/*
 * rouse/reactor.h - librouse-reactor: kernel readiness turned into wakes.
 *
 * Link with `pkg-config --cflags --libs rouse-reactor`.
 */
#ifndef ROUSE_REACTOR_H
#define ROUSE_REACTOR_H

#include <rouse/future.h>
#include <rouse/log.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rouse_reactor;

/*
 * Create a reactor: an epoll fd, a timerfd and an eventfd, all close-on-
 * exec.  flags must be 0.  Returns 0 and stores the reactor in *out, or
 * -EINVAL, -ENOMEM, -EMFILE, -ENFILE.
 */
int rouse_reactor_new(struct rouse_reactor **out, unsigned int flags);

/* Close the reactor's descriptors and free it.  NULL is a no-op. */
void rouse_reactor_free(struct rouse_reactor *r);

int rouse_reactor_set_log_level(enum rouse_log_level level);
int rouse_reactor_set_log_sink(rouse_log_fn *sink, void *data);

#ifdef __cplusplus
}
#endif

#endif /* ROUSE_REACTOR_H */
