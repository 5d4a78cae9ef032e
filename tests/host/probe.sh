#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# probe: the checks test-host.sh runs inside the booted Debian 12 host, as hugepaged-probe.service (installed
# as /usr/local/libexec/hugepaged-probe). Every check prints "PROBE ok: WHAT" or "PROBE FAIL: WHAT" (then the
# output that explains it, as "PROBE   | ..." lines) on the serial console, and the last line is
# "PROBE RESULT: PASS" or "PROBE RESULT: FAIL". The unit powers the machine off when this exits.
#
# The mode (/etc/hugepaged-test/mode) is dbus-daemon, dbus-broker or boot-1g; boot-1g adds the checks of
# Adopt=spare on the 1 GiB pages set aside on the kernel command line.
# Sections: 1 enable and reserve, the journal; [1G] Adopt=spare; 2 D-Bus activation; 3 restart and SIGKILL;
# 4 reservation units; 5 polkit; 6 systemd-analyze security; 7 held reservations under the real unit.
set -uo pipefail

mode=$(cat /etc/hugepaged-test/mode 2>/dev/null || echo unknown)
n_ok=0
n_fail=0
finished=no
started=$SECONDS

say() { printf 'PROBE %s\n' "$*"; }
# show TEXT: a failure's explanation, indented, at most 25 lines.
show() { [ -n "$1" ] && printf '%s\n' "$1" | head -n 25 | sed 's/^/PROBE   | /'; return 0; }
ok() { n_ok=$((n_ok + 1)); say "ok: $*"; }
fail() { n_fail=$((n_fail + 1)); say "FAIL: $*"; }
section() { say "---- $* ($((SECONDS - started)) s)"; }

finish() {
        if [ "$finished" != yes ]; then
                fail "the probe stopped early (a command it ran exited the script)"
        fi
        say "info: $n_ok checks passed, $n_fail failed, in $((SECONDS - started)) s"
        if [ "$n_fail" -eq 0 ] && [ "$n_ok" -gt 0 ]; then
                say "RESULT: PASS"
        else
                say "RESULT: FAIL"
        fi
}
trap finish EXIT

# run CMD...: a command within 120 s; a function of this script bounds its own commands.
run() {
        if declare -F "$1" >/dev/null; then
                "$@"
        else
                timeout 120 "$@"
        fi
}

# check WHAT CMD...: passes when CMD exits 0.
check() {
        local what=$1 out rc
        shift
        out=$(run "$@" 2>&1)
        rc=$?
        if [ $rc -eq 0 ]; then
                ok "$what"
        else
                fail "$what (exit status $rc)"
                show "$out"
        fi
        return $rc
}

# check_status WHAT STATUS CMD...: passes when CMD exits with STATUS; LAST_OUT is its output.
LAST_OUT=
check_status() {
        local what=$1 want=$2 rc
        shift 2
        LAST_OUT=$(run "$@" 2>&1)
        rc=$?
        if [ $rc -eq "$want" ]; then
                ok "$what"
        else
                fail "$what (exit status $rc, expected $want)"
                show "$LAST_OUT"
        fi
        [ $rc -eq "$want" ]
}

# check_eq WHAT GOT WANT
check_eq() {
        if [ "$2" = "$3" ]; then
                ok "$1 ($2)"
        else
                fail "$1: got '$2', expected '$3'"
        fi
        [ "$2" = "$3" ]
}

# check_contains WHAT TEXT PATTERN: grep -E PATTERN in TEXT.
check_contains() {
        if printf '%s\n' "$2" | grep -qE -- "$3"; then
                ok "$1"
        else
                fail "$1: no line matches /$3/"
                show "$2"
        fi
}

# check_lacks WHAT TEXT PATTERN
check_lacks() {
        if printf '%s\n' "$2" | grep -qE -- "$3"; then
                fail "$1: a line matches /$3/"
                show "$(printf '%s\n' "$2" | grep -E -- "$3")"
        else
                ok "$1"
        fi
}

# wait_until SECONDS CMD...: until CMD exits 0; fails when time runs out.
wait_until() {
        local deadline=$((SECONDS + $1))
        shift
        while ! "$@" >/dev/null 2>&1; do
                [ $SECONDS -lt $deadline ] || return 1
                sleep 0.5
        done
}

