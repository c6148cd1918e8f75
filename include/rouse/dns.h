/* SPDX-License-Identifier: MIT */
/*
 * rouse/dns.h - librouse-reactor: getaddrinfo(3) as a future.
 *
 * Link with `pkg-config --cflags --libs rouse-reactor`.
 *
 * A lookup runs on one of the library's resolver threads, never on the
 * thread that polls it, and wakes the waker it was last polled with when
 * it is done.  Dropping a lookup cancels it: one still queued never runs,
 * and one already running is left to its thread, which frees it.
 *
 * struct addrinfo comes from <netdb.h>, which this header leaves to the
 * program: it needs only pointers to it.
 */
#ifndef ROUSE_DNS_H
#define ROUSE_DNS_H

#include <rouse/future.h>

#ifdef __cplusplus
extern "C" {
#endif

struct addrinfo;
struct rouse_reactor;
struct rouse_dns_req;

/*
 * The future of rouse_dns_lookup_init().  Once it is ready, addrs is the
 * caller's: it stays valid after the future is dropped, until it is
 * given to rouse_dns_free() (or freeaddrinfo(3)).  NULL hints mean
 * AF_UNSPEC, SOCK_STREAM and no flags: every address, once, for TCP.
 */
struct rouse_dns_lookup {
	struct rouse_future base;
	struct rouse_dns_req *req;	/* private */
	struct addrinfo *addrs;		/* output: the list, or NULL */
	int gai_error;			/* output: 0 or getaddrinfo's EAI_* */
	int result;			/* output: 0 or -errno */
};

int rouse_dns_lookup_init(struct rouse_dns_lookup *f, struct rouse_reactor *r,
			  const char *host, const char *service,
			  const struct addrinfo *hints);
void rouse_dns_free(struct addrinfo *addrs);

#ifdef __cplusplus
}
#endif

#endif /* ROUSE_DNS_H */
