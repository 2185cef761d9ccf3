#!/usr/bin/env bash
# HTTPS side by side: weir (8443) vs bare Pingora (8446) vs nginx (8444) vs HAProxy (8445),
# one worker each, TLS 1.2/1.3 with one ECDSA P-256 certificate (made by peers.sh), round
# robin over the same three plain-HTTP nginx backends. wrk sends no ALPN: HTTP/1.1 over TLS.
# Three measurements, each in interleaved wrk rounds (compare.sh), with the proxy's CPU per
# request next to req/s:
#   keep-alive  requests on long-lived TLS connections: no handshakes
#   resumed     `Connection: close`, one request per connection. wrk keeps its SSL object
#               across reconnects (SSL_clear keeps the session), so each new connection
#               offers the last ticket: TLS 1.3 resumptions (PSK + X25519, no signature)
#   full        the same with benches/wrk-tls.c preloaded into wrk to drop that session:
#               full handshakes (X25519 + ECDSA signature); wrk then saturates its core
#               before the proxies do, so cpu/req tells them apart, req/s hardly
# A check first counts, per endpoint, how many of wrk's handshakes were resumed in each mode.
# Usage: benches/run-tls.sh [compare.sh options, e.g. -d 8 -r 4 -c 50]
# Needs: apt-get install -y nginx-light haproxy wrk openssl bc gcc
set -euo pipefail
cd "$(dirname "$0")/.."
dir=/tmp/weir-peers
cargo build --release --quiet --bin weir --example bare_pingora
benches/peers.sh start "$dir"
cc -O2 -shared -fPIC -Wl,-z,lazy -o "$dir/wrk-tls.so" benches/wrk-tls.c
# Logs to files: Pingora logs every handshake that wrk cuts off when a round ends.
PEERS_DIR=$dir RUST_LOG=error target/release/weir --config benches/weir-bench-tls.yaml \
  2>"$dir/weir.log" & weir=$!
RUST_LOG=error target/release/examples/bare_pingora 127.0.0.1:8084 127.0.0.1:8446 \
  "$dir/site.crt" "$dir/site.key" 2>"$dir/bare-pingora.log" & bare=$!
# SIGINT: Pingora exits at once (SIGTERM would drain for minutes, long after the run).
trap 'kill -INT $weir $bare 2>/dev/null; benches/peers.sh stop "$dir"' EXIT
for port in 8443 8446 8444 8445; do
  for _ in $(seq 100); do curl -fsk "https://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
done
ends=(weir=https://127.0.0.1:8443/ bare-pingora=https://127.0.0.1:8446/
  nginx=https://127.0.0.1:8444/ haproxy=https://127.0.0.1:8445/)
pids=(-P "weir=$weir" -P "bare-pingora=$bare" -P "haproxy=$(cat "$dir/haproxy.pid")"
  -P "nginx=$(pgrep -P "$(cat "$dir/nginx-lb.pid")")")  # nginx: the worker, not the master

# Handshakes wrk completes in 1 s of one request per connection, as is and with the session dropped.
hs() { env "${@:2}" WRK_TLS_COUNT=1 LD_PRELOAD="$dir/wrk-tls.so" \
  wrk -t1 -c10 -d1s -H "Connection: close" "$1" 2>&1 >/dev/null; }
for e in "${ends[@]}"; do
  printf '%-12s wrk as is: %-24s with WRK_TLS_FRESH: %s\n' "${e%%=*}" "$(hs "${e#*=}")" "$(hs "${e#*=}" WRK_TLS_FRESH=1)"
done

measure() { # $1: title, then the compare.sh command line up to the endpoints
  printf '\n== %s\n' "$1"; shift
  "$@" "${pids[@]}" "${ends[@]}" | tee "$dir/table"
  awk '{r[$1] = $2; c[$1] = $5 + 0} END {
    printf "weir/nginx %.2f  weir/haproxy %.2f  weir/bare-pingora %.2f  (req/s)\n",
      r["weir"] / r["nginx"], r["weir"] / r["haproxy"], r["weir"] / r["bare-pingora"]
    printf "weir/nginx %.2f  weir/haproxy %.2f  weir/bare-pingora %.2f  (cpu/req)\n",
      c["weir"] / c["nginx"], c["weir"] / c["haproxy"], c["weir"] / c["bare-pingora"] }' "$dir/table"
}
measure keep-alive benches/compare.sh "$@"
measure "new connection per request, resumed" benches/compare.sh "$@" -H "Connection: close"
measure "new connection per request, full handshake" \
  env LD_PRELOAD="$dir/wrk-tls.so" WRK_TLS_FRESH=1 benches/compare.sh "$@" -H "Connection: close"
