#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/check-examples.sh - the example programs run and exit 0, so that
# what the README and rouse(7) point newcomers at keeps working.  The
# echo server runs under tests/echo-clients, which puts a half-closing
# client and then 100 concurrent clients through it and checks every
# byte; then again with examples/tcp-proxy in front of it, which must pass
# the half-close on both ways.
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
if ! out=$(timeout 300 $wrap "$top_builddir/tests/echo-clients" \
	"$top_builddir/examples/echo-server" \
	"$top_builddir/examples/tcp-proxy" 2>&1); then
	printf 'FAIL: examples/tcp-proxy in front of examples/echo-server\n%s\n' "$out"
	fail=1
fi
[ $fail -eq 0 ] && echo "PASS: the examples run"
exit $fail
