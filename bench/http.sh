#!/usr/bin/env bash
# End-to-end HTTP benchmark on loopback, in one run: a native Go net/http
# handler against the gateway serving each hello example.
#   bench/http.sh [DURATION] [CONNECTIONS] [ROUNDS]     (defaults 5s, 32, 3)
# Each round runs wrk against the native handler, then against every
# target, for DURATION each; a last native run closes the last round.
# Prints one line per target: the medians over the rounds of req/s, p50
# and p99 latency (wrk --latency), and of the ratios of its req/s and p99
# to the native handler's in the same round (the mean of the native runs
# before and after it), with their range: on a shared machine the native
# handler alone moves 10-20% from one run to the next. Then pairs, each the
# median of its per-round ratios: the frontend example against its native
# equivalent (native-chain: a net/http handler calling the native handler
# over keep-alive), tracing every request and 1% of them against tracing
# off, net/http's server against internal/http1's.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-5s}
conns=${2:-32}
rounds=${3:-3}
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

# up URL...: waits (up to three minutes) until every URL answers.
up() {
  for _ in $(seq 1800); do
    local all=1
    for u in "$@"; do curl -sf -o /dev/null "$u" || { all=; break; }; done
    [ -n "$all" ] && return 0
    sleep 0.1
  done
  echo "bench/http.sh: no answer from $* after three minutes (are ports 18080-18085 free?)" >&2
  exit 1
}

"$work/native" -listen 127.0.0.1:18081 & pids+=($!)
# The first gateway compiles every example into the cache; the others,
# started once it serves, load them from it rather than compile them four
# times over on the same cores.
"$work/wasmesh" serve --config "$work/wasmesh.yaml" --log-level error --cache-dir "$work/cache" >/dev/null & pids+=($!)
up http://127.0.0.1:18080/rust/ http://127.0.0.1:18081/
# A second gateway records every span and exports it over OTLP/HTTP (to the
# native server, which accepts and drops them): the cost of tracing.
sed -e 's|18080|18082|' -e 's|19901|19902|' "$work/wasmesh.yaml" > "$work/traced.yaml"
OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:18081 "$work/wasmesh" serve --config "$work/traced.yaml" \
  --trace-exporter otlp-http --trace-sample-ratio 1 --log-level error --cache-dir "$work/cache" >/dev/null & pids+=($!)
# Another samples 1% of new traces (parent-based: sampled parents are always
# followed), exporting them the same way: the cost of tracing switched on.
sed -e 's|18080|18085|' -e 's|19901|19905|' "$work/wasmesh.yaml" > "$work/sampled.yaml"
OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:18081 "$work/wasmesh" serve --config "$work/sampled.yaml" \
  --trace-exporter otlp-http --trace-sample-ratio 0.01 --log-level error --cache-dir "$work/cache" >/dev/null & pids+=($!)
# The native equivalent of the frontend example: a net/http handler calling
# the native handler over loopback keep-alive connections.
"$work/native" -listen 127.0.0.1:18084 -call http://127.0.0.1:18081 & pids+=($!)
# A third serves HTTP/1 with net/http's server instead of internal/http1's.
sed -e 's|18080|18083|' -e 's|19901|19903|' "$work/wasmesh.yaml" > "$work/nethttp.yaml"
"$work/wasmesh" serve --config "$work/nethttp.yaml" --net-http --log-level error --cache-dir "$work/cache" >/dev/null & pids+=($!)
up http://127.0.0.1:18082/rust/ http://127.0.0.1:18083/rust/ http://127.0.0.1:18085/rust/ http://127.0.0.1:18084/
for p in "${pids[@]}"; do
  kill -0 "$p" 2>/dev/null || { echo "bench/http.sh: a server did not start (are ports 18080-18085 free?)" >&2; exit 1; }
done

# run NAME URL: prints "NAME req/s p50 p99", latencies in ms
run() {
  local out
  out=$(wrk -t2 -c"$conns" -d"$dur" --latency "$2")
  if echo "$out" | grep -q "Non-2xx"; then echo "bench: $1 had non-2xx responses:" >&2; echo "$out" >&2; exit 1; fi
  echo "$out" | awk -v name="$1" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ {rps = $2} $1 == "50%" {p50 = ms($2)} $1 == "99%" {p99 = ms($2)}
    END {print name, rps, p50, p99}'
}

