#!/usr/bin/env bash
# Real Slurm (slurm-wlm 22.05 + munge: one slurmctld, slurmd node001..node004 on 127.0.0.11-14)
# drives jobnet through PrologSlurmctld/EpilogSlurmctld, installed as docs/slurm.md tells a site,
# on a fabric of two real Open vSwitch switches whose access ports stand for the four nodes
# (hosts h1..h4 in network namespaces behind them). Proves: a policy job and a job asking in its
# comment get exactly their ports and trunks and their address files, and the fabric is
# byte-identical afterwards; two jobs get different VLANs and only reach their own hosts; a device
# fault rolls back and requeues, and the second failure holds the job; slurmctld killed during a
# prolog reruns it to a correct network; a job that asked for nothing is untouched.
# Needs root. Ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
JOBNET=$(realpath "${JOBNET:-target/debug/jobnet}")
# shellcheck source=.ci/labs/slurm-setup.sh
source .ci/labs/slurm-setup.sh
D=$(mktemp -d /tmp/jobnet-slurm.XXXXXX)
chmod 0755 "$D"
pass=0 fail=0
check() { local what=$1; shift; if "$@"; then pass=$((pass+1)); echo "ok   - $what"; else fail=$((fail+1)); echo "FAIL - $what"; fi; }
cleanup() {
  local i
  slurm_lab_stop || true
  for i in 1 2 3 4; do
    ip netns del "node00${i}v1" 2>/dev/null || true
    ip link del "n${i}up" 2>/dev/null || true
  done
  ovs_lab_stop || true
  for i in 1 2 3 4; do ip link del "brn$i" 2>/dev/null || true; done
  if [ "$fail" = 0 ]; then rm -rf "$D"; else echo "lab kept in $D"; fi
}
trap cleanup EXIT

# The user slurm comes with the packages: installed before anything is given to it.
slurm_lab_install
ovs_lab_start "$D/ovs"
V=(ovs-vsctl --db="unix:$D/ovs/db.sock" --timeout=10)
ovs_state() { "${V[@]}" --format=csv --columns=name,tag,trunks list port | sort; }
tag_of() { "${V[@]}" get port "$1" tag; }
trunks_of() { "${V[@]}" get port "$1" trunks; }

# --- jobnet installed as docs/slurm.md says ---
J=$D/jobnet
mkdir -p "$J/bin" "$J/drivers" "$J/state" "$J/log" "$J/net"
cp "$JOBNET" "$J/bin/jobnet"
ln -s jobnet "$J/bin/jobnet-slurmctld-prolog"
ln -s jobnet "$J/bin/jobnet-slurmctld-epilog"
chown slurm:slurm "$J/state" "$J/log" "$J/net"
chmod 0700 "$J/state"
# The ovsdb socket is not at its default path here: a site copy of the profile names it.
sed "s#ovs-vsctl #ovs-vsctl --db=unix:$D/ovs/db.sock #g" switch-drivers/openvswitch.yaml > "$J/drivers/openvswitch.yaml"
cat > "$J/topology.yaml" <<YAML
name: slurm-lab
ethernet: {vlan_pool: "100-199", node_port_mode: access}
switches:
  - {name: jnsw1, driver: openvswitch, address: local}
  - {name: jnsw2, driver: openvswitch, address: local}
links:
  - {a: "jnsw1:jntr1", b: "jnsw2:jntr2"}
nodes:
  - {name: "node[001-002]", port: "jnsw1:h[1-2]-sw"}
  - {name: "node[003-004]", port: "jnsw2:h[3-4]-sw"}
YAML
cat > "$J/jobnet.yaml" <<YAML
topology: $J/topology.yaml
state: $J/state/state.db
log: $J/log/hooks.log
drivers_dir: $J/drivers
service_user: slurm
wait: 20
programs: {ovs-vsctl: /usr/bin/ovs-vsctl, scontrol: /usr/bin/scontrol}
policy:
  - {partitions: [vm], network: {vlan: auto, ib: no}}
  - {partitions: ["*"], requests: allow}
