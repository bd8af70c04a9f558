#!/usr/bin/env bash
# Issue 15, P3: the whole `jobnet plan` process for a 10,000-node job on a generated
# 100,000-node 3-tier fat tree (3.7 MB of YAML with IB GUIDs), cold: wall time and peak RSS
# (the goal: <= 0.25 s and <= 100 MB). Two jobs: contiguous cn[000001-010000] (313 leaves) and
# every 10th node (all 3,125 leaves). Figures go to docs/benchmarks.md.
#
# RUNS=N runs per case (default 20). With farm-bench on PATH the medians come from it, and
# BASELINE=/path/to/another/jobnet runs that build in turn with this one (pairwise ratios);
# without it, GNU time gives each run's figures and the script their medians.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-20}
cargo build --release --locked -q
dir=target/bench
mkdir -p "$dir"
target/release/jobnet topology generate fat-tree --nodes 100000 > "$dir/ft100k.yaml"
scattered=$(seq -f 'cn%06g' 1 10 99991 | paste -sd, -)

args() {
  echo "plan --topology $dir/ft100k.yaml --job 1 --nodes $1 --partitions-conf /nonexistent/partitions.conf --format json"
}

case_() {
  local label=$1 nodes=$2
  echo "== $label"
  # shellcheck disable=SC2046 # the arguments are words without spaces
  if command -v farm-bench > /dev/null; then
    if [ -n "${BASELINE:-}" ]; then
      farm-bench -n "$runs" --vs "$BASELINE $(args "$nodes")" -- target/release/jobnet $(args "$nodes")
    else
      farm-bench -n "$runs" -- target/release/jobnet $(args "$nodes")
    fi
    return
  fi
  if [ ! -x /usr/bin/time ]; then
    echo "benches/p3.sh needs farm-bench or GNU time (apt-get install time)" >&2
    exit 1
  fi
  for _ in $(seq "$runs"); do
    /usr/bin/time -f '%e %M' target/release/jobnet $(args "$nodes") 2>&1 > /dev/null | tail -1
  done | sort -n | awk '{ wall[NR] = $1; if ($2 > rss) rss = $2 }
    END { printf "median wall %.2f s (min %.2f, max %.2f), peak RSS %.1f MiB, %d runs\n",
          wall[int((NR + 1) / 2)], wall[1], wall[NR], rss / 1024, NR }'
}

case_ "contiguous cn[000001-010000]" 'cn[000001-010000]'
case_ "scattered, every 10th node" "$scattered"
