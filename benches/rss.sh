#!/usr/bin/env bash
# Whole-process figures for `jobnet plan`: peak RSS and wall time of one 1,000-node job on a
# generated 10,000-node 3-tier fat tree (the targets: RSS <= 100 MB, plan <= 5 ms, load <= 150 ms
# are measured in-process by `cargo bench --bench plan`). Figures go to docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/time ]; then
  echo "benches/rss.sh needs GNU time: apt-get install time" >&2
  exit 1
fi
cargo build --release --locked -q
dir=target/bench
mkdir -p "$dir"
target/release/jobnet topology generate fat-tree --nodes 10000 > "$dir/ft10k.yaml"
scattered=$(seq -f 'cn%05g' 1 10 9991 | paste -sd, -)
run() {
  local label=$1 nodes=$2 fmt=$3
  /usr/bin/time -f "$label ($fmt): %M KB max RSS, %e s wall" \
    target/release/jobnet plan --topology "$dir/ft10k.yaml" --job 1234 --nodes "$nodes" \
      --partitions-conf /nonexistent/partitions.conf --format "$fmt" > /dev/null
}
for fmt in json text svg; do
  run "contiguous cn[00001-01000]" 'cn[00001-01000]' "$fmt"
  run "scattered every 10th node" "$scattered" "$fmt"
done
/usr/bin/time -f "topology validate: %M KB max RSS, %e s wall" target/release/jobnet topology validate "$dir/ft10k.yaml" > /dev/null
