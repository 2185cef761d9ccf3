#!/usr/bin/env bash
# What rate limits cost: one weir (one worker thread) serving the same backends through a plain
# route, a route with a local limit, and a route with a limit in Redis (one round trip per
# request), each limit high enough that nothing is refused; interleaved wrk rounds on
# keep-alive connections, weir and redis-server pinned to one core each.
# Usage: benches/ratelimit.sh [compare.sh options, e.g. -d 8 -r 4 -c 50]
#        WEIR=path/to/weir benches/ratelimit.sh …   (a binary already built; default: build
#        the release one)
# Needs: apt-get install -y wrk redis-server (scripts/setup --test installs both)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=/tmp/weir-peers; redis_port=6391
weir_bin=${WEIR:-${CARGO_TARGET_DIR:-target}/release/weir}
[ -n "${WEIR:-}" ] || cargo build --release --quiet --bin weir
benches/peers.sh start "$dir"
cat > "$dir/weir-ratelimit.yaml" <<CONF
server: { threads: 1, pid_file: $dir/weir-ratelimit.pid, upgrade_sock: $dir/weir-ratelimit.sock }
listeners:
  - { name: bench, address: 127.0.0.1:8089 }
rate_limits:
  redis: { url: "redis://127.0.0.1:$redis_port/0" }
  on_store_error: deny
routes:
  - { name: plain, paths: [/plain], upstream: backends }
  - name: local
    paths: [/local]
    upstream: backends
    policies: { rate_limit: [{ limit: 1000000000, per: 1s, by: ip }] }
  - name: redis
    paths: [/redis]
    upstream: backends
    policies: { rate_limit: [{ limit: 1000000000, per: 1s, by: ip, store: redis }] }
upstreams:
  backends:
    targets: [{ address: 127.0.0.1:9101 }, { address: 127.0.0.1:9102 }, { address: 127.0.0.1:9103 }]
CONF
last=$(($(nproc) - 1))
taskset -c $((last > 0 ? last - 1 : 0)) redis-server --port "$redis_port" --bind 127.0.0.1 \
  --save "" --appendonly no >/dev/null & redis=$!
RUST_LOG=error taskset -c "$last" "$weir_bin" --config "$dir/weir-ratelimit.yaml" & weir=$!
trap 'kill $weir $redis 2>/dev/null; benches/peers.sh stop "$dir"' EXIT
for path in plain local redis; do
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:8089/$path" >/dev/null && break; sleep 0.1; done
done
# on_store_error: deny, so a Redis that does not answer shows as errors, not as a fast route.
curl -fs -o /dev/null -D - http://127.0.0.1:8089/redis | grep -qi '^ratelimit-remaining' \
  || { echo "the redis route does not count in Redis" >&2; exit 1; }
benches/compare.sh "$@" \
  plain=http://127.0.0.1:8089/plain local=http://127.0.0.1:8089/local redis=http://127.0.0.1:8089/redis
