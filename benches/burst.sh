#!/usr/bin/env bash
# Issue 15, P4: a burst of 100 concurrent `jobnet up`s (3 nodes each, on random leaves) on 16
# simulated switches (2 spines, 14 leaves; 200 ms login, 20 ms per command, as a management
# network across a site sees it), against one job alone; without and with jobnetd (warm
# sessions). Session limit 4 per device (the default). Release builds. Figures go to
# docs/benchmarks.md.
#   JOBS=100 RUNS=3 bash benches/burst.sh
# IB=1: the fabric also has InfiniBand (every node an HCA port GUID, a partitions.conf of the
# bench's own and a reload command that counts its runs), every job gets a partition too, and
# each burst's reloads are printed (OpenSM's reload itself is proven in the OpenSM lab; here the
# count shows how many reloads concurrent jobs cause).
# Prints, per mode: the wall time of one job alone (median of RUNS, cold and, with jobnetd,
# warm), of the burst (median of RUNS), the ratio, the logins the switches accepted during the
# burst, and whether every job came up (exit 0) and went down again with every switch clean; and
# the wall time of the burst's downs, all at once (median of RUNS).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q --bin jobnet --bin jobnetd
cargo build --release --locked -q --features testkit --bin jobnet-switch-sim
command -v bc >/dev/null || { echo "benches/burst.sh needs bc: apt-get install bc" >&2; exit 1; }
B=target/bench/burst
rm -rf "$B"; mkdir -p "$B"
JOBS=${JOBS:-100}
RUNS=${RUNS:-3}
LOGIN_MS=${LOGIN_MS:-200}
CMD_MS=${CMD_MS:-20}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; pids=(); }
trap cleanup EXIT

IB=${IB:-0}
HERE=$(pwd)
printf '#!/bin/sh\necho reload >> %s/%s/reloads\n' "$HERE" "$B" > "$B/reload.sh"
chmod +x "$B/reload.sh"
echo 'Default=0x7fff, ipoib : ALL=full;' > "$B/partitions.conf"
fabric() {
  echo "name: burst-16"
  echo 'ethernet: {vlan_pool: "100-999"}'
  if [ "$IB" = 1 ]; then
    echo "infiniband: {pkey_pool: \"0x1000-0x1fff\", partitions_conf: $HERE/$B/partitions.conf, reload: {command: \"$HERE/$B/reload.sh\"}}"
  fi
  echo "switches:"
  echo "  - {name: spine1, driver: arista-eos, address: 192.0.2.1, credentials: x}"
  echo "  - {name: spine2, driver: arista-eos, address: 192.0.2.2, credentials: x}"
  for l in $(seq -w 1 14); do echo "  - {name: leaf$l, driver: arista-eos, address: 192.0.2.$((10 + 10#$l)), credentials: x}"; done
  echo "links:"
  for l in $(seq -w 1 14); do
    echo "  - {a: leaf$l:Ethernet49, b: spine1:Ethernet$((10#$l))}"
    echo "  - {a: leaf$l:Ethernet50, b: spine2:Ethernet$((10#$l))}"
  done
  echo "nodes:"
  for l in $(seq -w 1 14); do
    guids=""
    [ "$IB" = 1 ] && guids=", ib_guids: [$(for n in 1 2 3 4 5 6 7 8; do printf '"0x0002c903000%02d%03d"' "$((10#$l))" "$n"; if [ $n -lt 8 ]; then printf ', '; fi; done)]"
    echo "  - {name: \"n${l}[01-08]\", port: \"leaf$l:Ethernet[1-8]\"$guids}"
  done
}
fabric > "$B/fabric.yaml"
# Job i: 3 nodes on 3 random leaves (fixed seed), each node used by one job at most per leaf slot.
awk -v jobs="$JOBS" 'BEGIN { srand(15); for (i = 1; i <= jobs; i++) { s = ""; n = 0; delete used;
  while (n < 3) { l = int(rand() * 14) + 1; if (l in used) continue; used[l] = 1; n++;
    s = s (s == "" ? "" : ",") sprintf("n%02d%02d", l, int(rand() * 8) + 1) } print s } }' > "$B/jobs.txt"

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]}'; }

start_sim() {
  local lab=$1
  target/release/jobnet-switch-sim --topology "$B/fabric.yaml" --out "$lab" --login-latency-ms "$LOGIN_MS" --command-latency-ms "$CMD_MS" > "$lab.sim.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do [ -f "$lab/ready" ] && return 0; sleep 0.05; done
  echo "the simulator did not start" >&2; exit 1
}
logins() { cat "$1/logins" 2>/dev/null || echo 0; }
reloads() { if [ -f "$B/reloads" ]; then wc -l < "$B/reloads"; else echo 0; fi; }
PKEY=none
[ "$IB" = 1 ] && PKEY=auto

