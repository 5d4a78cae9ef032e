#!/bin/busybox sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# /init of the test-qemu-numa guest: starts dbus-daemon and hugepaged on the guest's real kernel, reserves
# pages per node over D-Bus, waits for the host to hot-plug memory into the memory-less node 2, and prints
# one machine-readable line per observation on the serial console for the host side to check:
#   COUNTS step=S node0=N node1=N node2=N   the per-node 2 MiB nr_hugepages seen at step S
#   RESULT key=value                        anything else observed
#   CHECK name=ok | FAIL step=name ...      each assertion
#   READY_FOR_HOTPLUG                       the host may now add the pc-dimm over QMP
#   DONE status=pass|fail failures=N
/bin/busybox mkdir -p /proc /sys /dev /run /tmp /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
exec </dev/null >/dev/console 2>&1

NODE=/sys/devices/system/node
SIZE_KB=2048
SIZE=$((SIZE_KB * 1024))
MIB=1048576
failures=0

ok() { echo "CHECK $1=ok"; }
fail() {
        failures=$((failures + 1))
        echo "FAIL step=$1 ${2:-}"
}

finish() {
        echo "---- hugepaged log ----"
        sed 's/^/hugepaged: /' /tmp/hugepaged.log 2>/dev/null
        echo "---- end of hugepaged log ----"
        if [ "$failures" -eq 0 ]; then
                echo "DONE status=pass failures=0"
        else
                echo "DONE status=fail failures=$failures"
        fi
        sync
        poweroff -f
        sleep 10
        exit 1 # a dying init panics, and panic=-1 with -no-reboot stops QEMU too
}

# nr N: node N's persistent+surplus count of 2 MiB pages, or "none" if the node has no such pool.
nr() {
        cat "$NODE/node$1/hugepages/hugepages-${SIZE_KB}kB/nr_hugepages" 2>/dev/null || echo none
}

counts() {
        c0=$(nr 0) c1=$(nr 1) c2=$(nr 2)
        echo "COUNTS step=$1 node0=$c0 node1=$c1 node2=$c2"
}

