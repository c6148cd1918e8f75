// SPDX-License-Identifier: MIT
/*
 * reactor/tcp_host.c - a TCP connect to a host name: the lookup, then a
 * connect to each address in turn.
 *
 * One job: put two public futures one after the other, and the second
 * one in a loop.  It calls rouse_dns_lookup_init() (dns.c),
 * rouse_tcp_connect_init() (tcp.c) and addr.c as any program could, and
 * reaches into none of them; nothing calls it back.
 *
 * The addresses are tried one at a time, in the order getaddrinfo(3)
 * sorted them (the rules of RFC 3484, which gai.conf(5) tunes: ::1 comes
 * before 127.0.0.1), and the first connection made wins.  There
 * is no race between families (RFC 8305's "happy eyeballs") and no
 * deadline per address: an address that never answers holds up the next
 * one for the kernel's SYN retries.  A caller that cannot wait that long
 * runs the whole future under a timeout.
 *
 * No AI_ADDRCONFIG in the hints: glibc decides it on the addresses
 * configured outside the loopback interface, so on a host with IPv4 alone
 * outside lo it would refuse "::1" and drop ::1 from "localhost".  An
 * address of a family that has no route fails its connect at once
 * (-ENETUNREACH), and the next one is tried.
 */
#include <errno.h>
#include <netdb.h>
#include <string.h>

#include <rouse/dns.h>
#include <rouse/net.h>

#include "reactor-internal.h"

#define ROUSE__LOG_MODULE "tcp"

/*
 * The states of the future, in f->state.  Each says which of the futures
 * inside is live (and so is the one to poll and to drop); addrs is owned
 * from the end of the lookup until DONE.
 */
enum {
	HOST_LOOKUP = 1,	/* lookup is live */
	HOST_NEXT,		/* nothing live: start the next address */
	HOST_CONNECT,		/* connect is live, to peer */
	HOST_DONE,		/* the outputs are final; nothing is owned */
};

static void host_finish(struct rouse_tcp_connect_host *f, int result)
{
	rouse_dns_free(f->addrs);
	f->addrs = NULL;
	f->next = NULL;
	f->result = result;
	f->state = HOST_DONE;
}

/* The lookup is ready: take its outputs, and its list if it has one. */
static bool host_looked_up(struct rouse_tcp_connect_host *f)
{
	f->gai_error = f->lookup.gai_error;
	f->addrs = f->lookup.addrs;
	f->next = f->addrs;
	f->result = f->lookup.result;
	rouse_future_drop(&f->lookup.base);
	if (f->result < 0) {
		host_finish(f, f->result);
		return false;
	}
	/* An empty answer is no success; getaddrinfo() never gives one. */
	f->result = -ENODATA;
	f->state = HOST_NEXT;
	return true;
}

/*
 * Start a connect to the next address.  Returns false when no address is
 * left; an address that cannot even be started counts as failed, with
 * its error in f->result.
 */
static bool host_start_next(struct rouse_tcp_connect_host *f)
{
	struct addrinfo *ai;
	int err;

	while ((ai = f->next) != NULL) {
		f->next = ai->ai_next;
		f->attempts++;
		err = rouse_addr_from_sockaddr(&f->peer, ai->ai_addr,
					       ai->ai_addrlen);
		if (err == 0 && ai->ai_family != AF_INET &&
		    ai->ai_family != AF_INET6)
			err = -EAFNOSUPPORT;
		if (err == 0)
			err = rouse_tcp_connect_init(&f->connect, f->reactor,
						     &f->peer);
		if (err == 0) {
			f->state = HOST_CONNECT;
			return true;
		}
		rouse__debug("connect %p: address %d not started: error %d",
			     (void *)f, f->attempts, err);
		f->result = err;
		/* Inherited reactor: every other address would say so too. */
		if (err == -ECHILD)
			return false;
	}
	return false;
}

static enum rouse_poll host_poll(struct rouse_future *self,
				 struct rouse_context *cx)
{
	struct rouse_tcp_connect_host *f =
		(struct rouse_tcp_connect_host *)self;
	int err;

	if (f->state == HOST_LOOKUP) {
		if (rouse_future_poll(&f->lookup.base, cx) == ROUSE_PENDING)
			return ROUSE_PENDING;
		if (!host_looked_up(f))
			return ROUSE_READY;
	}
	while (f->state != HOST_DONE) {
		if (f->state == HOST_NEXT && !host_start_next(f)) {
			host_finish(f, f->result);
			break;
		}
		if (rouse_future_poll(&f->connect.base, cx) == ROUSE_PENDING)
			return ROUSE_PENDING;
		err = f->connect.result;
		f->stream = f->connect.stream;
		rouse_future_drop(&f->connect.base);
		if (err == 0) {
			host_finish(f, 0);
			break;
		}
		rouse__debug("connect %p: address %d failed: error %d",
			     (void *)f, f->attempts, err);
		f->stream = NULL;
		f->result = err;
		f->state = HOST_NEXT;
		/*
		 * The reactor was freed while the connect waited, or is the
		 * parent's: there is none left to try the others with.
		 */
		if (err == -ECANCELED || err == -ECHILD)
			host_finish(f, err);
	}
	return ROUSE_READY;
}

static void host_drop(struct rouse_future *self)
{
	struct rouse_tcp_connect_host *f =
		(struct rouse_tcp_connect_host *)self;

	if (f->state == HOST_LOOKUP)
		rouse_future_drop(&f->lookup.base);
	else if (f->state == HOST_CONNECT)
		rouse_future_drop(&f->connect.base);	/* closes its socket */
	/* The outputs stay as they are: a ready future's are the caller's. */
	rouse_dns_free(f->addrs);
	f->addrs = NULL;
	f->next = NULL;
	f->state = HOST_DONE;
}

static const struct rouse_future_vtable host_vtable = {
	.poll = host_poll,
	.drop = host_drop,
};

ROUSE__PUBLIC int rouse_tcp_connect_host_init(struct rouse_tcp_connect_host *f,
					      struct rouse_reactor *r,
					      const char *host,
					      const char *service)
{
	struct addrinfo hints;
	int err;

	if (f == NULL || r == NULL || host == NULL || service == NULL ||
	    host[0] == '\0' || service[0] == '\0')
		return -EINVAL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	/* Fails with f untouched, which is what makes ours so too. */
	err = rouse_dns_lookup_init(&f->lookup, r, host, service, &hints);
	if (err < 0)
		return err;
	f->base.vtable = &host_vtable;
	f->reactor = r;
	f->addrs = NULL;
	f->next = NULL;
	f->state = HOST_LOOKUP;
	f->stream = NULL;
	memset(&f->peer, 0, sizeof(f->peer));
	f->attempts = 0;
	f->gai_error = 0;
	f->result = 0;
	return 0;
}
