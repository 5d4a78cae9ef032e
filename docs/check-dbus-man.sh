#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# org.hugepaged1(5) against the contract, dbus/org.hugepaged1.xml: every interface has a section, and
# every method and property of it is documented in that section; every signal anywhere; every method has
# a busctl example; every method the page documents (lines "*Name*(") exists in the XML; and every
# org.hugepaged1.Error.* the daemon defines (src/shared/hugepaged-bus-api.h) is listed, and no other.
set -eu

SRC=${HUGEPAGED_SOURCE_ROOT:-$(dirname "$0")/..}
XML=$SRC/dbus/org.hugepaged1.xml
SCD=$SRC/docs/org.hugepaged1.5.scd
ERRORS_H=$SRC/src/shared/hugepaged-bus-api.h

command -v xmllint >/dev/null || { echo "xmllint not installed (libxml2-utils): skipping" >&2; exit 77; }

failures=0
fail() {
        echo "FAIL: $*" >&2
        failures=$((failures + 1))
}

# xmllint prints attributes as ' name="X"', one per line (libxml2 >= 2.9) or all on one line.
names() {
        xmllint --nonet --xpath "$1" "$XML" 2>/dev/null | tr ' ' '\n' | sed -n 's/^name="\([^"]*\)"$/\1/p'
}

# The text of the section "# IFACE" up to the next top-level "# " heading, with backslash-continued
# lines of the examples joined.
section() {
        awk -v h="# $1" '$0 == h { on = 1; next } on && /^# / { exit } on' "$SCD" |
                sed -e ':a' -e '/\\$/{N;s/[[:space:]]*\\*\n[[:space:]]*/ /;ba' -e '}'
}

interfaces=$(names '//interface/@name')
[ -n "$interfaces" ] || fail "no interfaces found in $XML"
all_methods=""
for iface in $interfaces; do
        text=$(section "$iface")
        if [ -z "$text" ]; then
                fail "$iface: no '# $iface' section in $SCD"
                continue
        fi
        for m in $(names "//interface[@name='$iface']/method/@name"); do
                all_methods="$all_methods $m"
                printf '%s\n' "$text" | grep -q "^\*$m\*(" || fail "$iface.$m: not documented as '*$m*(' in its section"
                printf '%s\n' "$text" | grep -q "busctl call .*$iface $m\b" ||
                        fail "$iface.$m: no 'busctl call ... $iface $m' example in its section"
        done
        for p in $(names "//interface[@name='$iface']/property/@name"); do
                printf '%s\n' "$text" | grep -q "^\*$p\* (" || fail "$iface.$p: property not documented as '*$p* (' in its section"
        done
        for s in $(names "//interface[@name='$iface']/signal/@name"); do
                grep -q "\*$s\*" "$SCD" || fail "$iface.$s: signal not documented"
        done
done

# Vice versa: a method the page documents must exist.
# Not "*hugepaged*(8)": a man page reference.
for m in $(sed -n 's/^\*\([A-Za-z0-9_]*\)\*([^0-9].*/\1/p' "$SCD" | sort -u); do
        case " $all_methods " in
        *" $m "*) ;;
        *) fail "$m: documented as a method but not in $XML" ;;
        esac
done

# Errors, both ways.
defined=$(sed -n 's/.*"\(org\.hugepaged1\.Error\.[A-Za-z]*\)".*/\1/p' "$ERRORS_H" | sort -u)
documented=$(grep -o 'org\.hugepaged1\.Error\.[A-Za-z]*' "$SCD" | sort -u)
[ -n "$defined" ] || fail "no errors found in $ERRORS_H"
for e in $defined; do
        grep -q "^\*$e\*$" "$SCD" || fail "$e: error not listed in ERRORS"
done
for e in $documented; do
        printf '%s\n' "$defined" | grep -qx "$e" || fail "$e: documented, but the daemon does not define it"
done

if [ "$failures" -gt 0 ]; then
        echo "$failures problem(s) in $SCD" >&2
        exit 1
fi
echo "ok: $SCD covers $(echo $interfaces | wc -w) interfaces and$all_methods"