# in_list N LIST: is node N in a kernel node list like "0-1,3"?
in_list() {
        for part in $(echo "$2" | tr ',' ' '); do
                lo=${part%-*} hi=${part#*-}
                [ "$1" -ge "$lo" ] && [ "$1" -le "$hi" ] && return 0
        done
        return 1
}

# expect STEP WHAT GOT WANT
expect() {
        if [ "$3" = "$4" ]; then
                ok "$1"
        else
                fail "$1" "$2: got '$3', expected '$4'"
        fi
}

bus() { busctl --no-pager --timeout=180 "$@"; }
mgr() {
        verb=$1
        shift
        bus "$verb" org.hugepaged1 /org/hugepaged1 org.hugepaged1.Manager "$@"
}
node2_has_memory() { in_list 2 "$(cat $NODE/has_memory)"; }
daemon_has_node2() { [ "$(mgr get-property Nodes)" = "au 3 0 1 2" ]; }

# wait_for SECONDS COMMAND...: polls COMMAND every half second until it succeeds.
wait_for() {
        t=$(($1 * 2))
        shift
        while [ "$t" -gt 0 ]; do
                "$@" >/dev/null 2>&1 && return 0
                sleep 0.5
                t=$((t - 1))
        done
        return 1
}

# ---- topology as the kernel sees it ----
echo "RESULT kernel=$(uname -r)"
has_memory=$(cat $NODE/has_memory)
echo "RESULT online=$(cat $NODE/online) has_cpu=$(cat $NODE/has_cpu) has_memory=$has_memory"
expect topology-has-memory "has_memory" "$has_memory" "0-1"
if [ -d $NODE/node2 ] && ! in_list 2 "$has_memory"; then
        ok topology-node2-memoryless
else
        fail topology-node2-memoryless "node2 missing from sysfs or has memory"
fi
counts boot

# ---- the bus and the daemon ----
mkdir -p /run/dbus /run/hugepaged
dbus-daemon --config-file=/etc/dbus-1/system.conf --nofork --nopidfile >/tmp/dbus.log 2>&1 &
if ! wait_for 30 test -S /run/dbus/system_bus_socket; then
        fail dbus-start "no bus socket after 30 s: $(cat /tmp/dbus.log)"
        finish
fi
hugepaged --state-dir=/run/hugepaged --log-level=debug >/tmp/hugepaged.log 2>&1 &
daemon_pid=$!
if ! wait_for 60 mgr get-property Version; then
        fail daemon-start "org.hugepaged1 not on the bus after 60 s"
        echo "busctl list: $(busctl --no-pager list 2>&1 | head -n 10)"
        echo "dbus-daemon log: $(cat /tmp/dbus.log)"
        finish
fi
ok daemon-start

nodes=$(mgr get-property Nodes)
echo "RESULT nodes_at_start=\"$nodes\""
expect daemon-nodes-at-start "Nodes" "$nodes" "au 2 0 1"

# ---- reserve on node 1 only ----
counts before-node1
b0=$c0 b1=$c1
out=$(mgr call Reserve 'stta{sv}' vm-node1 $SIZE $((64 * MIB)) 1 nodes au 1 1 2>&1)
echo "RESULT reserve_node1=\"$out\""
counts after-node1
echo "RESULT node0_nr_before=$b0 node0_nr_after=$c0 node1_nr_before=$b1 node1_nr_after=$c1"
case "$out" in
o\ \"*\")
        ok reserve-node1
        path1=${out#o \"}
        path1=${path1%\"}
        node_pages=$(bus get-property org.hugepaged1 "$path1" org.hugepaged1.Reservation NodePages)
        echo "RESULT reserve_node1_node_pages=\"$node_pages\""
        expect reserve-node1-node-pages "NodePages" "$node_pages" "a(ut) 1 1 32"
        ;;
*)
        fail reserve-node1 "Reserve failed: $out"
        ;;
esac
expect reserve-node1-delta-node1 "node1 nr_hugepages delta" "$((c1 - b1))" 32
expect reserve-node1-delta-node0 "node0 nr_hugepages delta" "$((c0 - b0))" 0
pool1=$(bus get-property org.hugepaged1 /org/hugepaged1/pool/${SIZE_KB}kB/node1 org.hugepaged1.Pool Reserved 2>&1)
expect reserve-node1-pool-reserved "pool node1 Reserved" "$pool1" "t 32"

# ---- memory hot-plug into node 2 ----
echo "READY_FOR_HOTPLUG"
if wait_for 120 node2_has_memory; then
        ok hotplug-node2-memory
else
        fail hotplug-node2-memory "node 2 got no memory within 120 s: has_memory=$(cat $NODE/has_memory)"
        dmesg | grep -iE 'memory|hotplug|acpi|node' | tail -n 20 | sed 's/^/dmesg: /'
fi
echo "RESULT has_memory_after_hotplug=$(cat $NODE/has_memory) node2_memtotal=\"$(grep MemTotal $NODE/node2/meminfo 2>/dev/null | tr -s ' ')\""
counts after-hotplug

if wait_for 60 daemon_has_node2; then
        ok daemon-nodes-after-hotplug
else
        fail daemon-nodes-after-hotplug "Nodes is '$(mgr get-property Nodes 2>&1)' 60 s after the hot-plug, expected 'au 3 0 1 2'"
fi
echo "RESULT nodes_after_hotplug=\"$(mgr get-property Nodes 2>&1)\""
if bus introspect org.hugepaged1 /org/hugepaged1/pool/${SIZE_KB}kB/node2 org.hugepaged1.Pool >/tmp/introspect 2>&1 &&
   grep -q '^\.Reserved' /tmp/introspect; then
        ok daemon-pool-node2
else
        fail daemon-pool-node2 "no Pool object for node 2: $(head -c 300 /tmp/introspect)"
fi
pool2=$(bus get-property org.hugepaged1 /org/hugepaged1/pool/${SIZE_KB}kB/node2 org.hugepaged1.Pool Node 2>&1)
expect daemon-pool-node2-node "pool node2 Node" "$pool2" "i 2"

# ---- reserve on the hot-plugged node ----
counts before-node2
b0=$c0 b1=$c1 b2=$c2
out=$(mgr call Reserve 'stta{sv}' vm-node2 $SIZE 0 1 node_bytes 'a(ut)' 1 2 $((32 * MIB)) 2>&1)
echo "RESULT reserve_node2=\"$out\""
counts after-node2
echo "RESULT node2_nr_before=$b2 node2_nr_after=$c2 node1_nr_before=$b1 node1_nr_after=$c1 node0_nr_before=$b0 node0_nr_after=$c0"
case "$out" in
o\ \"*\")
        ok reserve-node2
        path2=${out#o \"}
        path2=${path2%\"}
        node_pages=$(bus get-property org.hugepaged1 "$path2" org.hugepaged1.Reservation NodePages)
        echo "RESULT reserve_node2_node_pages=\"$node_pages\""
        expect reserve-node2-node-pages "NodePages" "$node_pages" "a(ut) 1 2 16"
        ;;
*)
        fail reserve-node2 "Reserve failed: $out"
        ;;
esac
case "$b2" in none) b2=0 ;; esac
case "$c2" in none) c2=0 ;; esac
expect reserve-node2-delta-node2 "node2 nr_hugepages delta" "$((c2 - b2))" 16
expect reserve-node2-delta-node1 "node1 nr_hugepages delta" "$((c1 - b1))" 0
expect reserve-node2-delta-node0 "node0 nr_hugepages delta" "$((c0 - b0))" 0

# ---- release gives every page back ----
for name in vm-node1 ${path2:+vm-node2}; do
        out=$(mgr call Release s $name 2>&1) || fail release-$name "Release failed: $out"
done
counts after-release
expect release-node1-count "node1 nr_hugepages after Release" "$c1" 0
case "$c2" in none) c2=0 ;; esac
expect release-node2-count "node2 nr_hugepages after Release" "$c2" 0

# ---- the kernel itself can allocate on node 2, daemon or not: tells a kernel problem from a daemon one ----
kill "$daemon_pid" 2>/dev/null
wait "$daemon_pid" 2>/dev/null
echo 16 >$NODE/node2/hugepages/hugepages-${SIZE_KB}kB/nr_hugepages 2>/dev/null
direct=$(nr 2)
echo 0 >$NODE/node2/hugepages/hugepages-${SIZE_KB}kB/nr_hugepages 2>/dev/null
echo "RESULT kernel_node2_direct_write=16 kernel_node2_got=$direct"
expect kernel-node2-alloc "node2 nr_hugepages after writing 16 with the daemon stopped" "$direct" 16

finish
