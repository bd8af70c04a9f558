#!/usr/bin/env bash
# The node side, from VM to VM across the fabric, on real Open vSwitch userspace switches:
# three fabric switches in a triangle; four nodes, each an OVS "node bridge" whose uplink is a
# veth into its switch port; each VM a network namespace whose veth is the VM's tap on the node
# bridge. The controller side brings two jobs up (2 nodes x 2 VMs each) and writes their
# network.json; `jobnet-node prepare` (the per-node Prolog; the nodes' own binary, the same
# commands as `jobnet node …`, which the linux-nodes lab runs) readies each node's uplink and
# `jobnet-node attach` (the VM launcher) puts the VMs on the job VLAN. Then: every VM
# of a job reaches every other (same node and across switches), nothing of the other job nor the
# node's management address; faults are refused cleanly; detach + down give back byte-identical
# switches and node bridges. Then the CNI plugin, driven as a runtime drives it (with the
# reference `static` IPAM plugin chained in), and twenty ADDs and DELs at once for two jobs on
# one node; then `attach` and a CNI ADD killed after each of their commands in turn, each
# followed by detach/DEL: the node is exactly as before every time. Needs root.
# Ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
JOBNET=$(realpath "${JOBNET:-target/debug/jobnet}")
# The nodes' own binary (the jobnet-node crate: no SSH, no state store) runs the node side.
JOBNET_NODE=$(realpath "${JOBNET_NODE:-$(dirname "$JOBNET")/jobnet-node}")
[ -x "$JOBNET_NODE" ] || { echo "nodes lab: no jobnet-node binary at $JOBNET_NODE (cargo build; or set JOBNET_NODE)" >&2; exit 1; }
D=$(mktemp -d /tmp/jobnet-nodes.XXXXXX)
chmod 0755 "$D"
pass=0 fail=0
check() { local what=$1; shift; if "$@"; then pass=$((pass+1)); echo "ok   - $what"; else fail=$((fail+1)); echo "FAIL - $what"; fi; }
install() { local c p; for c in "$@"; do p=${c#*:}; command -v "${c%%:*}" >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null; }; done; }
install ovs-vsctl:openvswitch-switch ping:iputils-ping python3:python3 nsenter:util-linux
[ -x /usr/lib/cni/static ] || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containernetworking-plugins >/dev/null; }

NS=(); LINKS=()
cleanup() {
  local n
  for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  for n in "${LINKS[@]}"; do ip link del "$n" 2>/dev/null || true; done
  for f in vswitchd ovsdb; do [ -f "$D/$f.pid" ] && kill "$(cat "$D/$f.pid")" 2>/dev/null; done
  sleep 0.3
  for n in fa fb fc brn1 brn2 brn3 brn4; do ip link del "$n" 2>/dev/null || true; done
  if ! pgrep -x ovs-vswitchd >/dev/null; then ip link del ovs-netdev 2>/dev/null || true; fi
  if [ "$fail" = 0 ]; then rm -rf "$D"; else echo "lab kept in $D"; fi
}
trap cleanup EXIT

export OVS_RUNDIR=$D OVS_LOGDIR=$D OVS_DBDIR=$D
ovsdb-tool create "$D/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server "$D/conf.db" --remote="punix:$D/db.sock" --pidfile="$D/ovsdb.pid" --detach -vconsole:off --log-file="$D/ovsdb.log" --unixctl="$D/ovsdb.ctl"
V=(ovs-vsctl --db="unix:$D/db.sock" --timeout=10)
"${V[@]}" --no-wait init
ovs-vswitchd "unix:$D/db.sock" --pidfile="$D/vswitchd.pid" --detach -vconsole:off --log-file="$D/vswitchd.log" --unixctl="$D/vswitchd.ctl"
veth() { ip link add "$1" type veth peer name "$2"; ip link set "$1" up; ip link set "$2" up; LINKS+=("$1"); }
for b in fa fb fc brn1 brn2 brn3 brn4; do "${V[@]}" add-br "$b" -- set bridge "$b" datapath_type=netdev; done
# The triangle: every trunk carries only a placeholder VLAN until a job adds its own.
veth fa-b fb-a; veth fb-c fc-b; veth fc-a fa-c
"${V[@]}" add-port fa fa-b trunks=4094 -- add-port fb fb-a trunks=4094 -- add-port fb fb-c trunks=4094 \
  -- add-port fc fc-b trunks=4094 -- add-port fc fc-a trunks=4094 -- add-port fa fa-c trunks=4094
# Nodes: node1 on fa, node2 on fb, node3 on fc, node4 on fa; uplink nNup on the node bridge.
sw=(x fa fb fc fa)
for i in 1 2 3 4; do
  veth "n${i}up" "n${i}sw"
  "${V[@]}" add-port "brn$i" "n${i}up" trunks=4094 -- add-port "${sw[$i]}" "n${i}sw" trunks=4094
  # Two VM taps per node, parked on a VLAN of their own; a management port on VLAN 4000.
  for s in 1 2; do
    ip netns add "node${i}v$s"; NS+=("node${i}v$s")
    ip link add "node${i}v$s" type veth peer name eth0 netns "node${i}v$s"; ip link set "node${i}v$s" up
    ip -n "node${i}v$s" link set eth0 up; ip -n "node${i}v$s" link set lo up
    "${V[@]}" add-port "brn$i" "node${i}v$s" tag=$((4000 + i * 10 + s))
  done
  ip netns add "m$i"; NS+=("m$i")
  ip link add "m$i" type veth peer name eth0 netns "m$i"; ip link set "m$i" up
  ip -n "m$i" link set eth0 up
  "${V[@]}" add-port "brn$i" "m$i" tag=4000
done
state() {
  local b ports
  for b in fa fb fc brn1 brn2 brn3 brn4; do
    echo "== $b"
    mapfile -t ports < <("${V[@]}" list-ports "$b")
    "${V[@]}" --format=csv --columns=name,tag,trunks list port "${ports[@]}" | sort
  done
}
BASE=$(state)

# --- the controller side: topology, site configuration, two jobs ---
J=$D/jobnet; mkdir -p "$J/drivers" "$J/shared" "$J/nodestate"
sed "s#ovs-vsctl #ovs-vsctl --db=unix:$D/db.sock #g" switch-drivers/openvswitch.yaml > "$J/drivers/openvswitch.yaml"
cat > "$J/topology.yaml" <<YAML
name: nodes-lab
ethernet: {vlan_pool: "200-299", node_port_mode: tagged}
switches:
  - {name: fa, driver: openvswitch, address: local}
  - {name: fb, driver: openvswitch, address: local}
  - {name: fc, driver: openvswitch, address: local}
links:
  - {a: "fa:fa-b", b: "fb:fb-a"}
  - {a: "fb:fb-c", b: "fc:fc-b"}
  - {a: "fc:fc-a", b: "fa:fa-c"}
nodes:
  - {name: node1, port: "fa:n1sw"}
  - {name: node2, port: "fb:n2sw"}
  - {name: node3, port: "fc:n3sw"}
  - {name: node4, port: "fa:n4sw"}
YAML
cat > "$J/jobnet.yaml" <<YAML
topology: $J/topology.yaml
state: $J/state/state.db
log: $J/hooks.log
drivers_dir: $J/drivers
jobs_dir: $J/shared
addresses: {pool: 10.90.0.0/16, prefix: 24, first: 10, names: "vs{n}", dir: $J/shared}
YAML
cat > "$J/node.yaml" <<YAML
jobs_dir: $J/shared
state_dir: $J/nodestate
backend: ovs
ovs_db: unix:$D/db.sock
interface: "{node}v{slot}"
nodes:
  node1: {bridge: brn1, uplink: n1up, management: [m1]}
  node2: {bridge: brn2, uplink: n2up, management: [m2]}
  node3: {bridge: brn3, uplink: n3up, management: [m3]}
  node4: {bridge: brn4, uplink: n4up, management: [m4]}
YAML
printf '[VM]\nTemplate=/images/vm.qcow2\n[Network]\nVlan=auto\nPkey=none\nVMs=2\n' > "$J/passport.ini"
export JOBNET_CONFIG=$J/jobnet.yaml JOBNET_NODE_CONFIG=$J/node.yaml
JN=("$JOBNET")
JNODE=("$JOBNET_NODE")
check "job A comes up on node1 (fa) and node3 (fc)" "${JN[@]}" job up --passport "$J/passport.ini" --job A --nodes node1,node3 --format json
check "job B comes up on node2 (fb) and node4 (fa)" "${JN[@]}" job up --passport "$J/passport.ini" --job B --nodes node2,node4 --format json
check "the controller wrote network.json for the nodes" test -s "$J/shared/A/network.json"

# The VMs configure themselves from their addresses (cloud-init would): MAC and IP in the netns.
vm_ip() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print([v["ip"] for v in d["addresses"]["vms"] if v["name"]==sys.argv[2]][0])' "$J/shared/$1/network.json" "$2"; }
configure_vms() { # job node...
  local job=$1; shift
  python3 - "$J/shared/$job/network.json" "$@" <<'PY' | while read -r ns mac ip prefix; do ip -n "$ns" link set eth0 address "$mac"; ip -n "$ns" addr replace "$ip/$prefix" dev eth0; done
import json, sys
d = json.load(open(sys.argv[1])); nodes = sys.argv[2:]
prefix = d["addresses"]["subnet"].split("/")[1]
slots = {}
for v in d["addresses"]["vms"]:
    slots[v["node"]] = slots.get(v["node"], 0) + 1
    print(f'{v["node"]}v{slots[v["node"]]} {v["mac"]} {v["ip"]} {prefix}')
PY
}
# The per-node Prolog (every job, before its VMs exist) prepares the uplink; the VM launcher
# attaches the VMs. A job the controller wrote no network for: prepare has nothing to do
# (exit 0), a launcher's attach exits 3 with nothing changed.
before=$(state)
check "the prolog's prepare of a job without a network: exit 0" "${JNODE[@]}" prepare --job NONET --node node1
out=$("${JNODE[@]}" attach --job NONET --node node1 --vm vs1=node1v1 2>&1) && rc=0 || rc=$?
check "a launcher's attach of a job without a network: exit 3, said" sh -c "[ $rc = 3 ] && echo \"\$0\" | grep -q 'would not be on a job network: nothing was changed'" "$out"
check "and nothing changed" test "$(state)" = "$before"
for n in node1 node3; do check "the prolog prepares node $n for job A" "${JNODE[@]}" prepare --job A --node "$n"; done
vlanA=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vlan"])' "$J/shared/A/network.json")
check "node1's uplink carries job A's VLAN $vlanA after prepare" sh -c "ovs-vsctl --db=unix:$D/db.sock get port n1up trunks | grep -qw $vlanA"
for n in node1 node3; do check "attach job A on $n" "${JNODE[@]}" attach --job A --node "$n"; done
for n in node2 node4; do check "attach job B on $n" "${JNODE[@]}" attach --job B --node "$n"; done
configure_vms A; configure_vms B
check "attach is safe to run twice" "${JNODE[@]}" attach --job A --node node1
reaches() { ip netns exec "$1" ping -c1 -W1 "$2" >/dev/null 2>&1 || ip netns exec "$1" ping -c2 -W1 "$2" >/dev/null 2>&1; }
for src in node1v1 node1v2 node3v1 node3v2; do
  for dst in vs1 vs2 vs3 vs4; do
    ip=$(vm_ip A "$dst")
    check "job A: $src reaches $dst ($ip)" reaches "$src" "$ip"
  done
done
for src in node2v1 node4v2; do
  for dst in vs1 vs4; do check "job B: $src reaches $dst" reaches "$src" "$(vm_ip B "$dst")"; done
done
# Isolation at layer 2: an address of job A's subnet on a B VM and on node1's management port.
aip=$(vm_ip A vs1); anet=${aip%.*}
ip -n node2v1 addr add "$anet.200/24" dev eth0
ip -n m1 addr add "$anet.250/24" dev eth0
isolated() { ! ip netns exec "$1" ping -c2 -W1 "$2" >/dev/null 2>&1; }
check "job A's VMs do not reach job B's VM (same subnet, other VLAN)" isolated node1v1 "$anet.200"
check "job A's VMs do not reach node1's management address" isolated node1v1 "$anet.250"
check "nor across the fabric" isolated node3v1 "$anet.200"

# --- faults ---
before=$(state)
sed 's/node3: {bridge: brn3, uplink: n3up,/node3: {bridge: brn3, uplink: n3gone,/' "$J/node.yaml" > "$J/node-bad.yaml"
out=$("${JNODE[@]}" attach --job A --node node3 --config "$J/node-bad.yaml" 2>&1) && rc=0 || rc=$?
check "attach with a missing uplink: exit 2, the uplink named" sh -c "[ $rc = 2 ] && echo \"\$0\" | grep -q 'uplink n3gone is not a port of bridge brn3: nothing was changed'" "$out"
check "and nothing changed" test "$(state)" = "$before"
check "detach of a job never attached: exit 0" "${JNODE[@]}" detach --job NEVER --node node1
for port in n1up m1 brn1 n2up; do
  out=$("${JNODE[@]}" attach --job A --node node1 --vm "vs1=$port" 2>&1) && rc=0 || rc=$?
  check "the node's own interface $port is refused as a VM interface (exit 2, named)" sh -c "[ $rc = 2 ] && echo \"\$0\" | grep -q 'interface $port is .*never a VM interface: nothing was changed'" "$out"
done
check "and nothing changed" test "$(state)" = "$before"

# --- the CNI plugin, as a runtime drives it ---
mkdir -p "$J/cni"; ln -sf "$JOBNET_NODE" "$J/cni/jobnet-cni"
CNIPATH=$J/cni:/usr/lib/cni
check "job C (for containers) comes up on node1 and node3" "${JN[@]}" job up --passport "$J/passport.ini" --job C --nodes node1,node3
out=$("${JNODE[@]}" attach --job C --node node1 --vm vs1=node1v1 2>&1) && rc=0 || rc=$?
check "a VM interface of job A is refused to job C" sh -c "[ $rc = 2 ] && echo \"\$0\" | grep -q 'interface node1v1 is attached to job A'" "$out"
conf() { # BRIDGE UPLINK NODE [EXTRA [JOB]]
  local job=${5:-C}
  printf '{"cniVersion":"1.0.0","name":"job-%s","type":"jobnet-cni","job":"%s","jobs_dir":"%s","state_dir":"%s","bridge":"%s","uplink":"%s","ovs_db":"unix:%s/db.sock","node":"%s"%s}' "$job" "$job" "$J/shared" "$J/nodestate" "$1" "$2" "$D" "$3" "${4:-}"
}
cni() { # COMMAND CONTAINER NETNS CONF
  CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=$3 CNI_IFNAME=eth0 CNI_PATH=$CNIPATH "$J/cni/jobnet-cni" <<<"$4"
}
for c in c1 c2 cx; do ip netns add "$c"; NS+=("$c"); done
check "VERSION lists 1.0.0" sh -c "CNI_COMMAND=VERSION '$J/cni/jobnet-cni' </dev/null | grep -q '\"1.0.0\"'"
r1=$(cni ADD c1 /var/run/netns/c1 "$(conf brn1 n1up node1)") && ok1=0 || ok1=$?
check "ADD c1 (node1): a result with the job's address" sh -c "[ $ok1 = 0 ] && echo \"\$0\" | grep -q '\"address\": \"10.90.2.'" "$r1"
STATIC=',"ipam":{"type":"static","addresses":[{"address":"10.90.2.77/24"}]}'
r2=$(cni ADD c2 /var/run/netns/c2 "$(conf brn3 n3up node3 "$STATIC")") && ok2=0 || ok2=$?
check "ADD c2 (node3) with the static IPAM plugin chained in" sh -c "[ $ok2 = 0 ] && echo \"\$0\" | grep -q '10.90.2.77/24'" "$r2"
check "c1 reaches c2 across the fabric" reaches c1 10.90.2.77
# cx: a container of job A's network (same subnet as C's, other VLAN): unreachable.
ip link add cxh type veth peer name eth0 netns cx; LINKS+=(cxh); ip link set cxh up
ip -n cx link set eth0 up; ip -n cx addr add 10.90.2.99/24 dev eth0
"${V[@]}" add-port brn1 cxh tag="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vlan"])' "$J/shared/A/network.json")"
check "another job's container cannot reach c1" isolated cx "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["ips"][0]["address"].split("/")[0])' "$r1")"
"${V[@]}" del-port brn1 cxh
check "CHECK c1 passes" cni CHECK c1 /var/run/netns/c1 "$(conf brn1 n1up node1)"
err=$(cni ADD c9 /var/run/netns/c1 '{"cniVersion":"1.0.0","name":"x","type":"jobnet-cni"}') && rc=0 || rc=$?
check "a configuration without a job: CNI error JSON (code 7), exit 1" sh -c "[ $rc = 1 ] && echo \"\$0\" | grep -q '\"code\": 7'" "$err"
check "DEL c1" cni DEL c1 /var/run/netns/c1 "$(conf brn1 n1up node1)"
check "DEL c1 again is harmless" cni DEL c1 /var/run/netns/c1 "$(conf brn1 n1up node1)"
check "DEL c2" cni DEL c2 /var/run/netns/c2 "$(conf brn3 n3up node3 "$STATIC")"

