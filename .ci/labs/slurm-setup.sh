# shellcheck shell=bash
# Lab kit, meant to be SOURCED by other lab scripts (it runs nothing by itself): a real Slurm
# (Debian slurm-wlm 22.05 + munge) on this one machine, and an Open vSwitch userspace fabric.
# Needs root. Installs what it needs, starts every daemon itself (no systemd) and stops them by pid.
#
#   source .ci/labs/slurm-setup.sh
#   slurm_lab_start DIR PROLOG EPILOG   # munged + slurmctld (127.0.0.1) + slurmd node001..node004
#                                       # (NodeAddr 127.0.0.11-14); partitions vm and batch (default);
#                                       # PrologSlurmctld/EpilogSlurmctld = PROLOG/EPILOG ("" = none).
#                                       # Exports SLURM_CONF: sbatch/squeue/scontrol/sinfo use it.
#   slurm_lab_stop                      # stops them by pid, removes the state (keeps DIR's logs)
#   slurm_lab_ctld_kill [SIGNAL]        # signals slurmctld alone (default KILL) and waits for it
#   slurm_lab_ctld_start                # (re)starts slurmctld on the saved state
#   slurm_lab_ctld_checkpoint SAVE      # stops slurmctld with SIGTERM (it writes all its state as it
#                                       # stops), copies StateSaveLocation's files to SAVE, starts it again
#   slurm_lab_ctld_rewind SAVE          # (slurmctld stopped) puts SAVE's files back in StateSaveLocation,
#                                       # leaving the jobs' script directories (hash.N) as they are: the
#                                       # disk of a slurmctld that crashed before it saved anything newer
#   slurm_lab_job_field JOBID FIELD     # one field of `scontrol -o show job` (JobState, Reason, ...)
#   slurm_lab_wait_job JOBID REGEX [SECONDS]  # waits until JobState matches REGEX (default 60 s)
#   ovs_lab_start DIR                   # ovsdb-server + ovs-vswitchd, bridges jnsw1 jnsw2 (netdev),
#                                       # trunk jntr1 (jnsw1) - jntr2 (jnsw2), hosts h1..h4 (netns,
#                                       # eth0 10.78.0.N/24; OVS ports h1-sw,h2-sw on jnsw1, h3-sw,h4-sw
#                                       # on jnsw2). Exports OVS_RUNDIR etc.: plain `ovs-vsctl` works.
#   ovs_lab_stop                        # stops them by pid, deletes the netns and leftover netdevs
#
# Initial OVS state (jobnet's openvswitch driver reads VLANs 1..4094 only):
#   trunk ports jntr1/jntr2  trunks=[4094]: a placeholder VLAN no job gets, so the trunk carries
#       nothing (an EMPTY trunks set would mean EVERY VLAN); a job adds `add port jntr1 trunks V`
#       and takes it back with `remove port jntr1 trunks V`.
#   host ports hN-sw         tag=4089+N (h1 4090, h2 4091, h3 4092, h4 4093): a parking VLAN of
#       its own per host, carried by no trunk, so every host is isolated from every other; a job
#       sets `set port h1-sw tag=V` and gives it back with `set port h1-sw tag=4090`.
#   Not used: tag=4095 / trunks=4095. OVS accepts them but treats 4095 as an ordinary VLAN (two
#   tag=4095 ports talk, trunks=4095 carries it), and jobnet refuses to read VLAN 4095.
# Permissions: DIR is mode 0755 and DIR/db.sock is chgrp'd to `slurm`, mode 0660 (ovsdb-server
# makes it root:root 0750), so the SlurmUser (the hooks) can run
# `ovs-vsctl --db=unix:DIR/db.sock ...`; other users cannot connect.
# Hooks: PrologSlurmctld/EpilogSlurmctld run as user slurm with NO PATH and no SLURM_CONF, their
# output discarded. The lab points slurm.conf at a wrapper DIR/run/{prolog,epilog}-slurmctld that
# only adds SLURM_CONF=DIR/slurm.conf (what a production hook gets from /etc/slurm/slurm.conf)
# and execs the hook (SLURM_LAB_RAW_HOOKS=1: no wrapper). Hooks must be readable+executable by
# slurm, and every directory above DIR must be searchable by slurm (not under /root).
# Knobs (environment, read by slurm_lab_start):
#   SLURM_LAB_PORT         slurmctld port (default 16817; slurmd use PORT+1..PORT+4)
#   SLURM_LAB_CRED_EXPIRE  AuthInfo cred_expire: a job requeued after a failed PrologSlurmctld is
#                          eligible again after cred_expire+1 s, then waits for the next scheduler
#                          pass (default 120 as Slurm: retries every ~2-3 min; 5 works)
#   SLURM_LAB_EXTRA        lines appended to slurm.conf, e.g. for fast CI:
#                          "SchedulerParameters=batch_sched_delay=0,bf_interval=2,sched_interval=5"
#                          (sbatch->prolog ~0.6 s instead of ~2.7 s; retries every ~6-8 s with 5)
# Batch output goes to DIR/jobs (SBATCH_OUTPUT is exported), never into the caller's directory.