# ---- the kernel's counts ----
# nr KB [NODE]: nr_hugepages of the KB kB pool, of one node or global.
nr() {
        if [ $# -eq 2 ]; then
                cat "/sys/devices/system/node/node$2/hugepages/hugepages-$1kB/nr_hugepages"
        else
                cat "/sys/kernel/mm/hugepages/hugepages-$1kB/nr_hugepages"
        fi
}
free_pages() { cat "/sys/kernel/mm/hugepages/hugepages-$1kB/free_hugepages"; }
# The 2 MiB pages of all nodes, summed from the per-node files.
sum2m() {
        local total=0 f
        for f in /sys/devices/system/node/node*/hugepages/hugepages-2048kB/nr_hugepages; do
                total=$((total + $(cat "$f")))
        done
        echo "$total"
}
counts1g() { echo "global=$(nr 1048576) node0=$(nr 1048576 0) node1=$(nr 1048576 1)"; }

# ---- the daemon ----
manager() { timeout 120 busctl call org.hugepaged1 /org/hugepaged1 org.hugepaged1.Manager "$@"; }
main_pid() { systemctl show -P MainPID hugepaged.service; }
is_active() { [ "$(systemctl is-active "$1")" = active ]; }
has_reservation() { manager GetReservation s "$1" >/dev/null 2>&1; }
# pool_prop KB NODE PROPERTY: a pool's property, the number only.
pool_prop() {
        timeout 60 busctl get-property org.hugepaged1 "/org/hugepaged1/pool/$1kB/node$2" org.hugepaged1.Pool "$3" |
                awk '{ print $2 }'
}
# new_main_pid OLD: a MainPID other than OLD and 0, once the unit is active again.
new_main_pid() {
        local pid
        pid=$(main_pid)
        [ "$pid" != 0 ] && [ "$pid" != "$1" ] && is_active hugepaged.service && kill -0 "$pid" 2>/dev/null
}
journal() { journalctl --no-pager -o cat "$@" 2>&1; }
journal_has() {
        local pattern=$1
        shift
        journal "$@" | grep -qE -- "$pattern"
}
# check_journal WHAT PATTERN JOURNALCTL-ARGS...: the line shows up within 15 s (the stream is asynchronous).
check_journal() {
        local what=$1 pattern=$2
        shift 2
        if wait_until 15 journal_has "$pattern" "$@"; then
                ok "$what"
        else
                fail "$what: no line matches /$pattern/ in journalctl $*"
                show "$(journal "$@" | tail -n 25)"
        fi
}
# kill_daemon [PREFIX]: SIGKILL the daemon and wait for Restart=on-failure to bring it back; sets KILLED_PID
# and NEW_PID. PREFIX starts the lines it prints.
kill_daemon() {
        local prefix=${1:+$1 }
        KILLED_PID=$(main_pid)
        NEW_PID=
        if [ "$KILLED_PID" = 0 ]; then
                fail "${prefix}hugepaged.service has no MainPID to kill"
                return 1
        fi
        kill -9 "$KILLED_PID"
        if wait_until 60 new_main_pid "$KILLED_PID"; then
                NEW_PID=$(main_pid)
                ok "${prefix}after kill -9 of $KILLED_PID, Restart=on-failure started hugepaged again (pid $NEW_PID)"
        else
                fail "${prefix}hugepaged did not come back within 60 s of kill -9 $KILLED_PID"
                show "$(systemctl status --no-pager hugepaged.service 2>&1)"
                return 1
        fi
}

section "host: $(uname -r), mode $mode, nodes $(cat /sys/devices/system/node/has_memory)"
say "info: the probe started $(cut -d' ' -f1 /proc/uptime) s after the kernel"
boot1g=$(counts1g 2>/dev/null || echo none)
say "info: 1 GiB pools at boot, before hugepaged: $boot1g"

# ---- 1: enable, reserve over the system bus, the journal ----
section "1: enable --now, Reserve over the system bus, the journal"
check "systemctl enable --now hugepaged.service" systemctl enable --now hugepaged.service
check_eq "hugepaged.service is active" "$(systemctl is-active hugepaged.service)" active
check_eq "hugepaged.service is enabled" "$(systemctl is-enabled hugepaged.service)" enabled
bus_exe=$(readlink "/proc/$(systemctl show -P MainPID dbus.service)/exe")
case $mode in
dbus-broker) want_bus=/usr/bin/dbus-broker-launch ;;
*) want_bus=/usr/bin/dbus-daemon ;;
esac
check_eq "the system bus (dbus.service) runs $want_bus" "$bus_exe" "$want_bus"