failure: {hold_after: 2}
addresses: {pool: 10.80.0.0/16, prefix: 24, first: 10, gateway: 1, names: "vs{n}", dir: $J/net}
YAML
check "the lab's topology and hook configuration are valid" "$J/bin/jobnet" topology validate --drivers-dir "$J/drivers" "$J/topology.yaml"

SLURM_LAB_CRED_EXPIRE=5 SLURM_LAB_EXTRA="SchedulerParameters=batch_sched_delay=0,bf_interval=2,sched_interval=5" \
  slurm_lab_start "$D/slurm" "$J/bin/jobnet-slurmctld-prolog" "$J/bin/jobnet-slurmctld-epilog"
HOOKENV=$D/slurm/run/hook.env
echo "JOBNET_CONFIG=$J/jobnet.yaml; export JOBNET_CONFIG" > "$HOOKENV"
id jnuser >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin jnuser
as_user() { runuser -u jnuser -- env SLURM_CONF="$SLURM_CONF" SBATCH_OUTPUT="$SBATCH_OUTPUT" "$@"; }
JN=("$J/bin/jobnet" --state "$J/state/state.db")
vlan_of() { "${JN[@]}" status --job "$1" --format json | sed -n 's/^ *"vlan": \([0-9]*\),*$/\1/p' | head -1; }
state_of() { "${JN[@]}" status --job "$1" --format json 2>/dev/null | sed -n 's/^ *"state": "\([a-z-]*\)",*$/\1/p' | head -1; }
hosts_of() { scontrol show hostnames "$(squeue -h -j "$1" -o %N)"; }
host() { echo "h$((10#${1#node}))"; }   # node003 -> h3
parking() { echo $((4089 + 10#${1#node})); }
reaches() { ip netns exec "$1" ping -c1 -W1 "10.78.0.${2#h}" >/dev/null 2>&1 || ip netns exec "$1" ping -c2 -W1 "10.78.0.${2#h}" >/dev/null 2>&1; }
BASE=$(ovs_state)

# Exactly the job's nodes carry its VLAN, every other node keeps its parking VLAN, the trunk
# carries it when the job spans both switches.
network_is_right() {
  local id=$1 v n on s1=0 s2=0
  v=$(vlan_of "$id"); [ -n "$v" ] || return 1
  on=" $(hosts_of "$id" | tr '\n' ' ') "
  for n in node001 node002 node003 node004; do
    if [[ $on == *" $n "* ]]; then
      [ "$(tag_of "$(host "$n")-sw")" = "$v" ] || return 1
      case $n in node00[12]) s1=1 ;; *) s2=1 ;; esac
    else
      [ "$(tag_of "$(host "$n")-sw")" != "$v" ] || return 1
    fi
  done
  if [ $s1 = 1 ] && [ $s2 = 1 ]; then
    [[ $(trunks_of jntr1) == *"$v"* ]] && [[ $(trunks_of jntr2) == *"$v"* ]]
  else
    [[ $(trunks_of jntr1) != *"$v"* ]]
  fi
}

# --- a job in the policy partition ---
A=$(as_user sbatch --parsable -p vm -N 3 --wrap "sleep 6")
check "policy job $A runs" slurm_lab_wait_job "$A" RUNNING 30
check "exactly its 3 ports and the trunks carry its VLAN" network_is_right "$A"
check "jobnet status shows it up" test "$(state_of "$A")" = up
check "its address list exists and its user can read it" runuser -u jnuser -- grep -q "^Virtual machine ip list:" "$J/net/$A/ip-list.txt"
check "three VMs, numbered in the job's subnet" test "$(grep -c '^10\.80\.0\.' "$J/net/$A/ip-list.txt")" = 3
mapfile -t AH < <(hosts_of "$A")
check "its hosts reach each other" reaches "$(host "${AH[0]}")" "$(host "${AH[1]}")"
check "policy job completes" slurm_lab_wait_job "$A" COMPLETED 30
for _ in $(seq 50); do [ "$(state_of "$A")" = down ] && break; sleep 0.1; done
check "after it: the fabric is byte-identical to before" test "$(ovs_state)" = "$BASE"
check "after it: its address files are gone" test ! -e "$J/net/$A"

# --- a job asking in its comment ---
B=$(as_user sbatch --parsable -p batch -N 2 --comment "nightly jobnet:vlan=auto,ib=no,vms=2 see ticket" --wrap "sleep 5")
check "comment job $B runs" slurm_lab_wait_job "$B" RUNNING 30
check "its 2 ports carry its VLAN" network_is_right "$B"
check "two VMs per node: 4 addresses" test "$(grep -c '^10\.80\.' "$J/net/$B/ip-list.txt")" = 4
check "comment job completes" slurm_lab_wait_job "$B" COMPLETED 30
for _ in $(seq 50); do [ "$(state_of "$B")" = down ] && break; sleep 0.1; done
check "after it: byte-identical fabric" test "$(ovs_state)" = "$BASE"

# --- two jobs at once ---
C1=$(as_user sbatch --parsable -p vm -w node001,node003 --wrap "sleep 8")
C2=$(as_user sbatch --parsable -p vm -w node002,node004 --wrap "sleep 8")
check "both jobs run" slurm_lab_wait_job "$C1" RUNNING 30
slurm_lab_wait_job "$C2" RUNNING 30 || true
check "different VLANs" test "$(vlan_of "$C1")" != "$(vlan_of "$C2")"
check "job 1's network is right" network_is_right "$C1"
check "job 2's network is right" network_is_right "$C2"
check "h1 reaches h3 (job 1)" reaches h1 h3
check "h2 reaches h4 (job 2)" reaches h2 h4
isolated() { ! ip netns exec h1 ping -c1 -W1 10.78.0.2 >/dev/null 2>&1 && ! ip netns exec h1 ping -c1 -W1 10.78.0.4 >/dev/null 2>&1; }
check "h1 does not reach h2 or h4 (job 2)" isolated
slurm_lab_wait_job "$C1" COMPLETED 30 || true
slurm_lab_wait_job "$C2" COMPLETED 30 || true
for _ in $(seq 50); do [ "$(state_of "$C2")" = down ] && [ "$(state_of "$C1")" = down ] && break; sleep 0.1; done
check "after both: byte-identical fabric" test "$(ovs_state)" = "$BASE"

# --- a device fault during the prolog: rolled back, requeued, held after the second ---
echo "JOBNET_CONFIG=$J/jobnet.yaml JOBNET_FAILPOINT=intent:2:error; export JOBNET_CONFIG JOBNET_FAILPOINT" > "$HOOKENV"
F=$(as_user sbatch --parsable -p vm -N 2 --wrap "sleep 2")
held=""
for _ in $(seq 600); do
  r=$(slurm_lab_job_field "$F" Reason)
  case $r in JobHeldAdmin|job_requeued_in_held_state) held=$r; break ;; esac
  sleep 0.1
