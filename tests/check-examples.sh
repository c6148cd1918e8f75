#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/check-examples.sh - the example programs run and exit 0, so that
# what the README and rouse(7) point newcomers at keeps working.  The
# echo server runs under tests/echo-clients, which puts a half-closing
# client and then 100 concurrent clients through it and checks every
# byte; then again with examples/tcp-proxy in front of it, which must pass
# the half-close on both ways, and reaches the server by the name
# localhost.
# run-command must print the command's lines with their prefixes and exit
# with its status, and pass a SIGINT on to it.
set -u
: "${top_builddir:=.}"
# A command to run each program under, as `make check-valgrind` sets it
# (it is given the program and its arguments); none by default.
wrap=${ROUSE_TEST_WRAPPER-}
fail=0
for ex in "hello 10" "hello --reactor" tasks pipeline async-chain async-loop \
	async-select; do
	set -- $ex
	prog="$top_builddir/examples/$1"
	shift
	# A hang is a failure too (coreutils timeout; generous for TSan).
	if ! out=$(timeout 300 $wrap "$prog" "$@" 2>&1); then
		printf 'FAIL: examples/%s %s\n%s\n' "${prog##*/}" "$*" "$out"
		fail=1
	fi
done
if ! out=$(timeout 300 $wrap "$top_builddir/tests/echo-clients" \
	"$top_builddir/examples/echo-server" 2>&1); then
	printf 'FAIL: examples/echo-server with a half-closing client and 100 others\n%s\n' "$out"
	fail=1
fi
for opts in "" "--workers 2"; do
	# shellcheck disable=SC2086
	if ! out=$(timeout 300 $wrap "$top_builddir/tests/http-clients" \
		"$top_builddir/examples/http-server" $opts 2>&1); then
		printf 'FAIL: examples/http-server %s\n%s\n' "$opts" "$out"
		fail=1
	fi
done
# The proxy's upstream is localhost:PORT, a name that it looks up for
# every connection (the server listens on 127.0.0.1).
if ! out=$(timeout 300 $wrap "$top_builddir/tests/echo-clients" \
	"$top_builddir/examples/echo-server" \
	"$top_builddir/examples/tcp-proxy" localhost 2>&1); then
	printf 'FAIL: examples/tcp-proxy in front of examples/echo-server, upstream localhost\n%s\n' "$out"
	fail=1
fi

# run-command: prefixed lines, in order on each stream, and the status.
run=$top_builddir/examples/run-command
out=$(timeout 300 "$run" sh -c 'echo a; echo b >&2; echo c; printf d; exit 3' \
	2>/dev/null)
status=$?
expect=$(printf 'sh| a\nsh| c\nsh| d')
if [ $status -ne 3 ] || [ "$out" != "$expect" ]; then
	printf 'FAIL: examples/run-command: status %s (want 3), output:\n%s\n' \
		"$status" "$out"
	fail=1
fi
err=$(timeout 300 "$run" sh -c 'echo e >&2' 2>&1 >/dev/null)
if [ "$err" != "sh! e" ]; then
	printf 'FAIL: examples/run-command: stderr %s\n' "$err"
	fail=1
fi
timeout 300 "$run" rouse-no-such-command 2>/dev/null
status=$?
if [ $status -ne 127 ]; then
	printf 'FAIL: examples/run-command of a missing command: %s\n' "$status"
	fail=1
fi

# A SIGINT to run-command alone reaches the command: sleep dies of it, and
# run-command exits 128 + 2.  The signal is sent once the command has
# printed, so run-command's handler is in place by then.  (No timeout(1)
# in between, which would pass the signal on itself; the sleep is the
# bound.)
tmp=$(mktemp) || exit 99
"$run" sh -c 'echo ready; exec sleep 300' > "$tmp" 2>&1 &
pid=$!
tries=0
while ! grep -q '^sh| ready$' "$tmp" && [ $tries -lt 3000 ]; do
	sleep 0.1
	tries=$((tries + 1))
done
kill -INT $pid 2>/dev/null
wait $pid
status=$?
if [ $status -ne 130 ]; then
	printf 'FAIL: examples/run-command with SIGINT: status %s (want 130)\n%s\n' \
		"$status" "$(cat "$tmp")"
	fail=1
fi
rm -f "$tmp"

[ $fail -eq 0 ] && echo "PASS: the examples run"
exit $fail
