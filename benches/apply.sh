#!/usr/bin/env bash
# Whole-process timings of `jobnet up` over SSH against the SSH switch simulator
# (jobnet-switch-sim), release build. Figures go to docs/benchmarks.md.
#  1. one switch, VLAN + 10 node ports, no latency            (target: up <= 0.3 s wall)
#  2. 200 ms login and 20 ms per command: one switch vs a chain of 32 switches with the same
#     work per switch (VLAN + 3 port operations)               (target: wall(32) <= 1.25 x wall(1))
#  3. (issue 15, P2b) 200 ms login, 20 ms per command: one NX-OS leaf, a job on 299 of its ports
#     vs on 2, with the shipped profile (ports read with one `show interface switchport`) and
#     with a copy without `read.ports` (one read per port, as before)
#     BENCH=p2b runs only this case; BENCH=p2b-ovs the same on Open vSwitch over SSH, with
#     and without `batch:` (one ovs-vsctl transaction per switch) and `read.ports`.
#  4. (issue 15, P1) BENCH=p1: case 1 (no latency) on arista-eos and on cisco-ios, directly and
#     through a warm jobnetd (target: up <= 30 ms warm)
#  5. (issue 15, P2) BENCH=p2: one switch vs a chain of 300 with the same work per switch,
#     200 ms login, 20 ms per command, directly and through a warm jobnetd (target <= 1.5 x)
# With DAEMON=1 every `measure` goes through a jobnetd started for the lab, warmed by one
# untimed up/down first.
set -euo pipefail
cd "$(dirname "$0")/.."
# jobnet as shipped (no test kit); the simulator is part of the test kit.
cargo build --release --locked -q --bin jobnet --bin jobnetd
cargo build --release --locked -q --features testkit --bin jobnet-switch-sim
B=target/bench/apply
rm -rf "$B"; mkdir -p "$B"
RUNS=${RUNS:-5}
sim_pid=""
daemon_pid=""
stop_sim() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null || true; daemon_pid=""
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; wait "$sim_pid" 2>/dev/null || true; sim_pid=""
}
trap stop_sim EXIT

now() { date +%s.%N; }
# measure NAME TOPOLOGY NODES LOGIN_MS CMD_MS [JOBNET ARGS...]: median wall of RUNS `up`s (each
# followed by an untimed down)
measure() {
  local name=$1 topo=$2 nodes=$3 login=$4 cmd=$5 lab=$B/$1
  shift 5
  if [ "${DAEMON:-0}" = 1 ]; then lab="$lab-jobnetd"; fi
  target/release/jobnet-switch-sim --topology "$topo" --out "$lab" --login-latency-ms "$login" --command-latency-ms "$cmd" &
  sim_pid=$!
  for _ in $(seq 100); do [ -f "$lab/ready" ] && break; sleep 0.05; done
  local daemon=off
  if [ "${DAEMON:-0}" = 1 ]; then
    daemon=$lab/jobnetd.sock
    target/release/jobnetd --socket "$daemon" > "$lab.jobnetd.log" 2>&1 &
    daemon_pid=$!
    for _ in $(seq 100); do [ -S "$daemon" ] && break; sleep 0.05; done
  fi
  local J=(target/release/jobnet --state "$lab/state.db" --credentials "$lab/credentials.yaml" --known-hosts "$lab/known_hosts" --daemon "$daemon" "$@")
  if [ "$daemon" != off ]; then
    "${J[@]}" up --topology "$lab/topology.yaml" --job warm --nodes "$nodes" --pkey none > /dev/null
    "${J[@]}" down --job warm > /dev/null
    name="$name (jobnetd, warm)"
  fi
  local times=()
  for i in $(seq "$RUNS"); do
    local t0; t0=$(now)
    "${J[@]}" up --topology "$lab/topology.yaml" --job "b$i" --nodes "$nodes" --pkey none > /dev/null
    times+=("$(echo "$(now) - $t0" | bc -l)")
    "${J[@]}" down --job "b$i" > /dev/null
  done
  stop_sim
  printf '%s\n' "${times[@]}" | sort -n | awk -v n="$name" '{a[NR]=$1} END {printf "%-40s median %.3f s (min %.3f, max %.3f, %d runs)\n", n, a[int((NR+1)/2)], a[1], a[NR], NR}'
}

