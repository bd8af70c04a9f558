#!/usr/bin/env bash
# The two Linux bridge node backends (bridge-vlan, bridge-classic) on a real kernel: Debian's
# stock kernel in a throwaway QEMU VM (run-in-vm.sh; the CI machine's kernel has neither 802.1Q
# nor bridge VLAN filtering), one boot for both backends, with the jobnet binary built on the
# host (the guest sees the host's files). For each backend: a switch namespace (a VLAN-filtering
# bridge standing for the fabric switch, trunk ports carrying VLANs 101 and 102 to the nodes);
# two node namespaces, each with its node bridge vmbr0, its uplink eth1 (a veth into the switch)
# and a management port mgmt0 on vmbr0; the VMs are network namespaces whose veth's node end is
# the VM's tap. Jobs 7 (VLAN 101) and 8 (VLAN 102) have the same addresses and MACs (10.7.0.0/24)
# and one VM on each node; their network.json is written in the documented format, each node has
# its node.yaml, and `jobnet node attach/detach` runs in the node's namespace.
#   bridge-vlan: vmbr0 is VLAN-aware; every tap starts on vmbr0 as libvirt or Proxmox (without
#     tag=) plug it: VLAN 1 PVID untagged, the kernel's default; node1's tap of job 7 has a range
#     of untagged VLANs too, and the uplinks trunk VLAN 4000 besides.
#   bridge-classic: vmbr0 is not VLAN-aware (Proxmox's layout: eth1 on vmbr0); the tap of job 7
#     on node1 and of job 8 on node2 start on vmbr0 (as libvirt and Proxmox without tag= plug
#     them), the other two unplugged (a launcher that leaves the tap to jobnet).
# Checks: the uplink, the bridge and the management port are refused as a VM interface (exit 2,
# nothing changed; bridge-classic: a VLAN bridge name past 15 bytes too, and bridge-vlan on its
# bridge, which does not filter by VLAN); containers (attach --netns) of a third job; before attach job 7 reaches job 8's address (the bridge's native VLAN), after
# attach each job reaches its VM on the other node and never the other job's address nor the
# node's own; attach twice changes nothing; detach gives the node back byte-identical
# (`bridge -j vlan show`, `ip -d -j link show` reduced to stable fields, sorted). Needs root.
# Ends with "N passed, N failed". Where the VM cannot start (run-in-vm.sh exits 124 or 125) it
# prints a SKIPPED line, and fails when $CI is set.
#   JOBNET=$PWD/target/debug/jobnet bash .ci/labs/linux-nodes.sh
# ($RUN_IN_VM: run-in-vm.sh when it is not in ../shared/tools/run-in-vm/ beside the checkout)
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$0")/../.."

# --- on the host: boot the VM and run this very script in it ---
if [ -z "${JOBNET_LAB_IN_VM:-}" ]; then
  JOBNET=$(realpath "${JOBNET:-target/debug/jobnet}")
  # The shared tool beside the checkout (/work/shared), unless $RUN_IN_VM names it.
  if [ -z "${RUN_IN_VM:-}" ]; then
    for RUN_IN_VM in "$(realpath -m ../shared/tools/run-in-vm/run-in-vm.sh)" /work/shared/tools/run-in-vm/run-in-vm.sh; do
      [ -f "$RUN_IN_VM" ] && break
    done
  fi
  skipped() {
    echo "SKIPPED: linux-nodes lab: $*"
    if [ -n "${CI:-}" ]; then echo "linux-nodes lab: CI never passes a skipped lab" >&2; exit 1; fi
    exit 0
  }
  [ -x "$JOBNET" ] || { echo "linux-nodes lab: no jobnet binary at $JOBNET (cargo build; or set JOBNET)" >&2; exit 1; }
  [ -f "$RUN_IN_VM" ] || skipped "no run-in-vm.sh at $RUN_IN_VM (set RUN_IN_VM)"
  # The guest runs the host's programs: whatever the lab needs is installed here.
  for c in jq:jq ping:iputils-ping ip:iproute2 bridge:iproute2; do
    command -v "${c%%:*}" >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${c#*:}" >/dev/null; }
  done
  t0=$(date +%s%N)
  rc=0
  JOBNET_LAB_IN_VM=1 JOBNET=$JOBNET bash "$RUN_IN_VM" "bash $SELF" || rc=$?
  echo "linux-nodes lab: wall time $(( ($(date +%s%N) - t0) / 1000000 )) ms, the VM's boot included"
  case $rc in
    124|125) skipped "the VM did not run (run-in-vm.sh exit $rc)" ;;
  esac
  exit "$rc"
fi

