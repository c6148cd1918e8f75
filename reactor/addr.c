// SPDX-License-Identifier: MIT
/*
 * reactor/addr.c - socket addresses to and from text.
 *
 * One job: struct rouse_addr.  It calls libc only; nothing in the reactor
 * depends on it but the socket files (stream.c, dgram.c, tcp.c,
 * tcp_host.c, unix.c).
 *
 * The forms: "A.B.C.D:PORT", "[IPV6]:PORT" (with an optional "%scope"
 * inside the brackets), "/absolute/or/./relative/path" (anything that
 * holds a '/'), and "@name" for a Linux abstract Unix socket.  A parse
 * either takes the whole text or fails with -EINVAL and leaves *out as
 * it was: never a partial address.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include <rouse/net.h>

#include "reactor-internal.h"

/* A decimal port, 0 to 65535, and nothing after it. */
static int parse_port(const char *s, in_port_t *out)
{
	unsigned long v = 0;

	if (*s == '\0')
		return -EINVAL;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > 65535)
			return -EINVAL;
	}
	*out = htons((in_port_t)v);
	return 0;
}

static int parse_unix(struct rouse_addr *a, const char *text)
{
	size_t n = strlen(text);

	memset(a, 0, sizeof(*a));
	a->u.un.sun_family = AF_UNIX;
	if (text[0] == '@') {
		/* Abstract: a leading NUL, then the name, not terminated. */
		if (n - 1 > sizeof(a->u.un.sun_path) - 1)
			return -EINVAL;
		memcpy(a->u.un.sun_path + 1, text + 1, n - 1);
		a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				     n);
		return 0;
	}
	if (n >= sizeof(a->u.un.sun_path))
		return -EINVAL;	/* no room for the NUL */
	memcpy(a->u.un.sun_path, text, n + 1);
	a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

static int parse_inet6(struct rouse_addr *a, const char *text)
{
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	const char *close = strchr(text, ']');
	char *pct;
	size_t n;

	if (close == NULL || close[1] != ':')
		return -EINVAL;
	n = (size_t)(close - (text + 1));
	if (n == 0 || n >= sizeof(host))
		return -EINVAL;
	memcpy(host, text + 1, n);
	host[n] = '\0';
	memset(a, 0, sizeof(*a));
	a->u.in6.sin6_family = AF_INET6;
	pct = strchr(host, '%');
	if (pct != NULL) {
		unsigned int scope;

		*pct++ = '\0';
		scope = if_nametoindex(pct);
		if (scope == 0) {
			/* No such interface: a decimal index, digits only
			 * (strtoul would take a sign or blanks first). */
			unsigned long long v = 0;
			const char *d;

			for (d = pct; *d >= '0' && *d <= '9'; d++) {
				v = v * 10 + (unsigned int)(*d - '0');
				if (v > UINT_MAX)
					return -EINVAL;
			}
			if (d == pct || *d != '\0')
				return -EINVAL;
			scope = (unsigned int)v;
		}
		a->u.in6.sin6_scope_id = scope;
	}
	if (inet_pton(AF_INET6, host, &a->u.in6.sin6_addr) != 1 ||
	    parse_port(close + 2, &a->u.in6.sin6_port) < 0)
		return -EINVAL;
	a->len = sizeof(a->u.in6);
	return 0;
}

static int parse_inet(struct rouse_addr *a, const char *text)
{
	char host[INET_ADDRSTRLEN];
	const char *colon = strrchr(text, ':');
	size_t n;

	if (colon == NULL)
		return -EINVAL;
	n = (size_t)(colon - text);
	if (n == 0 || n >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, n);
	host[n] = '\0';
	memset(a, 0, sizeof(*a));
	a->u.in.sin_family = AF_INET;
	/* inet_pton takes only the dotted quad: no "1", no "0x7f.1". */
	if (inet_pton(AF_INET, host, &a->u.in.sin_addr) != 1 ||
	    parse_port(colon + 1, &a->u.in.sin_port) < 0)
		return -EINVAL;
	a->len = sizeof(a->u.in);
	return 0;
}

