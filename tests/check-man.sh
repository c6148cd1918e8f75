#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/check-man.sh - every man page passes `mandoc -Tlint -Wwarning`, and
# every .so stub points at a page that exists.
set -u
: "${top_srcdir:=.}"
if [ -z "${MANDOC:-}" ]; then
	echo "SKIP: mandoc not found (Debian: apt-get install mandoc)"
	exit 77
fi
fail=0
for page in "$top_srcdir"/man/*.[37]; do
	first=$(head -n 1 "$page")
	case $first in
	.so\ *)
		target=${first#.so }
		if [ "$(wc -l < "$page")" -ne 1 ] ||
		   [ ! -f "$top_srcdir/man/${target#man[37]/}" ]; then
			echo "FAIL: $page: bad stub '$first'"
			fail=1
		fi
		continue ;;
	esac
	out=$("$MANDOC" -Tlint -Wwarning "$page" 2>&1)
	if [ -n "$out" ]; then
		printf '%s\n' "$out"
		fail=1
	fi
done
[ $fail -eq 0 ] && echo "PASS: man pages lint clean"
exit $fail
