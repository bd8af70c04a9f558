#!/usr/bin/env bash
# Smoke lab with jobnet as users get it (`cargo build`, no test kit: $JOBNET) against the test
# kit's SSH switch simulator ($SIM, built with `--features testkit`), which serves the demo fabric
# (privileged mode with a password, host keys, password login): `jobnet up` / `status` / `down`
# go through it, the fabric is left empty, and JOBNET_FAILPOINT has no effect on the shipped
# binary. Then the same through jobnetd ($JOBNETD, the plain build): the first `up` logs in once
# per device, the next `up`/`down`s not at all, /metrics and /v1/health answer on the socket
# (mode 0600), a stop (SIGTERM) exits 0 and removes the socket, and `jobnet` then goes direct.
# Ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
JOBNET=$(realpath "${JOBNET:-target/plain/jobnet}")
SIM=$(realpath "${SIM:-target/debug/jobnet-switch-sim}")
TESTKIT_JOBNET=$(dirname "$SIM")/jobnet
JOBNETD=$(realpath "${JOBNETD:-$(dirname "$JOBNET")/jobnetd}")
command -v curl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null; }
D=$(mktemp -d /tmp/jobnet-sshsim.XXXXXX)
sim="" daemon=""
cleanup() {
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null || true
  [ -n "$sim" ] && kill "$sim" 2>/dev/null; wait "$sim" 2>/dev/null || true
  [ "${fail:-1}" = 0 ] && rm -rf "$D"
}
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

# jobnetd: warm sessions for the jobnet processes.
S=$D/jobnetd.sock
"$JOBNETD" --socket "$S" 2> "$D/jobnetd.log" & daemon=$!
for _ in $(seq 100); do [ -S "$S" ] && break; sleep 0.05; done
check "jobnetd listens on a socket of mode 0600" sh -c "test -S '$S' && test \$(stat -c %a '$S') = 600"
logins() { cat "$D/lab/logins"; }
JD=("${J[@]}" --daemon "$S")
before=$(logins)
check "up through jobnetd" "${JD[@]}" up --topology "$D/lab/topology.yaml" --job 9 --nodes 'cn[001-004],cn[030-031],cn041' --pkey none
sleep 0.2
cold=$(( $(logins) - before ))
# Once or twice per device of the job: a job's two reads of a device go at once.
check "the first up logged in once or twice per device of the job (4 devices: $cold)" test "$cold" -ge 4 -a "$cold" -le 8
check "down through jobnetd" "${JD[@]}" down --job 9
check "up again through jobnetd" "${JD[@]}" up --topology "$D/lab/topology.yaml" --job 10 --nodes 'cn[001-004],cn[030-031],cn041' --pkey none
check "down again through jobnetd" "${JD[@]}" down --job 10
sleep 0.2
warm=$(( $(logins) - before ))
check "warm sessions: at most two per device over both jobs, not a login per process ($warm)" test "$warm" -le 8
check "health answers on the socket" sh -c "curl -sf --unix-socket '$S' http://jobnetd/v1/health | grep -q '\"status\":\"ok\"'"
check "metrics count the logins and the reused sessions" sh -c "curl -sf --unix-socket '$S' http://jobnetd/metrics | grep -qx 'jobnetd_logins_total $warm'"
check "the jobs are down" sh -c "'${J[0]}' --state '$D/state.db' status --job 10 | grep -q ' down '"
kill -TERM "$daemon"; code=0; wait "$daemon" || code=$?; daemon=""
check "SIGTERM stops jobnetd with exit 0" test "$code" = 0
check "the stopped jobnetd removed its socket" test ! -e "$S"
before=$(logins)
check "without jobnetd the same command goes direct" "${JD[@]}" up --topology "$D/lab/topology.yaml" --job 11 --nodes cn001 --pkey none
check "down direct" "${JD[@]}" down --job 11
check "direct means logins again" test "$(logins)" -gt "$before"
echo "ssh-sim lab: $pass passed, $fail failed"
[ "$fail" = 0 ]
