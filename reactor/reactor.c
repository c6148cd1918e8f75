// SPDX-License-Identifier: MIT
/*
 * reactor/reactor.c - the reactor object: one epoll fd, one timerfd for all
 * timers, one eventfd for its own wake-up.
 *
 * The timerfd and the eventfd are registered in the epoll set from the
 * start, each with its own tag in epoll_data, so a turn of epoll_wait sees
 * timers and wake-ups next to fd readiness.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "reactor-internal.h"

#define ROUSE__LOG_MODULE "reactor"

/* epoll_data tags of the reactor's own descriptors. */
enum {
	TAG_TIMER = 1,
	TAG_WAKE = 2,
};

static int add_own_fd(int epfd, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void close_if_open(int fd)
{
	if (fd >= 0)
		close(fd);
}

ROUSE__PUBLIC int rouse_reactor_new(struct rouse_reactor **out,
				    unsigned int flags)
{
	struct rouse_reactor *r;
	int err;

	if (out == NULL || flags != 0)
		return -EINVAL;
	r = malloc(sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	r->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->epfd < 0 || r->tfd < 0 || r->efd < 0) {
		err = -errno;
		goto fail;
	}
	err = add_own_fd(r->epfd, r->tfd, TAG_TIMER);
	if (err == 0)
		err = add_own_fd(r->epfd, r->efd, TAG_WAKE);
	if (err < 0)
		goto fail;
	rouse__debug("reactor %p: epoll %d, timerfd %d, eventfd %d",
		     (void *)r, r->epfd, r->tfd, r->efd);
	*out = r;
	return 0;
fail:
	close_if_open(r->epfd);
	close_if_open(r->tfd);
	close_if_open(r->efd);
	free(r);
	return err;
}

ROUSE__PUBLIC void rouse_reactor_free(struct rouse_reactor *r)
{
	if (r == NULL)
		return;
	rouse__debug("reactor %p: freed", (void *)r);
	close(r->epfd);
	close(r->tfd);
	close(r->efd);
	free(r);
}

ROUSE__PUBLIC int rouse_reactor_set_log_level(enum rouse_log_level level)
{
	return rouse__log_set_level(level);
}

ROUSE__PUBLIC int rouse_reactor_set_log_sink(rouse_log_fn *sink, void *data)
{
	return rouse__log_set_sink(sink, data);
}
