// SPDX-License-Identifier: MIT
/*
 * reactor/udp.c - UDP sockets, up to the point where they are datagram
 * sockets.
 *
 * One job: rouse_udp_bind(), the socket, its options and its address.
 * It calls the public fd functions of io.c and rouse__dgram_wrap() of
 * dgram.c, which has the futures; nothing calls it back.
 *
 * Unlike a TCP listener, a UDP socket gets no SO_REUSEADDR unless asked:
 * on a datagram socket it lets a second socket bind the same address and
 * take a share of its datagrams, which is what multicast receivers want
 * and what nobody else does.
 */
#include <errno.h>
#include <netinet/in.h>
#include <unistd.h>

#include <rouse/net.h>

#include "dgram.h"

#define ROUSE__LOG_MODULE "udp"

#define UDP_FLAGS                                                    \
	(ROUSE_UDP_REUSEADDR | ROUSE_UDP_REUSEPORT | ROUSE_UDP_V6ONLY | \
	 ROUSE_UDP_BROADCAST)

static int set_flag(int fd, int level, int name, int on)
{
	return setsockopt(fd, level, name, &on, sizeof(on)) < 0 ? -errno : 0;
}

static int udp_options(int fd, int family, unsigned int flags)
{
	int err = 0;

	if (flags & ROUSE_UDP_REUSEADDR)
		err = set_flag(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (err == 0 && (flags & ROUSE_UDP_REUSEPORT))
		err = set_flag(fd, SOL_SOCKET, SO_REUSEPORT, 1);
	if (err == 0 && (flags & ROUSE_UDP_BROADCAST))
		err = set_flag(fd, SOL_SOCKET, SO_BROADCAST, 1);
	/* Dual-stack unless asked otherwise, whatever the sysctl. */
	if (err == 0 && family == AF_INET6)
		err = set_flag(fd, IPPROTO_IPV6, IPV6_V6ONLY,
			       (flags & ROUSE_UDP_V6ONLY) != 0);
	return err;
}

ROUSE__PUBLIC int rouse_udp_bind(struct rouse_reactor *r,
				 const struct rouse_addr *addr,
				 unsigned int flags, struct rouse_dgram **out)
{
	struct rouse_io *io;
	int family, fd, err;

	if (r == NULL || out == NULL || addr == NULL || addr->len == 0 ||
	    (flags & ~(unsigned int)UDP_FLAGS))
		return -EINVAL;
	family = addr->u.sa.sa_family;
	if (family != AF_INET && family != AF_INET6)
		return -EINVAL;
	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	err = udp_options(fd, family, flags);
	if (err == 0 && bind(fd, &addr->u.sa, addr->len) < 0)
		err = -errno;
	if (err == 0)
		err = rouse_io_register(r, fd, &io);
	if (err < 0) {
		close(fd);
		return err;
	}
	err = rouse__dgram_wrap(io, fd, family, out);
	if (err < 0) {
		rouse_io_deregister(io);
		close(fd);
	}
	return err;
}