# --- twenty ADDs at once for two jobs on node1, then twenty DELs at once ---
printf '[VM]\nTemplate=/images/vm.qcow2\n[Network]\nVlan=auto\nPkey=none\nVMs=10\n' > "$J/passport10.ini"
check "jobs D and E (10 VM slots each) come up on node1" sh -c "'$JOBNET' job up --passport '$J/passport10.ini' --job D --nodes node1 >/dev/null && '$JOBNET' job up --passport '$J/passport10.ini' --job E --nodes node1 >/dev/null"
trunks_before=$("${V[@]}" get port n1up trunks)
for i in $(seq 1 20); do ip netns add "p$i"; NS+=("p$i"); done
par() { # COMMAND: twenty containers pI, even ones of job D, odd ones of job E, all at once
  local i
  for i in $(seq 1 20); do
    ( if [ $((i % 2)) = 0 ]; then j=D; else j=E; fi
      cni "$1" "p$i" "/var/run/netns/p$i" "$(conf brn1 n1up node1 "" $j)" > "$D/$1-$i.out" 2> "$D/$1-$i.err" && rc=0 || rc=$?
      echo "$rc" > "$D/$1-$i.rc" ) &
  done
  wait
}
all_ok() { local i; for i in $(seq 1 20); do [ "$(cat "$D/$1-$i.rc")" = 0 ] || { cat "$D/$1-$i.out" "$D/$1-$i.err"; return 1; }; done; }
par ADD
check "twenty parallel ADDs succeed" all_ok ADD
distinct() {
  python3 - "$D" <<'PY'
import json, sys
ips, macs = set(), set()
for i in range(1, 21):
    r = json.load(open(f"{sys.argv[1]}/ADD-{i}.out"))
    ips.add(r["ips"][0]["address"]); macs.add(r["interfaces"][1]["mac"])
sys.exit(0 if len(ips) == 20 and len(macs) == 20 else 1)
PY
}
check "twenty different VM slots: twenty addresses, twenty MACs" distinct
check "twenty veths on node1's bridge" test "$("${V[@]}" list-ports brn1 | grep -c '^jn')" = 20
macs_in_containers() {
  local i mac
  for i in $(seq 1 20); do
    mac=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["interfaces"][1]["mac"])' "$D/ADD-$i.out")
    ip -n "p$i" link show eth0 | grep -qi "$mac" || return 1
  done
}
check "each container has its slot's MAC" macs_in_containers
par DEL
check "twenty parallel DELs succeed" all_ok DEL
no_veths() { ! "${V[@]}" list-ports brn1 | grep -q '^jn' && ! ip -o link | grep -q ': jn'; }
check "every veth is gone (bridge and node)" no_veths
check "node1's uplink carries what it did before" test "$("${V[@]}" get port n1up trunks)" = "$trunks_before"

