#!/usr/bin/env bash
# Real Slurm (slurm-wlm 22.05 + munge: one slurmctld, slurmd node001..node004 on 127.0.0.11-14)
# drives jobnet through PrologSlurmctld/EpilogSlurmctld, installed as docs/slurm.md tells a site,
# on a fabric of two real Open vSwitch switches whose access ports stand for the four nodes
# (hosts h1..h4 in network namespaces behind them). Proves: a policy job and a job asking in its
# comment get exactly their ports and trunks and their address files, and the fabric is
# byte-identical afterwards; two jobs get different VLANs and only reach their own hosts; a device
# fault rolls back and requeues, the second failure holds the job with jobnet's reason in its
# AdminComment and its Comment (the request) intact, and once released it gets exactly the VLAN it
# asked for; a typo in jobnet.yaml is said FILE:LINE:COL in the configured log and holds the job
# at once, and without any jobnet.yaml syslog has it; slurmctld killed during a prolog reruns it
# to a correct network; a job that asked for nothing is untouched; slurmctld killed -9 during a
# prolog before it saved the job forgets the job (no rerun, no epilog) while jobnet's record stays
# `applying` with its hook dead: the next job on one of its nodes undoes that record first, says so
# in the log naming the job, gets exactly its own network, nothing of the forgotten job is left and
# the fabric is byte-identical after it; and `jobnet recover`, run as docs/slurm.md's ExecStartPre
# of slurmctld, cleans such a record before slurmctld starts. jobnet is installed by
# docs/slurm.md's copy-paste block (run under a prefix), and the jobs' user reads its addresses.
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
  if [ -n "${SYSLOG_PID:-}" ]; then kill "$SYSLOG_PID" 2>/dev/null || true; rm -f /dev/log; fi
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

# --- jobnet installed as docs/slurm.md says: its copy-paste block, run under a prefix R that
# stands for the machine's / (system directories a machine has are made first) ---
J=$D/jobnet
R=$J/root
mkdir -p "$J/src" "$J/bin" "$R/usr/local/bin" "$R/etc" "$R/var/lib" "$R/var/log"
chmod 0755 "$J" "$R"
ETC=$R/etc/jobnet STATE=$R/var/lib/jobnet NET=$R/var/lib/jobnet-jobs LOGD=$R/var/log/jobnet
HOOKS=$R/usr/local/lib/jobnet
cp "$JOBNET" "$J/src/jobnet"
cat > "$J/src/topology.yaml" <<YAML
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
# An Open vSwitch-only site: no credentials.yaml, no known_hosts (docs/slurm.md).
cat > "$J/src/jobnet.yaml" <<YAML
topology: $ETC/topology.yaml
state: $STATE/state.db
log: $LOGD/hooks.log
drivers_dir: $ETC/drivers
service_user: slurm
wait: 20
programs: {ovs-vsctl: /usr/bin/ovs-vsctl, scontrol: /usr/bin/scontrol}
policy:
  - {partitions: [vm], network: {vlan: auto, ib: no}}
  - {partitions: ["*"], requests: allow}
failure: {hold_after: 2}
addresses: {pool: 10.80.0.0/16, prefix: 24, first: 10, gateway: 1, names: "vs{n}", dir: $NET}
YAML
awk '/^## Installation/ {f = 1} f && /^```sh$/ {on = 1; next} on && /^```$/ {exit} on {print}' docs/slurm.md |
  sed -e "s# /usr/local/# $R/usr/local/#g" -e "s# /etc/# $R/etc/#g" -e "s# /var/# $R/var/#g" > "$J/install.sh"
check "docs/slurm.md's installation block runs as written" bash -c "cd '$J/src' && set -ex && . '$J/install.sh'"
mode_owner() { [ "$(stat -c '%a %U' "$1")" = "$2" ]; }
check "it made the state directory private to slurm" mode_owner "$STATE" "700 slurm"
check "and the address files' directory readable by all, beside it" mode_owner "$NET" "755 slurm"
check "the configuration directory and file exist" test -r "$ETC/jobnet.yaml" -a -d "$ETC/drivers"
# The ovsdb socket is not at its default path here: a site copy of the profile names it.
sed "s#ovs-vsctl #ovs-vsctl --db=unix:$D/ovs/db.sock #g" switch-drivers/openvswitch.yaml > "$ETC/drivers/openvswitch.yaml"
check "the lab's topology and hook configuration are valid" "$R/usr/local/bin/jobnet" topology validate --drivers-dir "$ETC/drivers" "$ETC/topology.yaml"