ROUSE__PUBLIC int rouse_addr_parse(struct rouse_addr *out, const char *text)
{
	struct rouse_addr a;
	int err;

	if (out == NULL || text == NULL || text[0] == '\0')
		return -EINVAL;
	if (text[0] == '@' || strchr(text, '/') != NULL)
		err = parse_unix(&a, text);
	else if (text[0] == '[')
		err = parse_inet6(&a, text);
	else
		err = parse_inet(&a, text);
	if (err < 0)
		return err;
	*out = a;
	return 0;
}

ROUSE__PUBLIC int rouse_addr_from_sockaddr(struct rouse_addr *out,
					   const struct sockaddr *sa,
					   socklen_t len)
{
	socklen_t want;

	if (out == NULL || sa == NULL || len < sizeof(sa_family_t) ||
	    len > sizeof(out->u))
		return -EINVAL;
	switch (sa->sa_family) {
	case AF_INET:
		want = sizeof(struct sockaddr_in);
		break;
	case AF_INET6:
		want = sizeof(struct sockaddr_in6);
		break;
	case AF_UNIX:
		want = sizeof(sa_family_t);	/* unnamed: family alone */
		/* No Unix address is longer; and text of one that were
		 * would not fit in ROUSE_ADDR_STRLEN. */
		if (len > sizeof(struct sockaddr_un))
			return -EINVAL;
		break;
	default:
		return -EAFNOSUPPORT;
	}
	if (len < want)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	memcpy(&out->u, sa, len);
	out->len = len;
	return 0;
}

ROUSE__PUBLIC int rouse_addr_port(const struct rouse_addr *a)
{
	if (a == NULL || a->len == 0)
		return -EINVAL;
	if (a->u.sa.sa_family == AF_INET)
		return ntohs(a->u.in.sin_port);
	if (a->u.sa.sa_family == AF_INET6)
		return ntohs(a->u.in6.sin6_port);
	return -EAFNOSUPPORT;
}

/* snprintf's count, or -ENOSPC when it did not fit. */
static int fitted(int n, size_t size)
{
	if (n < 0)
		return -EINVAL;
	return (size_t)n < size ? n : -ENOSPC;
}

ROUSE__PUBLIC int rouse_addr_format(const struct rouse_addr *a, char *buf,
				    size_t size)
{
	char host[INET6_ADDRSTRLEN];
	size_t off = offsetof(struct sockaddr_un, sun_path), n;

	if (a == NULL || buf == NULL || size == 0 || a->len == 0)
		return -EINVAL;
	switch (a->u.sa.sa_family) {
	case AF_INET:
		inet_ntop(AF_INET, &a->u.in.sin_addr, host, sizeof(host));
		return fitted(snprintf(buf, size, "%s:%u", host,
				       ntohs(a->u.in.sin_port)), size);
	case AF_INET6:
		inet_ntop(AF_INET6, &a->u.in6.sin6_addr, host, sizeof(host));
		if (a->u.in6.sin6_scope_id != 0)
			return fitted(snprintf(buf, size, "[%s%%%u]:%u", host,
					       a->u.in6.sin6_scope_id,
					       ntohs(a->u.in6.sin6_port)),
				      size);
		return fitted(snprintf(buf, size, "[%s]:%u", host,
				       ntohs(a->u.in6.sin6_port)), size);
	case AF_UNIX:
		if (a->len <= off)
			return fitted(snprintf(buf, size, "%s", ""), size);
		n = a->len - off;
		if (a->u.un.sun_path[0] == '\0')
			return fitted(snprintf(buf, size, "@%.*s", (int)n - 1,
					       a->u.un.sun_path + 1), size);
		return fitted(snprintf(buf, size, "%.*s",
				       (int)strnlen(a->u.un.sun_path, n),
				       a->u.un.sun_path), size);
	default:
		return -EAFNOSUPPORT;
	}
}
