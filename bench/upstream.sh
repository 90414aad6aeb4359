#!/usr/bin/env bash
# The upstream proxy on loopback, in one run: the same native backend
# (bench/native) hit directly, through wasmesh (an upstream version), and
# through nginx (proxy_pass to an upstream with a keepalive pool), each
# with wrk in turn, round after round, for two backends: one that answers
# at once (the proxy's own cost dominates) and one that waits DELAY per
# request, as a service waits on its database.
#   bench/upstream.sh [DURATION] [CONNECTIONS] [ROUNDS] [DELAY]
#   (defaults 5s, 32, 3, 1ms)
# Prints the medians of req/s, p50 and p99, and of the ratios of req/s and
# p99 to the direct runs of the same round.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-5s}
conns=${2:-32}
rounds=${3:-3}
delay=${4:-1ms}
for t in wrk nginx; do
  command -v $t >/dev/null || { echo "bench/upstream.sh: $t is not installed (make toolchains)" >&2; exit 1; }
done

for port in 18380 18381 18382 18383; do
  if (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null; then echo "bench/upstream.sh: port $port is in use" >&2; exit 1; fi
done
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null; rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/wasmesh" ./cmd/wasmesh
go build -o "$work/native" ./bench/native
"$work/native" -listen 127.0.0.1:18381 & pids+=($!)
"$work/native" -listen 127.0.0.1:18382 -delay "$delay" & pids+=($!)

cat > "$work/wasmesh.yaml" <<YAML
listen: "127.0.0.1:18380"
admin: off
store: $work/store
services:
  fast: { versions: [ { upstream: { endpoints: [ "http://127.0.0.1:18381" ] } } ] }
  slow: { versions: [ { upstream: { endpoints: [ "http://127.0.0.1:18382" ] } } ] }
routes:
  - { match: { path_prefix: /slow }, service: slow }
  - { match: { path_prefix: / }, service: fast }
YAML
"$work/wasmesh" serve --config "$work/wasmesh.yaml" --log-level error --cache-dir "$work/cache" >/dev/null & pids+=($!)

# nginx as its docs advise for a reverse proxy with keepalive upstreams:
# HTTP/1.1, Connection cleared, a pool of idle connections per worker.
mkdir -p "$work/nginx"
cat > "$work/nginx.conf" <<NGINX
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx/error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  upstream fast { server 127.0.0.1:18381; keepalive 64; }
  upstream slow { server 127.0.0.1:18382; keepalive 64; }
  server {
    listen 127.0.0.1:18383;
    location / { proxy_pass http://fast; proxy_http_version 1.1; proxy_set_header Connection ""; }
    location /slow { proxy_pass http://slow; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX
nginx -c "$work/nginx.conf" -p "$work/nginx"
for _ in $(seq 100); do
  curl -sf -o /dev/null http://127.0.0.1:18380/hi && curl -sf -o /dev/null http://127.0.0.1:18383/hi && break
  sleep 0.1
done
curl -sf http://127.0.0.1:18380/slow/hi | grep -q "hello from native" || { echo "bench/upstream.sh: the gateway does not proxy" >&2; exit 1; }
curl -sf http://127.0.0.1:18383/slow/hi | grep -q "hello from native" || { echo "bench/upstream.sh: nginx does not proxy" >&2; exit 1; }

# run NAME URL: prints "NAME req/s p50 p99", latencies in ms
run() {
  local out
  out=$(wrk -t2 -c"$conns" -d"$dur" --latency "$2")
  if ! echo "$out" | grep -q "Requests/sec" || echo "$out" | grep -q "Non-2xx\|Socket errors"; then
    echo "bench/upstream.sh: $1 had errors:" >&2; echo "$out" >&2; exit 1
  fi
  echo "$out" | awk -v name="$1" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ {rps = $2} $1 == "50%" {p50 = ms($2)} $1 == "99%" {p99 = ms($2)}
    END {print name, rps, p50, p99}'
}

echo "# $(date -u +%Y-%m-%d) $(nproc) cores, $(uname -r), $(nginx -v 2>&1 | cut -d' ' -f3), wrk -t2 -c$conns -d$dur, GET with keep-alive, $rounds rounds; slow = backend waits $delay"
orders=("direct wasmesh nginx" "wasmesh nginx direct" "nginx direct wasmesh") # each first in turn
results=$(
  set -e
  for r in $(seq "$rounds"); do
    for b in fast slow; do
      path=/hi; [ $b = slow ] && path=/slow/hi
      port=18381; [ $b = slow ] && port=18382
      for via in ${orders[$(((r - 1) % 3))]}; do
        case $via in
          direct) url=http://127.0.0.1:$port/hi ;;
          wasmesh) url=http://127.0.0.1:18380$path ;;
          nginx) url=http://127.0.0.1:18383$path ;;
        esac
        line=$(run "$b/$via" "$url") || exit 1
        echo "$r $line"
      done
    done
  done
)
echo "$results" | sed 's/^/# round /' >&2
echo "$results" | awk '
  function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { round[NR] = $1; name[NR] = $2; rps[NR] = $3; p50[NR] = $4; p99[NR] = $5
    split($2, nv, "/"); if (nv[2] == "direct") { drps[$1, nv[1]] = $3; dp99[$1, nv[1]] = $5 }
    if (!($2 in seen)) { seen[$2] = 1; order[++nt] = $2 } }
  END {
    printf "%-16s %9s %8s %8s %13s %13s\n", "target", "req/s", "p50 ms", "p99 ms", "req/s/direct", "p99/direct"
    for (k = 1; k <= nt; k++) {
      t = order[k]; n = 0; split(t, nv, "/")
      for (i = 1; i <= NR; i++) {
        if (name[i] != t) continue
        n++; a[n] = rps[i]; b[n] = p50[i]; c[n] = p99[i]
        x[n] = rps[i] / drps[round[i], nv[1]]; y[n] = p99[i] / dp99[round[i], nv[1]]
      }
      lo = hi = x[1]; for (i = 2; i <= n; i++) { if (x[i] < lo) lo = x[i]; if (x[i] > hi) hi = x[i] }
      printf "%-16s %9.0f %8.2f %8.2f %5.2f [%.2f-%.2f] %6.2f\n", t, median(a, n), median(b, n), median(c, n), median(x, n), lo, hi, median(y, n)
    }
  }'
