#!/usr/bin/env bash
# What key auth costs: weir with key-auth on the route against the same weir without it, and
# nginx checking the same key with `map $http_apikey` (one worker each, the peers.sh
# backends, interleaved wrk rounds, every request carrying the key).
# Usage: benches/auth.sh [compare.sh options, e.g. -d 8 -r 4 -c 50]
# Needs: apt-get install -y nginx-light haproxy wrk openssl bc
set -euo pipefail
cd "$(dirname "$0")/.."
dir=/tmp/weir-peers; key=bench-key-0123456789abcdef
cargo build --release --quiet --bin weir
benches/peers.sh start "$dir"
cat > "$dir/weir-keyed.yaml" <<CONF
server: { threads: 1, pid_file: $dir/weir-keyed.pid, upgrade_sock: $dir/weir-keyed.sock }
listeners:
  - { name: bench, address: 127.0.0.1:8087 }
consumers:
  - { name: bench-client, keys: ["$key"] }
routes:
  - { name: all, upstream: backends, policies: { auth: { methods: [key] } } }
upstreams:
  backends:
    targets: [{ address: 127.0.0.1:9101 }, { address: 127.0.0.1:9102 }, { address: 127.0.0.1:9103 }]
CONF
cat > "$dir/nginx-keyed.conf" <<CONF
worker_processes 1;
pid $dir/nginx-keyed.pid;
error_log $dir/nginx-keyed.err;
events { worker_connections 8192; }
http {
  access_log off;
  upstream be { server 127.0.0.1:9101; server 127.0.0.1:9102; server 127.0.0.1:9103; keepalive 128; }
  map \$http_apikey \$consumer { default ""; "$key" bench-client; }
  server {
    listen 127.0.0.1:8088;
    location / {
      if (\$consumer = "") { return 401; }
      proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header apikey ""; proxy_set_header X-Consumer-Username \$consumer;
    }
  }
}
CONF
# The three proxies share one core, so that where the scheduler puts each does not decide
# the ratio (started unpinned, the first weir started came out up to 8% ahead of the other).
pin="taskset -c $(($(nproc) - 1))"
$pin nginx -c "$dir/nginx-keyed.conf"
RUST_LOG=error $pin target/release/weir --config benches/weir-bench.yaml & plain=$!
RUST_LOG=error $pin target/release/weir --config "$dir/weir-keyed.yaml" & keyed=$!
trap 'kill $plain $keyed 2>/dev/null; kill "$(cat "$dir/nginx-keyed.pid")" 2>/dev/null; benches/peers.sh stop "$dir"' EXIT
for port in 8083 8087 8088; do
  for _ in $(seq 100); do curl -fs -H "apikey: $key" "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
done
[ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8087/)" = 401 ] || { echo "weir let a keyless request through" >&2; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8088/)" = 401 ] || { echo "nginx let a keyless request through" >&2; exit 1; }
benches/compare.sh -H "apikey: $key" -P plain=$plain -P keyed=$keyed "$@" \
  plain=http://127.0.0.1:8083/ keyed=http://127.0.0.1:8087/ nginx-keyed=http://127.0.0.1:8088/