if [ "$mode" = boot-1g ]; then
        # ---- [1G]: the pages set aside at boot, with Adopt=spare ----
        section "[1G] Adopt=spare: the 1 GiB pages set aside at boot"
        check_eq "[1G] the kernel set aside one 1 GiB page per node (hugepages=0:1,1:1)" "$boot1g" \
                "global=2 node0=1 node1=1"
        check_eq "[1G] starting hugepaged left the 1 GiB pools as they were" "$(counts1g)" "$boot1g"
        for n in 0 1; do
                check_eq "[1G] node $n: Floor is 0 (the boot-time page is not a Floor)" \
                        "$(pool_prop 1048576 "$n" Floor)" 0
                check_eq "[1G] node $n: AdoptedSpare is 1" "$(pool_prop 1048576 "$n" AdoptedSpare)" 1
        done
        check_contains "[1G] hugepagectl status shows the pages as ADOPTED" "$(timeout 60 hugepagectl status 2>&1)" \
                "ADOPTED"
        for n in 0 1; do
                check "[1G] hugepagectl reserve g$n 1G --page-size=1G --node=$n" \
                        hugepagectl reserve "g$n" 1G --page-size=1G --node="$n"
        done
        check_eq "[1G] reserving both pages wrote nothing to the kernel" "$(counts1g)" "$boot1g"
        check_eq "[1G] node 0: Reserved is 1" "$(pool_prop 1048576 0 Reserved)" 1
        check "[1G] hugepagectl release g0" hugepagectl release g0
        check_eq "[1G] after the release of g0 the page is still in the pool" "$(counts1g)" "$boot1g"
        check "[1G] hugepagectl reserve g0 again" hugepagectl reserve g0 1G --page-size=1G --node=0
        check_eq "[1G] reserving g0 again wrote nothing to the kernel" "$(counts1g)" "$boot1g"

        kill_daemon "[1G]"
        for n in 0 1; do
                check "[1G] after kill -9: reservation g$n is kept" manager GetReservation s "g$n"
        done
        check_eq "[1G] after kill -9: the 1 GiB pools are unchanged" "$(counts1g)" "$boot1g"
        check_eq "[1G] after kill -9: node 1 AdoptedSpare is still 1" "$(pool_prop 1048576 1 AdoptedSpare)" 1
        check "[1G] after kill -9: hugepagectl release g1" hugepagectl release g1
        check_eq "[1G] after kill -9: the release of g1 kept the page in the pool" "$(counts1g)" "$boot1g"
        check "[1G] after kill -9: hugepagectl reserve g1 again" hugepagectl reserve g1 1G --page-size=1G --node=1
        check_eq "[1G] after kill -9: reserving g1 again wrote nothing to the kernel" "$(counts1g)" "$boot1g"
        check "[1G] hugepagectl release g0" hugepagectl release g0
        check "[1G] hugepagectl release g1" hugepagectl release g1
        check_eq "[1G] with both released, both pages are still in the pools" "$(counts1g)" "$boot1g"

        # The README's recipe: a VM unit on 1 GiB pages, its reservation file, the hugetlbfs mount.
        free_before=$(free_pages 1048576)
        check "[1G] systemctl enable --now dev-hugepages1G.mount" systemctl enable --now dev-hugepages1G.mount
        check "[1G] systemctl start vm-1g.service (NodeSizes=1:1G)" systemctl start vm-1g.service
        check "[1G] vm-1g: reservation vm1g exists while it runs" hugepagectl show vm1g
        if wait_until 60 test -e /dev/hugepages1G/vm1g; then
                ok "[1G] vm-1g: its 1 GiB page is mapped in /dev/hugepages1G"
        else
                fail "[1G] vm-1g: /dev/hugepages1G/vm1g never appeared"
                show "$(systemctl status --no-pager vm-1g.service 2>&1)"
        fi
        check_eq "[1G] vm-1g: one 1 GiB page in use" "$(free_pages 1048576)" "$((free_before - 1))"
        check_eq "[1G] vm-1g: no kernel write for it" "$(counts1g)" "$boot1g"
        check "[1G] systemctl stop hugepaged-reserve@vm1g.service" systemctl stop hugepaged-reserve@vm1g.service
        check_eq "[1G] vm-1g stopped with its reservation" "$(systemctl is-active vm-1g.service)" inactive
        check_status "[1G] reservation vm1g is gone (hugepagectl show: 3)" 3 hugepagectl show vm1g
        check_eq "[1G] the page is free again and still in the pool" "$(free_pages 1048576) $(counts1g)" \
                "$free_before $boot1g"
