#!/usr/bin/env bash
# L4 side by side: redis-benchmark through weir (protocol: tcp), nginx (stream) and HAProxy
# (mode tcp), one worker each, round robin over the same two redis-servers, interleaved
# rounds; and straight to one redis-server, for reference.
# Usage: benches/tcp.sh [-n REQUESTS] [-c CONNECTIONS] [-r ROUNDS] [-P PIPELINE] [-W BINARY]
# Prints, per endpoint, the median of SET and GET requests/s over the rounds, each median's
# ratio to weir's, and the median CPU time the proxy spent per request. -W adds another weir
# binary (another revision, say) as endpoint `weir-b`, interleaved with the rest.
# Needs: apt-get install -y redis-server redis-tools nginx-light libnginx-mod-stream haproxy bc
set -euo pipefail
cd "$(dirname "$0")/.."
requests=100000; conns=50; rounds=5; pipeline=1; other=""
while getopts "n:c:r:P:W:" o; do
  case $o in n) requests=$OPTARG;; c) conns=$OPTARG;; r) rounds=$OPTARG;; P) pipeline=$OPTARG;;
    W) other=$(realpath "$OPTARG");;
    *) sed -n 2,8p "$0"; exit 2;; esac
done
for bin in redis-server redis-benchmark nginx haproxy bc; do
  command -v "$bin" >/dev/null || { sed -n 9p "$0" >&2; exit 1; }
done
stream_module=/usr/lib/nginx/modules/ngx_stream_module.so
[ -f "$stream_module" ] || { echo "missing $stream_module: apt-get install -y libnginx-mod-stream" >&2; exit 1; }
cargo build --release --quiet --bin weir
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; sleep 0.2; rm -rf "$dir"' EXIT

for port in 9201 9202; do
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    >/dev/null & pids+=($!)
done
cat > "$dir/nginx.conf" <<CONF
load_module $stream_module;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx.err;
daemon off;
events { worker_connections 8192; }
stream {
  upstream redis { server 127.0.0.1:9201; server 127.0.0.1:9202; }
  server { listen 127.0.0.1:8091; proxy_pass redis; }
}
CONF
nginx -c "$dir/nginx.conf" & nginx=$!; pids+=($nginx)
cat > "$dir/haproxy.cfg" <<CONF
global
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 1m
  timeout server 1m
frontend redis
  bind 127.0.0.1:8092
  default_backend redis
backend redis
  balance roundrobin
  server r1 127.0.0.1:9201
  server r2 127.0.0.1:9202
CONF
haproxy -f "$dir/haproxy.cfg" & haproxy=$!; pids+=($haproxy)
cat > "$dir/weir.yaml" <<CONF
server: { threads: 1, pid_file: $dir/weir.pid, upgrade_sock: $dir/weir.sock }
listeners:
  - { name: redis, address: 127.0.0.1:8093, protocol: tcp, upstream: redis }
upstreams:
  redis:
    targets: [{ address: 127.0.0.1:9201 }, { address: 127.0.0.1:9202 }]
CONF
RUST_LOG=error target/release/weir --config "$dir/weir.yaml" & weir=$!; pids+=($weir)
endpoints=(weir=8093 nginx=8091 haproxy=8092 direct=9201)
declare -A pid=([weir]=$weir)
if [ -n "$other" ]; then
  sed -e 's/8093/8094/' -e "s#$dir/weir\.#$dir/weir-b.#g" "$dir/weir.yaml" > "$dir/weir-b.yaml"
  RUST_LOG=error "$other" --config "$dir/weir-b.yaml" & pid[weir-b]=$!; pids+=($!)
  endpoints=(weir=8093 weir-b=8094 nginx=8091 haproxy=8092 direct=9201)
fi
for port in 9201 9202 8091 8092 8093 ${other:+8094}; do
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
pid[nginx]=$(pgrep -P "$nginx" | head -1)   # the worker of this nginx
pid[haproxy]=$haproxy
ticks() { [ -n "${pid[$1]:-}" ] && awk '{print $14 + $15}' "/proc/${pid[$1]}/stat" || echo 0; }

for _ in $(seq "$rounds"); do
  for pair in "${endpoints[@]}"; do
    name=${pair%%=*}; port=${pair#*=}
    t0=$(ticks "$name")
    csv=$(redis-benchmark -p "$port" -t set,get -n "$requests" -c "$conns" -P "$pipeline" --csv)
    t1=$(ticks "$name")
    rps=$(awk -F'"' '/^"(SET|GET)"/ {s += $4; n++} END {print s / n}' <<<"$csv")
    cpu=$(echo "($t1 - $t0) / $(getconf CLK_TCK) * 1000000 / ($requests * 2)" | bc -l)
    echo "$rps $cpu" >> "$dir/$name"
  done
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ref=$(cut -d' ' -f1 "$dir/weir" | median)
printf '%-10s %12s %8s %14s\n' endpoint 'req/s(med)' ratio 'cpu/req(med)'
for pair in "${endpoints[@]}"; do
  name=${pair%%=*}
  med=$(cut -d' ' -f1 "$dir/$name" | median)
  cpu=$(cut -d' ' -f2 "$dir/$name" | median)
  printf '%-10s %12.0f %8.2f %12.1fus\n' "$name" "$med" "$(echo "$med / $ref" | bc -l)" "$cpu"
done
