#!/usr/bin/env bash
# Side-by-side: weir vs a bare Pingora balancer vs nginx vs HAProxy, one worker each, round
# robin over the same three nginx backends, keep-alive HTTP, interleaved wrk rounds.
# Usage: benches/run.sh [compare.sh options, e.g. -d 10 -r 5 -c 50]
# The same over HTTPS (keep-alive, resumed and full handshakes): benches/run-tls.sh
# Needs: apt-get install -y nginx-light haproxy wrk openssl bc
set -euo pipefail
cd "$(dirname "$0")/.."
dir=/tmp/weir-peers
cargo build --release --quiet --bin weir --example bare_pingora
benches/peers.sh start "$dir"
RUST_LOG=error target/release/weir --config benches/weir-bench.yaml & weir=$!
RUST_LOG=error target/release/examples/bare_pingora 127.0.0.1:8084 & bare=$!
trap 'kill $weir $bare 2>/dev/null; benches/peers.sh stop "$dir"' EXIT
for port in 8083 8084; do
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
done
benches/compare.sh "$@" weir=http://127.0.0.1:8083/ bare-pingora=http://127.0.0.1:8084/ \
  nginx=http://127.0.0.1:8081/ haproxy=http://127.0.0.1:8082/