fi

base=$(sum2m)
say "info: 2 MiB pages before the first Reserve: $base"
check "busctl call ... Reserve 'stta{sv}' bus-r1 0 67108864 0" \
        manager Reserve 'stta{sv}' bus-r1 0 67108864 0
check_eq "the 2 MiB pools grew by 32 pages (per-node nr_hugepages)" "$(($(sum2m) - base))" 32
check "hugepagectl reserve ctl-r1 32M" hugepagectl reserve ctl-r1 32M
check_eq "the 2 MiB pools grew by 16 pages more" "$(($(sum2m) - base))" 48
check_contains "hugepagectl show ctl-r1 shows 16 pages" "$(timeout 60 hugepagectl show ctl-r1 2>&1)" '\b16\b'
list=$(timeout 60 hugepagectl list 2>&1)
check_contains "hugepagectl list shows bus-r1" "$list" '^bus-r1 '
check_contains "hugepagectl list shows ctl-r1" "$list" '^ctl-r1 '

check_journal "journal, priority info: ready on the bus" '^ready on the bus as org\.hugepaged1$' \
        -u hugepaged.service -p info..info
check_journal "journal, priority info: reserved bus-r1" '^reserved bus-r1: 32 2 MiB pages for uid 0, lifetime explicit$' \
        -u hugepaged.service -p info..info
check_journal "journal, priority info: reserved ctl-r1" '^reserved ctl-r1: 16 2 MiB pages for uid 0' \
        -u hugepaged.service -p info..info
check_lacks "journal, priority notice and above: no 'reserved' line" \
        "$(journal -u hugepaged.service -p notice)" '^reserved '
check_lacks "journal: no raw <N> priority prefixes in the messages" "$(journal -u hugepaged.service)" '^<[0-7]>'
# A notice of its own: someone else grows node 0's 2 MiB pool, and the next Reserve there notices.
n0=$(nr 2048 0)
echo $((n0 + 1)) >/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages
check "hugepagectl reserve ext-1 2M --node=0 (after an outside change of node 0)" \
        hugepagectl reserve ext-1 2M --node=0
check_journal "journal, priority notice: the outside change of node 0" \
        '^2 MiB pages on node 0 changed from outside hugepaged.*-> '"$((n0 + 1))"' pages' \
        -u hugepaged.service -p notice..notice
check "hugepagectl release ext-1" hugepagectl release ext-1
# ... and takes it back, so that the Floor it adopted is 0 again.
echo $(($(nr 2048 0) - 1)) >/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages
check "hugepagectl reserve ext-2 2M --node=0 (after the outside change is undone)" \
        hugepagectl reserve ext-2 2M --node=0
check "hugepagectl release ext-2" hugepagectl release ext-2
check_eq "node 0's 2 MiB Floor is 0 again" "$(pool_prop 2048 0 Floor)" 0
check_eq "the 2 MiB pools hold bus-r1 and ctl-r1 only" "$(($(sum2m) - base))" 48

# ---- 2: D-Bus activation ----
section "2: D-Bus activation after a stop"
check "systemctl stop hugepaged.service" systemctl stop hugepaged.service
check_eq "hugepaged.service is inactive" "$(systemctl is-active hugepaged.service)" inactive
check "a bus call (Peer.Ping) to org.hugepaged1 while it is stopped" \
        timeout 120 busctl call org.hugepaged1 /org/hugepaged1 org.freedesktop.DBus.Peer Ping
