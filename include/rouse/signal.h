/* SPDX-License-Identifier: MIT */
/*
 * rouse/signal.h - librouse-reactor: signals as futures.
 *
 * Link with `pkg-config --cflags --libs rouse-reactor`.
 *
 * A listener (rouse_signal_new()) makes the deliveries of one signal to
 * the process wake a future on one reactor.  The first listener of a
 * signal installs a handler of the library's for it, which counts each
 * delivery for every listener of that signal and wakes their reactors;
 * the last one to go puts back the disposition that was there before.
 * The program need not block the signal anywhere.  A wait
 * (rouse_signal_wait_init()) is ready once the listener has seen at
 * least one delivery, and says how many it took.
 */
#ifndef ROUSE_SIGNAL_H
#define ROUSE_SIGNAL_H

#include <signal.h>
#include <stdint.h>

#include <rouse/future.h>
#include <rouse/reactor.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rouse_signal;

int rouse_signal_new(struct rouse_reactor *r, int signo,
		     struct rouse_signal **out);
int rouse_signal_free(struct rouse_signal *s);

/*
 * Ready once the listener has counted a delivery since a wait last took
 * its count.  Dropping it before then takes nothing: the deliveries stay
 * counted for the next wait.
 */
struct rouse_signal_wait {
	struct rouse_future base;
	struct rouse_event_wait wait;	/* private */
	uint64_t count;			/* output: deliveries taken */
	int result;			/* output: 0 or -errno */
};

int rouse_signal_wait_init(struct rouse_signal_wait *w,
			   struct rouse_signal *s);

#ifdef __cplusplus
}
#endif

#endif /* ROUSE_SIGNAL_H */
