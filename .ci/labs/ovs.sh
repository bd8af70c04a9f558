#!/usr/bin/env bash
# End-to-end lab on a real data plane: Open vSwitch in userspace (datapath netdev) as three
# switches in a triangle (one redundant, expensive link), six hosts in network namespaces, driven
# by `jobnet up/down/status/recover` with the openvswitch profile (ovs-vsctl, `address: local`).
# Proves: job hosts reach each other, other jobs' hosts do not, switches outside a job's subgraph
# carry none of its VLAN, down restores the OVS configuration byte for byte, failures roll back,
# kill -9 at every journal point is repaired by recover/down, and concurrent jobs get distinct VLANs;
# a factory-default port (no tag, no trunks: every VLAN) really leaks other jobs' broadcasts and is
# refused, or with `open_ports: restrict` carries only its jobs' VLANs and is given back after.
# Needs root; installs what it needs; stops its daemons by pid. Ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
JOBNET=${JOBNET:-$PWD/target/debug/jobnet}
[ "$(id -u)" = 0 ] || { echo "ovs lab: needs root (network namespaces, OVS)" >&2; exit 1; }
[ -x "$JOBNET" ] || { echo "ovs lab: $JOBNET not built" >&2; exit 1; }
need=()
for bin in ovs-vsctl:openvswitch-switch ping:iputils-ping ip:iproute2 tcpdump:tcpdump; do
  command -v "${bin%%:*}" >/dev/null || need+=("${bin##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "ovs lab: installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

D=$(mktemp -d /tmp/jobnet-ovs.XXXXXX)
export OVS_RUNDIR=$D OVS_LOGDIR=$D OVS_DBDIR=$D
STATE=$D/state.db
TOPO=$D/lab.yaml
HOSTS="1 2 3 4 5 6"
cleanup() {
  set +e
  for h in $HOSTS; do ip netns del "jnh$h" 2>/dev/null; done
  for l in jn12a jn23a jn13a jnf1 jnf2; do ip link del "$l" 2>/dev/null; done
  for f in vswitchd ovsdb; do [ -f "$D/$f.pid" ] && kill "$(cat "$D/$f.pid")" 2>/dev/null; done
  sleep 0.3
  for b in jnsw1 jnsw2 jnsw3; do ip link del "$b" 2>/dev/null; done
  if [ "${fail:-1}" = 0 ]; then rm -rf "$D"; else echo "ovs lab: kept $D for inspection"; fi
}
trap cleanup EXIT

pass=0 fail=0
ok()   { pass=$((pass+1)); echo "ok   - $*"; }
bad()  { fail=$((fail+1)); echo "FAIL - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

# --- the switches and hosts ---
ovsdb-tool create "$D/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server "$D/conf.db" --remote="punix:$D/db.sock" --pidfile="$D/ovsdb.pid" --detach --log-file="$D/ovsdb.log" --unixctl="$D/ovsdb.ctl"
ovs-vsctl --no-wait init
ovs-vswitchd "unix:$D/db.sock" --pidfile="$D/vswitchd.pid" --detach --log-file="$D/vswitchd.log" --unixctl="$D/vswitchd.ctl"
for b in jnsw1 jnsw2 jnsw3; do ovs-vsctl add-br "$b" -- set bridge "$b" datapath_type=netdev; done
link() { # link SWa SWb a b: a veth pair between two bridges, a trunk with a placeholder VLAN
  ip link add "$3" type veth peer name "$4"; ip link set "$3" up; ip link set "$4" up
  ovs-vsctl add-port "$1" "$3" trunks=4094 -- add-port "$2" "$4" trunks=4094
}
link jnsw1 jnsw2 jn12a jn12b
link jnsw2 jnsw3 jn23a jn23b
link jnsw1 jnsw3 jn13a jn13b
sw_of() { case $1 in 1|2) echo jnsw1;; 3|4) echo jnsw2;; *) echo jnsw3;; esac; }
for h in $HOSTS; do
  ip netns add "jnh$h"
  ip link add "jnh${h}p" type veth peer name eth0 netns "jnh$h"
  ip link set "jnh${h}p" up
  ip -n "jnh$h" addr add "10.77.0.$h/24" dev eth0
  ip -n "jnh$h" link set eth0 up
  ip -n "jnh$h" link set lo up
  ovs-vsctl add-port "$(sw_of "$h")" "jnh${h}p" tag=4093   # parked until a job takes the port
