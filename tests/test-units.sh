#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The unit files (suite `units`): `systemd-analyze verify` of every unit, with ExecStart= pointing at the
# build tree so the binaries really are checked, and any warning counted as a failure (verify exits 0
# on an unknown key); the daemon unit's `systemd-analyze security` exposure, asserted <= MAX_EXPOSURE; the
# D-Bus activation file agreeing with the unit; hugepaged-metrics.service's command writing its file.
#
# usage: test-units.sh verify|security|activation|metrics
set -eu

SRC=${HUGEPAGED_SOURCE_ROOT:?run me from meson test}
BUILD=${HUGEPAGED_BUILD_ROOT:?run me from meson test}
# 2.5 until the held reservations: their hugetlbfs mounts must be visible in the host's mount namespace, so
# the daemon has CAP_SYS_ADMIN and mount(2) and no namespace of its own; hugepaged.service.in says what each
# of the points lost buys.
MAX_EXPOSURE=3.0

command -v systemd-analyze >/dev/null || { echo "systemd-analyze not installed: skipping" >&2; exit 77; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/hugepaged-test-units.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

fail() {
        echo "FAIL: $*" >&2
        exit 1
}

# The units as meson fills them in, but with the build tree's binaries.
for f in hugepaged.service hugepaged-reserve@.service hugepaged-metrics.service; do
        sed -e "s|@sbindir@|$BUILD/src/hugepaged|g" \
            -e "s|@bindir@|$BUILD/src/hugepagectl|g" \
            -e "s|@libexecdir@|$BUILD/src/hugepaged-reserve|g" \
            -e "s|@reservationsdir@|$SRC/systemd/reservations.d|g" \
            "$SRC/systemd/$f.in" >"$TMP/$f"
        if grep -n '@[a-z_]*@' "$TMP/$f"; then
                fail "$f.in has a placeholder meson does not fill"
        fi
done
cp "$SRC/systemd/dev-hugepages1G.mount" "$SRC/systemd/hugepaged-metrics.timer" "$TMP/"
[ -x "$BUILD/src/hugepaged/hugepaged" ] || fail "$BUILD/src/hugepaged/hugepaged is not built"
[ -x "$BUILD/src/hugepaged-reserve/hugepaged-reserve" ] || fail "$BUILD/src/hugepaged-reserve/hugepaged-reserve is not built"
[ -x "$BUILD/src/hugepagectl/hugepagectl" ] || fail "$BUILD/src/hugepagectl/hugepagectl is not built"

test_verify() {
        cd "$TMP"
        # Each unit alone, so a message names its unit; a template is verified as an instance.
        for u in hugepaged.service hugepaged-reserve@.service dev-hugepages1G.mount hugepaged-metrics.service \
                 hugepaged-metrics.timer; do
                if ! out=$(systemd-analyze verify --man=no "$TMP/$u" 2>&1); then
                        printf '%s\n' "$out" >&2
                        fail "systemd-analyze verify $u failed"
                fi
                if [ -n "$out" ]; then
                        printf '%s\n' "$out" >&2
                        fail "systemd-analyze verify $u printed warnings"
                fi
                echo "ok: systemd-analyze verify $u"
        done

        # The checks above must be able to fail: a unit with a bad key and one with a missing binary.
        sed 's/^ProtectHostname=/ProtectHomee=/' "$TMP/hugepaged.service" >"$TMP/broken-key.service"
        out=$(systemd-analyze verify --man=no "$TMP/broken-key.service" 2>&1) || true
        printf '%s\n' "$out" | grep -q "Unknown key 'ProtectHomee'" || fail "verify does not report unknown keys: $out"
        sed "s|^ExecStart=.*|ExecStart=$TMP/no-such-binary|" "$TMP/hugepaged.service" >"$TMP/broken-exec.service"
        if systemd-analyze verify --man=no "$TMP/broken-exec.service" >/dev/null 2>&1; then
                fail "verify accepts a missing ExecStart= binary"
        fi
        echo "ok: verify catches a bad key and a missing binary"
}

test_security() {
        cd "$TMP"
        out=$(systemd-analyze security --offline=true --no-pager "$TMP/hugepaged.service" 2>&1) ||
                { printf '%s\n' "$out" >&2; fail "systemd-analyze security failed"; }
        line=$(printf '%s\n' "$out" | grep 'Overall exposure level for hugepaged.service:') ||
                { printf '%s\n' "$out" >&2; fail "no 'Overall exposure level' line"; }
        level=$(printf '%s\n' "$line" | sed -n 's/.*hugepaged\.service: *\([0-9][0-9]*\.[0-9]\).*/\1/p')
        [ -n "$level" ] || fail "cannot parse the exposure level from: $line"
        echo "$line"
        awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(l + 0 <= m + 0) }' ||
                { printf '%s\n' "$out" | grep '✗' >&2; fail "exposure $level is above $MAX_EXPOSURE"; }
        echo "ok: exposure $level <= $MAX_EXPOSURE"
}