# --- killed after each command (kill -9 as abort), on real Open vSwitch ---
# The test-kit binary dies right after its N-th command on the node ($JOBNET_FAILPOINT_NODE);
# for every N until one run finishes: whatever it changed is recorded, and detach (or the
# container's DEL) gives node1 back exactly what it had.
check "job K comes up on node1" "${JN[@]}" job up --passport "$J/passport.ini" --job K --nodes node1
for k in kv1 kv2; do ip link add "$k" type veth peer name "${k}p"; LINKS+=("$k"); ip link set "$k" up; done
ip netns add ck; NS+=(ck)
killed_attach() {
  local n=1 rc before attached; before=$(state)
  "${JNODE[@]}" attach --job K --node node1 --vm vs1=kv1 --vm vs2=kv2 >/dev/null || return 1
  attached=$(state)
  "${JNODE[@]}" detach --job K --node node1 >/dev/null || return 1
  while :; do
    # (in a subshell whose stderr is dropped: bash's "Aborted" notice is expected here)
    rc=0; (JOBNET_FAILPOINT_NODE=$n "${JNODE[@]}" attach --job K --node node1 --vm vs1=kv1 --vm vs2=kv2 >/dev/null 2>&1; exit $?) 2>/dev/null || rc=$?
    if [ "$(state)" != "$before" ] && [ -z "$(find "$J/nodestate" -name K.json)" ]; then echo "killed after command $n: a change no record names"; return 1; fi
    # Odd N: the launcher tries again, and the node is as one clean attach leaves it.
    if [ "$rc" = 134 ] && [ $((n % 2)) = 1 ]; then
      "${JNODE[@]}" attach --job K --node node1 --vm vs1=kv1 --vm vs2=kv2 >/dev/null || { echo "re-attach after a kill at $n failed"; return 1; }
      [ "$(state)" = "$attached" ] || { echo "re-attach after a kill at $n: node1 is not as after one attach"; return 1; }
    fi
    "${JNODE[@]}" detach --job K --node node1 >/dev/null || { echo "detach after a kill at $n failed"; return 1; }
    [ "$(state)" = "$before" ] || { echo "attach killed after command $n: node1 is not as before"; return 1; }
    [ "$rc" = 0 ] && { echo "attach ran $n command(s); killed after each of the first $((n - 1))"; [ "$n" -gt 3 ]; return; }
    [ "$rc" = 134 ] || { echo "attach with a kill after command $n: exit $rc"; return 1; }
    n=$((n + 1))
  done
}
check "attach killed after each of its commands: a re-attach finishes it, detach gives node1 back exactly" killed_attach
killed_add() {
  local n=1 rc before; before=$(state)
  while :; do
    rc=0; (JOBNET_FAILPOINT_NODE=$n cni ADD ck /var/run/netns/ck "$(conf brn1 n1up node1 "" K)" >/dev/null 2>&1; exit $?) 2>/dev/null || rc=$?
    cni DEL ck /var/run/netns/ck "$(conf brn1 n1up node1 "" K)" >/dev/null || { echo "DEL after a kill at $n failed"; return 1; }
    [ "$(state)" = "$before" ] || { echo "ADD killed after command $n: node1 is not as before"; return 1; }
    ip -o link | grep -q ': jn' && { echo "ADD killed after command $n: a veth is left"; return 1; }
    [ "$rc" = 0 ] && { echo "ADD ran $n command(s); killed after each of the first $((n - 1))"; [ "$n" -gt 5 ]; return; }
    [ "$rc" = 134 ] || { echo "ADD with a kill after command $n: exit $rc"; return 1; }
    n=$((n + 1))
  done
}
check "a CNI ADD killed after each of its commands: DEL gives node1 back exactly" killed_add
check "no record of job K is left" test -z "$(find "$J/nodestate" -name K.json)"

# --- the end: detach everywhere, down, byte-identical switches and node bridges ---
for n in node1 node3; do check "detach job A on $n" "${JNODE[@]}" detach --job A --node "$n"; done
for n in node2 node4; do check "detach job B on $n" "${JNODE[@]}" detach --job B --node "$n"; done
check "detach twice is harmless" "${JNODE[@]}" detach --job A --node node1
for j in A B C D E K; do check "job $j down" "${JN[@]}" job down --job "$j"; done
check "switches and node bridges are byte-identical to before" test "$(state)" = "$BASE"
check "no node record is left (the lock files stay)" test -z "$(find "$J/nodestate" -type f -name '*.json')"

echo "nodes lab: $pass passed, $fail failed"
[ "$fail" = 0 ]