done

cat > "$TOPO" <<YAML
name: ovs-lab
ethernet: {vlan_pool: "100-199", node_port_mode: access}
switches:
  - {name: jnsw1, driver: openvswitch, address: local}
  - {name: jnsw2, driver: openvswitch, address: local}
  - {name: jnsw3, driver: openvswitch, address: local}
links:
  - {a: jnsw1:jn12a, b: jnsw2:jn12b}
  - {a: jnsw2:jn23a, b: jnsw3:jn23b}
  - {a: jnsw1:jn13a, b: jnsw3:jn13b, cost: 5}
nodes:
  - {name: "h[1-2]", port: "jnsw1:jnh[1-2]p"}
  - {name: "h[3-4]", port: "jnsw2:jnh[3-4]p"}
  - {name: "h[5-6]", port: "jnsw3:jnh[5-6]p"}
  - {name: h7, port: "jnsw3:jnh7p"}     # in the topology, missing in OVS: applying to it fails
YAML

jn() { "$JOBNET" --state "$STATE" --wait 20 "$@"; }
snapshot() { ovs-vsctl --format=csv --data=bare --no-headings --columns=name,tag,trunks list port | sort; }
reaches() { ip netns exec "jnh$1" ping -c 1 -W 1 "10.77.0.$2" >/dev/null 2>&1 || ip netns exec "jnh$1" ping -c 2 -W 1 "10.77.0.$2" >/dev/null 2>&1; }
isolated() { ! ip netns exec "jnh$1" ping -c 2 -W 1 "10.77.0.$2" >/dev/null 2>&1; }
vlan_of() { jn status --job "$1" --format json | sed -n 's/^ *"vlan": \([0-9]*\),*$/\1/p' | head -1; }
state_of() { jn status --job "$1" --format json | sed -n 's/^ *"state": "\([a-z-]*\)",*$/\1/p' | head -1; }
carries() { # carries SWITCH VLAN: does any port of the switch have the VLAN as tag or trunk
  local p; for p in $(ovs-vsctl list-ports "$1"); do
    ovs-vsctl --data=bare --format=csv --no-headings --columns=tag,trunks list port "$p" | tr ', ' '\n\n' | grep -qx "$2" && return 0
  done; return 1; }

check "topology validates" jn topology validate "$TOPO"
baseline=$(snapshot)
check "baseline: parked hosts are isolated (h1 -> h3)" isolated 1 3

# --- two jobs, data plane ---
check "up job A on h1,h3" jn up --topology "$TOPO" --job A --nodes h1,h3
check "up job B on h4,h5,h6" jn up --topology "$TOPO" --job B --nodes 'h[4-6]'
va=$(vlan_of A); vb=$(vlan_of B)
check "A and B have distinct VLANs ($va, $vb)" test -n "$va" -a -n "$vb" -a "$va" != "$vb"
check "A: h1 reaches h3 across jnsw1-jnsw2" reaches 1 3
check "A: h3 reaches h1" reaches 3 1
check "B: h4 reaches h5 across jnsw2-jnsw3" reaches 4 5
check "B: h5 reaches h6 on jnsw3" reaches 5 6
check "A's h1 cannot reach B's h4" isolated 1 4
check "A's h3 cannot reach B's h5" isolated 3 5
check "B's h5 cannot reach A's h1" isolated 5 1
check "parked h2 cannot reach A's h1" isolated 2 1
check "jnsw3 (outside A's subgraph) carries no VLAN $va" eval "! carries jnsw3 $va"
check "jnsw1 (outside B's subgraph) carries no VLAN $vb" eval "! carries jnsw1 $vb"
check "the expensive jnsw1-jnsw3 link carries neither job" eval "! ovs-vsctl get port jn13a trunks | grep -qE '\\b($va|$vb)\\b'"
check "status lists A up" test "$(state_of A)" = up
check "down A" jn down --job A
check "down B" jn down --job B
check "after down: OVS configuration equals the baseline" test "$(snapshot)" = "$baseline"
check "after down: h1 no longer reaches h3" isolated 1 3
check "down A twice succeeds" jn down --job A
check "down of a job that never came up succeeds" jn down --job never
check "still the baseline" test "$(snapshot)" = "$baseline"