SLURM_LAB_CRED_EXPIRE=5 SLURM_LAB_EXTRA="SchedulerParameters=batch_sched_delay=0,bf_interval=2,sched_interval=5" \
  slurm_lab_start "$D/slurm" "$HOOKS/jobnet-slurmctld-prolog" "$HOOKS/jobnet-slurmctld-epilog"
# slurmctld passes its hooks SLURM_* variables only: a site's jobnet.yaml is /etc/jobnet/jobnet.yaml.
# The lab's is under R, so the lab's hook wrapper (slurm-setup.sh) sets JOBNET_CONFIG from this file.
HOOKENV=$D/slurm/run/hook.env
CONF=$ETC/jobnet.yaml
hookenv() { printf 'JOBNET_CONFIG=%s; export JOBNET_CONFIG\n' "${1:-$CONF}" > "$HOOKENV"; if [ -n "${2:-}" ]; then printf '%s\n' "$2" >> "$HOOKENV"; fi; }
hookenv
id jnuser >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin jnuser
as_user() { runuser -u jnuser -- env SLURM_CONF="$SLURM_CONF" SBATCH_OUTPUT="$SBATCH_OUTPUT" "$@"; }
JN=("$R/usr/local/bin/jobnet" --state "$STATE/state.db")
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
check "its address list exists and its user can read it" runuser -u jnuser -- grep -q "^Virtual machine ip list:" "$NET/$A/ip-list.txt"
check "three VMs, numbered in the job's subnet" test "$(grep -c '^10\.80\.0\.' "$NET/$A/ip-list.txt")" = 3
mapfile -t AH < <(hosts_of "$A")
check "its hosts reach each other" reaches "$(host "${AH[0]}")" "$(host "${AH[1]}")"
check "policy job completes" slurm_lab_wait_job "$A" COMPLETED 30
for _ in $(seq 50); do [ "$(state_of "$A")" = down ] && break; sleep 0.1; done
check "after it: the fabric is byte-identical to before" test "$(ovs_state)" = "$BASE"
check "after it: its address files are gone" test ! -e "$NET/$A"

# --- a job asking in its comment ---
B=$(as_user sbatch --parsable -p batch -N 2 --comment "nightly jobnet:vlan=auto,ib=no,vms=2 see ticket" --wrap "sleep 5")
check "comment job $B runs" slurm_lab_wait_job "$B" RUNNING 30
check "its 2 ports carry its VLAN" network_is_right "$B"
check "two VMs per node: 4 addresses" test "$(grep -c '^10\.80\.' "$NET/$B/ip-list.txt")" = 4
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

# --- a device fault during the prolog of a job that asked in its comment: rolled back,
# requeued, held after the second; the comment keeps the request; released once the fault is
# gone, the job gets exactly what it asked for ---
field_line() { scontrol show job "$1" | sed -n "s/^ *$2=\(.*[^ ]\) *\$/\1/p"; }
is_held() { case $(slurm_lab_job_field "$1" Reason) in JobHeldAdmin|job_requeued_in_held_state) return 0 ;; esac; return 1; }
wait_held() { local i; for i in $(seq "$((${2:-60} * 10))"); do is_held "$1" && return 0; sleep 0.1; done; return 1; }
# Every pending job that jobnet held, as an administrator finds them (docs/slurm.md).
jobnet_held() { scontrol -o show job | sed -n 's/^JobId=\([0-9]*\) .*JobState=PENDING Reason=JobHeldAdmin .*AdminComment=jobnet: held.*/\1/p'; }
hookenv "$CONF" "JOBNET_FAILPOINT=intent:2:error; export JOBNET_FAILPOINT"
ASK="nightly jobnet:vlan=150,ib=no,vms=2 see ticket 12"
F=$(as_user sbatch --parsable -p batch -w node001,node003 --comment "$ASK" --wrap "sleep 6")
wait_held "$F" 60 || true
hookenv
check "the failing job $F is held after 2 failed prologs (Reason=$(slurm_lab_job_field "$F" Reason))" is_held "$F"
check "it was requeued in between (Restarts >= 1)" test "$(slurm_lab_job_field "$F" Restarts)" -ge 1
logged_and_held() {
  grep -q "job=$1: failed (2 time(s) for this job): .*injected" "$LOGD/hooks.log" &&
    grep -q "job=$1: scontrol hold: done" "$LOGD/hooks.log"
}
check "the log says why, twice, and that it held the job" logged_and_held "$F"
check "its Comment is still the user's request" test "$(field_line "$F" Comment)" = "$ASK"
admin_says() { [[ $(field_line "$1" AdminComment) == "jobnet: held after 2 failed network setup(s): "*injected* ]]; }
check "its AdminComment says why jobnet held it" admin_says "$F"
check "nothing of it is left on the switches" test "$(ovs_state)" = "$BASE"
sleep 12   # longer than Slurm's retry interval here (cred_expire 5 s + a scheduler pass)
stays_held() { is_held "$1" && ! grep -q "job=$1: failed (3 time(s)" "$LOGD/hooks.log"; }
check "and stays held: no third attempt" stays_held "$F"
check "the administrators' listing of jobs jobnet held finds it" test "$(jobnet_held)" = "$F"
scontrol release "$F"
check "released, it runs" slurm_lab_wait_job "$F" RUNNING 40
check "on exactly the VLAN it asked for" test "$(vlan_of "$F")" = 150
check "exactly its 2 ports carry it" network_is_right "$F"
check "with its 2 VMs per node: 4 addresses" test "$(grep -c '^10\.80\.' "$NET/$F/ip-list.txt")" = 4
reads_as_jnuser() { runuser -u jnuser -- cat "$1" > /dev/null; }
check "which its user (jnuser, not root) can read" reads_as_jnuser "$NET/$F/ip-list.txt"
check "released job completes" slurm_lab_wait_job "$F" COMPLETED 30
for _ in $(seq 50); do [ "$(state_of "$F")" = down ] && break; sleep 0.1; done
check "after it: byte-identical fabric" test "$(ovs_state)" = "$BASE"

