// SPDX-License-Identifier: MIT
/* tests/headers-cxx.cc - the public headers compile as C++11 -pedantic -Werror. */
#include <rouse/alloc.h>
#include <rouse/async.h>
#include <rouse/blocking.h>
#include <rouse/combinator.h>
#include <rouse/dns.h>
#include <rouse/executor.h>
#include <rouse/future.h>
#include <rouse/group.h>
#include <rouse/log.h>
#include <rouse/net.h>
#include <rouse/process.h>
#include <rouse/reactor.h>
#include <rouse/signal.h>
#include <rouse/sync.h>

/* The headers are also self-contained and idempotent. */
#include <rouse/future.h>

int main(void)
{
	struct rouse_waker w = rouse_waker_noop();
	struct rouse_waker c;

	if (rouse_waker_clone(&w, &c) != 0 || !rouse_waker_will_wake(&w, &c))
		return 1;
	if (rouse_waker_wake_by_ref(&c) != 0 || rouse_waker_drop(&c) != 0)
		return 1;
	return rouse_waker_wake(&w) == 0 ? 0 : 1;
}