done
echo "JOBNET_CONFIG=$J/jobnet.yaml; export JOBNET_CONFIG" > "$HOOKENV"
check "the failing job is held after 2 failed prologs (Reason=$held)" test -n "$held"
check "it was requeued in between (Restarts >= 1)" test "$(slurm_lab_job_field "$F" Restarts)" -ge 1
logged_and_held() {
  grep -q "job=$1: failed (2 time(s) for this job): .*injected" "$J/log/hooks.log" &&
    grep -q "job=$1: scontrol hold: done" "$J/log/hooks.log"
}
check "the log says why, twice, and that it held the job" logged_and_held "$F"
check "nothing of it is left on the switches" test "$(ovs_state)" = "$BASE"
sleep 12   # longer than Slurm's retry interval here (cred_expire 5 s + a scheduler pass)
stays_held() {
  case $(slurm_lab_job_field "$1" Reason) in JobHeldAdmin|job_requeued_in_held_state) ;; *) return 1 ;; esac
  ! grep -q "job=$1: failed (3 time(s)" "$J/log/hooks.log"
}
check "and stays held: no third attempt" stays_held "$F"
scancel "$F"

# --- slurmctld killed while a prolog runs; the rerun ends with a correct network ---
FP=$J/state/fp; rm -f "$FP"
echo "JOBNET_CONFIG=$J/jobnet.yaml JOBNET_FAILPOINT=intent:2:pause JOBNET_FAILPOINT_FILE=$FP; export JOBNET_CONFIG JOBNET_FAILPOINT JOBNET_FAILPOINT_FILE" > "$HOOKENV"
K=$(as_user sbatch --parsable -p vm -w node001,node004 --wrap "sleep 8")
for _ in $(seq 300); do [ -s "$FP" ] && break; sleep 0.1; done
check "the prolog of job $K stopped half-way (one port changed)" test -s "$FP"
echo "JOBNET_CONFIG=$J/jobnet.yaml; export JOBNET_CONFIG" > "$HOOKENV"
sleep 8   # let slurmctld save the job's state (a job younger than its last save is lost)
slurm_lab_ctld_kill KILL
slurm_lab_ctld_start
check "after the restart the job runs" slurm_lab_wait_job "$K" RUNNING 60
check "with a correct network" network_is_right "$K"
slurm_lab_wait_job "$K" COMPLETED 30 || true
for _ in $(seq 50); do [ "$(state_of "$K")" = down ] && break; sleep 0.1; done
check "and nothing leaked after it" test "$(ovs_state)" = "$BASE"

