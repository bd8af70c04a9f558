#!/usr/bin/env bash
# Whole-process figures for `jobnet plan`, cold; they go to docs/benchmarks.md.
#
# Default: peak RSS and wall time of one 1,000-node job on a generated 10,000-node 3-tier fat
# tree (the targets: RSS <= 100 MB, plan <= 5 ms, load <= 150 ms are measured in-process by
# `cargo bench --bench plan`).
#
# BENCH=p3 (issue 15, P3): a 10,000-node job on a generated 100,000-node fat tree (3.7 MB of
# YAML with IB GUIDs), the goal <= 0.25 s and <= 100 MB; jobs contiguous cn[000001-010000] and
# every 10th node (all 3,125 leaves). RUNS=N runs per case (default 20). With farm-bench on
# PATH the medians come from it, and BASELINE=/path/to/another/jobnet runs that build in turn
# with this one (pairwise ratios); without it, GNU time gives each run and the script the median.
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${BENCH:-10k}
if [ ! -x /usr/bin/time ] && { [ "$bench" != p3 ] || ! command -v farm-bench > /dev/null; }; then
  echo "benches/rss.sh needs GNU time: apt-get install time" >&2
  exit 1
fi
cargo build --release --locked -q
dir=target/bench
mkdir -p "$dir"

# One 10k-fabric case: label, hostlist, output format.
run() {
  local label=$1 nodes=$2 fmt=$3
  /usr/bin/time -f "$label ($fmt): %M KB max RSS, %e s wall" \
    target/release/jobnet plan --topology "$dir/ft10k.yaml" --job 1234 --nodes "$nodes" \
      --partitions-conf /nonexistent/partitions.conf --format "$fmt" > /dev/null
}

# The arguments of one P3 plan (words without spaces).
p3_args() {
  echo "plan --topology $dir/ft100k.yaml --job 1 --nodes $1 --partitions-conf /nonexistent/partitions.conf --format json"
}

# One P3 case, RUNS times: label, hostlist.
p3_case() {
  local label=$1 nodes=$2 runs=${RUNS:-20}
  echo "== $label"
  # shellcheck disable=SC2046 # p3_args gives words without spaces
  if command -v farm-bench > /dev/null; then
    if [ -n "${BASELINE:-}" ]; then
      farm-bench -n "$runs" --vs "$BASELINE $(p3_args "$nodes")" -- target/release/jobnet $(p3_args "$nodes")
    else
      farm-bench -n "$runs" -- target/release/jobnet $(p3_args "$nodes")
    fi
    return
  fi
  for _ in $(seq "$runs"); do
    /usr/bin/time -f '%e %M' target/release/jobnet $(p3_args "$nodes") 2>&1 > /dev/null | tail -1
  done | sort -n | awk '{ wall[NR] = $1; if ($2 > rss) rss = $2 }
    END { printf "median wall %.2f s (min %.2f, max %.2f), peak RSS %.1f MiB, %d runs\n",
          wall[int((NR + 1) / 2)], wall[1], wall[NR], rss / 1024, NR }'
}

case $bench in
  p3)
    target/release/jobnet topology generate fat-tree --nodes 100000 > "$dir/ft100k.yaml"
    p3_case "contiguous cn[000001-010000]" 'cn[000001-010000]'
    p3_case "scattered, every 10th node" "$(seq -f 'cn%06g' 1 10 99991 | paste -sd, -)"
    ;;
  *)
    target/release/jobnet topology generate fat-tree --nodes 10000 > "$dir/ft10k.yaml"
    scattered=$(seq -f 'cn%05g' 1 10 9991 | paste -sd, -)
    for fmt in json text svg; do
      run "contiguous cn[00001-01000]" 'cn[00001-01000]' "$fmt"
      run "scattered every 10th node" "$scattered" "$fmt"
    done
    /usr/bin/time -f "topology validate: %M KB max RSS, %e s wall" target/release/jobnet topology validate "$dir/ft10k.yaml" > /dev/null
    ;;
esac