# --- a typo in jobnet.yaml: said FILE:LINE:COL in the configured log and in the job's
# AdminComment, the job held at once (not requeued for ever); fixed and released, it runs ---
sed 's/^failure: {hold_after: 2}$/failure: {hold_aftr: 2}/' "$CONF" > "$J/jobnet-typo.yaml"
TYPO="$J/jobnet-typo.yaml:$(grep -n '^failure:' "$J/jobnet-typo.yaml" | cut -d: -f1):11: error: unknown key \`hold_aftr\`"
hookenv "$J/jobnet-typo.yaml"
T=$(as_user sbatch --parsable -p batch -w node002 --comment "jobnet:vlan=160" --wrap "true")
wait_held "$T" 30 || true
check "with a typo in jobnet.yaml, job $T is held at the first prolog" is_held "$T"
check "the configured log has the error with its FILE:LINE:COL" grep -qF "slurm-prolog job=$T: $J/jobnet-typo.yaml is invalid: | $TYPO" "$LOGD/hooks.log"
typo_in_admin_comment() { [[ $(field_line "$1" AdminComment) == "jobnet: held (fix the site configuration, then scontrol release $1): "*"$TYPO"* ]]; }
check "and the job's AdminComment too" typo_in_admin_comment "$T"
check "slurmctld saw the prolog exit 2" grep -q "JobId=$T prolog exit status 2:0" "$D/slurm/log/slurmctld.log"
sleep 8
once() { [ "$(grep -c "slurm-prolog job=$1: .*is invalid" "$LOGD/hooks.log")" = 1 ] && is_held "$1"; }
check "no second attempt" once "$T"
hookenv
scontrol release "$T"
check "fixed and released, it runs to the end" slurm_lab_wait_job "$T" COMPLETED 40
check "having had the VLAN it asked for" grep -q "slurm-prolog job=$T: up: VLAN 160 " "$LOGD/hooks.log"

# --- no configuration at all: nothing names a log, so syslog has it (a listener stands in for
# syslogd when the machine has none); the job is held with the scontrol of the system's
# directories ---
SYSLOG=$D/syslog.txt SYSLOG_PID=""
if [ ! -e /dev/log ]; then
  python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