if wait_until 30 is_active hugepaged.service; then
        ok "D-Bus activation started hugepaged.service (pid $(main_pid))"
else
        fail "hugepaged.service is not active after the bus call"
        show "$(systemctl status --no-pager hugepaged.service 2>&1)"
fi
check_contains "busctl get-property Version answers" \
        "$(timeout 60 busctl get-property org.hugepaged1 /org/hugepaged1 org.hugepaged1.Manager Version 2>&1)" '^s "'
check "reservation bus-r1 is still there (GetReservation)" manager GetReservation s bus-r1
check "reservation ctl-r1 is still there (GetReservation)" manager GetReservation s ctl-r1
check_eq "the 2 MiB pools are unchanged" "$(($(sum2m) - base))" 48

# ---- 3: restart, kill -9 ----
section "3: systemctl restart, kill -9 and Restart=on-failure"
old_pid=$(main_pid)
check "systemctl restart hugepaged.service" systemctl restart hugepaged.service
if new_main_pid "$old_pid"; then
        ok "restart: a new MainPID ($old_pid -> $(main_pid))"
else
        fail "restart: MainPID is $(main_pid), was $old_pid"
fi
check "restart: GetReservation bus-r1" manager GetReservation s bus-r1
check_contains "restart: hugepagectl list still shows ctl-r1" "$(timeout 60 hugepagectl list 2>&1)" 'ctl-r1'
check_eq "restart: the 2 MiB pools are unchanged" "$(($(sum2m) - base))" 48
restarts=$(systemctl show -P NRestarts hugepaged.service)
if kill_daemon; then
        check_eq "kill -9: NRestarts went up by one" "$(systemctl show -P NRestarts hugepaged.service)" \
                "$((restarts + 1))"
fi
check "kill -9: GetReservation bus-r1" manager GetReservation s bus-r1
check_contains "kill -9: hugepagectl list still shows ctl-r1" "$(timeout 60 hugepagectl list 2>&1)" 'ctl-r1'
check_eq "kill -9: the 2 MiB pools are unchanged" "$(($(sum2m) - base))" 48
check "busctl call ... Release s bus-r1" manager Release s bus-r1
check "hugepagectl release ctl-r1" hugepagectl release ctl-r1
check_eq "the 2 MiB pools are back where they started" "$(sum2m)" "$base"

# ---- 4: reservation units ----
section "4: hugepaged-reserve@.service and the units that need it"
node1=$(nr 2048 1)
check "systemctl start vm-ok.service (Requires=hugepaged-reserve@vmok.service)" systemctl start vm-ok.service
check_eq "vm-ok.service is active" "$(systemctl is-active vm-ok.service)" active
check_eq "hugepaged-reserve@vmok.service is active" "$(systemctl is-active hugepaged-reserve@vmok.service)" active
check "vm-ok ran after its reservation existed (its ExecStartPre= hugepagectl show vmok)" test -e /run/vm-ok.ran
check "reservation vmok exists while vm-ok runs" hugepagectl show vmok
check_eq "node 1's 2 MiB pool grew by vmok's 32 pages" "$(($(nr 2048 1) - node1))" 32
check "systemctl restart hugepaged.service while vm-ok runs" systemctl restart hugepaged.service
check_eq "vm-ok.service is still active" "$(systemctl is-active vm-ok.service)" active
check "reservation vmok is still there" hugepagectl show vmok
check "systemctl stop hugepaged-reserve@vmok.service" systemctl stop hugepaged-reserve@vmok.service
check_eq "vm-ok.service stopped with its reservation" "$(systemctl is-active vm-ok.service)" inactive
check_status "reservation vmok is released (hugepagectl show: 3)" 3 hugepagectl show vmok
check_eq "node 1's 2 MiB pool gave the pages back" "$(nr 2048 1)" "$node1"

before=$(sum2m)
check_status "systemctl start vm-big.service fails (64G of 2 MiB pages)" 1 systemctl start vm-big.service
check "vm-big never ran (no /run/vm-big.ran)" test ! -e /run/vm-big.ran
check_eq "vm-big.service is not active" "$(systemctl is-active vm-big.service)" inactive
check_eq "hugepaged-reserve@big.service failed" "$(systemctl is-failed hugepaged-reserve@big.service)" failed
check_contains "systemctl status hugepaged-reserve@big shows hugepaged's reason" \
        "$(systemctl status --no-pager -l -n 20 hugepaged-reserve@big.service 2>&1)" \
        'hugepaged-reserve: cannot reserve big: .*(memory|pages)'
