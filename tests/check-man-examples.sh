#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/check-man-examples.sh - the C in every man page's EXAMPLES section
# compiles as strict C11 against the in-tree headers, and every program
# among it links with the in-tree libraries, runs and exits 0: what a
# reader copies from a page works.
#
# Each .EX/.EE block of an EXAMPLES section is taken from the roff source
# and its escapes are turned back into C.  A block is C when its first
# line opens a comment ("/*") or is a preprocessor line ("#"); any other
# block is text (a program's output, a shell session) and is skipped,
# unless it looks like C, which fails.  The page's source may carry, inside
# a block, lines that the reader never sees:
#
#   .\"+ TEXT          TEXT is part of the C, written with the same escapes:
#                      the includes and the function around a fragment.
#   .\"! norun         link the program, but do not run it.
#   .\"! args ARG...   run the program with these arguments.
#
# A block that defines main() is a program: it is linked with both
# libraries where libtool built them, and run with a time limit.  Any
# other C block is a fragment, compiled with -c only, which may leave
# static functions unused.  Everything is built under tests/man-examples.d
# in the build tree (the source tree may be read-only), with the sanitizer
# flags the libraries were built with; the directory is kept when
# something fails.
set -u
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
: "${CC:=cc}"
: "${CFLAGS:=}"
: "${SANITIZER_FLAGS:=}"
: "${LIBTOOL:=$top_builddir/libtool}"

cflags="$CFLAGS -std=c11 -pedantic -Wall -Wextra -Werror -pthread"
cflags="$cflags $SANITIZER_FLAGS -I$top_srcdir/include"
work=$top_builddir/tests/man-examples.d

# The libraries are linked from libtool's object directories, by hand: a
# libtool link per example would cost seconds each.  The run path is
# absolute, and is an RPATH so that it comes before LD_LIBRARY_PATH; with
# --disable-shared the linker finds the static archives there instead.
objdir=$($LIBTOOL --config | sed -n 's/^objdir=//p')
builddir=$(cd "$top_builddir" && pwd) || exit 99
libs=
for lib in executor reactor; do
	dir=$builddir/$lib/${objdir:-.libs}
	libs="$libs -L$dir -Wl,-rpath,$dir -lrouse-$lib"
done
libs="$libs -Wl,--disable-new-dtags"

# extract PAGE PREFIX: write the Nth block of PAGE's EXAMPLES section to
# PREFIX-N.ex, in roff with the hidden lines uncovered and the directives
# turned into C comments ("/*! norun*/").  A request inside a block fails.
extract()
{
	awk -v page="$1" -v prefix="$2" '
	/^\.SH/ {
		sect = $0
		sub(/^\.SH[ \t]+/, "", sect)
		gsub(/"/, "", sect)
		inex = sect == "EXAMPLES" || sect == "EXAMPLE"
		next
	}
	!inex { next }
	/^\.EX/ { n++; out = prefix "-" n ".ex"; printf "" > out; next }
	/^\.EE/ { close(out); out = ""; next }
	out == "" { next }
	/^\.\\"\+$/ { print "" > out; next }
	/^\.\\"\+ / { print substr($0, 6) > out; next }
	/^\.\\"! / { print "/*!" substr($0, 5) "*/" > out; next }
	/^\.\\"/ { next }
	/^[.\047]/ {
		printf "FAIL: %s:%d: a request inside .EX: %s\n", page, NR, $0
		bad = 1
		next
	}
	{ print > out }
	END { exit bad }
	' "$1"
}

# toc FILE OUT: turn the roff escapes that examples use back into C.  An
# escape not in this list fails rather than become wrong C.
toc()
{
	sed -e 's/\\(aq/'"'"'/g' -e 's/\\(dq/"/g' -e 's/\\(ga/`/g' \
	    -e 's/\\(ti/~/g' -e 's/\\(ha/^/g' -e 's/\\(rs/\\e/g' \
	    -e 's/\\-/-/g' -e 's/\\&//g' -e 's/\\f[BIRP]//g' "$1" > "$2" ||
		return 1
	if grep -n '\\[^e]' "$2" | sed 's/^/unknown escape: line /' | grep .
	then
		return 1
	fi
	sed -i 's/\\e/\\/g' "$2"
}

# check NAME SRC: compile SRC; link and run it if it is a program.
check()
{
	obj=${2%.c}.o
	prog=${2%.c}
	if grep -Eq '^(int[[:space:]]+)?main[[:space:]]*\(' "$2"; then
		extra=
	else
		extra=-Wno-unused-function
	fi
	if ! out=$($CC $cflags $extra -c -o "$obj" "$2" 2>&1); then
		printf 'FAIL: %s does not compile (%s)\n%s\n' "$1" "$2" "$out"
		return 1
	fi
	[ -z "$extra" ] || return 0		# a fragment
	if ! out=$($CC $cflags -o "$prog" "$obj" $libs 2>&1); then
		printf 'FAIL: %s does not link (%s)\n%s\n' "$1" "$2" "$out"
		return 1
	fi
	! grep -q '^/\*! norun\*/$' "$2" || return 0
	args=$(sed -n 's|^/\*! args \(.*\)\*/$|\1|p' "$2")
	# A hang is a failure too (coreutils timeout; generous for TSan).
	if ! out=$(timeout 300 "$prog" $args < /dev/null 2>&1); then
		printf 'FAIL: %s exits with an error (%s %s)\n%s\n' \
			"$1" "$prog" "$args" "$out"
		return 1
	fi
}

rm -rf "$work"
mkdir -p "$work" || exit 99
fail=0
count=0
for page in "$top_srcdir"/man/*.[37]; do
	case $(head -n 1 "$page") in .so\ *) continue ;; esac
	name=${page##*/}
	prefix=$work/$(printf '%s' "$name" | tr . _)
	extract "$page" "$prefix" || { fail=1; continue; }
	for ex in "$prefix"-*.ex; do
		[ -f "$ex" ] || continue
		n=${ex##*-}
		what="$name, example ${n%.ex}"
		src=${ex%.ex}.c
		toc "$ex" "$src" || { echo "FAIL: $what"; fail=1; continue; }
		case $(sed -n '/[^[:space:]]/{p;q;}' "$src") in
		/\**|\#*) ;;
		*)
			# Text.  A fragment with no hidden lines above it
			# would be skipped quietly: statements give it away.
			if grep -q '[;{]$' "$src"; then
				echo "FAIL: $what looks like C; open it" \
				     "with a comment or hidden #includes"
				fail=1
			fi
			rm -f "$src"
			continue ;;
		esac
		count=$((count + 1))
		check "$what" "$src" || fail=1
	done
done
if [ $fail -ne 0 ]; then
	echo "(the extracted sources are in $work)"
	exit 1
fi
rm -rf "$work"
echo "PASS: $count examples in the man pages compile, and the programs run"
exit 0
