#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-qemu-numa: hugepaged on a real multi-node kernel. Boots a Debian kernel under QEMU (TCG: KVM guests
# hang on the CI machines) with two nodes that have memory and one node (2) with a CPU but none, runs
# hugepaged, dbus-daemon and busctl from a small initramfs (guest-init.sh is its /init), and hot-plugs a
# pc-dimm into node 2 over QMP when the guest asks for it. The guest checks per-node counts and D-Bus
# objects and prints them; this side boots, hot-plugs, and turns the guest's verdict into the exit code.
# Usage: test-qemu-numa.sh HUGEPAGED_BINARY. Exit 0 pass, 1 fail, 77 skip (no QEMU or no kernel package).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=${HUGEPAGED_SOURCE_ROOT:-$(cd "$here/../.." && pwd)}
build=${HUGEPAGED_BUILD_ROOT:-$PWD}
hugepaged=${1:?usage: $0 HUGEPAGED_BINARY}
cache=${HUGEPAGED_QEMU_CACHE:-$build/tests/qemu/cache}
boot_timeout=${HUGEPAGED_QEMU_BOOT_TIMEOUT:-420}  # until the guest asks for the hot-plug
done_timeout=${HUGEPAGED_QEMU_DONE_TIMEOUT:-360}  # from then until it powers off

log() { echo "test-qemu-numa: $*"; }
skip() { log "SKIP: $*"; exit 77; }
die() { log "FAIL: $*"; exit 1; }

qemu=$(command -v qemu-system-x86_64 || true)
[ -n "$qemu" ] || skip "qemu-system-x86_64 not found (tools/install-deps --test installs qemu-system-x86)"
busybox=$(command -v busybox || echo /bin/busybox)
[ -x "$busybox" ] || skip "busybox not found (tools/install-deps --test installs busybox-static)"
[ -x "$hugepaged" ] || die "no hugepaged binary at $hugepaged"
for tool in dbus-daemon busctl ldd cpio gzip dpkg-deb apt-get apt-cache; do
        command -v "$tool" >/dev/null || die "$tool not found: run tools/install-deps --test"
done
pyqmp=/usr/bin/python3 # the system interpreter, whatever python3 is first on PATH
[ -x "$pyqmp" ] || die "$pyqmp not found: run tools/install-deps --test"

# shellcheck source=../lib/vm-scratch.sh
. "$src/tests/lib/vm-scratch.sh"
vm_scratch hugepaged-qemu

# ---- the kernel: Debian's, unpacked into the build dir, never installed on the host ----
kernel_package() {
        apt-cache depends linux-image-amd64 2>/dev/null |
                sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1
}
refresh_lists() {
        [ "$(id -u)" -eq 0 ] || return 1
        log "refreshing apt's package lists"
        apt-get update -qq >/dev/null 2>&1
}
pkg=$(kernel_package)
if [ -z "$pkg" ]; then
        refresh_lists || true
        pkg=$(kernel_package)