# --- in the VM ---
# Every program starts slowly here (TCG, files over 9p; jq takes ~0.4 s): setup runs in `ip -b`
# and `bridge -b` batches, and the node's state is snapshotted raw, then reduced by one jq run
# per backend, and compared after it.
JN=${JOBNET:?}
D=$(mktemp -d /tmp/jobnet-linux-nodes.XXXXXX)
pass=0 fail=0 T0=$EPOCHREALTIME
at() { local us=$(( ${EPOCHREALTIME/./} - ${T0/./} )); printf 't+%d.%ds' $((us / 1000000)) $((us / 100000 % 10)); }
check() { local what=$1; shift; if "$@"; then pass=$((pass+1)); echo "ok   - $what"; else fail=$((fail+1)); echo "FAIL - $what"; fi; }
echo "kernel $(uname -r), $("$JN" --version)"
modprobe 8021q

# jobnet on node N (its namespace, its node.yaml): jn N attach|detach ARGS...
jn() { local n=$1 cmd=$2; shift 2; JOBNET_NODE_CONFIG=$D/$n.yaml ip netns exec "$n" "$JN" node "$cmd" --node "$n" "$@" >/dev/null; }
# The node's state as compared before and after: `bridge -j vlan show` and `ip -d -j link show`,
# snapshotted raw as LABEL.NODE ...
snap() { { bridge -n "$2" -j vlan show; ip -n "$2" -d -j link show; } > "$D/snap/$1.$2"; }
# ... reduced to one line per port's VLANs and per link with the fields that say what is
# configured, none that count, time or number (addresses, indexes, operstate, timers), sorted.
reduce() {
  jq -r -n 'reduce inputs as $x ({}; .[input_filename | sub(".*/"; "")] += [$x]) | to_entries[] | .key as $f | .value as [$vlans, $links] |
    ($vlans | sort_by(.ifname)[] | "\($f)\tvlans \(tojson)"),
    ($links | map({ifname, master, mtu, up: (.flags | any(. == "UP")), kind: .linkinfo.info_kind,
        port_of: .linkinfo.info_slave_kind, vlan_filtering: .linkinfo.info_data.vlan_filtering,
        vlan_id: .linkinfo.info_data.id}) | sort_by(.ifname)[] | "\($f)\tlink \(tojson)")' "$D"/snap/* > "$D/reduced"
}
declare -A VIEW
views() { reduce; VIEW=(); local k v; while IFS=$'\t' read -r k v; do VIEW[$k]+="$v"$'\n'; done < "$D/reduced"; }
same() { # SNAPSHOT SNAPSHOT: the same state, byte for byte
  [ -n "${VIEW[$1]:-}" ] && [ "${VIEW[$1]}" = "${VIEW[$2]:-}" ] && return
  printf %s "${VIEW[$1]:-}" > "$D/a"; printf %s "${VIEW[$2]:-}" > "$D/b"   # (the guest has no /dev/fd)
  echo "    $1 and $2 differ:"; diff "$D/a" "$D/b" | sed 's/^/    /' | head -40; return 1
}
reaches() { ip netns exec "$1" ping -c1 -W2 "$2" >/dev/null 2>&1 || ip netns exec "$1" ping -c2 -W2 "$2" >/dev/null 2>&1; }
# A reply takes milliseconds here (the `reaches` checks): half a second without one is none.
# The isolation checks run at once: `try` in the background, `unanswered PID` for its verdict.
try() { ip netns exec "$1" ping -c1 -W0.5 "$2" >/dev/null 2>&1; }
unanswered() { ! wait "$1"; }
says() { # EXIT WANTED-EXIT REGEX OUTPUT: a command's exit code and what it printed
  [ "$1" = "$2" ] && [[ $4 =~ $3 ]] || { echo "    exit $1: $4"; return 1; }
}
is() { [ "$1" = "$2" ] || { echo "    got:  $1"; echo "    want: $2"; return 1; }; }
records() { find "$D/state" -name '*.json' 2>/dev/null | sort; }

# The VMs' MACs and addresses: job 7's and job 8's are the same (10.7.0.0/24, MAC from the IP).
MAC1=02:00:0a:07:00:0b IP1=10.7.0.11 MAC2=02:00:0a:07:00:0c IP2=10.7.0.12
# network.json as the controller writes it (docs/nodes.md).
network() { # JOB VLAN
  mkdir -p "$D/jobs/$1"
  cat > "$D/jobs/$1/network.json" <<JSON
{"job": "$1", "vlan": $2, "pkey": null, "nodes": ["node1", "node2"],
 "addresses": {"job": "$1", "subnet": "10.7.0.0/24", "gateway": null, "dns": [],
   "vms": [{"name": "vs1", "node": "node1", "ip": "$IP1", "mac": "$MAC1"},
           {"name": "vs2", "node": "node2", "ip": "$IP2", "mac": "$MAC2"}]}}
JSON
}