# single10 [DRIVER PORTS]: one switch, ten node ports (default: arista-eos, Ethernet1-10).
single10() {
  cat <<YAML
name: one-switch
ethernet: {vlan_pool: "100-199"}
switches:
  - {name: sw1, driver: ${1:-arista-eos}, address: 192.0.2.1, credentials: x}
nodes:
  - {name: "n[01-10]", port: "sw1:${2:-Ethernet[1-10]}"}
YAML
}
single3() {
  cat <<YAML
name: one-switch-3
ethernet: {vlan_pool: "100-199"}
switches:
  - {name: sw01, driver: arista-eos, address: 192.0.2.1, credentials: x}
nodes:
  - {name: "n[01-03]", port: "sw01:Ethernet[1-3]"}
YAML
}
command -v bc >/dev/null || { echo "benches/apply.sh needs bc: apt-get install bc" >&2; exit 1; }
leaf299() {
  cat <<YAML
name: leaf-299
ethernet: {vlan_pool: "100-199", node_port_mode: tagged}
switches:
  - {name: leaf1, driver: cisco-nxos, address: 192.0.2.1, credentials: x}
nodes:
  - {name: "n[001-299]", port: "leaf1:Ethernet1/[1-299]"}
YAML
}
chain() {
  local n=$1
  echo "name: chain-$n"
  echo 'ethernet: {vlan_pool: "100-199"}'
  echo "switches:"
  for i in $(seq 1 "$n"); do echo "  - {name: sw$i, driver: arista-eos, address: 192.0.2.1, credentials: x}"; done
  echo "links:"
  for i in $(seq 1 $((n - 1))); do echo "  - {a: sw$i:Ethernet48, b: sw$((i + 1)):Ethernet47}"; done
  echo "nodes:"
  for i in $(seq 1 "$n"); do echo "  - {name: n$i, port: sw$i:Ethernet1}"; done
}
if [ "${BENCH:-}" = p1 ]; then
  single10 > "$B/one10.yaml"
  # The issue's P1 is "one fake Cisco": Cisco IOS (ranged interface blocks, one bulk port read).
  single10 cisco-ios 'GigabitEthernet1/0/[1-10]' > "$B/one10-ios.yaml"
  for d in 0 1; do
    DAEMON=$d measure "P1 arista-eos, VLAN + 10 ports, no latency" "$B/one10.yaml" 'n[01-10]' 0 0
    DAEMON=$d measure "P1 cisco-ios, VLAN + 10 ports, no latency" "$B/one10-ios.yaml" 'n[01-10]' 0 0
  done
  exit 0
fi
if [ "${BENCH:-}" = p2 ]; then
  chain 300 > "$B/chain300.yaml"; single3 > "$B/one3.yaml"
  for d in 0 1; do
    DAEMON=$d measure "P2 1 switch, 200 ms login, 20 ms/command" "$B/one3.yaml" 'n[01-03]' 200 20
    DAEMON=$d measure "P2 300 switches, 200 ms login, 20 ms/command" "$B/chain300.yaml" 'n[1-300]' 200 20
  done
  exit 0
fi
if [ -z "${BENCH:-}" ]; then
  single10 > "$B/one10.yaml"; single3 > "$B/one3.yaml"; chain 32 > "$B/chain32.yaml"
  measure "1 switch, VLAN + 10 ports, no latency" "$B/one10.yaml" 'n[01-10]' 0 0
  measure "1 switch, 200 ms login, 20 ms/command" "$B/one3.yaml" 'n[01-03]' 200 20
  measure "32 switches, 200 ms login, 20 ms/command" "$B/chain32.yaml" 'n[1-32]' 200 20
fi
leaf299 > "$B/leaf299.yaml"
mkdir -p "$B/per-port"
grep -v -e '^  ports:' -e '^    command: "show interface switchport"' -e '^    split:' -e '^    short:' -e '^    ignore_case:' switch-drivers/cisco-nxos.yaml > "$B/per-port/cisco-nxos.yaml"
ovs299() {
  cat <<YAML
name: ovs-299
ethernet: {vlan_pool: "100-199", node_port_mode: tagged}
switches:
  - {name: br1, driver: openvswitch, address: 192.0.2.1, credentials: x}
nodes:
  - {name: "n[001-299]", port: "br1:p[1-299]"}
YAML
}
if [ "${BENCH:-}" = p2b-ovs ]; then
  # Open vSwitch over SSH (one exec per command): the shipped profile (one read, one
  # transaction), without `batch:` (one read, one run per operation), and without both.
  ovs299 > "$B/ovs299.yaml"
  mkdir -p "$B/ovs-nobatch" "$B/ovs-neither"
  grep -v '^batch:' switch-drivers/openvswitch.yaml > "$B/ovs-nobatch/openvswitch.yaml"
  grep -v -e '^batch:' -e '^  ports:' -e '^    command: "ovs-vsctl --columns=name,tag,trunks list port"' -e '^    split:' switch-drivers/openvswitch.yaml > "$B/ovs-neither/openvswitch.yaml"
  measure "P2b OVS 299 ports (one read, one transaction)" "$B/ovs299.yaml" 'n[001-299]' 200 20
  measure "P2b OVS 299 ports (one read, run per operation)" "$B/ovs299.yaml" 'n[001-299]' 200 20 --drivers-dir "$B/ovs-nobatch"
  measure "P2b OVS 299 ports (read and run per port)" "$B/ovs299.yaml" 'n[001-299]' 200 20 --drivers-dir "$B/ovs-neither"
  measure "P2b OVS 2 ports (one read, one transaction)" "$B/ovs299.yaml" 'n[001-002]' 200 20
  exit 0
fi
measure "P2b NX-OS 2 ports (one read)" "$B/leaf299.yaml" 'n[001-002]' 200 20
measure "P2b NX-OS 299 ports (one read)" "$B/leaf299.yaml" 'n[001-299]' 200 20
measure "P2b NX-OS 2 ports (per-port reads)" "$B/leaf299.yaml" 'n[001-002]' 200 20 --drivers-dir "$B/per-port"
measure "P2b NX-OS 299 ports (per-port reads)" "$B/leaf299.yaml" 'n[001-299]' 200 20 --drivers-dir "$B/per-port"