os.chmod("/dev/log", 0o666)
with open(sys.argv[1], "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536) + b"\n")
' "$SYSLOG" &
  SYSLOG_PID=$!
  for _ in $(seq 50); do [ -S /dev/log ] && break; sleep 0.1; done
fi
hookenv "$J/missing.yaml"
M=$(as_user sbatch --parsable -p batch -N 1 --wrap "true")
wait_held "$M" 30 || true
hookenv
check "without jobnet.yaml, job $M is held at the first prolog" is_held "$M"
missing_said() { [[ $(field_line "$1" AdminComment) == *"cannot read the jobnet configuration $J/missing.yaml"* ]]; }
check "its AdminComment says the file is missing" missing_said "$M"
if [ -n "$SYSLOG_PID" ]; then
  check "syslog has it" grep -q "jobnet\[[0-9]*\]: slurm-prolog job=$M: cannot read the jobnet configuration $J/missing.yaml" "$SYSLOG"
  kill "$SYSLOG_PID"; wait "$SYSLOG_PID" 2>/dev/null || true
  rm -f /dev/log; SYSLOG_PID=""
else
  echo "skip - syslog check: /dev/log belongs to this machine's syslog daemon"
fi
scancel "$M"

# --- slurmctld killed while a prolog runs; the rerun ends with a correct network ---
FP=$STATE/fp; rm -f "$FP"
hookenv "$CONF" "JOBNET_FAILPOINT=intent:2:pause JOBNET_FAILPOINT_FILE=$FP; export JOBNET_FAILPOINT JOBNET_FAILPOINT_FILE"
K=$(as_user sbatch --parsable -p vm -w node001,node004 --wrap "sleep 8")
for _ in $(seq 300); do [ -s "$FP" ] && break; sleep 0.1; done
check "the prolog of job $K stopped half-way (one port changed)" test -s "$FP"
hookenv
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
owned_by_slurm() { ! find "$STATE" ! -user slurm | grep -q .; }
check "state and lock files belong to slurm" owned_by_slurm

# --- slurmctld crashes half-way through a prolog, before it saved the job: Slurm forgets the
# job (no prolog rerun, no epilog) and jobnet's record stays `applying`, its process dead. The
# next job on one of its nodes undoes it first, says so in the log and gets its network; and
# `jobnet recover`, run as docs/slurm.md's ExecStartPre of slurmctld, cleans such a record too.
# Why this is "slurmctld forgot the job": slurmctld keeps its jobs in memory and writes them to
# StateSaveLocation a moment after a change; which side of that write a crash falls on is timing
# (the site's was 1.3 s after sbatch). The lab makes it certain: it takes a save (slurmctld
# writes all its state when SIGTERM stops it), submits, kills slurmctld -9 mid-prolog and puts
# the save back: the disk a crash before the next save leaves (the job's script directory,
# written at submission, stays). slurmctld 22.05 then recovers no such job, purges its files as
# defunct, never reruns its prolog nor runs its epilog, and gives its id to the next submission.
SAVE=$D/ctld-save FP=$STATE/fp
vlan_on_fabric() { "${V[@]}" --format=csv --columns=tag,trunks list port | tr -c '0-9' '\n' | grep -qx "$1"; }
not() { ! "$@"; }
# Left `applying` by the hook $2, which is gone: jobnet's status shows no process working on it.
orphaned() {
  [ "$(state_of "$1")" = applying ] && [ ! -e "/proc/$2" ] &&
    "${JN[@]}" status --job "$1" --format json | grep -q '^ *"pid": null,*$'
}
forgotten() {
  ! scontrol show job "$1" >/dev/null 2>&1 &&
    grep -q "Purged files for defunct batch JobId=$1\$" "$D/slurm/log/slurmctld.log"
}
# Submits `sbatch ARGS` with a prolog that stops half-way (a failpoint), waits until its VLAN $1
# is on a switch, then kills slurmctld -9 and the hook (slurmctld's script runner SIGKILLs it
# too when slurmctld dies): OJ is the job, OP the hook's pid.
crash_mid_prolog() {
  local v=$1; shift
  rm -f "$FP"
  hookenv "$CONF" "JOBNET_FAILPOINT=intent:2:pause JOBNET_FAILPOINT_FILE=$FP; export JOBNET_FAILPOINT JOBNET_FAILPOINT_FILE"
  OJ=$(as_user sbatch --parsable "$@")
  for _ in $(seq 300); do [ -s "$FP" ] && break; sleep 0.1; done
  hookenv
  OP=$(cat "$FP" 2>/dev/null || true)
  for _ in $(seq 50); do vlan_on_fabric "$v" && break; sleep 0.1; done
  slurm_lab_ctld_kill KILL
  if [ -n "$OP" ]; then
    kill -9 "$OP" 2>/dev/null || true
    for _ in $(seq 50); do [ -e "/proc/$OP" ] || break; sleep 0.1; done
  fi
}
ORPHAN_T0=$(date +%s)
slurm_lab_ctld_checkpoint "$SAVE"
crash_mid_prolog 170 -p batch -w node002,node003 --comment "jobnet:vlan=170" --wrap "sleep 5"
X=$OJ XP=$OP
check "job $X's prolog stopped half-way: VLAN 170 is on a switch" vlan_on_fabric 170
check "jobnet's record of job $X is left applying, its hook (pid $XP) dead" orphaned "$X" "$XP"
slurm_lab_ctld_rewind "$SAVE"
slurm_lab_ctld_start
check "restarted on the save from before it, slurmctld has forgotten job $X" forgotten "$X"
# Its id goes to the next submission: a held job takes it here, so that the job on the forgotten
# job's nodes has an id of its own, as in the site's report.
H=$(as_user sbatch --parsable --hold -p batch -N 1 --wrap true)
check "the next submission gets its id ($H)" test "$H" = "$X"
check "jobnet's record of job $X is still applying" test "$(state_of "$X")" = applying
Y=$(as_user sbatch --parsable -p vm -w node003 --wrap "sleep 4")
check "the next job on one of its nodes, $Y, runs" slurm_lab_wait_job "$Y" RUNNING 40
check "exactly its port carries its VLAN" network_is_right "$Y"
check "VLAN 170 of the forgotten job is on no port and no trunk" not vlan_on_fabric 170
unwound_logged() { grep -q "slurm-prolog job=$Y: .*job $X was left applying on these nodes by process $XP, which is gone: undone first from its journal" "$LOGD/hooks.log"; }
check "the log says job $Y's prolog undid job $X first" unwound_logged
check "job $X's record is down" test "$(state_of "$X")" = down
check "job $Y completes" slurm_lab_wait_job "$Y" COMPLETED 30
for _ in $(seq 50); do [ "$(state_of "$Y")" = down ] && break; sleep 0.1; done
check "after it: the fabric is byte-identical to before" test "$(ovs_state)" = "$BASE"
scancel "$H"

# The same crash, then `jobnet recover` as docs/slurm.md's ExecStartPre runs it when systemd
# restarts slurmctld: as root, systemd's environment (the lab's JOBNET_CONFIG stands for
# /etc/jobnet/jobnet.yaml, as for the hooks), before slurmctld starts.
PRE=$(sed -n 's/^ExecStartPre=-+//p' docs/slurm.md)
check "docs/slurm.md gives slurmctld one ExecStartPre: $PRE" test "$(printf '%s\n' "$PRE" | grep -c .)" = 1
check "docs/operations.md gives the same" grep -qxF "ExecStartPre=-+$PRE" docs/operations.md
slurm_lab_ctld_checkpoint "$SAVE"
crash_mid_prolog 171 -p batch -w node001,node004 --comment "jobnet:vlan=171" --wrap "sleep 5"
Z=$OJ ZP=$OP
check "job $Z's prolog stopped half-way: VLAN 171 is on a switch" vlan_on_fabric 171
check "jobnet's record of job $Z is left applying, its hook (pid $ZP) dead" orphaned "$Z" "$ZP"
slurm_lab_ctld_rewind "$SAVE"
recover_ran() {
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin JOBNET_CONFIG="$CONF" ${PRE/#\/usr\/local\//$R/usr/local/} > "$J/recover.out" 2>&1 &&
    grep -q "^job $Z recovered: " "$J/recover.out"
}
check "the ExecStartPre command recovers job $Z" recover_ran
check "its record is down" test "$(state_of "$Z")" = down
check "the fabric is byte-identical to before" test "$(ovs_state)" = "$BASE"
check "state and lock files still belong to slurm" owned_by_slurm
slurm_lab_ctld_start
check "slurmctld, started after it, has forgotten job $Z" forgotten "$Z"
echo "slurmctld crash cases: $(( $(date +%s) - ORPHAN_T0 )) s"

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
sed -e "s#^topology: .*#topology: $J/topology-vm.yaml#" -e "s#^addresses: .*#addresses: {pool: 10.81.0.0/16, prefix: 24, first: 10, names: \"vs{n}\"}#" "$CONF" > "$J/jobnet-vm.yaml"
echo "jobs_dir: $J/shared" >> "$J/jobnet-vm.yaml"
# jobs_dir as docs/slurm.md says: made by the administrator, slurm's (the controller's hooks
# write there), 0755 (the nodes' root and the jobs' users read it).
install -d -o slurm -g slurm -m 0755 "$J/shared"
mkdir -p "$J/nodestate"
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
# As docs/nodes.md: the node Prolog prepares (the uplink; VMs do not exist yet), the VM launcher
# attaches each VM once its tap exists, the node Epilog detaches the whole job.
for what in prepare detach; do
  f=$J/bin/node-$([ $what = prepare ] && echo prolog || echo epilog)
  printf '#!/bin/sh\nJOBNET_NODE_CONFIG=%s/node.yaml exec %s node %s --job "$SLURM_JOB_ID" >> %s/node-hooks.log 2>&1\n' "$J" "$R/usr/local/bin/jobnet" "$what" "$LOGD" > "$f"
  chmod 0755 "$f"
done
SLURM_LAB_CRED_EXPIRE=5 SLURM_LAB_EXTRA="SchedulerParameters=batch_sched_delay=0,bf_interval=2,sched_interval=5
PrologFlags=Alloc
Prolog=$J/bin/node-prolog
Epilog=$J/bin/node-epilog" \
  slurm_lab_start "$D/slurm" "$HOOKS/jobnet-slurmctld-prolog" "$HOOKS/jobnet-slurmctld-epilog"
hookenv "$J/jobnet-vm.yaml"
BASE2=$(ovs_state)
tag_is() { [ "$(tag_of "$1")" = "$2" ]; }
wait_tag() { local i; for i in $(seq 200); do tag_is "$1" "$2" && return 0; sleep 0.1; done; return 1; }
N=$(as_user sbatch --parsable -p vm -w node001,node003 --wrap "sleep 15")
check "VM job $N runs" slurm_lab_wait_job "$N" RUNNING 30
NV=$(vlan_of "$N")
both_tagged() { wait_tag node001v1 "$1" && wait_tag node003v1 "$2"; }
uplinks_carry() { local u i; for u in n1up n3up; do for i in $(seq 100); do "${V[@]}" get port "$u" trunks | grep -qw "$1" && continue 2; sleep 0.1; done; return 1; done; }
check "node prologs made node001's and node003's uplinks carry VLAN $NV" uplinks_carry "$NV"
check "and left the VMs parked: the launcher attaches them" both_tagged 4001 4003
launch() { local n; for n in "$@"; do JOBNET_NODE_CONFIG=$J/node.yaml "$R/usr/local/bin/jobnet" node attach --job "$N" --node "$n" || return 1; done; }
check "the VM launcher (root) attaches the job's VMs on node001 and node003 once they exist" launch node001 node003
check "node001's and node003's VMs are on VLAN $NV" both_tagged "$NV" "$NV"
check "node002's VM stays parked" tag_is node002v1 4002
check "the job's user reads its address list in jobs_dir" reads_as_jnuser "$J/shared/$N/ip-list.txt"
vmip() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print([v["ip"] for v in d["addresses"]["vms"] if v["node"]==sys.argv[2]][0])' "$J/shared/$N/network.json" "$1"; }
for n in node001 node003; do ip -n "${n}v1" addr replace "$(vmip "$n")/24" dev eth0; done
vm_reaches() { ip netns exec node001v1 ping -c1 -W1 "$1" >/dev/null 2>&1 || ip netns exec node001v1 ping -c2 -W1 "$1" >/dev/null 2>&1; }
check "the job's VM on node001 reaches its VM on node003 across the fabric" vm_reaches "$(vmip node003)"
check "VM job completes" slurm_lab_wait_job "$N" COMPLETED 40
check "node epilogs give the VMs back" both_tagged 4001 4003
for _ in $(seq 50); do [ "$(state_of "$N")" = down ] && [ "$(ovs_state)" = "$BASE2" ] && break; sleep 0.1; done
check "after it: switches and node bridges byte-identical" test "$(ovs_state)" = "$BASE2"
check "no node record is left" test -z "$(find "$J/nodestate" -type f -name '*.json')"
# The node Prolog runs for every job: one without a jobnet network passes it, the node stays up.
P=$(as_user sbatch --parsable -p batch -w node002 --wrap "true")
check "a job without a network runs through the node Prolog (prepare: nothing to do)" slurm_lab_wait_job "$P" COMPLETED 30
check "and node002 is not drained" sh -c "! sinfo -h -n node002 -o %T | grep -qi drain"
check "nothing changed on the switches and node bridges" test "$(ovs_state)" = "$BASE2"

echo "slurm lab: $pass passed, $fail failed"
[ "$fail" = 0 ]