lab() { # BACKEND
  local b=$1 n i j out rc port filtering=0
  [ "$b" = bridge-vlan ] && filtering=1
  rm -rf "$D/state" "$D/jobs" "$D/snap"; mkdir -p "$D/snap"
  network 7 101; network 8 102; network 9 103
  ip -b - <<<"$(printf 'netns add %s\n' sw node1 node2 vm7n1 vm8n1 vm7n2 vm8n2)"
  # The fabric switch: trunks to both nodes carry 101 and 102 tagged (and its native VLAN 1).
  ip -n sw -b - <<B
link add fab type bridge vlan_filtering 1
link set fab up
link add n1 type veth peer name eth1 netns node1
link add n2 type veth peer name eth1 netns node2
link set n1 master fab up
link set n2 master fab up
B
  bridge -n sw -b - <<<"$(printf 'vlan add dev %s vid %s\n' n1 101 n1 102 n1 103 n2 101 n2 102 n2 103)"
  for i in 1 2; do
    n=node$i
    # The node: vmbr0 with the uplink eth1 and the management port mgmt0, its own address on
    # vmbr0; the VMs' taps (one VM of each job), up and on vmbr0 for bridge-vlan as libvirt or
    # Proxmox plug them.
    ip -n "$n" -b - <<B
link add vmbr0 type bridge vlan_filtering $filtering
link set eth1 master vmbr0 up
link add mgmt0 type veth peer name mgmt0p
link set mgmt0 master vmbr0 up
link set mgmt0p up
link set vmbr0 up
addr add 10.7.0.25$i/24 dev vmbr0
link add t7v1 type veth peer name eth0 netns vm7n$i
link add t8v1 type veth peer name eth0 netns vm8n$i
link set t7v1 up
link set t8v1 up
B
    if [ "$b" = bridge-vlan ]; then
      ip -n "$n" -b - <<<"$(printf 'link set %s master vmbr0\n' t7v1 t8v1)"
      bridge -n "$n" vlan add dev eth1 vid 4000                  # a VLAN the uplink trunks already
    fi
    cat > "$D/$n.yaml" <<YAML
jobs_dir: $D/jobs
state_dir: $D/state
backend: $b
bridge: vmbr0
uplink: eth1
management: mgmt0
interface: "t{job}v{slot}"
YAML
    # Each VM configures its MAC and address from network.json, as cloud-init would.
    local mac=MAC$i ip=IP$i
    for j in 7 8; do
      ip -n "vm${j}n$i" -b - <<<"link set eth0 address ${!mac}
addr add ${!ip}/24 dev eth0"
    done
  done
  if [ "$b" = bridge-vlan ]; then
    bridge -n node1 vlan add dev t7v1 vid 7-9 untagged          # and a range to give back
  else
    ip -n node1 link set t7v1 master vmbr0                     # the other two stay unplugged
    ip -n node2 link set t8v1 master vmbr0
  fi
  ip -n vm8n2 addr add 10.7.0.99/24 dev eth0                  # only job 8 has this address
  # vm8n1 has vm7n1's MAC and address: its link stays down until the VLANs keep them apart.
  for n in vm7n1 vm7n2 vm8n2; do ip -n "$n" link set eth0 up; done
  snap before node1; snap before node2

  echo "# $b: the node's own interfaces are never a VM's ($(at))"
  for port in eth1 vmbr0 mgmt0; do
    out=$(jn node1 attach --job 7 --vm "vs1=$port" 2>&1) && rc=0 || rc=$?
    check "$b: $port is refused as a VM interface (exit 2, named)" says "$rc" 2 "interface $port is .*never a VM interface: nothing was changed" "$out"
  done
  if [ "$b" = bridge-classic ]; then
    sed 's/^bridge: vmbr0$/bridge: vmbr-cluster1/' "$D/node1.yaml" > "$D/long.yaml"
    out=$(JOBNET_NODE_CONFIG=$D/long.yaml ip netns exec node1 "$JN" node attach --job 7 --node node1 2>&1) && rc=0 || rc=$?
    check "$b: a VLAN bridge name past 15 bytes is refused, named (exit 2)" says "$rc" 2 'the bridge for VLAN 101 would be `vmbr-cluster1v101`' "$out"
    # The same node taken for a VLAN-aware one: its vmbr0 filters nothing, so no isolation.
    sed 's/^backend: bridge-classic$/backend: bridge-vlan/' "$D/node1.yaml" > "$D/nofilter.yaml"
    out=$(JOBNET_NODE_CONFIG=$D/nofilter.yaml ip netns exec node1 "$JN" node attach --job 7 --node node1 2>&1) && rc=0 || rc=$?
    check "bridge-vlan on a bridge without VLAN filtering is refused, named (exit 2)" says "$rc" 2 'the bridge vmbr0 does not filter by VLAN .*nothing was changed' "$out"
  fi
  snap refused node1
  check "$b: nothing was recorded" test -z "$(records)"
  check "$b: before attach, job 7 reaches job 8's address (the bridge's native VLAN)" reaches vm7n1 10.7.0.99

  echo "# $b: attach ($(at))"
  for n in node1 node2; do
    for j in 7 8; do check "$b: attach job $j on $n" jn "$n" attach --job "$j"; done
  done
  ip -n vm8n1 link set eth0 up
  for n in vm7n1 vm7n2 vm8n1 vm8n2; do ip -n "$n" neigh flush all; done
  if [ "$b" = bridge-vlan ]; then
    check "$b: node1's uplink trunks 101 and 102 besides 1 (native) and 4000" is "$(bridge -n node1 -j vlan show dev eth1)" \
      '[{"ifname":"eth1","vlans":[{"vlan":1,"flags":["PVID","Egress Untagged"]},{"vlan":101},{"vlan":102},{"vlan":4000}]}]'
    check "$b: node1's tap of job 7 is an untagged member of 101 only" is "$(bridge -n node1 -j vlan show dev t7v1)" \
      '[{"ifname":"t7v1","vlans":[{"vlan":101,"flags":["PVID","Egress Untagged"]}]}]'
  else
    check "$b: node1's tap of job 7 is on vmbr0v101, over eth1.101" is \
      "$(ip -n node1 -o link show master vmbr0v101 | cut -d' ' -f2 | sort | tr '\n' ' ')" "eth1.101@eth1: t7v1@if2: "
  fi
  snap attached node1
  local rec; rec=$(cat "$D/state/node1/7.json")
  check "$b: attach twice succeeds" jn node1 attach --job 7
  check "$b: ... and its record is as after the first attach" is "$(cat "$D/state/node1/7.json")" "$rec"
  snap twice node1
  check "$b: job 7 reaches its VM on node2 ($IP2)" reaches vm7n1 "$IP2"
  check "$b: job 8 reaches its VM on node2 (the same $IP2)" reaches vm8n1 "$IP2"
  check "$b: job 8 reaches its address 10.7.0.99" reaches vm8n1 10.7.0.99
  local p1 p2 p3
  try vm7n1 10.7.0.99 & p1=$!
  try vm7n1 10.7.0.251 & p2=$!
  try vm8n2 10.7.0.252 & p3=$!
  check "$b: job 7 does not reach job 8's address 10.7.0.99" unanswered $p1
  check "$b: job 7 does not reach node1's own address" unanswered $p2
  check "$b: job 8 does not reach node2's own address" unanswered $p3

  echo "# $b: containers of job 9 (VLAN 103, the same addresses), attach --netns ($(at))"
  ip netns add ct9n1; ip netns add ct9n2
  check "$b: a container of job 9 on node1 (attach --netns)" jn node1 attach --job 9 --vm vs1 --netns /var/run/netns/ct9n1
  check "$b: a container of job 9 on node2 (attach --netns)" jn node2 attach --job 9 --vm vs2 --netns /var/run/netns/ct9n2
  check "$b: job 9's containers reach each other across the fabric ($IP2)" reaches ct9n1 "$IP2"
  try ct9n1 10.7.0.99 & p1=$!
  try ct9n2 10.7.0.252 & p2=$!
  check "$b: job 9's container does not reach job 8's address" unanswered $p1
  check "$b: job 9's container does not reach node2's own address" unanswered $p2

  echo "# $b: detach ($(at))"
  for n in node1 node2; do
    for j in 7 8 9; do check "$b: detach job $j on $n" jn "$n" detach --job "$j"; done
  done
  out=$(JOBNET_NODE_CONFIG=$D/node1.yaml ip netns exec node1 "$JN" node detach --job 7 --node node1 2>&1) && rc=0 || rc=$?
  check "$b: detach twice is harmless" says "$rc" 0 "not attached" "$out"
  check "$b: no record is left (the lock files stay)" test -z "$(records)"
  snap after node1; snap after node2

  echo "# $b: the nodes' bridges and links (bridge -j vlan show, ip -d -j link show) ($(at))"
  views
  check "$b: refused ports changed nothing on node1" same before.node1 refused.node1
  check "$b: attach twice changed nothing on node1" same attached.node1 twice.node1
  check "$b: node1 is byte-identical to before attach" same before.node1 after.node1
  check "$b: node2 is byte-identical to before attach" same before.node2 after.node2

  ip -b - <<<"$(ip netns list | awk '{print "netns del " $1}')"
}

lab bridge-vlan
lab bridge-classic
echo "linux-nodes lab: $pass passed, $fail failed ($SECONDS s in the VM)"
[ "$fail" = 0 ]