# A pair's two targets run one after the other (rust first, its variants
# next; frontend, then native-chain), so that the load of the machine,
# which drifts over a round, moves both alike.
targets=(rust rust+otlp rust+otlp1% rust+net/http zig c typescript go go-reactor typescript-reactor frontend native-chain)
url() {
  case $1 in
    rust+otlp) echo http://127.0.0.1:18082/rust/hi ;;
    rust+otlp1%) echo http://127.0.0.1:18085/rust/hi ;;
    native-chain) echo http://127.0.0.1:18084/hi ;;
    rust+net/http) echo http://127.0.0.1:18083/rust/hi ;;
    *) echo "http://127.0.0.1:18080/$1/hi" ;;
  esac
}

# A second of load on each target first: the first round would otherwise
# carry the making of instances and pools, and the heap's growth.
for t in native "${targets[@]}"; do
  u=$(url "$t"); [ "$t" = native ] && u=http://127.0.0.1:18081/hi
  wrk -t2 -c"$conns" -d1s "$u" >/dev/null
done
echo "# $(date -u +%Y-%m-%d) $(nproc) cores, $(uname -r), wrk -t2 -c$conns -d$dur, GET with keep-alive, $rounds rounds"
results=$(
  for r in $(seq "$rounds"); do
    echo "$r $(run native http://127.0.0.1:18081/hi)"
    for t in "${targets[@]}"; do echo "$r $(run "$t" "$(url "$t")")"; done
  done
  echo "$((rounds + 1)) $(run native http://127.0.0.1:18081/hi)"
)
echo "$results" | sed 's/^/# round /' >&2
echo "$results" | awk -v rounds="$rounds" '
  function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { round[NR] = $1; name[NR] = $2; rps[NR] = $3; p50[NR] = $4; p99[NR] = $5 }
  $2 == "native" { nrps[$1] = $3; np99[$1] = $5 }
  $2 != "native" && !($2 in seen) { seen[$2] = 1; order[++nt] = $2 }
  END {
    order[0] = "native"
    printf "%-20s %9s %8s %8s %17s %15s\n", "target", "req/s", "p50 ms", "p99 ms", "req/s vs native", "p99 vs native"
    for (k = 0; k <= nt; k++) {
      t = order[k]; n = 0
      for (i = 1; i <= NR; i++) {
        if (name[i] != t) continue
        n++; a[n] = rps[i]; b[n] = p50[i]; c[n] = p99[i]
        if (t != "native") {
          rr = round[i]
          nr = (nrps[rr] + nrps[rr + 1]) / 2; np = (np99[rr] + np99[rr + 1]) / 2
          x[n] = 100 * rps[i] / nr; y[n] = p99[i] / np
        }
      }
      mr = median(a, n); m50 = median(b, n); m99 = median(c, n)
      if (t == "native") { printf "%-20s %9.0f %8.2f %8.2f\n", t, mr, m50, m99; continue }
      lo = hi = x[1]; plo = phi = y[1]
      for (i = 2; i <= n; i++) { if (x[i] < lo) lo = x[i]; if (x[i] > hi) hi = x[i]; if (y[i] < plo) plo = y[i]; if (y[i] > phi) phi = y[i] }
      mx = median(x, n); my = median(y, n)
      printf "%-20s %9.0f %8.2f %8.2f %5.1f%% [%2.0f-%2.0f] %5.2fx [%.2f-%.2f]\n", t, mr, m50, m99, mx, lo, hi, my, plo, phi
    }
    # Pairs measured in the same round: a target against its own reference.
    for (i = 1; i <= NR; i++) { by[round[i], name[i]] = rps[i] }
    np = split("frontend:native-chain rust+otlp:rust rust+otlp1%:rust rust+net/http:rust", pairs, " ")
    printf "\n%-32s %17s\n", "pair (same round)", "req/s ratio"
    for (k = 1; k <= np; k++) {
      split(pairs[k], ab, ":"); n = 0
      for (r = 1; r <= rounds; r++) if (((r, ab[1]) in by) && ((r, ab[2]) in by) && by[r, ab[2]] > 0) { n++; x[n] = by[r, ab[1]] / by[r, ab[2]] }
      if (n == 0) continue
      lo = hi = x[1]
      for (i = 2; i <= n; i++) { if (x[i] < lo) lo = x[i]; if (x[i] > hi) hi = x[i] }
      printf "%-32s %5.2f [%.2f-%.2f]\n", ab[1] " / " ab[2], median(x, n), lo, hi
    }
  }'
