#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-host: hugepaged installed on a booted Debian 12 systemd host, as the README's "Installing it on a
# systemd host" says. Builds a bookworm root file system with mmdebstrap (cached between runs, keyed by its
# package list), installs the project into it with `meson install` from a build of its own (--prefix=/usr
# -Dtests=false), adds the files in overlay/ and probe.sh, makes an ext4 image of it and boots the root file
# system's own kernel and initrd under QEMU (TCG: KVM guests hang on the CI machines) with two NUMA nodes.
# probe.sh runs as a oneshot unit after multi-user.target, prints "PROBE ok: ...", "PROBE FAIL: ..." and
# "PROBE RESULT: PASS|FAIL" on the serial console and powers off; this side turns that into the exit code.
#
# Usage: test-host.sh MODE, where MODE is
#   dbus-daemon   the system bus is dbus-daemon;
#   dbus-broker   the system bus is dbus-broker;
#   boot-1g       dbus-daemon, plus one 1 GiB page per node set aside on the kernel command line
#                 (hugepagesz=1G hugepages=0:1,1:1) and "[Pool 1G] Adopt=spare" in hugepaged.conf.
# Exit 0 pass, 1 fail, 77 skip (not root, or no QEMU, mmdebstrap, mkfs.ext4 or Debian packages to be had).
#
# Environment: HUGEPAGED_HOST_CACHE (default /var/cache/hugepaged-tests/host) keeps the root file system
# tarball; HUGEPAGED_HOST_MIRROR (default http://deb.debian.org) is the Debian mirror;
# HUGEPAGED_HOST_BOOT_TIMEOUT (default 600) bounds one boot, probe included, in seconds;
# HUGEPAGED_HOST_KERNEL_ARGS are added to the kernel command line; HUGEPAGED_HOST_VERBOSE=1 prints the whole
# console even when the test passes.
set -Eeuo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=${HUGEPAGED_SOURCE_ROOT:-$(cd "$here/../.." && pwd)}
mode=${1:?usage: $0 dbus-daemon|dbus-broker|boot-1g}
cache=${HUGEPAGED_HOST_CACHE:-/var/cache/hugepaged-tests/host}
mirror=${HUGEPAGED_HOST_MIRROR:-http://deb.debian.org}
boot_timeout=${HUGEPAGED_HOST_BOOT_TIMEOUT:-600}

log() { echo "test-host[$mode]: $*"; }
skip() { log "SKIP: $*"; exit 77; }
die() { log "FAIL: $*"; exit 1; }

case $mode in
dbus-daemon | dbus-broker | boot-1g) ;;
*) die "unknown mode '$mode' (dbus-daemon, dbus-broker or boot-1g)" ;;
esac

# ---- prerequisites ----
[ "$(id -u)" -eq 0 ] || skip "needs root: the root file system's files belong to root and other users"
qemu=$(command -v qemu-system-x86_64 || true)
[ -n "$qemu" ] || skip "qemu-system-x86_64 not found (tools/install-deps --test installs qemu-system-x86)"
command -v mmdebstrap >/dev/null || skip "mmdebstrap not found (tools/install-deps --test installs it)"
command -v mkfs.ext4 >/dev/null || skip "mkfs.ext4 not found (tools/install-deps --test installs e2fsprogs)"
for tool in meson ninja ldd dpkg-query flock tar sha256sum truncate; do
        command -v "$tool" >/dev/null || die "$tool not found: run tools/install-deps --test"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/hugepaged-host.XXXXXX")
