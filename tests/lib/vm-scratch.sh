# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the QEMU tests (tests/qemu, tests/host): vm_scratch PREFIX makes $work, a scratch directory, and
# arranges that it, and the QEMU process whose pid the test puts in $qemu_pid, go away on any exit.

vm_cleanup() {
        if [ -n "${qemu_pid:-}" ] && kill -0 "$qemu_pid" 2>/dev/null; then
                kill "$qemu_pid" 2>/dev/null || true
                sleep 1
                kill -9 "$qemu_pid" 2>/dev/null || true
        fi
        rm -rf "$work"
}

vm_scratch() {
        work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
        qemu_pid=
        trap vm_cleanup EXIT
        trap 'exit 1' INT TERM HUP
}