# --- a job that asked for nothing ---
U=$(as_user sbatch --parsable -p batch -N 1 --wrap "true")
check "an untouched job runs" slurm_lab_wait_job "$U" COMPLETED 30
unknown_to_jobnet() { ! "${JN[@]}" status --all --format json | grep -q "\"job\": \"$1\""; }
check "its hooks recorded nothing" unknown_to_jobnet "$U"
check "and touched nothing" test "$(ovs_state)" = "$BASE"
owned_by_slurm() { ! find "$J/state" ! -user slurm | grep -q .; }
check "state and lock files belong to slurm" owned_by_slurm

# --- per-node Prolog/Epilog (PrologFlags=Alloc): the job's VMs on its VLAN while it runs ---
# Each node gets a node bridge whose uplink is a new tagged port of its switch, and one "VM" (a
# network namespace whose veth is the VM's tap on the node bridge, parked on a VLAN of its own).
slurm_lab_stop
SW=(x jnsw1 jnsw1 jnsw2 jnsw2)
for i in 1 2 3 4; do
  ip link add "n${i}up" type veth peer name "n${i}sw"; ip link set "n${i}up" up; ip link set "n${i}sw" up
  "${V[@]}" add-br "brn$i" -- set bridge "brn$i" datapath_type=netdev
  "${V[@]}" add-port "brn$i" "n${i}up" trunks=4094 -- add-port "${SW[$i]}" "n${i}sw" trunks=4094
  ip netns add "node00${i}v1"
  ip link add "node00${i}v1" type veth peer name eth0 netns "node00${i}v1"; ip link set "node00${i}v1" up
  ip -n "node00${i}v1" link set eth0 up
  "${V[@]}" add-port "brn$i" "node00${i}v1" tag=$((4000 + i))
done
cat > "$J/topology-vm.yaml" <<YAML
name: slurm-lab-vms
ethernet: {vlan_pool: "100-199", node_port_mode: tagged}
switches:
  - {name: jnsw1, driver: openvswitch, address: local}
  - {name: jnsw2, driver: openvswitch, address: local}
links:
  - {a: "jnsw1:jntr1", b: "jnsw2:jntr2"}
nodes:
  - {name: "node[001-002]", port: "jnsw1:n[1-2]sw"}
  - {name: "node[003-004]", port: "jnsw2:n[3-4]sw"}