qemu_pid=
cleanup() {
        if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
                kill "$qemu_pid" 2>/dev/null || true
                sleep 1
                kill -9 "$qemu_pid" 2>/dev/null || true
        fi
        rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
trap 'log "FAIL: line $LINENO: a command failed"; exit 1' ERR
t0=$SECONDS

# ---- the project, built as the README installs it ----
# A build directory of its own (the test's build has -Dtests=true and its own prefix). Under meson test it
# lives in the test's build tree, so the three modes share it and only the first compiles; run by hand, it is
# a scratch directory. The lock keeps two runs from building in it at once.
if [ -n "${HUGEPAGED_BUILD_ROOT:-}" ]; then
        pbuild=$HUGEPAGED_BUILD_ROOT/tests/host/install-build
else
        pbuild=$work/install-build
fi
mkdir -p "$(dirname "$pbuild")"
exec 8>"$pbuild.lock"
flock 8
if [ ! -e "$pbuild/build.ninja" ]; then
        rm -rf "$pbuild"
        meson setup "$pbuild" "$src" --prefix=/usr -Dtests=false >"$work/meson-setup.log" 2>&1 ||
                { cat "$work/meson-setup.log"; die "meson setup --prefix=/usr -Dtests=false failed"; }
fi
ninja -C "$pbuild" >"$work/ninja.log" 2>&1 || { cat "$work/ninja.log"; die "ninja -C $pbuild failed"; }
# Staged once here to read the binaries' libraries; the image gets its own meson install below.
DESTDIR=$work/staged meson install -C "$pbuild" --quiet >"$work/install.log" 2>&1 ||
        { cat "$work/install.log"; die "meson install failed"; }
flock -u 8
log "project built in $pbuild ($((SECONDS - t0)) s)"

# ---- the root file system: Debian 12 with systemd, both buses, polkit and a kernel ----
# The runtime libraries of the installed binaries, as Debian packages: the host is Debian 12 too, so the
# packages that hold the host's libraries are the ones the guest needs.
lib_packages() {
        local bin lib p
        for bin in "$work"/staged/usr/sbin/* "$work"/staged/usr/bin/* "$work"/staged/usr/libexec/*; do
                [ -f "$bin" ] && [ -x "$bin" ] || continue
                # Scripts are not dynamic executables: ldd fails on them, and they have no libraries.
                ldd "$bin" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' || true
        done | sort -u >"$work/libs"
        while read -r lib; do
                # bookworm's packages ship libraries under /lib or /usr/lib; ldd may name either.
                p=$(dpkg-query -S "$lib" 2>/dev/null || dpkg-query -S "/usr$lib" 2>/dev/null ||
                    dpkg-query -S "${lib#/usr}" 2>/dev/null) || die "no Debian package holds $lib"
                echo "${p%%:*}" >>"$work/lib-packages"
        done <"$work/libs"
}
: >"$work/lib-packages"
lib_packages
libs=$(sort -u "$work/lib-packages" | tr '\n' ' ')
[ -n "$libs" ] || die "found no libraries for the installed binaries"
# What the probe uses beyond the libraries: both buses, polkit, useradd, a kernel and an initramfs.
base="systemd systemd-sysv udev dbus dbus-broker polkitd passwd kmod linux-image-amd64 initramfs-tools"
# shellcheck disable=SC2086 # word lists, split on purpose
packages=$(printf '%s\n' $base $libs | sort -u | tr '\n' ',' | sed 's/,$//')
# The initramfs only needs to find an ext4 root on virtio: with every module (MODULES=most) it is 36 MB, and
# unpacking and probing that under TCG costs about a minute of each boot.
initramfs_hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d" &&
        printf "MODULES=list\n" >"$1/etc/initramfs-tools/conf.d/hugepaged-test" &&
        printf "virtio_pci\nvirtio_blk\next4\ncrc32c_generic\n" >"$1/usr/share/initramfs-tools/modules.d/hugepaged-test"'
mm_args=(--variant=apt --format=tar --include="$packages" --essential-hook="$initramfs_hook"
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*'
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*'
        bookworm)
mm_mirrors=("deb $mirror/debian bookworm main" "deb $mirror/debian bookworm-updates main"
        "deb $mirror/debian-security bookworm-security main")
key=$(printf '%s\n' "${mm_args[@]}" "${mm_mirrors[@]}" | sha256sum | cut -c1-16)
tarball=$cache/rootfs-$key.tar
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ ! -e "$tarball.complete" ] || [ ! -e "$tarball" ]; then
        log "building the root file system with mmdebstrap (packages: $packages)"
        rm -f "$tarball" "$tarball.partial"
        t1=$SECONDS
        if ! mmdebstrap "${mm_args[@]}" "$tarball.partial" "${mm_mirrors[@]}" >"$work/mmdebstrap.log" 2>&1; then
                rm -f "$tarball.partial"
                tail -n 30 "$work/mmdebstrap.log"
                # Only a mirror that can't be reached, or packages it doesn't have, is a reason to skip.
                if grep -qE 'Temporary failure resolving|Could not resolve|Failed to fetch|Unable to connect|Unable to locate package|has no installation candidate' \
                        "$work/mmdebstrap.log"; then
                        skip "mmdebstrap cannot get the Debian packages from $mirror"
                fi
                die "mmdebstrap failed"
        fi
        mv "$tarball.partial" "$tarball"
        sync "$tarball"
        touch "$tarball.complete"
        # Root file systems of other package lists are of no further use.
        for old in "$cache"/rootfs-*.tar; do
                [ "$old" = "$tarball" ] || rm -f "$old" "$old.complete"
        done
        log "root file system built in $((SECONDS - t1)) s: $tarball ($(du -h "$tarball" | cut -f1))"
else
        log "root file system from the cache: $tarball"
fi
flock -u 9

# ---- the image: the cached tree, the project, the probe and this mode's configuration ----
root=$work/root
mkdir -p "$root"
tar -xpf "$tarball" -C "$root" --numeric-owner
flock 8
DESTDIR=$root meson install -C "$pbuild" --quiet >"$work/install.log" 2>&1 ||
        { cat "$work/install.log"; die "DESTDIR=$root meson install -C $pbuild failed"; }
flock -u 8
# Owned by root whoever checked the tree out; directories already there keep their owner and mode.
tar -C "$here/overlay" -c . | tar -C "$root" -x --no-same-owner --no-overwrite-dir
install -D -m 0755 "$here/probe.sh" "$root/usr/local/libexec/hugepaged-probe"
mkdir -p "$root/etc/systemd/system/multi-user.target.wants" "$root/etc/hugepaged-test"
ln -sf ../hugepaged-probe.service "$root/etc/systemd/system/multi-user.target.wants/hugepaged-probe.service"
# A getty on the console hangs the line up when it starts, which cuts the probe's lines.
ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
echo hugepaged-host >"$root/etc/hostname"
echo "$mode" >"$root/etc/hugepaged-test/mode"
append="root=/dev/vda rw console=ttyS0 panic=-1 nokaslr quiet systemd.firstboot=off systemd.show_status=auto"
case $mode in
dbus-daemon | boot-1g)
        # dbus-broker's package makes itself the system bus; dbus-daemon is Debian's default without it.
        rm -f "$root/etc/systemd/system/dbus.service"
        ;;
dbus-broker)
        ln -sfn /lib/systemd/system/dbus-broker.service "$root/etc/systemd/system/dbus.service"
        ;;
esac
if [ "$mode" = boot-1g ]; then
        append="$append hugepagesz=1G hugepages=0:1,1:1"
        mkdir -p "$root/etc/hugepaged"
        printf '[Pool 1G]\nAdopt=spare\n' >"$root/etc/hugepaged/hugepaged.conf"
fi
# For looking into a boot: HUGEPAGED_HOST_KERNEL_ARGS="loglevel=7 systemd.show_status=1" HUGEPAGED_HOST_VERBOSE=1
append="$append ${HUGEPAGED_HOST_KERNEL_ARGS:-}"
vmlinuz=$(ls "$root"/boot/vmlinuz-* 2>/dev/null | head -n 1)
initrd=$(ls "$root"/boot/initrd.img-* 2>/dev/null | head -n 1)
[ -n "$vmlinuz" ] && [ -n "$initrd" ] || die "no /boot/vmlinuz-* or /boot/initrd.img-* in the root file system"
cp "$vmlinuz" "$work/vmlinuz"
cp "$initrd" "$work/initrd"
truncate -s 3G "$work/disk.img"
mkfs.ext4 -q -F -L hugepaged-host -d "$root" "$work/disk.img" >"$work/mkfs.log" 2>&1 ||
        { cat "$work/mkfs.log"; die "mkfs.ext4 -d failed"; }
rm -rf "$root"
log "image ready ($((SECONDS - t0)) s since start): kernel $(basename "$vmlinuz"), command line: $append"

# ---- the boot ----
# 3 GiB per node: the kernel puts each node's memory map (and node 0 the kernel, node 1 the initrd) in
# the node's memory before it sets aside 1 GiB pages, and with 2 GiB nodes no aligned GiB is left free on
# either. Guest memory is only allocated on the host as the guest touches it.
console=$work/console.log
: >"$console"
"$qemu" -accel tcg -cpu max -nodefaults -no-user-config -display none -no-reboot \
        -m 6G -smp 2 \
        -object memory-backend-ram,id=m0,size=3G -numa node,nodeid=0,cpus=0,memdev=m0 \
        -object memory-backend-ram,id=m1,size=3G -numa node,nodeid=1,cpus=1,memdev=m1 \
        -kernel "$work/vmlinuz" -initrd "$work/initrd" -append "$append" \
        -drive "file=$work/disk.img,format=raw,if=virtio,cache=unsafe" \
        -device virtio-rng-pci -nic none \
        -serial "file:$console" \
        >"$work/qemu.log" 2>&1 &
qemu_pid=$!
start=$SECONDS
log "QEMU started (pid $qemu_pid), at most $boot_timeout s"

failed_step=
result_at=
while kill -0 "$qemu_pid" 2>/dev/null; do
        if [ $((SECONDS - start)) -ge "$boot_timeout" ]; then
                failed_step="the guest did not power off within $boot_timeout s"
                break
        fi
        if [ -z "$result_at" ] && grep -q '^PROBE RESULT:' "$console"; then
                result_at=$SECONDS
                log "probe finished after $((SECONDS - start)) s"
        fi
        # The verdict is in; a guest that then fails to power off is only waited for a while.
        if [ -n "$result_at" ] && [ $((SECONDS - result_at)) -ge 60 ]; then
                log "the guest did not power off within 60 s of the verdict; stopping QEMU"
                break
        fi
        sleep 1
done
if kill -0 "$qemu_pid" 2>/dev/null; then
        kill "$qemu_pid" 2>/dev/null || true
        sleep 1
        kill -9 "$qemu_pid" 2>/dev/null || true
fi
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=
log "QEMU ran for $((SECONDS - start)) s; $((SECONDS - t0)) s in all"

# ---- the verdict ----
tr -d '\r' <"$console" >"$work/console.txt"
status=0
grep -q '^PROBE RESULT: PASS$' "$work/console.txt" || status=1
[ -z "$failed_step" ] || status=1
if [ $status -ne 0 ] || [ -n "${HUGEPAGED_HOST_VERBOSE:-}" ]; then
        echo "==== guest console ===="
        cat "$work/console.txt"
        echo "==== end of guest console ===="
        if [ -s "$work/qemu.log" ]; then
                echo "==== QEMU stderr ===="
                cat "$work/qemu.log"
        fi
fi
echo "==== probe ===="
grep '^PROBE ' "$work/console.txt" || echo "(no probe output)"
echo "==== end of probe ===="
if [ -n "$failed_step" ]; then
        log "FAIL: $failed_step"
fi
if ! grep -q '^PROBE RESULT:' "$work/console.txt"; then
        log "FAIL: the probe gave no verdict"
elif [ $status -eq 0 ]; then
        log "PASS: $(grep -c '^PROBE ok:' "$work/console.txt") checks"
else
        log "FAIL: $(grep -c '^PROBE FAIL:' "$work/console.txt") of $(grep -cE '^PROBE (ok|FAIL):' "$work/console.txt") checks failed"
fi
exit $status