SLURM_LAB_DIR=${SLURM_LAB_DIR:-}
SLURM_LAB_NODES="node001 node002 node003 node004"
SLURM_LAB_MUNGED_PID=${SLURM_LAB_MUNGED_PID:-}
SLURM_LAB_CTLD_PID=${SLURM_LAB_CTLD_PID:-}
SLURM_LAB_SLURMD_PIDS=${SLURM_LAB_SLURMD_PIDS:-}
OVS_LAB_DIR=${OVS_LAB_DIR:-}
OVS_LAB_HOSTS="h1 h2 h3 h4"

_lab_log() { echo "lab: $*" >&2; }

# _lab_install CMD:PACKAGE ...: installs the packages whose command is missing.
_lab_install() {
  local need=() x
  for x in "$@"; do command -v "${x%%:*}" >/dev/null 2>&1 || need+=("${x##*:}"); done
  [ ${#need[@]} -eq 0 ] && return 0
  _lab_log "installing ${need[*]}"
  # policy-rc.d (exit 101 on these images) keeps the packages' own daemons from starting.
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
}

# _lab_alive PID: the process exists and is no zombie (PID 1 here is no init that reaps at once).
_lab_alive() {
  [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# _lab_stop_pid PID [NAME] [SIGNAL]: SIGNAL (TERM), up to 5 s, then KILL; only if PID is still NAME.
_lab_stop_pid() {
  local pid=$1 name=${2:-} sig=${3:-TERM} i
  if ! _lab_alive "$pid"; then
    wait "$pid" 2>/dev/null || true
    return 0
  fi
  if [ -n "$name" ] && ! grep -q "$name" "/proc/$pid/comm" 2>/dev/null; then return 0; fi
  kill "-$sig" "$pid" 2>/dev/null || return 0
  for i in $(seq 50); do _lab_alive "$pid" || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- Slurm

# _slurm_lab_wrap DIR NAME HOOK: prints the path of a wrapper that gives HOOK the SLURM_CONF a
# production hook finds by default (/etc/slurm/slurm.conf): Slurm passes no SLURM_CONF and no PATH.
_slurm_lab_wrap() {
  local w=$1/run/$2-slurmctld
  if [ -n "${SLURM_LAB_RAW_HOOKS:-}" ]; then echo "$3"; return 0; fi
  # dash exports a default PATH when it has none: take it away again, as Slurm gives none.
  # DIR/run/hook.env, when present, is sourced too: the lab's stand-in for files a production hook
  # finds in /etc (JOBNET_CONFIG) and its way to inject faults into one job's hook.
  printf '#!/bin/sh\nunset PATH\nSLURM_CONF=%s/slurm.conf\nexport SLURM_CONF\nif [ -r %s/run/hook.env ]; then . %s/run/hook.env; fi\nexec %s "$@"\n' "$1" "$1" "$1" "$3" >"$w"
  chmod 0755 "$w"
  echo "$w"
}

# slurm_lab_install: installs Slurm and munge (the packages create the user `slurm`): a lab that
# prepares files for user slurm calls it before slurm_lab_start, on a machine that has neither.
slurm_lab_install() {
  _lab_install munged:munge slurmctld:slurm-wlm slurmd:slurm-wlm sbatch:slurm-client || return 1
  id slurm >/dev/null 2>&1 || { _lab_log "no user slurm (package slurm-wlm creates it)"; return 1; }
}

slurm_lab_start() {
  local dir=${1:?usage: slurm_lab_start DIR PROLOG EPILOG} prolog=${2-} epilog=${3-}
  local t0 port=${SLURM_LAB_PORT:-16817} cred=${SLURM_LAB_CRED_EXPIRE:-120} i n p
  t0=$(date +%s%N)
  [ "$(id -u)" = 0 ] || { _lab_log "slurm_lab_start needs root"; return 1; }
  if _lab_alive "$SLURM_LAB_CTLD_PID" || _lab_alive "$SLURM_LAB_MUNGED_PID"; then
    _lab_log "a Slurm lab already runs from this shell: slurm_lab_stop first"; return 1
  fi
  _lab_install munged:munge slurmctld:slurm-wlm slurmd:slurm-wlm sbatch:slurm-client || return 1
  id slurm >/dev/null 2>&1 || { _lab_log "no user slurm (package slurm-wlm creates it)"; return 1; }
  mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || return 1
  for p in "$prolog" "$epilog"; do
    [ -z "$p" ] && continue
    case $p in /*) ;; *) _lab_log "hook $p: give an absolute path"; return 1;; esac
    [ -f "$p" ] || _lab_log "warning: hook $p does not exist (yet)"
  done
  SLURM_LAB_DIR=$dir
  chmod 0755 "$dir"
  rm -rf "$dir/munge" "$dir/state" "$dir/spool" "$dir/run"
  mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/run" "$dir/log" "$dir/jobs"
  chmod 1777 "$dir/jobs"
  rm -f "$dir"/log/munged.* "$dir"/log/slurmctld.* "$dir"/log/slurmd-*
  chown slurm:slurm "$dir/state" "$dir/log" "$dir/run"
  chmod 0700 "$dir/munge"
  if ! runuser -u slurm -- test -x "$dir"; then
    _lab_log "user slurm cannot reach $dir (a parent directory is not searchable)"; return 1
  fi

  # munge: a private key and socket (root runs munged; the socket is 0777 inside a 0755 dir).
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 0400 "$dir/munge/munge.key"
  chmod 0755 "$dir/munge"
  munged -F --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" \
    --pid-file="$dir/munge/munged.pid" --seed-file="$dir/munge/munged.seed" \
    >>"$dir/log/munged.log" 2>&1 &
  SLURM_LAB_MUNGED_PID=$!
  for i in $(seq 50); do [ -S "$dir/munge/munge.sock" ] && break; sleep 0.1; done
  [ -S "$dir/munge/munge.sock" ] || { _lab_log "munged did not start (see $dir/log/munged.log)"; slurm_lab_stop; return 1; }

  {
    echo "# written by .ci/labs/slurm-setup.sh"
    echo "ClusterName=jnlab"
    echo "SlurmctldHost=$(hostname -s)(127.0.0.1)"
    echo "SlurmctldPort=$port"
    echo "SlurmUser=slurm"
    echo "SlurmdUser=root"
    echo "AuthType=auth/munge"
    echo "CredType=cred/munge"
    echo "AuthInfo=socket=$dir/munge/munge.sock,cred_expire=$cred"
    echo "StateSaveLocation=$dir/state"
    echo "SlurmdSpoolDir=$dir/spool/%n"
    echo "SlurmctldPidFile=$dir/run/slurmctld.pid"
    echo "SlurmdPidFile=$dir/run/slurmd-%n.pid"
    echo "SlurmctldLogFile=$dir/log/slurmctld.log"
    echo "SlurmdLogFile=$dir/log/slurmd-%n.log"
    echo "SlurmctldDebug=verbose"
    echo "SlurmdDebug=verbose"
    echo "ProctrackType=proctrack/linuxproc"
    echo "TaskPlugin=task/none"
    echo "JobAcctGatherType=jobacct_gather/none"
    echo "AccountingStorageType=accounting_storage/none"
    echo "JobCompType=jobcomp/none"
    echo "SwitchType=switch/none"
    echo "MpiDefault=none"
    echo "SelectType=select/linear"
    echo "SchedulerType=sched/backfill"
    echo "ReturnToService=2"
    echo "MailProg=/bin/true"
    echo "SlurmctldTimeout=30"
    echo "SlurmdTimeout=300"
    echo "InactiveLimit=0"
    echo "KillWait=5"
    echo "MinJobAge=300"
    echo "PrologEpilogTimeout=60"
    if [ -n "$prolog" ]; then echo "PrologSlurmctld=$(_slurm_lab_wrap "$dir" prolog "$prolog")"; fi
    if [ -n "$epilog" ]; then echo "EpilogSlurmctld=$(_slurm_lab_wrap "$dir" epilog "$epilog")"; fi
    i=0
    for n in $SLURM_LAB_NODES; do
      i=$((i + 1))
      echo "NodeName=$n NodeHostname=$n NodeAddr=127.0.0.1$i Port=$((port + i)) CPUs=$(nproc) RealMemory=1000 State=UNKNOWN"
    done
    echo "PartitionName=vm Nodes=node[001-004] MaxTime=INFINITE State=UP"
    echo "PartitionName=batch Nodes=node[001-004] Default=YES MaxTime=INFINITE State=UP"
    if [ -n "${SLURM_LAB_EXTRA:-}" ]; then printf '%s\n' "$SLURM_LAB_EXTRA"; fi
  } >"$dir/slurm.conf"
  chmod 0644 "$dir/slurm.conf"
  export SLURM_CONF=$dir/slurm.conf
  # Batch output goes to DIR/jobs, not to slurm-N.out in the caller's directory (the repo).
  export SBATCH_OUTPUT=$dir/jobs/slurm-%j.out

  slurm_lab_ctld_start || { slurm_lab_stop; return 1; }
  SLURM_LAB_SLURMD_PIDS=""
  for n in $SLURM_LAB_NODES; do
    mkdir -p "$dir/spool/$n"
    (cd "$dir" && exec slurmd -D -N "$n" -f "$SLURM_CONF" >>"$dir/log/slurmd-$n.out" 2>&1) &
    SLURM_LAB_SLURMD_PIDS="$SLURM_LAB_SLURMD_PIDS $!"
  done
  export SLURM_LAB_DIR SLURM_LAB_MUNGED_PID SLURM_LAB_CTLD_PID SLURM_LAB_SLURMD_PIDS
  for i in $(seq 300); do
    [ "$(sinfo -h -N -p batch -o '%N %T' 2>/dev/null | grep -c ' idle$')" = 4 ] && break
    sleep 0.1
  done
  if [ "$(sinfo -h -N -p batch -o '%N %T' 2>/dev/null | grep -c ' idle$')" != 4 ]; then
    _lab_log "nodes not idle after 30 s: $(sinfo -h -N -o '%N %T' 2>&1 | sort -u | tr '\n' ' ') (logs in $dir/log)"
    slurm_lab_stop; return 1
  fi
  _lab_log "slurm up in $(( ($(date +%s%N) - t0) / 1000000 )) ms (SLURM_CONF=$SLURM_CONF)"
}

slurm_lab_ctld_start() {
  local dir=${SLURM_LAB_DIR:?slurm_lab_start first} i
  # The hooks inherit slurmctld's working directory: DIR, not the caller's.
  (cd "$dir" && exec slurmctld -D -f "$dir/slurm.conf" >>"$dir/log/slurmctld.out" 2>&1) &
  SLURM_LAB_CTLD_PID=$!
  export SLURM_LAB_CTLD_PID
  for i in $(seq 100); do
    SLURM_CONF=$dir/slurm.conf scontrol ping 2>/dev/null | grep -q 'is UP' && return 0
    _lab_alive "$SLURM_LAB_CTLD_PID" || break
    sleep 0.1
  done
  _lab_log "slurmctld did not come up (see $dir/log/slurmctld.*)"
  return 1
}

slurm_lab_ctld_kill() {
  _lab_stop_pid "$SLURM_LAB_CTLD_PID" slurmctld "${1:-KILL}"
  SLURM_LAB_CTLD_PID=""
}

slurm_lab_ctld_checkpoint() {
  local save=${1:?usage: slurm_lab_ctld_checkpoint SAVE} dir=${SLURM_LAB_DIR:?slurm_lab_start first}
  slurm_lab_ctld_kill TERM
  rm -rf "$save" && mkdir -p "$save" || return 1
  find "$dir/state" -maxdepth 1 -type f -exec cp -p {} "$save/" \; || return 1
  slurm_lab_ctld_start
}

slurm_lab_ctld_rewind() {
  local save=${1:?usage: slurm_lab_ctld_rewind SAVE} dir=${SLURM_LAB_DIR:?slurm_lab_start first}
  if _lab_alive "$SLURM_LAB_CTLD_PID"; then _lab_log "slurm_lab_ctld_rewind: slurmctld still runs"; return 1; fi
  find "$dir/state" -maxdepth 1 -type f -delete || return 1
  cp -p "$save"/* "$dir/state/"
}

slurm_lab_stop() {
  local p i dir=${SLURM_LAB_DIR:-}
  # Cancel what is left, so that no batch script outlives its slurmd.
  if [ -n "$dir" ] && _lab_alive "$SLURM_LAB_CTLD_PID"; then
    if [ -n "$(SLURM_CONF=$dir/slurm.conf squeue -h -o %i 2>/dev/null)" ]; then
      SLURM_CONF=$dir/slurm.conf squeue -h -o %i 2>/dev/null | xargs -r env SLURM_CONF="$dir/slurm.conf" scancel 2>/dev/null || true
      for i in $(seq 50); do
        SLURM_CONF=$dir/slurm.conf squeue -h -t R,CG -o %i 2>/dev/null | grep -q . || break
        sleep 0.1
      done
    fi
  fi
  for p in $SLURM_LAB_SLURMD_PIDS; do _lab_stop_pid "$p" slurmd; done
  _lab_stop_pid "$SLURM_LAB_CTLD_PID" slurmctld
  _lab_stop_pid "$SLURM_LAB_MUNGED_PID" munged
  SLURM_LAB_SLURMD_PIDS="" SLURM_LAB_CTLD_PID="" SLURM_LAB_MUNGED_PID=""
  # Batch scripts and slurmstepd of jobs still running are children of init by now: end those
  # whose working configuration is this lab's (their environment names our SLURM_CONF).
  if [ -n "$dir" ]; then
    for p in $(pgrep -x slurmstepd 2>/dev/null); do
      if tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qx "SLURM_CONF=$dir/slurm.conf"; then
        kill -9 "$p" 2>/dev/null || true
      fi
    done
    rm -rf "$dir/munge" "$dir/state" "$dir/spool" "$dir/run"
  fi
  SLURM_LAB_DIR=""
  if [ -n "$dir" ] && [ "${SLURM_CONF:-}" = "$dir/slurm.conf" ]; then unset SLURM_CONF SBATCH_OUTPUT; fi
  return 0
}

slurm_lab_job_field() { # (a value with spaces, e.g. Comment, comes back cut at the first one)
  local out w words=()
  out=$(scontrol -o show job "$1" 2>/dev/null) || true
  read -ra words <<<"$out"
  for w in "${words[@]}"; do
    case $w in "$2="*) echo "${w#*=}"; return 0 ;; esac
  done
  return 0
}

slurm_lab_wait_job() {
  local id=$1 re=$2 limit=${3:-60} i s=""
  for i in $(seq $((limit * 10))); do
    s=$(slurm_lab_job_field "$id" JobState)
    if [[ $s =~ ^($re)$ ]]; then return 0; fi
    sleep 0.1
  done
  _lab_log "job $id: state '$s' after ${limit}s, wanted $re"
  return 1
}

# ---------------------------------------------------------------- Open vSwitch

ovs_lab_start() {
  local dir=${1:?usage: ovs_lab_start DIR} i h sw
  [ "$(id -u)" = 0 ] || { _lab_log "ovs_lab_start needs root"; return 1; }
  _lab_install ovs-vsctl:openvswitch-switch ping:iputils-ping ip:iproute2 || return 1
  mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || return 1
  if ip link show jnsw1 >/dev/null 2>&1 && _lab_other_vswitchd; then
    _lab_log "another ovs-vswitchd runs with a jnsw1: stop that lab first"; return 1
  fi
  _ovs_lab_clean   # leftovers of a lab that was killed
  chmod 0755 "$dir"
  OVS_LAB_DIR=$dir
  export OVS_LAB_DIR OVS_RUNDIR=$dir OVS_LOGDIR=$dir OVS_DBDIR=$dir
  rm -f "$dir/conf.db" "$dir/.conf.db.~lock~"
  ovsdb-tool create "$dir/conf.db" /usr/share/openvswitch/vswitch.ovsschema || return 1
  ovsdb-server "$dir/conf.db" --remote="punix:$dir/db.sock" --pidfile="$dir/ovsdb.pid" --detach -vconsole:off \
    --log-file="$dir/ovsdb.log" --unixctl="$dir/ovsdb.ctl" || { ovs_lab_stop; return 1; }
  # ovsdb-server makes its socket 0750 root:root: let the SlurmUser's group write to it.
  if id slurm >/dev/null 2>&1; then chgrp slurm "$dir/db.sock" && chmod 0660 "$dir/db.sock"; fi
  ovs-vsctl --db="unix:$dir/db.sock" --no-wait init || { ovs_lab_stop; return 1; }
  ovs-vswitchd "unix:$dir/db.sock" --pidfile="$dir/vswitchd.pid" --detach -vconsole:off \
    --log-file="$dir/vswitchd.log" --unixctl="$dir/vswitchd.ctl" || { ovs_lab_stop; return 1; }
  local v=(ovs-vsctl --db="unix:$dir/db.sock" --timeout=10)
  "${v[@]}" add-br jnsw1 -- set bridge jnsw1 datapath_type=netdev \
    -- add-br jnsw2 -- set bridge jnsw2 datapath_type=netdev || { ovs_lab_stop; return 1; }
  if ! { ip link add jntr1 type veth peer name jntr2 && ip link set jntr1 up && ip link set jntr2 up; }; then
    ovs_lab_stop; return 1
  fi
  "${v[@]}" add-port jnsw1 jntr1 trunks=4094 -- add-port jnsw2 jntr2 trunks=4094 || { ovs_lab_stop; return 1; }
  i=0
  for h in $OVS_LAB_HOSTS; do
    i=$((i + 1))
    sw=jnsw1
    if [ $i -gt 2 ]; then sw=jnsw2; fi
    if ! { ip netns add "$h" &&
      ip link add "$h-sw" type veth peer name eth0 netns "$h" &&
      ip link set "$h-sw" up &&
      ip -n "$h" addr add "10.78.0.$i/24" dev eth0 &&
      ip -n "$h" link set eth0 up &&
      ip -n "$h" link set lo up &&
      "${v[@]}" add-port "$sw" "$h-sw" tag=$((4089 + i)); }; then
      ovs_lab_stop; return 1
    fi
  done
}

_lab_other_vswitchd() {
  local p
  for p in $(pgrep -x ovs-vswitchd || true); do
    if _lab_alive "$p"; then return 0; fi
  done
  return 1
}

_ovs_lab_clean() {
  local h f
  for h in $OVS_LAB_HOSTS; do
    ip netns del "$h" 2>/dev/null || true
    ip link del "$h-sw" 2>/dev/null || true
  done
  ip link del jntr1 2>/dev/null || true
  # The userspace datapath leaves its tap netdevs behind (ovs-netdev is shared by every
  # userspace ovs-vswitchd: only when none runs).
  for f in jnsw1 jnsw2; do ip link del "$f" 2>/dev/null || true; done
  if ! _lab_other_vswitchd; then ip link del ovs-netdev 2>/dev/null || true; fi
  return 0
}

ovs_lab_stop() {
  local dir=${OVS_LAB_DIR:-} f h
  for h in $OVS_LAB_HOSTS; do ip netns del "$h" 2>/dev/null || true; done
  if [ -n "$dir" ]; then
    for f in vswitchd ovsdb; do
      if [ -f "$dir/$f.pid" ]; then _lab_stop_pid "$(cat "$dir/$f.pid")" ovs; fi
      rm -f "$dir/$f.pid"
    done
    rm -f "$dir/db.sock" "$dir/ovsdb.ctl" "$dir/vswitchd.ctl"
  fi
  _ovs_lab_clean
  OVS_LAB_DIR=""
  return 0
}
