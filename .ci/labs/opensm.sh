#!/usr/bin/env bash
# Lab on a real subnet manager: OpenSM on a simulated InfiniBand fabric (ibsim, umad2sim).
# 1. Every partitions.conf in tests/opensm-cases/ is installed (atomically) and OpenSM reloads
#    it (SIGHUP); OpenSM's verdict (a PARSE ERROR or "retrying with default config" in its log,
#    or a clean heavy sweep) is compared with `jobnet ib check`; for files OpenSM misreads, and
#    for files jobnet refuses for its block or a PKey merge, what OpenSM applied is shown on the
#    ports with smpquery (see tests/opensm-cases/README.md).
# 2. A file planned by `jobnet plan` is loaded and `smpquery pkeys` shows the job's PKey as a full
#    member exactly on the job's HCA ports.
# Installs what it needs; stops its daemons by pid. Ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
JOBNET=${JOBNET:-$PWD/target/debug/jobnet}
[ -x "$JOBNET" ] || { echo "opensm lab: $JOBNET not built" >&2; exit 1; }
PRELOAD=/usr/lib/x86_64-linux-gnu/umad2sim/libumad2sim.so
SIMBIN=${SIMBIN:-$(dirname "$JOBNET")/jobnet-switch-sim}
[ "$(id -u)" = 0 ] || { echo "opensm lab: needs root (packages, and sshd as the standby SM host)" >&2; exit 1; }
if ! command -v opensm >/dev/null || ! command -v ibsim >/dev/null || ! command -v smpquery >/dev/null || [ ! -f "$PRELOAD" ] || [ ! -x /usr/sbin/sshd ] || ! command -v bc >/dev/null; then
  echo "opensm lab: installing opensm ibsim-utils infiniband-diags libumad2sim0 openssh-server bc"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq opensm ibsim-utils infiniband-diags libibumad3 libumad2sim0 openssh-server openssh-client bc >/dev/null
fi

D=$(mktemp -d /tmp/jobnet-opensm.XXXXXX)
# Two switches, six HCAs (ibsim's net format); the first port in the file is the SM's.
NET=$D/net.2sw6hca
{
  printf 'Switch\t8 "Switch1"\n[1]\t"Hca1"[1]\n[2]\t"Hca2"[1]\n[3]\t"Hca3"[1]\n[5]\t"Switch2"[5]\n\n'
  printf 'Switch\t8 "Switch2"\n[1]\t"Hca4"[1]\n[2]\t"Hca5"[1]\n[3]\t"Hca6"[1]\n[5]\t"Switch1"[5]\n\n'
  for i in 1 2 3 4 5 6; do sw=$(( i <= 3 ? 1 : 2 )); port=$(( (i - 1) % 3 + 1 )); printf 'Hca\t2 "Hca%s"\n[1]\t"Switch%s"[%s]\n\n' "$i" "$sw" "$port"; done
} > "$NET"
export IBSIM_SOCKNAME="jobnet-lab-$$"
IBSIM="" OSM="" SIM="" SSHD=""
stop() { # stop PID: TERM, then KILL after 3 s (OpenSM can hang on exit without its fabric)
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 30); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  set +e
  stop "$SIM"
  stop "$SSHD"
  stop "$OSM"      # the SM first, while its fabric still exists
  stop "$IBSIM"
  if [ "${fail:-1}" = 0 ]; then rm -rf "$D"; else echo "opensm lab: kept $D for inspection"; fi
}
trap cleanup EXIT
pass=0 fail=0
ok()  { pass=$((pass+1)); echo "ok   - $*"; }
bad() { fail=$((fail+1)); echo "FAIL - $*"; }

# umad2sim creates ./sys-<pid> directories: run the InfiniBand programs inside $D.
(cd "$D" && exec ibsim -s -n "$NET" > ibsim.log 2>&1) &
IBSIM=$!
sleep 0.5
printf 'Default=0x7fff, ipoib : ALL=full;\n' > "$D/p.conf"
(cd "$D" && LD_PRELOAD=$PRELOAD OSM_CACHE_DIR=$D OSM_TMP_DIR=$D exec opensm -F /dev/null -P "$D/p.conf" -f "$D/osm.log" -d 2 > osm.out 2>&1) &
OSM=$!
for _ in $(seq 100); do grep -q "SUBNET UP" "$D/osm.log" 2>/dev/null && break; sleep 0.1; done
if grep -q "SUBNET UP" "$D/osm.log"; then ok "OpenSM is up on the simulated fabric"; else bad "OpenSM did not come up"; exit 1; fi