# run MODE: MODE is "direct" or "jobnetd"
run() {
  local mode=$1 lab=$B/$1
  start_sim "$lab"
  local daemon=off
  if [ "$mode" = jobnetd ]; then
    daemon=$lab/jobnetd.sock
    target/release/jobnetd --socket "$daemon" > "$lab.jobnetd.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -S "$daemon" ] && break; sleep 0.05; done
  fi
  local J=(target/release/jobnet --state "$lab/state.db" --credentials "$lab/credentials.yaml" --known-hosts "$lab/known_hosts" --daemon "$daemon")
  local alone=() warm=() burst=() downs=() logins_burst=() reloads_burst=() ok=1
  local first; first=$(head -1 "$B/jobs.txt")
  for r in $(seq "$RUNS"); do
    if [ "$IB" = 1 ]; then sleep 2.2; fi
    # One job alone (after a pause longer than nothing: the first is cold in both modes).
    local t0; t0=$(now)
    "${J[@]}" up --topology "$lab/topology.yaml" --job "a$r" --nodes "$first" --pkey "$PKEY" > /dev/null
    alone+=("$(echo "$(now) - $t0" | bc -l)")
    "${J[@]}" down --job "a$r" > /dev/null
    # Reloads that come close together are spaced by 10 windows (2 s): a job alone is measured
    # after that.
    if [ "$IB" = 1 ]; then sleep 2.2; fi
    t0=$(now)
    "${J[@]}" up --topology "$lab/topology.yaml" --job "w$r" --nodes "$first" --pkey "$PKEY" > /dev/null
    warm+=("$(echo "$(now) - $t0" | bc -l)")
    "${J[@]}" down --job "w$r" > /dev/null
    if [ "$IB" = 1 ]; then sleep 2.2; fi
    # The burst.
    local before; before=$(logins "$lab")
    local reloads_before; reloads_before=$(reloads)
    t0=$(now)
    local i=0 bp=()
    while read -r nodes; do
      i=$((i + 1))
      "${J[@]}" up --topology "$lab/topology.yaml" --job "r${r}j$i" --nodes "$nodes" --pkey "$PKEY" > "$lab/up.$r.$i.out" 2>&1 &
      bp+=($!)
    done < "$B/jobs.txt"
    local failed=0
    for p in "${bp[@]}"; do wait "$p" || failed=$((failed + 1)); done
    burst+=("$(echo "$(now) - $t0" | bc -l)")
    sleep 0.1
    logins_burst+=("$(( $(logins "$lab") - before ))")
    reloads_burst+=("$(( $(reloads) - reloads_before ))")
    [ "$failed" -eq 0 ] || { ok=0; echo "$mode run $r: $failed of $JOBS ups failed (see $lab/up.$r.*.out)" >&2; }
    local live; live=$("${J[@]}" status --format json | grep -o '"job":' | wc -l)
    [ "$live" -eq "$JOBS" ] || { ok=0; echo "$mode run $r: $live jobs live, expected $JOBS" >&2; }
    local vlans; vlans=$("${J[@]}" status --format json | grep -o '"vlan": *[0-9]*' | sort -u | wc -l)
    [ "$vlans" -eq "$JOBS" ] || { ok=0; echo "$mode run $r: $vlans distinct VLANs, expected $JOBS" >&2; }
    if [ "$IB" = 1 ]; then
      local pkeys; pkeys=$("${J[@]}" status --format json | grep -o '"pkey": *"0x[0-9a-f]*"' | sort -u | wc -l)
      [ "$pkeys" -eq "$JOBS" ] || { ok=0; echo "$mode run $r: $pkeys distinct PKeys, expected $JOBS" >&2; }
    fi
    # Down again, concurrently, and every switch must be back as it was.
    i=0; bp=(); t0=$(now)
    while read -r _; do i=$((i + 1)); "${J[@]}" down --job "r${r}j$i" > /dev/null 2>&1 & bp+=($!); done < "$B/jobs.txt"
    for p in "${bp[@]}"; do wait "$p" || { ok=0; echo "$mode run $r: a down failed" >&2; }; done
    downs+=("$(echo "$(now) - $t0" | bc -l)")
    if [ "$IB" = 1 ] && grep -qE "=0x1[0-9a-fA-F]{3}" "$B/partitions.conf"; then
      ok=0; echo "$mode run $r: job partitions left in partitions.conf" >&2
    fi
  done
  local a w b d
  a=$(printf '%s\n' "${alone[@]}" | median); w=$(printf '%s\n' "${warm[@]}" | median); b=$(printf '%s\n' "${burst[@]}" | median)
  d=$(printf '%s\n' "${downs[@]}" | median)
  local ib=""
  [ "$IB" = 1 ] && ib="; OpenSM reloads during the bursts: ${reloads_burst[*]}"
  printf '%-8s one job %s s (then %s s), burst of %d: %s s = %.1f x one job, %.1f x the second; logins during the bursts: %s%s; %d downs at once: %s s; all correct: %s\n' \
    "$mode" "$a" "$w" "$JOBS" "$b" "$(echo "$b / $a" | bc -l)" "$(echo "$b / $w" | bc -l)" "${logins_burst[*]}" "$ib" "$JOBS" "$d" "$([ $ok = 1 ] && echo yes || echo NO)"
  cleanup
}
run direct
run jobnetd