# --- before changing a switch, its ports are read with one command (read.ports), and its
# changes go as one transaction (batch:) ---
# A site copy of the profile runs ovs-vsctl through a shim that logs every call.
mkdir -p "$D/drivers" "$D/shim"
printf '#!/bin/sh\necho "$*" >> %s/ovs-calls.log\nexec ovs-vsctl "$@"\n' "$D" > "$D/shim/ovs-vsctl"
chmod 0755 "$D/shim/ovs-vsctl"
sed "s#ovs-vsctl #$D/shim/ovs-vsctl #g" switch-drivers/openvswitch.yaml > "$D/drivers/openvswitch.yaml"
: > "$D/ovs-calls.log"
check "up R on h1..h4 through the logging profile" jn --drivers-dir "$D/drivers" up --topology "$TOPO" --job R --nodes h1,h2,h3,h4
check "R's ports on jnsw1 and jnsw2 were read with one list each, none on its own" \
  sh -c "[ \$(grep -cx -- '--columns=name,tag,trunks list port' '$D/ovs-calls.log') = 2 ] && ! grep -q -- 'list port [^ ]' '$D/ovs-calls.log'"
check "and changed with one ovs-vsctl transaction per switch (batch:), no run per operation" \
  sh -c "[ \$(grep -c -- '^-- ' '$D/ovs-calls.log') = 2 ] && ! grep -q -- '^set port\|^add port' '$D/ovs-calls.log'"
check "and R is on its ports: h1 reaches h4" reaches 1 4
check "down R" jn --drivers-dir "$D/drivers" down --job R
check "the baseline again" test "$(snapshot)" = "$baseline"

# --- failures roll back ---
set +e
jn up --topology "$TOPO" --job C --nodes h1,h7 > "$D/c.out" 2>&1; rc=$?
set -e
check "up on a port OVS does not have exits 4 (rolled back), rc=$rc" test "$rc" = 4
check "the message names the device and its answer" grep -q "jnsw3 refused .ovs-vsctl --columns=name,tag,trunks list port jnh7p.: ovs-vsctl: no row \"jnh7p\"" "$D/c.out"
check "baseline after the refused job" test "$(snapshot)" = "$baseline"
for k in 1 2 3 4 5 6; do
  set +e
  JOBNET_FAILPOINT="intent:$k:error" jn up --topology "$TOPO" --job "F$k" --nodes h1,h3 > /dev/null 2>&1; rc=$?
  set -e
  check "fault at operation $k: exit 4 and baseline" test "$rc" = 4 -a "$(snapshot)" = "$baseline"
done

# --- kill -9 at every journal point, then recover or down ---
for point in intent done; do
  for k in 1 2 3 4 5 6; do
    rm -f "$D/fp"
    JOBNET_FAILPOINT="$point:$k:pause" JOBNET_FAILPOINT_FILE="$D/fp" \
      "$JOBNET" --state "$STATE" up --topology "$TOPO" --job "K$point$k" --nodes h1,h3 > /dev/null 2>&1 &
    bg=$!
    for _ in $(seq 200); do [ -s "$D/fp" ] && break; sleep 0.05; done
    # jobnet wrote its own pid at the failpoint: kill exactly that process.
    kill -9 "$(cat "$D/fp")"; wait "$bg" 2>/dev/null || true
    s=$(state_of "K$point$k")
    if [ $((k % 2)) = 0 ]; then jn recover > /dev/null; how=recover; else jn down --job "K$point$k" > /dev/null; how=down; fi
    check "kill -9 at $point:$k (state was $s), then $how: baseline and job down" test "$s" = applying -a "$(snapshot)" = "$baseline" -a "$(state_of "K$point$k")" = down
  done
done

# --- concurrent jobs ---
pids=()
jn up --topology "$TOPO" --job P1 --nodes h1,h3 > /dev/null & pids+=($!)
jn up --topology "$TOPO" --job P2 --nodes h2,h5 > /dev/null & pids+=($!)
jn up --topology "$TOPO" --job P3 --nodes h4,h6 > /dev/null & pids+=($!)
rcs=0; for p in "${pids[@]}"; do wait "$p" || rcs=$((rcs+1)); done
check "three concurrent ups succeed" test "$rcs" = 0
v=$(for j in P1 P2 P3; do vlan_of $j; done | sort -u | wc -l)
check "three distinct VLANs" test "$v" = 3
check "P1: h1 reaches h3" reaches 1 3
check "P2: h2 reaches h5 (jnsw1-jnsw2-jnsw3)" reaches 2 5
check "P3: h4 reaches h6" reaches 4 6
check "P1's h1 cannot reach P2's h5" isolated 1 5
pids=(); for j in P1 P2 P3; do jn down --job $j > /dev/null & pids+=($!); done
rcs=0; for p in "${pids[@]}"; do wait "$p" || rcs=$((rcs+1)); done
check "three concurrent downs succeed" test "$rcs" = 0
check "final: OVS configuration equals the baseline" test "$(snapshot)" = "$baseline"