fi
[ -n "$pkg" ] || skip "apt knows no linux-image-amd64 package"
kdir=$cache/$pkg
# Two runs sharing a build directory (a developer's and CI's, or parallel setups) must not unpack over
# each other: hold a lock while the cache is filled.
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ ! -e "$kdir/.complete" ]; then
        rm -rf "$kdir"
        mkdir -p "$kdir/deb"
        log "downloading $pkg into $kdir"
        if ! (cd "$kdir/deb" && apt-get download -q "$pkg" >/dev/null 2>&1); then
                refresh_lists || true
                (cd "$kdir/deb" && apt-get download -q "$pkg" >/dev/null 2>&1) ||
                        { rm -rf "$kdir"; skip "cannot download $pkg"; }
        fi
        # Only boot/: the features this test needs are built in, so the 400 MB of modules stay packed.
        dpkg-deb --fsys-tarfile "$kdir"/deb/*.deb | tar -x -C "$kdir" ./boot 2>/dev/null || true
        rm -rf "$kdir/deb"
        ls "$kdir"/boot/vmlinuz-* >/dev/null 2>&1 || die "no boot/vmlinuz-* in $pkg"
        touch "$kdir/.complete"
fi
flock -u 9
vmlinuz=$(ls "$kdir"/boot/vmlinuz-* | head -n 1)
kconfig=$(ls "$kdir"/boot/config-* | head -n 1)
for opt in NUMA ACPI_NUMA MEMORY_HOTPLUG ACPI_HOTPLUG_MEMORY HUGETLBFS DEVTMPFS BLK_DEV_INITRD RD_GZIP \
           SERIAL_8250_CONSOLE UNIX; do
        grep -qx "CONFIG_$opt=y" "$kconfig" || die "$pkg is not built with CONFIG_$opt=y, which this test needs"
done
log "kernel: $vmlinuz"

# ---- the initramfs ----
root=$work/initramfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/dbus-1/system.d,proc,sys,dev,run,tmp,root}
# install_bin SOURCE DEST: the binary and every shared library ldd lists for it, loader included.
install_bin() {
        cp -L "$1" "$root$2"
        local lib
        for lib in $(ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
                [ -e "$root$lib" ] && continue
                mkdir -p "$root$(dirname "$lib")"
                cp -L "$lib" "$root$lib"
        done
}
install_bin "$busybox" /bin/busybox
install_bin "$hugepaged" /usr/sbin/hugepaged
install_bin "$(command -v dbus-daemon)" /usr/bin/dbus-daemon
install_bin "$(command -v busctl)" /usr/bin/busctl
install -m 0755 "$here/guest-init.sh" "$root/init"
cp "$src/dbus/org.hugepaged1.conf" "$root/etc/dbus-1/system.d/"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
printf 'passwd: files\ngroup: files\n' >"$root/etc/nsswitch.conf"
cat >"$root/etc/dbus-1/system.conf" <<'CONF'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
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
  <includedir>system.d</includedir>
</busconfig>
CONF
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$work/initrd.gz"
log "initramfs: $(du -h "$work/initrd.gz" | cut -f1)"

# ---- boot ----
console=$work/console.log
qmp=$work/qmp.sock
: >"$console"
"$qemu" -accel tcg -nodefaults -display none -no-reboot \
        -m 2G,slots=4,maxmem=6G -smp 3 \
        -object memory-backend-ram,id=m0,size=1G -object memory-backend-ram,id=m1,size=1G \
        -numa node,nodeid=0,cpus=0,memdev=m0 \
        -numa node,nodeid=1,cpus=1,memdev=m1 \
        -numa node,nodeid=2,cpus=2 \
        -kernel "$vmlinuz" -initrd "$work/initrd.gz" \
        -append "console=ttyS0 memhp_default_state=online panic=-1 quiet rdinit=/init" \
        -serial "file:$console" -qmp "unix:$qmp,server=on,wait=off" \
        >"$work/qemu.log" 2>&1 &
qemu_pid=$!
log "QEMU started (pid $qemu_pid)"
start=$SECONDS

# wait_console PATTERN SECONDS: until the console shows PATTERN; fails if QEMU exits or time runs out.
wait_console() {
        local deadline=$((SECONDS + $2))
        while [ $SECONDS -lt $deadline ]; do
                grep -q "$1" "$console" && return 0
                kill -0 "$qemu_pid" 2>/dev/null || return 1
                sleep 1
        done
        return 1
}

status=0
failed_step=
if wait_console '^READY_FOR_HOTPLUG' "$boot_timeout"; then
        log "guest ready for the hot-plug after $((SECONDS - start)) s; adding 512 MiB to node 2"
        if ! "$pyqmp" "$here/qmp.py" "$qmp" \
                '{"execute": "object-add", "arguments": {"qom-type": "memory-backend-ram", "id": "hp0", "size": 536870912}}' \
                '{"execute": "device_add", "arguments": {"driver": "pc-dimm", "id": "dimm0", "memdev": "hp0", "node": 2}}'; then
                failed_step="host: QMP hot-plug of pc-dimm into node 2"
        fi
else
        grep -q '^DONE' "$console" || failed_step="host: guest did not reach READY_FOR_HOTPLUG within ${boot_timeout} s"
fi

deadline=$((SECONDS + done_timeout))
while kill -0 "$qemu_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
        sleep 1
done
if kill -0 "$qemu_pid" 2>/dev/null; then
        [ -n "$failed_step" ] || failed_step="host: guest did not power off within ${done_timeout} s of the hot-plug"
        kill "$qemu_pid" 2>/dev/null || true
fi
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=
log "QEMU ran for $((SECONDS - start)) s"

echo "==== guest console ===="
tr -d '\r' <"$console"
echo "==== end of guest console ===="
if [ -s "$work/qemu.log" ]; then
        echo "==== QEMU stderr ===="
        cat "$work/qemu.log"
fi

echo "==== per-node 2 MiB page counts seen by the guest ===="
tr -d '\r' <"$console" | grep '^COUNTS ' || echo "(none)"
if tr -d '\r' <"$console" | grep -q '^FAIL '; then
        echo "==== failed checks ===="
        tr -d '\r' <"$console" | grep '^FAIL '
        status=1
fi
if [ -n "$failed_step" ]; then
        log "FAIL: $failed_step"
        status=1
fi
if ! tr -d '\r' <"$console" | grep -q '^DONE status=pass'; then
        log "FAIL: the guest did not report DONE status=pass"
        status=1
fi
[ $status -eq 0 ] && log "PASS: $(tr -d '\r' <"$console" | grep -c '^CHECK .*=ok') checks"
exit $status
