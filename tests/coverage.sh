#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/coverage.sh - line and branch coverage of executor/ and reactor/ by
# the test suite, as `make coverage` runs it from a configured build tree.
#
# The build it measures is a build of its own, in a temporary directory
# that is removed at the end: the sources are copied there with `make
# distdir` (a tree configured in place cannot also host an out-of-tree
# build) and configured with --coverage.  So the caller's objects are never
# instrumented, and no .gcda file is left behind in them.
#
# Environment: MAKE (make), GCOVR (gcovr); ROUSE_COVERAGE_KEEP=1 keeps the
# temporary directory and says where it is, for gcov or an HTML report.
set -eu
make=${MAKE:-make}
gcovr=${GCOVR:-gcovr}

if ! command -v "$gcovr" >/dev/null 2>&1; then
	echo "coverage.sh needs gcovr (Debian: apt-get install gcovr)" >&2
	exit 1
fi
if [ ! -f Makefile ]; then
	echo "coverage.sh runs from a configured build tree" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rouse-coverage.XXXXXX")
if [ "${ROUSE_COVERAGE_KEEP:-0}" = 1 ]; then
	trap 'echo "coverage.sh: kept $tmp"' EXIT
else
	trap 'rm -rf "$tmp"' EXIT
fi

echo "coverage.sh: building with --coverage in $tmp"
$make distdir distdir="$tmp/src" >/dev/null
mkdir "$tmp/build"
cd "$tmp/build"
# -O0 so that each line and branch counts as the source shows it, not as
# the optimiser merged or removed it.
../src/configure -q CFLAGS='-O0 -g --coverage' LDFLAGS='--coverage'
$make >/dev/null
if ! $make check >check.out 2>&1; then
	grep -E '^(FAIL|ERROR):' check.out || true
	tail -n 100 test-suite.log 2>/dev/null || true
	echo "coverage.sh: the test suite failed; no coverage is reported" >&2
	exit 1
fi
grep -E '^# (TOTAL|PASS|FAIL|ERROR):' check.out

# gcovr's filters are relative to where it runs: the copied sources.  It
# searches only the directories of objects built from them, and so skips
# what configure's tests left in the top directory.
cd "$tmp/src"
b=$tmp/build
for dir in executor reactor; do
	echo
	echo "=== $dir/: lines"
	"$gcovr" --root . --object-directory "$b" --filter "$dir/" \
		--print-summary "$b/executor" "$b/reactor" "$b/tests" \
		>"$tmp/$dir.txt"
	sed '/^lines:/,$d' "$tmp/$dir.txt"
	echo "=== $dir/: branches"
	"$gcovr" --root . --object-directory "$b" --filter "$dir/" \
		--branches "$b/executor" "$b/reactor" "$b/tests"
done
echo
for dir in executor reactor; do
	printf '%-10s %s, %s\n' "$dir/" \
		"$(grep '^lines:' "$tmp/$dir.txt")" \
		"$(grep '^branches:' "$tmp/$dir.txt")"
done
