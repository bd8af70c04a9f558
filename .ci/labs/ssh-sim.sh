#!/usr/bin/env bash
# Smoke lab with jobnet as users get it (`cargo build`, no test kit: $JOBNET) against the test
# kit's SSH switch simulator ($SIM, built with `--features testkit`), which serves the demo fabric
# (privileged mode with a password, host keys, password login): `jobnet up` / `status` / `down`
# go through it, the fabric is left empty, and JOBNET_FAILPOINT has no effect on the shipped
# binary. Ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
JOBNET=$(realpath "${JOBNET:-target/plain/jobnet}")
SIM=$(realpath "${SIM:-target/debug/jobnet-switch-sim}")
TESTKIT_JOBNET=$(dirname "$SIM")/jobnet
D=$(mktemp -d /tmp/jobnet-sshsim.XXXXXX)
sim=""
cleanup() { [ -n "$sim" ] && kill "$sim" 2>/dev/null; wait "$sim" 2>/dev/null || true; [ "${fail:-1}" = 0 ] && rm -rf "$D"; }
trap cleanup EXIT
pass=0 fail=0
check() { local what=$1; shift; if "$@"; then pass=$((pass+1)); echo "ok   - $what"; else fail=$((fail+1)); echo "FAIL - $what"; fi; }

"$SIM" --topology topology/two-tier.yaml --out "$D/lab" & sim=$!
for _ in $(seq 100); do [ -f "$D/lab/ready" ] && break; sleep 0.05; done
J=("$JOBNET" --state "$D/state.db" --credentials "$D/lab/credentials.yaml" --known-hosts "$D/lab/known_hosts")
check "simulator ready" test -f "$D/lab/ready"
# A failpoint that would abort a test-kit build at the first operation: the shipped binary has no
# failpoint code, so `up` runs through.
check "up over SSH (enable, setup, reads, changes), JOBNET_FAILPOINT ignored" env JOBNET_FAILPOINT=intent:1:abort "${J[@]}" up --topology "$D/lab/topology.yaml" --job 7 --nodes 'cn[001-004],cn[030-031],cn041' --pkey none
check "status shows the job up" sh -c "'${J[0]}' --state '$D/state.db' status --job 7 | grep -q ' up '"
check "down over SSH" "${J[@]}" down --job 7
check "status shows the job down" sh -c "'${J[0]}' --state '$D/state.db' status --job 7 | grep -q ' down '"
check "the test kit's build honours the same failpoint (exit 4, rolled back)" sh -c "JOBNET_FAILPOINT=intent:1:error '$TESTKIT_JOBNET' --state '$D/state.db' --credentials '$D/lab/credentials.yaml' --known-hosts '$D/lab/known_hosts' up --topology '$D/lab/topology.yaml' --job 8 --nodes cn001 --pkey none > /dev/null 2>&1; test \$? = 4"
echo "ssh-sim lab: $pass passed, $fail failed"
[ "$fail" = 0 ]
