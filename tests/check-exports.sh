#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/check-exports.sh - each library exports its public rouse_* names and
# nothing else, neither library needs the other, and every public name
# (exported or header inline) has a man page.
set -u
: "${top_srcdir:=.}" "${top_builddir:=.}" "${NM:=nm}"
fail=0

for lib in executor reactor; do
	so="$top_builddir/$lib/.libs/librouse-$lib.so"
	if [ ! -f "$so" ]; then
		echo "SKIP: $so not built (static-only build)"
		exit 77
	fi
	syms=$($NM -D --defined-only "$so" | awk '$2 ~ /^[A-Z]$/ {print $3}' |
		sed 's/@.*//' | sort -u)
	bad=$(printf '%s\n' "$syms" | grep -v '^rouse_[a-z]' |
		grep -v '^ROUSE_[A-Z_]*_[0-9.]*$' | grep -v '^$')
	if [ -n "$bad" ]; then
		echo "FAIL: librouse-$lib.so exports non-public symbols:" $bad
		fail=1
	fi
	# Internal names (rouse__) must never leave the library.
	if printf '%s\n' "$syms" | grep -q '^rouse__'; then
		echo "FAIL: librouse-$lib.so exports internal rouse__ names"
		fail=1
	fi
	for s in $(printf '%s\n' "$syms" | grep '^rouse_[a-z]'); do
		grep -q "^[[:space:]]*$s;" "$top_srcdir/$lib/librouse-$lib.sym" || {
			echo "FAIL: $s is exported but not in librouse-$lib.sym"; fail=1; }
		[ -f "$top_srcdir/man/$s.3" ] || {
			echo "FAIL: $s is exported but has no man/$s.3"; fail=1; }
	done
	other=executor; [ $lib = executor ] && other=reactor
	if readelf -d "$so" | grep NEEDED | grep -q "librouse-$other"; then
		echo "FAIL: librouse-$lib.so links librouse-$other"
		fail=1
	fi
done

# Both static archives (--enable-static) link into one program: no global
# name may be defined in both (lib/ is built under each library's prefix).
ea="$top_builddir/executor/.libs/librouse-executor.a"
ra="$top_builddir/reactor/.libs/librouse-reactor.a"
if [ -f "$ea" ] && [ -f "$ra" ]; then
	tmp=$(mktemp -d)
	$NM -g --defined-only "$ea" | awk 'NF == 3 {print $3}' | sort -u \
		> "$tmp/e"
	$NM -g --defined-only "$ra" | awk 'NF == 3 {print $3}' | sort -u \
		> "$tmp/r"
	both=$(comm -12 "$tmp/e" "$tmp/r")
	rm -rf "$tmp"
	if [ -n "$both" ]; then
		echo "FAIL: defined in both static archives:" $both
		fail=1
	fi
fi

# Header-only functions are public API too.
for f in $(sed -n 's/^static inline [a-z_ ]*[ *]\(rouse_[a-z][a-z_]*\)(.*/\1/p' \
		"$top_srcdir"/include/rouse/*.h | sort -u); do
	[ -f "$top_srcdir/man/$f.3" ] || {
		echo "FAIL: inline $f has no man/$f.3"; fail=1; }
done

[ $fail -eq 0 ] && echo "PASS: exports are public, documented and independent"
exit $fail