YAML
sed -e "s#^topology: .*#topology: $J/topology-vm.yaml#" -e "s#^addresses: .*#addresses: {pool: 10.81.0.0/16, prefix: 24, first: 10, names: \"vs{n}\"}#" "$J/jobnet.yaml" > "$J/jobnet-vm.yaml"
echo "jobs_dir: $J/shared" >> "$J/jobnet-vm.yaml"
mkdir -p "$J/shared" "$J/nodestate"; chown slurm:slurm "$J/shared"
cat > "$J/node.yaml" <<YAML
jobs_dir: $J/shared
state_dir: $J/nodestate
backend: ovs
ovs_db: unix:$D/ovs/db.sock
interface: "{node}v{slot}"
programs: {ovs-vsctl: /usr/bin/ovs-vsctl}
nodes:
  node001: {bridge: brn1, uplink: n1up}
  node002: {bridge: brn2, uplink: n2up}
  node003: {bridge: brn3, uplink: n3up}
  node004: {bridge: brn4, uplink: n4up}
YAML
for what in attach detach; do
  f=$J/bin/node-$([ $what = attach ] && echo prolog || echo epilog)
  printf '#!/bin/sh\nJOBNET_NODE_CONFIG=%s/node.yaml exec %s/bin/jobnet node %s --job "$SLURM_JOB_ID" >> %s/log/node-hooks.log 2>&1\n' "$J" "$J" "$what" "$J" > "$f"
  chmod 0755 "$f"
done
SLURM_LAB_CRED_EXPIRE=5 SLURM_LAB_EXTRA="SchedulerParameters=batch_sched_delay=0,bf_interval=2,sched_interval=5
PrologFlags=Alloc
Prolog=$J/bin/node-prolog
Epilog=$J/bin/node-epilog" \
  slurm_lab_start "$D/slurm" "$J/bin/jobnet-slurmctld-prolog" "$J/bin/jobnet-slurmctld-epilog"
echo "JOBNET_CONFIG=$J/jobnet-vm.yaml; export JOBNET_CONFIG" > "$D/slurm/run/hook.env"
BASE2=$(ovs_state)
tag_is() { [ "$(tag_of "$1")" = "$2" ]; }
wait_tag() { local i; for i in $(seq 200); do tag_is "$1" "$2" && return 0; sleep 0.1; done; return 1; }
N=$(as_user sbatch --parsable -p vm -w node001,node003 --wrap "sleep 10")
check "VM job $N runs" slurm_lab_wait_job "$N" RUNNING 30
NV=$(vlan_of "$N")
both_tagged() { wait_tag node001v1 "$1" && wait_tag node003v1 "$2"; }
check "node prologs put node001's and node003's VMs on VLAN $NV" both_tagged "$NV" "$NV"
check "node002's VM stays parked" tag_is node002v1 4002
vmip() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print([v["ip"] for v in d["addresses"]["vms"] if v["node"]==sys.argv[2]][0])' "$J/shared/$N/network.json" "$1"; }
for n in node001 node003; do ip -n "${n}v1" addr replace "$(vmip "$n")/24" dev eth0; done
vm_reaches() { ip netns exec node001v1 ping -c1 -W1 "$1" >/dev/null 2>&1 || ip netns exec node001v1 ping -c2 -W1 "$1" >/dev/null 2>&1; }
check "the job's VM on node001 reaches its VM on node003 across the fabric" vm_reaches "$(vmip node003)"
check "VM job completes" slurm_lab_wait_job "$N" COMPLETED 40
check "node epilogs give the VMs back" both_tagged 4001 4003
for _ in $(seq 50); do [ "$(state_of "$N")" = down ] && [ "$(ovs_state)" = "$BASE2" ] && break; sleep 0.1; done
check "after it: switches and node bridges byte-identical" test "$(ovs_state)" = "$BASE2"
check "no node record is left" test -z "$(find "$J/nodestate" -type f)"

echo "slurm lab: $pass passed, $fail failed"
[ "$fail" = 0 ]
