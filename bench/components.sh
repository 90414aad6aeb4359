#!/usr/bin/env bash
# Components in one run: wasmesh serve and, where it is installed (make
# peers), wasmtime serve, on the same example wasi:http components, with wrk
# against each in turn; and the CGI module of the same language's hello
# where there is one, for the ratio a component costs against a module.
#   bench/components.sh [DURATION] [CONNECTIONS] [ROUNDS]     (defaults 5s, 16, 2)
# Prints "target req/s p50 p99" (ms), then the ratios: each component's
# req/s against wasmtime serve's and against its language's module.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-5s}
conns=${2:-16}
rounds=${3:-2} # of each module and component in turn
command -v wrk >/dev/null || { echo "bench/components.sh: wrk is not installed (make toolchains)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

components=(javascript typescript python c zig rust)
modules=(c zig rust) # the CGI hellos of the languages that have both
go build -o "$work/wasmesh" ./cmd/wasmesh
{
  echo 'listen: "127.0.0.1:18180"'
  echo 'admin: off'
  echo "store: $work/store"
  echo 'services:'
  for c in "${components[@]}"; do echo "  $c: { versions: [ { path: $PWD/examples/components/$c/hello.wasm } ] }"; done
  # Python again, its instances warmed by one GET (docs/config.md, warmup).
  echo "  python-warm: { versions: [ { path: $PWD/examples/components/python/hello.wasm } ], warmup: / }"
  for m in "${modules[@]}"; do echo "  $m-module: { versions: [ { path: $PWD/examples/hello/$m/hello.wasm } ] }"; done
  echo 'routes:'
  for c in "${components[@]}"; do echo "  - { match: { path_prefix: /$c/ }, service: $c, strip_prefix: true }"; done
  echo "  - { match: { path_prefix: /python-warm/ }, service: python-warm, strip_prefix: true }"
  for m in "${modules[@]}"; do echo "  - { match: { path_prefix: /$m-module/ }, service: $m-module, strip_prefix: true }"; done
} > "$work/wasmesh.yaml"
"$work/wasmesh" serve --config "$work/wasmesh.yaml" --log-level error --cache-dir "$work/cache" >/dev/null & pids+=($!)
for _ in $(seq 600); do curl -sf -o /dev/null http://127.0.0.1:18180/rust-module/ && break; sleep 0.1; done
# Every target answers 200 before anything is measured: a gateway that did
# not start (its port taken) would otherwise be measured by its 404s.
kill -0 "${pids[0]}" 2>/dev/null || { echo "bench/components.sh: wasmesh serve did not start" >&2; exit 1; }
for t in "${components[@]}" python-warm "${modules[@]/%/-module}"; do
  curl -sf -o /dev/null "http://127.0.0.1:18180/$t/" || { echo "bench/components.sh: /$t/ does not answer 200" >&2; exit 1; }
done

port=18190
declare -A ref
if command -v wasmtime >/dev/null; then
  for c in "${components[@]}"; do
    wasmtime serve -Scli --addr "127.0.0.1:$port" "examples/components/$c/hello.wasm" >/dev/null 2>&1 & pids+=($!)
    ref[$c]=$port
    port=$((port + 1))
  done
  for c in "${components[@]}"; do
    for _ in $(seq 600); do curl -sf -o /dev/null "http://127.0.0.1:${ref[$c]}/" && break; sleep 0.1; done
  done
fi

run() {
  wrk -t1 -c"$conns" -d"$dur" --latency "$2" | awk -v name="$1" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ {rps = $2} $1 == "50%" {p50 = ms($2)} $1 == "99%" {p99 = ms($2)}
    END {printf "%-24s %9.0f %8.2f %8.2f\n", name, rps, p50, p99}' | tee -a "$work/results"
}
# rps NAME: the mean req/s of the runs of target NAME.
rps() { awk -v name="$1" '{t = $1; for (i = 2; i <= NF - 3; i++) t = t " " $i} t == name {sum += $(NF - 2); n++} END {printf "%.0f", n ? sum / n : 0}' "$work/results"; }

echo "# $(date -u +%Y-%m-%d) $(nproc) cores, $(uname -r), wrk -t1 -c$conns -d$dur; wasmtime: $(wasmtime --version 2>/dev/null || echo 'not installed')"
printf "%-24s %9s %8s %8s\n" target req/s "p50 ms" "p99 ms"
# Each wasmesh target is warmed for a second first, its pool of instances
# made (the first requests of a component instantiate it per connection:
# with 16 connections at once, up to 100 ms each); wasmtime serve
# instantiates every request anyway. A module and the component of the
# same language run in turn, ROUNDS times, so that a drift of the machine's
# speed during the run (±15% here) falls on both; their ratio is of the
# means.
warm() { wrk -t1 -c"$conns" -d1s "$1" >/dev/null; }
: > "$work/results"
for c in "${components[@]}"; do
  warm "http://127.0.0.1:18180/$c/"
  if [[ " ${modules[*]} " == *" $c "* ]]; then
    warm "http://127.0.0.1:18180/$c-module/"
    for _ in $(seq "$rounds"); do
      run "$c (module)" "http://127.0.0.1:18180/$c-module/"
      run "$c (wasmesh)" "http://127.0.0.1:18180/$c/"
    done
  else
    run "$c (wasmesh)" "http://127.0.0.1:18180/$c/"
  fi
  if [ -n "${ref[$c]:-}" ]; then run "$c (wasmtime serve)" "http://127.0.0.1:${ref[$c]}/"; fi
  if [ "$c" = python ]; then
    warm "http://127.0.0.1:18180/python-warm/"
    run "python (wasmesh, warmup)" "http://127.0.0.1:18180/python-warm/"
  fi
done
echo "# ratios of mean req/s"
for c in "${components[@]}"; do
  line="$c:"
  w=$(rps "$c (wasmesh)")
  if [ -n "${ref[$c]:-}" ]; then line+=" $(awk -v a="$w" -v b="$(rps "$c (wasmtime serve)")" 'BEGIN {printf "%.2f", a / b}')× wasmtime serve"; fi
  if [[ " ${modules[*]} " == *" $c "* ]]; then line+=" $(awk -v a="$w" -v b="$(rps "$c (module)")" 'BEGIN {printf "%.2f", a / b}')× its module"; fi
  echo "$line"
done
if [ -n "${ref[python]:-}" ]; then
  echo "python with warmup: $(awk -v a="$(rps "python (wasmesh, warmup)")" -v b="$(rps "python (wasmtime serve)")" 'BEGIN {printf "%.2f", a / b}')× wasmtime serve"
fi