# --- factory-default node ports: OVS's "ALL" is a port with neither tag nor trunks ---
for f in 1 2; do
  ip link add "jnf$f" type veth peer name "jnf${f}x"; ip link set "jnf$f" up; ip link set "jnf${f}x" up
done
ovs-vsctl add-port jnsw1 jnf1 -- add-port jnsw2 jnf2
baseline2=$(snapshot)
sed -e 's/node_port_mode: access}/node_port_mode: tagged}/' -e 's/vlan_pool: "100-199"/vlan_pool: "200-299"/' \
    -e '/^nodes:/,$d' "$TOPO" > "$D/tagged.yaml"
printf 'nodes:\n  - {name: f1, port: "jnsw1:jnf1"}\n  - {name: f2, port: "jnsw2:jnf2"}\n' >> "$D/tagged.yaml"
sed 's/node_port_mode: tagged}/node_port_mode: tagged, open_ports: restrict}/' "$D/tagged.yaml" > "$D/restrict.yaml"
# leaks VLAN: a broadcast in VLAN (from h4, on jnsw2) arrives at jnf2, tagged
leaks() {
  local n
  rm -f "$D/cap"
  timeout 4 tcpdump -i jnf2x -nn -e -l "vlan $1" > "$D/cap" 2>/dev/null &
  local cap=$!
  sleep 1
  ip netns exec jnh4 ping -c 3 -i 0.3 -W 1 10.77.0.99 > /dev/null 2>&1 || true
  wait "$cap" 2>/dev/null || true
  n=$(grep -c "vlan $1" "$D/cap" || true)
  [ "$n" -gt 0 ]
}
check "job LB up on h4,h5 (access VLANs, jnsw2-jnsw3)" jn up --topology "$TOPO" --job LB --nodes 'h[4-5]'
vlb=$(vlan_of LB)
check "a factory-default OVS port carries every VLAN: LB's broadcast (VLAN $vlb) reaches jnf2 tagged" leaks "$vlb"
before=$(snapshot)
set +e; jn up --topology "$D/tagged.yaml" --job TF --nodes f1,f2 > "$D/tf.out" 2>&1; rc=$?; set -e
check "tagged job on factory-default ports is refused (exit 4), rc=$rc" test "$rc" = 4
check "the message names the port and the fix" grep -q "node port jnf1 (node f1) is a trunk that allows every VLAN (the factory default).*ovs-vsctl set port jnf1 trunks=4094" "$D/tf.out"
check "nothing changed in OVS" test "$(snapshot)" = "$before"
check "open_ports restrict: tagged job R1 on f1,f2 comes up" jn up --topology "$D/restrict.yaml" --job R1 --nodes f1,f2
vr1=$(vlan_of R1)
check "jnf2 now lists only R1's VLAN $vr1" test "$(ovs-vsctl get port jnf2 trunks)" = "[$vr1]"
check "LB's broadcast no longer reaches jnf2" eval "! leaks $vlb"
check "the jnsw1-jnsw2 trunk carries R1's VLAN" eval "ovs-vsctl get port jn12a trunks | grep -qw $vr1"
check "a second tagged job R2 on f2" jn up --topology "$D/restrict.yaml" --job R2 --nodes f2
vr2=$(vlan_of R2)
check "jnf2 lists both jobs' VLANs" test "$(ovs-vsctl get port jnf2 trunks)" = "[$vr1, $vr2]"
check "down R1" jn down --job R1
check "jnf2 keeps R2's VLAN and nothing else (not every VLAN)" test "$(ovs-vsctl get port jnf2 trunks)" = "[$vr2]"
check "jnf1 (R1's alone) is given every VLAN back" test "$(ovs-vsctl get port jnf1 trunks)" = "[]"
check "down R2" jn down --job R2
check "down LB" jn down --job LB
check "factory ports: OVS configuration equals its baseline again" test "$(snapshot)" = "$baseline2"

echo "ovs lab: $pass passed, $fail failed"
[ "$fail" = 0 ]
