#!/usr/bin/env bash
# What compression costs: weir's CPU time per MB of response body for each algorithm at its
# default level, and with no compression (the same route, asked for `identity`) as the
# baseline. One weir thread pinned to one core, a 1 MiB body of real text (this repository's
# docs and sources) from an nginx backend, wrk on keep-alive connections sending one
# Accept-Encoding per round; weir's CPU is read from /proc/PID/stat before and after each
# round and divided by the MB of body served (uncompressed).
# Usage: benches/compress.sh [-d SECONDS per round, default 10] [-c CONNECTIONS, default 4]
#   WEIR_BIN=path/to/weir uses that binary instead of building the release one.
# Needs: apt-get install -y nginx-light wrk
set -euo pipefail
cd "$(dirname "$0")/.."
duration=10; conns=4
while getopts d:c: opt; do
  case $opt in
    d) duration=$OPTARG ;;
    c) conns=$OPTARG ;;
    *) echo "usage: $0 [-d SECONDS] [-c CONNECTIONS]" >&2; exit 2 ;;
  esac
done
for bin in nginx wrk; do
  command -v "$bin" >/dev/null || { echo "missing $bin: apt-get install -y nginx-light wrk" >&2; exit 1; }
done
dir=/tmp/weir-compress
mkdir -p "$dir/www"
weir=${WEIR_BIN:-}
if [ -z "$weir" ]; then
  cargo build --release --quiet --bin weir
  weir=${CARGO_TARGET_DIR:-target}/release/weir
fi

# 1 MiB of real text: what pages, scripts and API answers compress like (about 4:1 with gzip).
while [ "$(stat -c %s "$dir/www/body.txt" 2>/dev/null || echo 0)" -lt 1048576 ]; do
  cat docs/*.md src/*.rs src/*/*.rs >> "$dir/www/body.txt"
done
truncate -s 1048576 "$dir/www/body.txt"
body_mb=1

cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  default_type text/plain;
  server { listen 127.0.0.1:9111; root $dir/www; keepalive_requests 100000; }
}
CONF
cat > "$dir/weir.yaml" <<CONF
server: { threads: 1, pid_file: $dir/weir.pid, upgrade_sock: $dir/weir.sock }
listeners:
  - { name: bench, address: 127.0.0.1:8091, policies: { compress: {} } }
routes:
  - { name: all, upstream: backend }
upstreams:
  backend:
    targets: [{ address: 127.0.0.1:9111 }]
CONF
pin="taskset -c $(($(nproc) - 1))"
nginx -c "$dir/nginx.conf"
RUST_LOG=error $pin "$weir" --config "$dir/weir.yaml" & pid=$!
trap 'kill $pid 2>/dev/null; kill "$(cat "$dir/nginx.pid")" 2>/dev/null' EXIT
url=http://127.0.0.1:8091/body.txt
for _ in $(seq 100); do curl -fs -o /dev/null "$url" && break; sleep 0.1; done

ticks=$(getconf CLK_TCK)
# utime + stime of every thread of weir, in clock ticks (fields 14 and 15 of its stat).
cpu() { sed 's/^.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }'; }

echo "$("$weir" --version 2>/dev/null | head -1), ${duration}s per round, $conns connections, ${body_mb} MiB body"
printf '%-9s %10s %12s %10s %14s\n' coding requests "MB served" "CPU s" "CPU ms / MB"
for coding in identity gzip br zstd; do
  curl -fsS -H "Accept-Encoding: $coding" -D "$dir/headers" -o "$dir/out" "$url"
  got=$(tr -d '\r' < "$dir/headers" | awk 'tolower($1) == "content-encoding:" { print $2 }')
  if [ "$coding" != identity ] && [ "$got" != "$coding" ]; then
    echo "weir answered Accept-Encoding: $coding with Content-Encoding: ${got:-none}" >&2; exit 1
  fi
  ratio=$(echo "scale=2; 1048576 / $(stat -c %s "$dir/out")" | bc)
  before=$(cpu)
  requests=$(wrk -t 1 -c "$conns" -d "${duration}s" -H "Accept-Encoding: $coding" "$url" |
    awk '/requests in/ { print $1 }')
  after=$(cpu)
  seconds=$(echo "scale=3; ($after - $before) / $ticks" | bc)
  mb=$((requests * body_mb))
  per_mb=$(echo "scale=2; 1000 * $seconds / $mb" | bc)
  printf '%-9s %10s %12s %10s %14s   (%s:1)\n' "$coding" "$requests" "$mb" "$seconds" "$per_mb" "$ratio"
done