test_activation() {
        act=$SRC/dbus/org.hugepaged1.service
        unit=$TMP/hugepaged.service
        head -n 20 "$act" | grep -qx '\[D-BUS Service\]' || fail "$act: no [D-BUS Service] section"
        grep -qx 'Name=org.hugepaged1' "$act" || fail "$act: Name= is not org.hugepaged1"
        grep -qx 'SystemdService=hugepaged.service' "$act" || fail "$act: SystemdService= is not hugepaged.service"
        grep -qx 'User=root' "$act" || fail "$act: User= is not root"
        grep -qx 'BusName=org.hugepaged1' "$unit" || fail "hugepaged.service: BusName= is not org.hugepaged1"
        grep -qx 'Alias=dbus-org.hugepaged1.service' "$unit" || fail "hugepaged.service: no dbus-org alias"
        grep -qx 'RuntimeDirectoryPreserve=yes' "$unit" || fail "hugepaged.service: reservations would not survive a restart"
        # The daemon's state directory is the unit's RuntimeDirectory=.
        grep -qx 'RuntimeDirectory=hugepaged' "$unit" || fail "hugepaged.service: RuntimeDirectory= is not hugepaged"
        grep -q '^#define DEFAULT_STATE_DIR "/run/hugepaged"$' "$BUILD/build-config.h" ||
                fail "DEFAULT_STATE_DIR (-Drunstatedir) is not /run/hugepaged, the unit's RuntimeDirectory="
        echo "ok: activation file and unit agree"
}

# hugepaged-metrics.service's command as the unit gives it, on a directory of ours and with no daemon: it must
# write the file (hugepaged_up 0) and end with a status the unit takes for success.
test_metrics() {
        unit=$TMP/hugepaged-metrics.service
        dir=$(sed -n 's/^Environment=HUGEPAGED_METRICS_DIR=//p' "$unit")
        [ "$dir" = /var/lib/prometheus/node-exporter ] || fail "HUGEPAGED_METRICS_DIR is '$dir', not Debian's textfile directory"
        grep -qx -- "ReadWritePaths=-$dir" "$unit" || fail "the unit cannot write $dir"
        exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
        case $exec_start in
        "$BUILD/src/hugepagectl/hugepagectl metrics --output=\${HUGEPAGED_METRICS_DIR}/hugepaged.prom") ;;
        *) fail "unexpected ExecStart=$exec_start" ;;
        esac
        mkdir "$TMP/textfile"
        rc=0
        DBUS_SYSTEM_BUS_ADDRESS=unix:path=$TMP/no-bus "$BUILD/src/hugepagectl/hugepagectl" metrics \
                --output="$TMP/textfile/hugepaged.prom" 2>"$TMP/err" || rc=$?
        ok=$(sed -n 's/^SuccessExitStatus=//p' "$unit")
        [ "$rc" = 5 ] && [ "$ok" = 5 ] || fail "no daemon: exit $rc, SuccessExitStatus=$ok (want 5 and 5)"
        grep -qx 'hugepaged_up 0' "$TMP/textfile/hugepaged.prom" || fail "no 'hugepaged_up 0' in the file"
        [ "$(ls "$TMP/textfile")" = hugepaged.prom ] || fail "left files behind: $(ls "$TMP/textfile")"
        grep -qx 'OnUnitActiveSec=15s' "$SRC/systemd/hugepaged-metrics.timer" || fail "the timer does not run every 15 s"
        echo "ok: hugepaged-metrics.service writes hugepaged_up 0 without a daemon, and succeeds"
}

case ${1:-} in
verify) test_verify ;;
metrics) test_metrics ;;
security) test_security ;;
activation) test_activation ;;
*) echo "usage: $0 verify|security|activation|metrics" >&2; exit 2 ;;
esac