# install FILE: replace p.conf atomically, SIGHUP, wait for the reload; sets OSM_VERDICT
install() {
  cp "$1" "$D/p.conf.tmp" && mv "$D/p.conf.tmp" "$D/p.conf"
  local n new; n=$(wc -l < "$D/osm.log")
  kill -HUP "$OSM"
  for _ in $(seq 100); do
    new=$(tail -n +$((n+1)) "$D/osm.log")
    case $new in *"SUBNET UP"*|*"PARSE ERROR"*) break ;; esac
    sleep 0.05
  done
  sleep 0.2
  new=$(tail -n +$((n+1)) "$D/osm.log")
  case $new in
    *"PARSE ERROR"*|*"retrying with default config"*) OSM_VERDICT=reject ;;
    *"SUBNET UP"*) OSM_VERDICT=accept ;;
    *) OSM_VERDICT=unknown ;;
  esac
}
# ports FILE TAG: every `# TAG: GUID shows|lacks PKEY` line of FILE holds on the real ports
# (TAG is `misread` in misread/, `opensm` in stricter/: what OpenSM makes of a file jobnet refuses)
ports() {
  local guid how key table
  grep -aq "^# $2: " "$1" || return 1
  while read -r _ _ guid how key; do
    for _ in $(seq 20); do
      table=$(cd "$D" && LD_PRELOAD=$PRELOAD smpquery -G pkeys "$guid" 1 2>/dev/null < /dev/null | head -1)
      case $how in
        shows) [[ $table == *"$key"* ]] && continue 2 ;;
        lacks) [[ $table != *"$key"* && $table == *0xffff* ]] && continue 2 ;;
        *) return 1 ;;
      esac
      sleep 0.1
    done
    echo "    $guid: $table" >&2
    return 1
  done < <(grep -a "^# $2: " "$1")
}
said() { grep -a "^# $2: " "$1" | cut -c$(( ${#2} + 5 ))- | paste -sd';' | sed 's/;/; /g'; }

for class in accept reject stricter misread; do
  for f in tests/opensm-cases/$class/*.conf; do
    name=${f#tests/opensm-cases/}
    if "$JOBNET" ib check "$f" > /dev/null 2>&1; then mine=accept; else mine=reject; fi
    install "$f"
    case $class in
      accept)   [ "$mine" = accept ] && [ "$OSM_VERDICT" = accept ] && ok "$name: OpenSM and jobnet accept it" || bad "$name: OpenSM $OSM_VERDICT, jobnet $mine" ;;
      reject)   [ "$mine" = reject ] && [ "$OSM_VERDICT" = reject ] && ok "$name: OpenSM and jobnet reject it" || bad "$name: OpenSM $OSM_VERDICT, jobnet $mine" ;;
      stricter) if ! grep -aq '^# opensm: ' "$f"; then
                  [ "$mine" = reject ] && ok "$name: jobnet rejects it (OpenSM: $OSM_VERDICT)" || bad "$name: jobnet accepted it"
                # A block or merge refusal: OpenSM reads the file, and the ports show what it applied.
                elif [ "$mine" = reject ] && [ "$OSM_VERDICT" = accept ] && ports "$f" opensm; then
                  ok "$name: OpenSM accepts it and applies it ($(said "$f" opensm)); jobnet rejects it"
                else bad "$name: OpenSM $OSM_VERDICT, jobnet $mine, ports: $(said "$f" opensm)"; fi ;;
      misread)  if [ "$mine" = reject ] && [ "$OSM_VERDICT" = accept ] && ports "$f" misread; then ok "$name: OpenSM accepts it and misreads it ($(said "$f" misread)); jobnet rejects it"; else bad "$name: OpenSM $OSM_VERDICT, jobnet $mine, ports: $(said "$f" misread)"; fi ;;
    esac
  done
done

# ibnetdiscover on the live fabric, imported into a topology that names the HCAs.
(cd "$D" && LD_PRELOAD=$PRELOAD ibnetdiscover > ibnetdiscover.txt 2>/dev/null)
cat > "$D/eth.yaml" <<YAML
name: ib-lab
ethernet: {vlan_pool: "100-199"}
switches:
  - {name: sw1, driver: arista-eos, address: 192.0.2.1, credentials: sim}
nodes:
  - {name: "Hca[1-6]", port: "sw1:Ethernet[1-6]"}
YAML
"$JOBNET" topology import-ib "$D/ibnetdiscover.txt" --topology "$D/eth.yaml" --format yaml > "$D/nodes.yaml"
mapfile -t G < <(grep -o '0x[0-9a-f]\{16\}' "$D/nodes.yaml")
[ "${#G[@]}" = 6 ] && ok "import-ib maps Hca1-6 to six port GUIDs from live ibnetdiscover output" || bad "import-ib: $(cat "$D/nodes.yaml")"

# jobnet up/down with partitions: Ethernet through the SSH switch simulator, OpenSM reloaded
# through its pidfile, member ports verified with smpquery.
"$SIMBIN" --topology "$D/eth.yaml" --out "$D/sim" > "$D/sim.log" 2>&1 &
SIM=$!
for _ in $(seq 100); do [ -f "$D/sim/ready" ] && break; sleep 0.05; done
echo "$OSM" > "$D/opensm.pid"
# A real sshd on loopback plays the standby SM host: it must receive every version of the file.
SSHPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p /run/sshd "$D/standby"
ssh-keygen -q -t ed25519 -N '' -f "$D/ssh_host_ed25519_key"
ssh-keygen -q -t ed25519 -N '' -f "$D/id_ed25519"
cp "$D/id_ed25519.pub" "$D/authorized_keys"
printf 'Port %s\nListenAddress 127.0.0.1\nHostKey %s\nPidFile %s\nAuthorizedKeysFile %s\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n' \
  "$SSHPORT" "$D/ssh_host_ed25519_key" "$D/sshd.pid" "$D/authorized_keys" > "$D/sshd_config"
/usr/sbin/sshd -f "$D/sshd_config"
for _ in $(seq 50); do [ -s "$D/sshd.pid" ] && break; sleep 0.1; done
SSHD=$(cat "$D/sshd.pid" 2>/dev/null || true)
{ cat "$D/sim/known_hosts"; ssh-keyscan -p "$SSHPORT" -t ed25519 127.0.0.1 2>/dev/null; } > "$D/known_hosts"
{ cat "$D/sim/credentials.yaml"; echo "sm: {username: root, key_file: $D/id_ed25519}"; } > "$D/credentials.yaml"
chmod 600 "$D/credentials.yaml"
cp "$D/original.conf" "$D/standby/partitions.conf" 2>/dev/null || true
printf '#!/bin/sh\ncd %s && LD_PRELOAD=%s exec smpquery "$@" 2>/dev/null\n' "$D" "$PRELOAD" > "$D/smpq"
chmod +x "$D/smpq"
addr=$(grep -o '127.0.0.1:[0-9]*' "$D/sim/topology.yaml" | head -1)
{
  echo "name: ib-lab"
  echo 'ethernet: {vlan_pool: "100-199"}'
  echo "infiniband:"
  echo '  pkey_pool: "0x2000-0x2fff"'
  echo "  partitions_conf: $D/p.conf"
  echo "  reload: {pidfile: $D/opensm.pid}"
  echo "  reload_window_ms: 100"
  echo "  verify: {command: \"$D/smpq -G pkeys {guid} 1\", timeout_ms: 8000}"
  echo "  standby_sms:"
  echo "    - {name: sm2, address: \"127.0.0.1:$SSHPORT\", credentials: sm, partitions_conf: $D/standby/partitions.conf}"
  echo "switches:"
  echo "  - {name: sw1, driver: arista-eos, address: \"$addr\", credentials: sim}"
  cat "$D/nodes.yaml"
} > "$D/ib.yaml"
printf '# admins\nDefault=0x7fff, ipoib : ALL=full;\nstorage=0x0010 : %s=full;\n' "${G[5]}" > "$D/original.conf"
install "$D/original.conf"
J=("$JOBNET" --state "$D/state.db" --credentials "$D/credentials.yaml" --known-hosts "$D/known_hosts" --wait 120)
pk() { "$D/smpq" -G pkeys "$1" 1 | head -1; }
has() { pk "$1" | grep -q "$2"; }
keyof() { "${J[@]}" status --job "$1" --format json | sed -n 's/^ *"pkey": "\(0x[0-9a-f]*\)",*$/\1/p' | head -1; }
full() { printf '0x%04x' $(( $1 | 0x8000 )); }
t0=$(date +%s.%N)
"${J[@]}" up --topology "$D/ib.yaml" --job A --nodes 'Hca[1-3]' > /dev/null && ok "up job A on Hca1-3 (partition applied, reload, verified)" || bad "up A"
elapsed=$(echo "$(date +%s.%N) - $t0" | bc -l)
"${J[@]}" up --topology "$D/ib.yaml" --job B --nodes 'Hca[4-5]' > /dev/null && ok "up job B on Hca4-5" || bad "up B"
cmp -s "$D/p.conf" "$D/standby/partitions.conf" && ok "the standby SM host (sshd) has the same partitions.conf" || bad "standby differs: $(diff "$D/p.conf" "$D/standby/partitions.conf" | head -3)"
ka=$(full "$(keyof A)"); kb=$(full "$(keyof B)")
for i in 0 1 2; do has "${G[$i]}" "$ka" && ok "Hca$((i+1)) carries A's PKey $ka" || bad "Hca$((i+1)): $(pk "${G[$i]}")"; done
for i in 3 4 5; do has "${G[$i]}" "$ka" && bad "Hca$((i+1)) carries A's PKey" || ok "Hca$((i+1)) does not carry A's PKey"; done
for i in 3 4; do has "${G[$i]}" "$kb" && ok "Hca$((i+1)) carries B's PKey $kb" || bad "Hca$((i+1)): $(pk "${G[$i]}")"; done
for i in 0 1 2 5; do has "${G[$i]}" "$kb" && bad "Hca$((i+1)) carries B's PKey" || ok "Hca$((i+1)) does not carry B's PKey"; done
all_default=1; for g in "${G[@]}"; do has "$g" 0xffff || all_default=0; done
[ "$all_default" = 1 ] && ok "Default (0xffff) unchanged on every port" || bad "Default changed"
has "${G[5]}" 0x8010 && ok "the admin's storage partition is untouched on Hca6" || bad "admin partition: $(pk "${G[5]}")"
"${J[@]}" down --job A > /dev/null && ok "down A" || bad "down A"
gone=1; for i in 0 1 2; do for _ in $(seq 40); do has "${G[$i]}" "$ka" || break; sleep 0.1; done; has "${G[$i]}" "$ka" && gone=0; done
[ "$gone" = 1 ] && ok "A's PKey is gone from Hca1-3" || bad "A's PKey still present"
has "${G[3]}" "$kb" && has "${G[4]}" "$kb" && ok "B intact after down A" || bad "B lost"
cp "$D/p.conf" "$D/before-twice.conf"
"${J[@]}" down --job A > /dev/null && cmp -s "$D/p.conf" "$D/before-twice.conf" && ok "down A twice: no change" || bad "down A twice"

# 20 jobs at once: distinct PKeys, few reloads, every one verified.
r0=$(awk '{print $3}' "$D/.p.conf.jobnet-gen")
s0=$(grep -c "SUBNET UP" "$D/osm.log")
rcs=0; pids=()
for i in $(seq 1 20); do "${J[@]}" up --topology "$D/ib.yaml" --job "C$i" --nodes 'Hca[1-2]' > /dev/null 2>&1 & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || rcs=$((rcs+1)); done
[ "$rcs" = 0 ] && ok "20 concurrent ups succeed, each verified on its ports" || bad "$rcs of 20 ups failed"
keys=$(for i in $(seq 1 20); do keyof "C$i"; done | sort -u | wc -l)
[ "$keys" = 20 ] && ok "20 distinct PKeys" || bad "$keys distinct PKeys"
reloads=$(( $(awk '{print $3}' "$D/.p.conf.jobnet-gen") - r0 ))
sweeps=$(( $(grep -c "SUBNET UP" "$D/osm.log") - s0 ))
[ "$reloads" -le 5 ] && ok "coalesced: $reloads reload(s) for 20 jobs (OpenSM heavy sweeps seen: $sweeps)" || bad "$reloads reloads for 20 jobs"
echo "coalescing: 20 concurrent ups -> $reloads reload(s), $sweeps heavy sweep(s); up A to verified PKeys: ${elapsed} s" > "$D/figures.txt"
pids=(); for i in $(seq 1 20); do "${J[@]}" down --job "C$i" > /dev/null 2>&1 & pids+=($!); done
rcs=0; for p in "${pids[@]}"; do wait "$p" || rcs=$((rcs+1)); done
"${J[@]}" down --job B > /dev/null || rcs=$((rcs+1))
[ "$rcs" = 0 ] && cmp -s "$D/p.conf" "$D/original.conf" && ok "all down: partitions.conf equals the original byte for byte" || bad "after all down: $(diff "$D/original.conf" "$D/p.conf" | head -5)"
cmp -s "$D/standby/partitions.conf" "$D/original.conf" && ok "all down: the standby's copy equals the original too" || bad "standby after all down differs"

# The systemd reload method: a stand-in systemctl accepts exactly `kill -s HUP UNIT` and passes
# the signal on to the real OpenSM (this container has no systemd).
mkdir -p "$D/fakebin"
printf '#!/bin/sh\n[ "$*" = "kill -s HUP opensm@lab" ] || { echo "unexpected: systemctl $*" >&2; exit 1; }\nexec kill -HUP "$(cat %s)"\n' "$D/opensm.pid" > "$D/fakebin/systemctl"
chmod +x "$D/fakebin/systemctl"
sed 's|  reload: {pidfile: .*}|  reload: {systemd_unit: "opensm@lab"}|' "$D/ib.yaml" > "$D/ib-systemd.yaml"
# jobnet runs programs by absolute path (never PATH): the site's jobnet.yaml names the stand-in.
printf 'programs: {systemctl: %s/fakebin/systemctl}\n' "$D" > "$D/jobnet.yaml"
if JOBNET_CONFIG="$D/jobnet.yaml" "${J[@]}" up --topology "$D/ib-systemd.yaml" --job S --nodes Hca6 > /dev/null 2>&1; then
  has "${G[5]}" "$(full "$(keyof S)")" && ok "reload through \`systemctl kill -s HUP opensm@lab\`: PKey verified on Hca6" || bad "systemd reload: PKey not on Hca6"
else
  bad "up with the systemd reload method failed"
fi
JOBNET_CONFIG="$D/jobnet.yaml" "${J[@]}" down --job S > /dev/null || bad "down S"

# Files OpenSM would misread are never touched or reloaded: a CRLF file keeps the fabric as it is.
# First let the sweeps that earlier reloads asked for finish (OpenSM re-reads the file on each):
# a sweep still pending from `down S` would read the CRLF file and prove nothing about jobnet.
settle() {
  local n m
  for _ in $(seq 30); do
    n=$(grep -c "SUBNET UP" "$D/osm.log"); sleep 1; m=$(grep -c "SUBNET UP" "$D/osm.log")
    [ "$n" = "$m" ] && return 0
  done
}
settle
cp "$D/p.conf" "$D/good.conf"
printf 'Default=0x7fff, ipoib : ALL=full;\r\nstorage=0x0010 : %s=full;\r\n' "${G[5]}" > "$D/p.conf"
cp "$D/p.conf" "$D/crlf.conf"
r0=$(awk '{print $3}' "$D/.p.conf.jobnet-gen")
set +e; "${J[@]}" up --topology "$D/ib.yaml" --job W --nodes Hca1 > "$D/w.out" 2>&1; rc=$?; set -e
r1=$(awk '{print $3}' "$D/.p.conf.jobnet-gen")
[ "$rc" = 2 ] && grep -q "p.conf:1:34: error: a CR (Windows line end)" "$D/w.out" && cmp -s "$D/p.conf" "$D/crlf.conf" && [ "$r0" = "$r1" ] \
  && ok "a CRLF partitions.conf is refused with its position (exit 2), untouched, OpenSM not reloaded" || bad "CRLF file: rc=$rc $(head -3 "$D/w.out")"
has "${G[5]}" 0x8010 && ok "the admin partition is still on Hca6 (OpenSM never saw the CRLF file)" || bad "admin partition lost: $(pk "${G[5]}")"
# An empty file: the job gets its partition and every port stays a full member of Default.
: > "$D/p.conf"
if "${J[@]}" up --topology "$D/ib.yaml" --job X --nodes Hca1 > "$D/x.out" 2>&1; then
  all_default=1; for g in "${G[@]}"; do has "$g" 0xffff || all_default=0; done
  [ "$all_default" = 1 ] && has "${G[0]}" "$(full "$(keyof X)")" && grep -q "has no partition statements" "$D/x.out" \
    && ok "an empty partitions.conf: Default (0xffff) kept on every port, the job's PKey on Hca1, and up says so" || bad "empty file: $(cat "$D/x.out"; for g in "${G[@]}"; do pk "$g"; done)"
else
  bad "up on an empty partitions.conf failed: $(cat "$D/x.out")"
fi
"${J[@]}" down --job X > /dev/null || bad "down X"
grep -q '^Default=0x7fff, ipoib : ALL=full;$' "$D/p.conf" && ok "after down the written-out Default partition stays" || bad "after down: $(cat "$D/p.conf")"
cp "$D/good.conf" "$D/p.conf"
# A stale pidfile (OpenSM gone, its pid reused by something else) is never signalled.
sleep 300 & VICTIM=$!
cp "$D/opensm.pid" "$D/opensm.pid.real"
echo "$VICTIM" > "$D/opensm.pid"
set +e; "${J[@]}" up --topology "$D/ib.yaml" --job Y --nodes Hca1 > "$D/y.out" 2>&1; rc=$?; set -e
[ "$rc" = 4 ] && grep -q "is stale" "$D/y.out" && kill -0 "$VICTIM" 2>/dev/null \
  && ok "a stale pidfile: job rolled back (exit 4), the unrelated process was not signalled" || bad "stale pidfile: rc=$rc $(cat "$D/y.out")"
kill "$VICTIM" 2>/dev/null; wait "$VICTIM" 2>/dev/null || true
cp "$D/opensm.pid.real" "$D/opensm.pid"
cmp -s "$D/p.conf" "$D/good.conf" && ok "partitions.conf restored after the refused reload" || bad "partitions.conf changed"

# Faults: a broken admin line is refused; OpenSM not running rolls the job back.
cp "$D/p.conf" "$D/good.conf"
printf 'Default=0x7fff, ipoib : ALL=full;\nbad=0x0020 : 0x1\n ;\n' > "$D/p.conf"
set +e; "${J[@]}" up --topology "$D/ib.yaml" --job E --nodes Hca1 > "$D/e.out" 2>&1; rc=$?; set -e
[ "$rc" = 2 ] && grep -q "p.conf:3:2: error: \`;\` is the first character" "$D/e.out" && ok "a broken admin line is refused with its position (exit 2)" || bad "broken admin line: rc=$rc $(cat "$D/e.out")"
cp "$D/good.conf" "$D/p.conf"
stop "$OSM"; OSM=""
set +e; "${J[@]}" up --topology "$D/ib.yaml" --job F --nodes Hca1 > "$D/f.out" 2>&1; rc=$?; set -e
[ "$rc" = 4 ] && grep -q "OpenSM is not running" "$D/f.out" && ok "OpenSM not running: job rolled back (exit 4)" || bad "OpenSM down: rc=$rc $(cat "$D/f.out")"
cmp -s "$D/p.conf" "$D/original.conf" && ok "partitions.conf restored" || bad "partitions.conf not restored"
cat "$D/figures.txt"

echo "opensm lab: $pass passed, $fail failed"
[ "$fail" = 0 ]