check_journal "journalctl -u hugepaged-reserve@big holds the reason" 'cannot reserve big: ' \
        -u hugepaged-reserve@big.service
check_status "no reservation big is left (hugepagectl show: 3)" 3 hugepagectl show big
check_eq "the 2 MiB pools are unchanged" "$(sum2m)" "$before"
say "info: $(systemctl status --no-pager -l -n 20 hugepaged-reserve@big.service 2>&1 | grep 'cannot reserve big' | tail -n 1 | sed 's/^.*\]: //')"

# ---- 5: polkit ----
section "5: a polkit rule for group kvm"
getent group kvm >/dev/null || groupadd --system kvm
id hp-alice >/dev/null 2>&1 || useradd --no-create-home --groups kvm hp-alice
id hp-bob >/dev/null 2>&1 || useradd --no-create-home hp-bob
alice=$(id -u hp-alice)
bob=$(id -u hp-bob)
check_contains "hp-alice is in group kvm" "$(id -nG hp-alice | tr ' ' '\n')" '^kvm$'
check_lacks "hp-bob is not in group kvm" "$(id -nG hp-bob | tr ' ' '\n')" '^kvm$'
before=$(sum2m)
check "hp-alice (kvm): hugepagectl reserve alice-r 8M" runuser -u hp-alice -- hugepagectl reserve alice-r 8M
check_eq "the 2 MiB pools grew by alice-r's 4 pages" "$(($(sum2m) - before))" 4
path=$(manager GetReservation s alice-r 2>/dev/null | awk '{ print $2 }' | tr -d '"')
check_eq "alice-r belongs to hp-alice" \
        "$(timeout 60 busctl get-property org.hugepaged1 "${path:-/none}" org.hugepaged1.Reservation OwnerUID 2>&1)" \
        "u $alice"
if check_status "hp-bob (not kvm): hugepagectl reserve bob-r 8M is refused (exit status 1)" 1 \
        runuser -u hp-bob -- hugepagectl reserve bob-r 8M; then
        check_contains "hp-bob's refusal comes from polkit" "$LAST_OUT" \
                "uid $bob is not authorized by polkit for org\.hugepaged1\.reserve"
fi
check_status "bob-r does not exist (hugepagectl show: 3)" 3 hugepagectl show bob-r
if check_status "hp-bob may not release alice-r" 1 \
        runuser -u hp-bob -- dbus-send --system --print-reply --dest=org.hugepaged1 /org/hugepaged1 \
        org.hugepaged1.Manager.Release string:alice-r; then
        check_contains "hp-bob's Release fails with AccessDenied" "$LAST_OUT" 'org\.freedesktop\.DBus\.Error\.AccessDenied'
fi
check "alice-r is still there" manager GetReservation s alice-r
check "hp-alice: hugepagectl release alice-r (her own)" runuser -u hp-alice -- hugepagectl release alice-r
check_status "alice-r is gone (hugepagectl show: 3)" 3 hugepagectl show alice-r
check_eq "the 2 MiB pools are back" "$(sum2m)" "$before"

# ---- 6: the sandbox ----
# 3.0, not 2.5: the held reservations' mounts need CAP_SYS_ADMIN and the host's mount namespace (the unit
# says what each point buys; tests/test-units.sh has the same bound).
section "6: systemd-analyze security"
security=$(timeout 120 systemd-analyze security --no-pager hugepaged.service 2>&1)
exposure=$(printf '%s\n' "$security" | sed -n 's/.*Overall exposure level for hugepaged\.service: \([0-9.]*\).*/\1/p')
say "info: $(printf '%s\n' "$security" | grep 'Overall exposure level' | sed 's/^[^O]*//')"
if [ -n "$exposure" ] && awk -v e="$exposure" 'BEGIN { exit !(e <= 3.0) }'; then
        ok "systemd-analyze security hugepaged.service: $exposure <= 3.0"
