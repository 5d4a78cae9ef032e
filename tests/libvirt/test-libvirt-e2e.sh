#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-libvirt-e2e: the hugepaged qemu hook under a real libvirtd (Debian's libvirt 9, started by hand: no
# systemd here). hugepaged runs on a private dbus-daemon; the hook reaches it through BusAddress= in its
# configuration file, because libvirtd scrubs the environment of hooks. Small TCG guests (<domain type='qemu'>,
# no disk: the firmware alone preallocates) are started, destroyed, killed behind libvirt's back, refused,
# started in pairs, kept running across a libvirtd restart, and one with memory devices (a DIMM with
# <source><pagesize>, one without, a virtio-mem device and <maxMemory> room) started paused, hot-plugged into,
# and destroyed; the 2 MiB pool of the real kernel is checked
# against the baseline it had before at every step, and printed.
# Usage: test-libvirt-e2e.sh HUGEPAGED HOOK HOOK_CONFIG_FILE. Exit 0 pass, 1 fail, 77 skip (not root, or the
# libvirt packages cannot be installed). Everything installed, mounted or started is undone on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=${HUGEPAGED_SOURCE_ROOT:-$(cd "$here/../.." && pwd)}
hugepaged=${1:?usage: $0 HUGEPAGED HOOK HOOK_CONFIG_FILE}
hook=${2:?usage: $0 HUGEPAGED HOOK HOOK_CONFIG_FILE}
hook_conf=${3:?usage: $0 HUGEPAGED HOOK HOOK_CONFIG_FILE}
hook_dir=/etc/libvirt/hooks/qemu.d
hook_dst=$hook_dir/hugepaged
hp=/sys/kernel/mm/hugepages/hugepages-2048kB
guest_mib=64
guest_pages=$((guest_mib / 2))

