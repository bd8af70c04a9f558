#!/usr/bin/env bash
# Lab on a real subnet manager: OpenSM on a simulated InfiniBand fabric (ibsim, umad2sim).
# 1. Every partitions.conf in tests/opensm-cases/ is installed (atomically) and OpenSM reloads
#    it (SIGHUP); OpenSM's verdict (a PARSE ERROR in its log, or a clean heavy sweep) is compared
#    with `jobnet ib check` (see tests/opensm-cases/README.md).
# 2. A file planned by `jobnet plan` is loaded and `smpquery pkeys` shows the job's PKey as a full
#    member exactly on the job's HCA ports.
# Installs what it needs; stops its daemons by pid. Ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
JOBNET=${JOBNET:-$PWD/target/debug/jobnet}
[ -x "$JOBNET" ] || { echo "opensm lab: $JOBNET not built" >&2; exit 1; }
PRELOAD=/usr/lib/x86_64-linux-gnu/umad2sim/libumad2sim.so
NET=/usr/share/doc/ibsim-utils/net-examples/net.2sw2path4hca
if ! command -v opensm >/dev/null || ! command -v ibsim >/dev/null || ! command -v smpquery >/dev/null || [ ! -f "$PRELOAD" ]; then
  [ "$(id -u)" = 0 ] || { echo "opensm lab: needs root to install opensm, ibsim-utils, infiniband-diags, libumad2sim0" >&2; exit 1; }
  echo "opensm lab: installing opensm ibsim-utils infiniband-diags libumad2sim0"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq opensm ibsim-utils infiniband-diags libibumad3 libumad2sim0 >/dev/null
fi

D=$(mktemp -d /tmp/jobnet-opensm.XXXXXX)
export IBSIM_SOCKNAME="jobnet-lab-$$"
IBSIM="" OSM=""
stop() { # stop PID: TERM, then KILL after 3 s (OpenSM can hang on exit without its fabric)
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 30); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  set +e
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
    *"PARSE ERROR"*) OSM_VERDICT=reject ;;
    *"SUBNET UP"*) OSM_VERDICT=accept ;;
    *) OSM_VERDICT=unknown ;;
  esac
}

for class in accept reject stricter; do
  for f in tests/opensm-cases/$class/*.conf; do
    name=${f#tests/opensm-cases/}
    if "$JOBNET" ib check "$f" > /dev/null 2>&1; then mine=accept; else mine=reject; fi
    install "$f"
    case $class in
      accept)   [ "$mine" = accept ] && [ "$OSM_VERDICT" = accept ] && ok "$name: OpenSM and jobnet accept it" || bad "$name: OpenSM $OSM_VERDICT, jobnet $mine" ;;
      reject)   [ "$mine" = reject ] && [ "$OSM_VERDICT" = reject ] && ok "$name: OpenSM and jobnet reject it" || bad "$name: OpenSM $OSM_VERDICT, jobnet $mine" ;;
      stricter) [ "$mine" = reject ] && ok "$name: jobnet rejects it (OpenSM: $OSM_VERDICT, misread)" || bad "$name: jobnet accepted it" ;;
    esac
  done
done

# A planned file: the job's PKey, full member, exactly on its ports.
cat > "$D/ib.yaml" <<YAML
name: ib-lab
ethernet: {vlan_pool: "100-199"}
infiniband: {pkey_pool: "0x2000-0x2fff", partitions_conf: $D/p.conf}
switches:
  - {name: sw1, driver: arista-eos, address: 192.0.2.1}
nodes:
  - {name: "hca[1-4]", port: "sw1:Ethernet[1-4]", ib_guids: ["0x100001", "0x100004", "0x100007", "0x10000a"]}
YAML
printf 'Default=0x7fff, ipoib : ALL=full;\nstorage=0x0010 : 0x10000a=full;\n' > "$D/admin.conf"
"$JOBNET" plan --topology "$D/ib.yaml" --job 77 --nodes 'hca[1-2]' --partitions-conf "$D/admin.conf" --format json > "$D/plan.json"
python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['infiniband']['partitions_conf'], end='')" "$D/plan.json" > "$D/planned.conf"
install "$D/planned.conf"
[ "$OSM_VERDICT" = accept ] && ok "OpenSM loads the planned file" || bad "OpenSM: $OSM_VERDICT on the planned file"
pkeys() { (cd "$D" && LD_PRELOAD=$PRELOAD smpquery -G pkeys "$1" 1 2>/dev/null | head -1); }
for g in 0x100001 0x100004; do
  pkeys $g | grep -q "0xa000" && ok "HCA port $g carries PKey 0x2000 as a full member (0xa000)" || bad "HCA port $g: $(pkeys $g)"
done
for g in 0x100007 0x10000a; do
  pkeys $g | grep -q "0xa000" && bad "HCA port $g carries the job's PKey" || ok "HCA port $g (not in the job) does not carry it"
done
pkeys 0x10000a | grep -q "0x8010" && ok "the admin's storage partition (0x0010) is still on 0x10000a" || bad "admin partition lost: $(pkeys 0x10000a)"
pkeys 0x100001 | grep -q "0xffff" && ok "Default stays full on job ports" || bad "Default lost: $(pkeys 0x100001)"

# ibnetdiscover on the live fabric, imported into a topology naming the HCAs by description.
(cd "$D" && LD_PRELOAD=$PRELOAD ibnetdiscover > ibnetdiscover.txt 2>/dev/null)
cat > "$D/hcas.yaml" <<YAML
name: hcas
ethernet: {vlan_pool: "100-199"}
infiniband: {pkey_pool: "0x2000-0x2fff"}
switches:
  - {name: sw1, driver: arista-eos, address: 192.0.2.1}
nodes:
  - {name: "Hca[1-4]", port: "sw1:Ethernet[1-4]"}
YAML
"$JOBNET" topology import-ib "$D/ibnetdiscover.txt" --topology "$D/hcas.yaml" --format yaml > "$D/nodes.yaml"
grep -q 'ib_guids: \["0x0000000000100001", "0x0000000000100004", "0x0000000000100007", "0x000000000010000a"\]' "$D/nodes.yaml" \
  && ok "import-ib maps Hca1-4 to their port GUIDs from live ibnetdiscover output" || bad "import-ib: $(cat "$D/nodes.yaml")"

echo "opensm lab: $pass passed, $fail failed"
[ "$fail" = 0 ]