else
        fail "systemd-analyze security hugepaged.service: '${exposure:-no figure}', expected 3.0 or lower"
        show "$(printf '%s\n' "$security" | tail -n 25)"
fi

# ---- 7: held reservations ----
section "7: held reservations under the real unit"
resv() { cat /sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages; }
# mounts_at PATH: how many mounts sit on PATH in this (the host's) mount namespace.
mounts_at() { awk -v p="$1" '$5 == p' /proc/self/mountinfo | wc -l; }
# stranger_refused HELD: a file on /dev/hugepages asking for one page more than the kernel's available
# count (free - reserved) is refused, while free holds the HELD pages too.
stranger_refused() {
        local free_ resv_ avail rc
        free_=$(free_pages 2048)
        resv_=$(resv)
        avail=$((free_ > resv_ ? free_ - resv_ : 0))
        [ "$free_" -ge $((avail + $1)) ] || { echo "free $free_ < available $avail + held $1"; return 1; }
        fallocate -l $(((avail + 1) * 2))M /dev/hugepages/hp-stranger
        rc=$?
        rm -f /dev/hugepages/hp-stranger
        [ $rc -ne 0 ] || { echo "a stranger got $((avail + 1)) pages (free $free_, resv $resv_)"; return 1; }
}
check_eq "hugepaged runs in the host's mount namespace" "$(readlink "/proc/$(main_pid)/ns/mnt")" \
        "$(readlink /proc/1/ns/mnt)"
resv0=$(resv)
base=$(sum2m)
if check "hugepagectl reserve held-r 64M --page-size=2M --hold" hugepagectl reserve held-r 64M --page-size=2M --hold
then
        out=$(timeout 60 hugepagectl show held-r 2>&1)
        check_contains "hugepagectl show held-r: held at /run/hugepaged/mounts/held-r" "$out" \
                'Held: yes, at /run/hugepaged/mounts/held-r$'
fi
check_eq "held-r: HugePages_Rsvd went up by 32" "$(($(resv) - resv0))" 32
check_eq "held-r: one mount at /run/hugepaged/mounts/held-r, seen by the host" \
        "$(mounts_at /run/hugepaged/mounts/held-r)" 1
check_contains "held-r: it is hugetlbfs with min_size" "$(grep ' /run/hugepaged/mounts/held-r ' /proc/self/mountinfo)" \
        ' - hugetlbfs .*min_size=67108864'
check "held-r: a stranger on /dev/hugepages is refused the held pages" stranger_refused 32
if kill_daemon "held-r:"; then
        check_eq "held-r: after kill -9, still one mount" "$(mounts_at /run/hugepaged/mounts/held-r)" 1
        check_eq "held-r: after kill -9, HugePages_Rsvd still up by 32 (not twice)" "$(($(resv) - resv0))" 32
        check_contains "held-r: after kill -9, Held is true" \
                "$(timeout 60 busctl get-property org.hugepaged1 /org/hugepaged1/reservation/held_2dr \
                        org.hugepaged1.Reservation Held 2>&1)" '^b true$'
        check "held-r: after kill -9, a stranger is still refused" stranger_refused 32
fi
check "hugepagectl release held-r" hugepagectl release held-r
check_eq "held-r: the mount is gone" "$(mounts_at /run/hugepaged/mounts/held-r)" 0
check_eq "held-r: HugePages_Rsvd is back" "$(resv)" "$resv0"
check_eq "held-r: the 2 MiB pools are back" "$(sum2m)" "$base"

check "systemctl start hugepaged-reserve@held.service (Hold=yes)" systemctl start hugepaged-reserve@held.service
check_journal "hugepaged-reserve@held prints its mount" '^held at /run/hugepaged/mounts/held$' \
        -u hugepaged-reserve@held.service
check_eq "held: one mount at /run/hugepaged/mounts/held" "$(mounts_at /run/hugepaged/mounts/held)" 1
check_eq "held: HugePages_Rsvd went up by 4" "$(($(resv) - resv0))" 4
check "systemctl stop hugepaged-reserve@held.service" systemctl stop hugepaged-reserve@held.service
check_eq "held: the mount is gone" "$(mounts_at /run/hugepaged/mounts/held)" 0
check_eq "held: HugePages_Rsvd is back" "$(resv)" "$resv0"

section "done"
finished=yes