log() { echo "test-libvirt-e2e: $*"; }
skip() { log "SKIP: $*"; exit 77; }
die() { log "FAIL: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root (it starts libvirtd and changes the kernel's huge page pool)"
[ -d "$hp" ] || skip "no 2 MiB huge pages in this kernel"
if ! command -v libvirtd >/dev/null || ! command -v virtlogd >/dev/null || ! command -v virsh >/dev/null ||
        ! command -v qemu-system-x86_64 >/dev/null; then
        log "libvirt is not installed; installing it with tools/install-deps --test"
        "$src/tools/install-deps" --test || skip "the libvirt packages cannot be installed"
fi
for tool in libvirtd virtlogd virsh qemu-system-x86_64 dbus-daemon busctl; do
        command -v "$tool" >/dev/null || skip "$tool is missing after tools/install-deps --test"
done
[ -e /var/run/libvirt/libvirt-sock ] && pgrep -x libvirtd >/dev/null &&
        die "a libvirtd is already running; this test starts its own"

work=$(mktemp -d /tmp/hugepaged-libvirt.XXXXXX)
mounted_hugetlbfs=
created_hook_dir= created_conf_dir=
hugepaged_pid= bus_pid= libvirtd_pid= virtlogd_pid=
base_nr=$(cat $hp/nr_hugepages)
domains=()

# ---- cleanup: by PID, in reverse order; restores every file it replaced --------------------------------
stop_pid() { # PID NAME
        local pid=$1 i
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
        kill "$pid" 2>/dev/null || true
        kill -CONT "$pid" 2>/dev/null || true
        for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
        log "$2 (pid $pid) did not stop on SIGTERM, killing it"
        kill -9 "$pid" 2>/dev/null || true
}
cleanup() {
        local rc=$? d
        set +e
        for d in "${domains[@]}"; do
                virsh -q destroy "$d" >/dev/null 2>&1
                virsh -q undefine "$d" >/dev/null 2>&1
        done
        stop_pid "$libvirtd_pid" libvirtd
        # Bind mounts of held reservations a failure left (the release hook takes them down otherwise).
        findmnt -rn -t hugetlbfs -o TARGET,SOURCE | awk '$2 == "hugepaged" && $1 ~ /\/libvirt\/qemu\/[0-9]+-hpd-e2e-/ {print $1}' |
                while read -r m; do umount -l "$m"; rmdir "$m"; done
        # A QEMU that outlived libvirtd (a failure in step 8) is stopped by its pid file.
        for d in "${domains[@]}"; do
                [ -s "/run/libvirt/qemu/$d.pid" ] || continue
                p=$(cat "/run/libvirt/qemu/$d.pid")
                [ "$(cat /proc/"$p"/comm 2>/dev/null)" = qemu-system-x86 ] && stop_pid "$p" "QEMU of $d"
        done
        stop_pid "$virtlogd_pid" virtlogd
        # If libvirtd could not undefine them, their persistent definitions go with libvirtd down.
        for d in "${domains[@]}"; do rm -f "/etc/libvirt/qemu/$d.xml" "/etc/libvirt/qemu/autostart/$d.xml"; done
        # Whatever a failure left reserved goes back through hugepaged, which never touches others' pages.
        if [ -n "$hugepaged_pid" ]; then
                for r in $(hpctl --json=short call org.hugepaged1 /org/hugepaged1 org.hugepaged1.Manager \
                                ListReservations 2>/dev/null | python3 -c \
                                'import json,sys; [print(r[0]) for r in json.load(sys.stdin)["data"][0]]'); do
                        hpctl call org.hugepaged1 /org/hugepaged1 org.hugepaged1.Manager Release s "$r"
                done
        fi
        stop_pid "$hugepaged_pid" hugepaged
        stop_pid "$bus_pid" dbus-daemon
        rm -f "$hook_dst"
        [ -e "$work/hook.orig" ] && mv "$work/hook.orig" "$hook_dst"
        [ -n "$created_hook_dir" ] && rmdir "$hook_dir" 2>/dev/null
        rm -f "$hook_conf"
        [ -e "$work/hook.conf.orig" ] && mv "$work/hook.conf.orig" "$hook_conf"
        [ -n "$created_conf_dir" ] && rmdir "$created_conf_dir" 2>/dev/null
        [ -n "$mounted_hugetlbfs" ] && umount "$mounted_hugetlbfs"
        if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
                log "---- hugepaged log"; cat "$work/hugepaged.log" 2>/dev/null
                log "---- libvirtd log (tail)"; tail -n 40 "$work/libvirtd.log" 2>/dev/null
        fi
        rm -rf "$work"
        exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- helpers --------------------------------------------------------------------------------------------
# Nothing may hang: a stuck libvirtd fails the test in time for the cleanup to run.
virsh_bin=$(command -v virsh)
virsh() { timeout 120 "$virsh_bin" "$@"; }
pool() { # "nr free surplus" of the 2 MiB pool
        echo "$(cat $hp/nr_hugepages) $(cat $hp/free_hugepages) $(cat $hp/surplus_hugepages)"
}
hp_totals() { # "reserved floor" of hugepaged's all-node 2 MiB pool
        hpctl --json=short call org.hugepaged1 /org/hugepaged1 org.hugepaged1.Manager ListPools | python3 -c '
import json, sys
for p in json.load(sys.stdin)["data"][0]:
    if p[0] == 2097152 and p[1] == -1:
        print(p[5], p[6])'
}
show() { # STEP
        read -r nr free surplus <<<"$(pool)"
        read -r reserved floor <<<"$(hp_totals)"
        log "[$1] 2 MiB pool: nr_hugepages=$nr (baseline $base_nr, delta $((nr - base_nr))) free=$free" \
                "surplus=$surplus; hugepaged: reserved=$reserved floor=$floor"
}
hpctl() { DBUS_SYSTEM_BUS_ADDRESS=$bus_address busctl --system "$@"; }
reservation_prop() { # UUID PROPERTY -> value, or nothing if there is no such reservation
        local path
        path=$(hpctl call org.hugepaged1 /org/hugepaged1 org.hugepaged1.Manager GetReservation s "$1" 2>/dev/null |
                awk '{print $2}' | tr -d '"') || return 0
        [ -n "$path" ] || return 0
        hpctl get-property org.hugepaged1 "$path" org.hugepaged1.Reservation "$2" | cut -d' ' -f2- | tr -d '"'
}
wait_for() { # SECONDS DESCRIPTION COMMAND...
        local t=$1 what=$2 i
        shift 2
        for i in $(seq $((t * 5))); do "$@" && return 0; sleep 0.2; done
        die "timed out after ${t}s waiting for: $what"
}
# The pool holds exactly what hugepaged reserved for the guests on top of its Floor. The Floor is the baseline; it
# moves only if someone outside the test changes the pool (hugepaged adopts that), which the log then says.
nr_is() { # EXPECTED_NR
        local reserved floor
        read -r reserved floor <<<"$(hp_totals)"
        [ "$floor" != "$base_nr" ] && ! [ "$floor_warned" = "$floor" ] && {
                log "note: the pool's Floor is $floor, not $base_nr: someone outside this test changed the pool"
                floor_warned=$floor
        }
        [ "$(cat $hp/surplus_hugepages)" = 0 ] && [ "$reserved" = $(($1 - base_nr)) ] &&
                [ "$(cat $hp/nr_hugepages)" = $((floor + $1 - base_nr)) ]
}
floor_warned=
expect_nr() { # STEP EXPECTED
        wait_for 30 "nr_hugepages = $2 with no surplus ($1)" nr_is "$2"
        show "$1"
}
qemu_pid() { cat "/run/libvirt/qemu/$1.pid"; }
expect_bound() { # DOMAIN [PAGES]
        local uuid pid lt rpid pages want=${2:-$guest_pages}
        uuid=$(virsh domuuid "$1" | sed -n 1p)
        pid=$(qemu_pid "$1")
        lt=$(reservation_prop "$uuid" Lifetime)
        rpid=$(reservation_prop "$uuid" PID)
        pages=$(reservation_prop "$uuid" Pages)
        log "    reservation $uuid: lifetime=$lt pid=$rpid pages=$pages; QEMU of $1 is pid $pid"
        [ "$lt" = pid ] && [ "$rpid" = "$pid" ] && [ "$pages" = "$want" ] ||
                die "reservation of $1 is not $want pages bound to QEMU pid $pid"
        [ "$(cat /proc/"$pid"/comm)" = qemu-system-x86 ] || die "pid $pid is not QEMU"
}
expect_no_reservation() { # UUID
        [ -z "$(reservation_prop "$1" Name)" ] || die "reservation $1 is still there"
}
uuid_of() { virsh domuuid "$1" | sed -n 1p; }
define() { # NAME MEMORY_MIB [MORE_DOMAIN_XML [MORE_DEVICES_XML]]
        cat > "$work/$1.xml" <<XML
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>$2</memory>
  <memoryBacking>
    <hugepages/>
  </memoryBacking>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>${3:-}
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$(command -v qemu-system-x86_64)</emulator>
    <memballoon model='none'/>${4:-}
  </devices>
</domain>
XML
        domains+=("$1")
        virsh -q define "$work/$1.xml" >/dev/null
}
start_libvirtd() {
        # An environment we control: libvirtd passes none of it to hooks anyway.
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C \
                libvirtd -d -p "$work/libvirtd.pid" >>"$work/libvirtd.log" 2>&1
        wait_for 30 "libvirtd's pid file" test -s "$work/libvirtd.pid"
        libvirtd_pid=$(cat "$work/libvirtd.pid")
        wait_for 30 "libvirtd to answer" virsh -q version
}

# ---- 1. set up: hugetlbfs, hugepaged on a private bus, the hook, virtlogd, libvirtd ------------------------
if ! grep -q '^[^ ]* [^ ]* hugetlbfs ' /proc/mounts; then
        mkdir -p /dev/hugepages
        mount -t hugetlbfs -o pagesize=2M hugetlbfs /dev/hugepages
        mounted_hugetlbfs=/dev/hugepages
fi

cat > "$work/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$work/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>$src/dbus/org.hugepaged1.conf</include>
</busconfig>
CONF
dbus-daemon --config-file="$work/bus.conf" --fork --print-pid >"$work/bus.pid"
bus_pid=$(cat "$work/bus.pid")
bus_address=unix:path=$work/system_bus_socket

mkdir -p "$work/state"
printf '[Daemon]\nRefreshIntervalSec=1\n' > "$work/hugepaged.conf"
DBUS_SYSTEM_BUS_ADDRESS=$bus_address "$hugepaged" --state-dir="$work/state" --config="$work/hugepaged.conf" \
        --log-level=debug >"$work/hugepaged.log" 2>&1 &
hugepaged_pid=$!
wait_for 30 "hugepaged on the bus" hpctl status org.hugepaged1 >/dev/null 2>&1

[ -d "$hook_dir" ] || { mkdir -p "$hook_dir"; created_hook_dir=1; }
[ -e "$hook_dst" ] && mv "$hook_dst" "$work/hook.orig"
install -m 0755 "$hook" "$hook_dst"
[ -d "$(dirname "$hook_conf")" ] || { mkdir -p "$(dirname "$hook_conf")"; created_conf_dir=$(dirname "$hook_conf"); }
[ -e "$hook_conf" ] && mv "$hook_conf" "$work/hook.conf.orig"
printf '[Hook]\nBusAddress=%s\nTimeoutSec=120\n' "$bus_address" > "$hook_conf"
log "hook $hook_dst, configuration $hook_conf: BusAddress=$bus_address"

env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin virtlogd -d -p "$work/virtlogd.pid"
wait_for 30 "virtlogd's pid file" test -s "$work/virtlogd.pid"
virtlogd_pid=$(cat "$work/virtlogd.pid")
start_libvirtd
show "baseline"
# Guests of this test left by an earlier run that was killed before it could clean up.
for d in hpd-e2e-a hpd-e2e-b hpd-e2e-huge hpd-e2e-dimm hpd-e2e-held; do
        virsh -q destroy "$d" >/dev/null 2>&1 || true
        virsh -q undefine "$d" >/dev/null 2>&1 || true
done

# ---- 2. define the guests ----------------------------------------------------------------------------------
define hpd-e2e-a $guest_mib
define hpd-e2e-b $guest_mib
mem_total_mib=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
define hpd-e2e-huge $((mem_total_mib * 2))

# ---- 3. start: the pool grows by exactly the guest's pages, bound to QEMU ------------------------------------
virsh start hpd-e2e-a
expect_nr "3 started hpd-e2e-a" $((base_nr + guest_pages))
expect_bound hpd-e2e-a

# ---- 4. destroy: the pool is back exactly ------------------------------------------------------------------
virsh destroy hpd-e2e-a
expect_nr "4 destroyed hpd-e2e-a" "$base_nr"
expect_no_reservation "$(uuid_of hpd-e2e-a)"

# ---- 5. SIGKILL QEMU behind libvirt's back: the pid binding brings the pages back ---------------------------
virsh start hpd-e2e-a
expect_nr "5 started hpd-e2e-a again" $((base_nr + guest_pages))
expect_bound hpd-e2e-a
pid=$(qemu_pid hpd-e2e-a)
uuid_a=$(uuid_of hpd-e2e-a)
# libvirtd is frozen, so no release hook can run: only hugepaged's pidfd sees QEMU go.
kill -STOP "$libvirtd_pid"
kill -9 "$pid"
wait_for 30 "hugepaged to release hpd-e2e-a after QEMU died" nr_is "$base_nr"
show "5 SIGKILLed QEMU $pid, libvirtd stopped"
expect_no_reservation "$uuid_a"
grep -q "process $pid of reservation .* exited, releasing it" "$work/hugepaged.log" ||
        die "hugepaged's log does not say that QEMU's exit released the reservation"
kill -CONT "$libvirtd_pid"
wait_for 30 "libvirt to notice hpd-e2e-a is gone" sh -c '[ "$(virsh domstate hpd-e2e-a)" = "shut off" ]'
show "5 libvirtd continued"
nr_is "$base_nr" || die "the pool changed when libvirt caught up"

# ---- 6. a guest bigger than the host fails to start, with the hook's line ------------------------------------
if virsh start hpd-e2e-huge >"$work/huge.out" 2>&1; then
        die "a guest of $((mem_total_mib * 2)) MiB started"
fi
log "virsh start hpd-e2e-huge failed as it should:"
sed 's/^/    /' "$work/huge.out"
grep -q "hugepaged: cannot reserve .* of 2 MiB pages: " "$work/huge.out" || die "virsh does not show the hook's line"
expect_nr "6 refused hpd-e2e-huge" "$base_nr"

# ---- 7. two guests started at the same moment both get their pages ------------------------------------------
virsh start hpd-e2e-a >"$work/a.out" 2>&1 & a=$!
virsh start hpd-e2e-b >"$work/b.out" 2>&1 & b=$!
wait $a || { cat "$work/a.out"; die "hpd-e2e-a did not start"; }
wait $b || { cat "$work/b.out"; die "hpd-e2e-b did not start"; }
expect_nr "7 started hpd-e2e-a and hpd-e2e-b together" $((base_nr + 2 * guest_pages))
expect_bound hpd-e2e-a
expect_bound hpd-e2e-b
virsh destroy hpd-e2e-b
expect_nr "7 destroyed hpd-e2e-b" $((base_nr + guest_pages))
expect_no_reservation "$(uuid_of hpd-e2e-b)"

# ---- 8. restart libvirtd while hpd-e2e-a runs: reconnect leaves the reservation correct -----------------------
pid=$(qemu_pid hpd-e2e-a)
stop_pid "$libvirtd_pid" libvirtd
libvirtd_pid=
# While libvirtd is away, lose the reservation, as an operator's mistake would: reconnect must repair it.
hpctl call org.hugepaged1 /org/hugepaged1 org.hugepaged1.Manager Release s "$uuid_a"
show "8 libvirtd stopped, reservation released by hand (QEMU's pages are surplus now)"
start_libvirtd
wait_for 60 "libvirtd to reconnect to hpd-e2e-a" sh -c '[ "$(virsh domstate hpd-e2e-a)" = running ]'
expect_nr "8 libvirtd restarted" $((base_nr + guest_pages))
expect_bound hpd-e2e-a
[ "$(qemu_pid hpd-e2e-a)" = "$pid" ] || die "QEMU was restarted"
# And a restart with nothing to repair changes nothing.
stop_pid "$libvirtd_pid" libvirtd
start_libvirtd
wait_for 60 "libvirtd to reconnect to hpd-e2e-a" sh -c '[ "$(virsh domstate hpd-e2e-a)" = running ]'
expect_nr "8 libvirtd restarted again" $((base_nr + guest_pages))
expect_bound hpd-e2e-a
virsh destroy hpd-e2e-a
expect_nr "8 destroyed hpd-e2e-a" "$base_nr"
expect_no_reservation "$uuid_a"

# ---- 9. memory devices: cell + DIMMs + virtio-mem + <maxMemory> room, exactly, then all released ------------
# 64 MiB in the cell, a 32 MiB DIMM with <source><pagesize> 2 MiB, a 16 MiB DIMM without <source> (libvirt backs
# it with the cell's huge pages because of <memoryBacking><hugepages/>), a virtio-mem device of 32 MiB of which
# the guest requests none yet, and 16 MiB of <maxMemory> room for a DIMM attached later. QEMU plugs DIMMs only
# with ACPI, and every device, virtio-mem too, takes one of <maxMemory>'s slots.
cell_mib=64 dimm1_mib=32 dimm2_mib=16 vmem_mib=32 room_mib=16
dimm_pages=$(((cell_mib + dimm1_mib + dimm2_mib + vmem_mib + room_mib) / 2))
define hpd-e2e-dimm $((cell_mib + dimm1_mib + dimm2_mib + vmem_mib)) "
  <maxMemory slots='4' unit='MiB'>$((cell_mib + dimm1_mib + dimm2_mib + vmem_mib + room_mib))</maxMemory>
  <features>
    <acpi/>
  </features>
  <cpu>
    <numa>
      <cell id='0' cpus='0' memory='$cell_mib' unit='MiB'/>
    </numa>
  </cpu>" "
    <memory model='dimm'>
      <source><pagesize unit='KiB'>2048</pagesize></source>
      <target><size unit='MiB'>$dimm1_mib</size><node>0</node></target>
    </memory>
    <memory model='dimm'>
      <target><size unit='MiB'>$dimm2_mib</size><node>0</node></target>
    </memory>
    <memory model='virtio-mem'>
      <target><size unit='MiB'>$vmem_mib</size><node>0</node><block unit='MiB'>2</block><requested unit='MiB'>0</requested></target>
    </memory>"
# Paused: the firmware need not run, QEMU has mapped (and preallocated) its memory when start returns.
virsh start --paused hpd-e2e-dimm
expect_nr "9 started hpd-e2e-dimm paused" $((base_nr + dimm_pages))
expect_bound hpd-e2e-dimm "$dimm_pages"
pid=$(qemu_pid hpd-e2e-dimm)
uuid_dimm=$(uuid_of hpd-e2e-dimm)
# QEMU really maps huge pages for every device: its backends are on hugetlbfs, the DIMM without <source> too.
tr '\0' ' ' <"/proc/$pid/cmdline" | grep -o '"qom-type":"memory-backend[^}]*}' | sed 's/^/    /' >"$work/backends"
cat "$work/backends"
[ "$(grep -c 'mem-path":"/dev/hugepages' "$work/backends")" = 4 ] ||
        die "QEMU of hpd-e2e-dimm does not back the cell, both DIMMs and virtio-mem with 2 MiB huge pages"
# The <maxMemory> room: a DIMM attached now (no hook runs) finds its pages, and the pool does not change.
cat > "$work/dimm3.xml" <<XML
<memory model='dimm'>
  <target><size unit='MiB'>$room_mib</size><node>0</node></target>
</memory>
XML
virsh attach-device hpd-e2e-dimm "$work/dimm3.xml" --live ||
        die "a DIMM of $room_mib MiB could not be attached into the <maxMemory> room"
expect_nr "9 attached a $room_mib MiB DIMM into the room" $((base_nr + dimm_pages))
expect_bound hpd-e2e-dimm "$dimm_pages"
virsh destroy hpd-e2e-dimm
expect_nr "9 destroyed hpd-e2e-dimm" "$base_nr"
expect_no_reservation "$uuid_dimm"

# ---- 10. Hold=yes: the guest runs on kernel-held pages, bind-mounted where libvirt puts its hugepage files ----
# The hook reserves with hold; hugepaged mounts a hugetlbfs with min_size of the reservation; the hook binds it on
# <2 MiB hugetlbfs mount>/libvirt/qemu/<id>-<name> before libvirt makes that directory, and libvirt leaves an
# existing directory as it is: QEMU's memory-backend-file is created in the held mount and preallocated from it.
printf '[Hook]\nBusAddress=%s\nTimeoutSec=120\nHold=yes\n' "$bus_address" > "$hook_conf"
define hpd-e2e-held $guest_mib
uuid_held=$(uuid_of hpd-e2e-held)
virsh start --paused hpd-e2e-held
expect_nr "10 started hpd-e2e-held paused, held" $((base_nr + guest_pages))
expect_bound hpd-e2e-held
pid=$(qemu_pid hpd-e2e-held)
id=$(virsh domid hpd-e2e-held | sed -n 1p)
held_mount=$(reservation_prop "$uuid_held" MountPath)
[ -n "$held_mount" ] || die "the reservation of hpd-e2e-held is not held (no MountPath)"
lv_mnt=$(findmnt -rn -t hugetlbfs -o TARGET,SOURCE,OPTIONS | awk '$2 != "hugepaged" && $3 ~ /pagesize=2M/ {print $1; exit}')
held_dir=$lv_mnt/libvirt/qemu/$id-hpd-e2e-held
findmnt -n -o TARGET,SOURCE,FSTYPE,OPTIONS "$held_dir" | sed 's/^/    /'
findmnt -n -o OPTIONS "$held_dir" | grep -q "min_size=$((guest_mib << 20))" ||
        die "no held hugetlbfs (min_size=$guest_mib MiB) is mounted on $held_dir"
tr '\0' ' ' <"/proc/$pid/cmdline" | grep -o '"qom-type":"memory-backend[^}]*}' | sed 's/^/    /' >"$work/backends"
cat "$work/backends"
grep -q "mem-path\":\"$held_dir\"" "$work/backends" || die "QEMU of hpd-e2e-held does not use $held_dir"
# The held mount's own count: all its pages are QEMU's (statfs: total and free 2 MiB blocks).
read -r blocks bfree <<<"$(stat -f -c '%b %f' "$held_dir")"
log "    held mount $held_mount bound on $held_dir: $blocks pages, $bfree free;" \
        "owner $(stat -c %U:%G "$held_dir"); kernel: $(grep -E '^HugePages_(Free|Rsvd)' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"
[ "$blocks" = "$guest_pages" ] && [ "$bfree" = 0 ] ||
        die "QEMU did not fault its $guest_pages pages in the held mount ($bfree of $blocks free)"
virsh destroy hpd-e2e-held
expect_nr "10 destroyed hpd-e2e-held" "$base_nr"
expect_no_reservation "$uuid_held"
! findmnt -n "$held_dir" >/dev/null || die "the held mount is still bound on $held_dir"
! findmnt -n "$held_mount" >/dev/null || die "hugepaged's held mount $held_mount is still mounted"
[ ! -e "$held_dir" ] || die "$held_dir is left behind"

log "PASS"
