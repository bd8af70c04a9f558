#!/usr/bin/env bash
# Smoke lab with the binaries as users get them (`cargo build`, no dev-dependency features): the
# SSH switch simulator serves the demo fabric (privileged mode with a password, host keys,
# password login), `jobnet up` / `status` / `down` go through it, and the fabric is left empty.
# Ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-$PWD/target/debug}
D=$(mktemp -d /tmp/jobnet-sshsim.XXXXXX)
sim=""
cleanup() { [ -n "$sim" ] && kill "$sim" 2>/dev/null; wait "$sim" 2>/dev/null || true; [ "${fail:-1}" = 0 ] && rm -rf "$D"; }
trap cleanup EXIT
pass=0 fail=0
check() { local what=$1; shift; if "$@"; then pass=$((pass+1)); echo "ok   - $what"; else fail=$((fail+1)); echo "FAIL - $what"; fi; }

"$BIN/jobnet-switch-sim" --topology topology/two-tier.yaml --out "$D/lab" & sim=$!
for _ in $(seq 100); do [ -f "$D/lab/ready" ] && break; sleep 0.05; done
J=("$BIN/jobnet" --state "$D/state.db" --credentials "$D/lab/credentials.yaml" --known-hosts "$D/lab/known_hosts")
check "simulator ready" test -f "$D/lab/ready"
check "up over SSH (enable, setup, reads, changes)" "${J[@]}" up --topology "$D/lab/topology.yaml" --job 7 --nodes 'cn[001-004],cn[030-031],cn041' --pkey none
check "status shows the job up" sh -c "'${J[0]}' --state '$D/state.db' status --job 7 | grep -q ' up '"
check "down over SSH" "${J[@]}" down --job 7
check "status shows the job down" sh -c "'${J[0]}' --state '$D/state.db' status --job 7 | grep -q ' down '"
echo "ssh-sim lab: $pass passed, $fail failed"
[ "$fail" = 0 ]
