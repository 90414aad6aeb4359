#!/usr/bin/env bash
# End-to-end HTTP benchmark on loopback, in one run: a native Go net/http
# handler against the gateway serving each hello example.
#   bench/http.sh [DURATION] [CONNECTIONS]     (defaults 5s, 32)
# Prints one line per target: req/s, p50 and p99 latency (wrk --latency),
# and the ratio of req/s to the native handler's (the mean of its runs
# first and last).
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-5s}
conns=${2:-32}
command -v wrk >/dev/null || { echo "bench/http.sh: wrk is not installed (make toolchains)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/wasmesh" ./cmd/wasmesh
go build -o "$work/native" ./bench/native
sed -e 's|^listen:.*|listen: "127.0.0.1:18080"|' -e 's|^admin:.*|admin: "127.0.0.1:19901"|' \
    -e "s|path: |path: $PWD/examples/|" examples/wasmesh.yaml > "$work/wasmesh.yaml"
echo "store: $work/store" >> "$work/wasmesh.yaml"

"$work/native" -listen 127.0.0.1:18081 & pids+=($!)
"$work/wasmesh" serve --config "$work/wasmesh.yaml" --log-level error --cache-dir "$work/cache" >/dev/null & pids+=($!)
# A second gateway records every span and exports it over OTLP/HTTP (to the
# native server, which accepts and drops them): the cost of tracing.
sed -e 's|18080|18082|' -e 's|19901|19902|' "$work/wasmesh.yaml" > "$work/traced.yaml"
OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:18081 "$work/wasmesh" serve --config "$work/traced.yaml" \
  --trace-exporter otlp-http --trace-sample-ratio 1 --log-level error --cache-dir "$work/cache" >/dev/null & pids+=($!)
# A third serves HTTP/1 with net/http's server instead of internal/http1's.
sed -e 's|18080|18083|' -e 's|19901|19903|' "$work/wasmesh.yaml" > "$work/nethttp.yaml"
"$work/wasmesh" serve --config "$work/nethttp.yaml" --net-http --log-level error --cache-dir "$work/cache" >/dev/null & pids+=($!)
for _ in $(seq 100); do
  curl -sf -o /dev/null http://127.0.0.1:18080/rust/ && curl -sf -o /dev/null http://127.0.0.1:18082/rust/ &&
    curl -sf -o /dev/null http://127.0.0.1:18083/rust/ &&
    curl -sf -o /dev/null http://127.0.0.1:18081/ && break
  sleep 0.1
done

# run NAME URL: prints "NAME req/s p50 p99"
run() {
  local out rps p50 p99
  out=$(wrk -t2 -c"$conns" -d"$dur" --latency "$2")
  if echo "$out" | grep -q "Non-2xx"; then echo "bench: $1 had non-2xx responses:" >&2; echo "$out" >&2; exit 1; fi
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  echo "$1 $rps $p50 $p99"
}

echo "# $(date -u +%Y-%m-%d) $(nproc) cores, $(uname -r), wrk -t2 -c$conns -d$dur, GET with keep-alive"
# The native handler runs first and last: the ratios are to the mean of the
# two, so that a machine that drifts during the run moves them less.
results=$(
  run native http://127.0.0.1:18081/hi
  for l in rust zig c typescript go go-reactor typescript-reactor; do run "$l" "http://127.0.0.1:18080/$l/hi"; done
  run rust+otlp http://127.0.0.1:18082/rust/hi
  run rust+net/http http://127.0.0.1:18083/rust/hi
  run frontend http://127.0.0.1:18080/frontend/hi
  run native-again http://127.0.0.1:18081/hi
)
native=$(echo "$results" | awk '$1=="native" || $1=="native-again" {s+=$2; n++} END {print s/n}')
printf '%-18s %12s %10s %10s %9s\n' target req/s p50 p99 "vs native"
echo "$results" | while read -r name rps p50 p99; do
  printf '%-18s %12s %10s %10s %8.1f%%\n' "$name" "$rps" "$p50" "$p99" "$(echo "$rps $native" | awk '{print 100*$1/$2}')"
done
