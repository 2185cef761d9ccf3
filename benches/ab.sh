#!/usr/bin/env bash
# Before and after: weir built at REV (default HEAD~1) against weir built from the working
# tree, same configuration and backends, interleaved wrk rounds: what a change costs.
# Usage: benches/ab.sh [-R REV] [compare.sh options, e.g. -d 8 -r 4 -c 50]
# Needs: apt-get install -y nginx-light haproxy wrk openssl bc
set -euo pipefail
cd "$(dirname "$0")/.."
rev=HEAD~1
if [ "${1:-}" = -R ]; then rev=$2; shift 2; fi
dir=/tmp/weir-peers; tree=/tmp/weir-ab-tree; before=/tmp/weir-ab-before
git worktree remove --force "$tree" 2>/dev/null || true
git worktree add --force --detach "$tree" "$rev" >/dev/null
# One target folder for both, so only weir itself is compiled twice.
CARGO_TARGET_DIR="$PWD/target" cargo build --release --quiet --bin weir --manifest-path "$tree/Cargo.toml"
cp target/release/weir "$before"
git worktree remove --force "$tree"
cargo build --release --quiet --bin weir
benches/peers.sh start "$dir"
sed 's/127.0.0.1:8083/127.0.0.1:8085/' benches/weir-bench.yaml > "$dir/weir-before.yaml"
RUST_LOG=error target/release/weir --config benches/weir-bench.yaml & after=$!
RUST_LOG=error "$before" --config "$dir/weir-before.yaml" & old=$!
trap 'kill $after $old 2>/dev/null; benches/peers.sh stop "$dir"' EXIT
for port in 8083 8085; do
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
done
benches/compare.sh -P after=$after -P before=$old "$@" \
  after=http://127.0.0.1:8083/ before=http://127.0.0.1:8085/
