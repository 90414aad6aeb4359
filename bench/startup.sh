#!/usr/bin/env bash
# Start-up of a component: the time from starting the server to its first
# answer, with an empty compilation cache (cold) and with the cache the
# cold start filled (warm), for wasmesh serve and, where it is installed
# (make peers), wasmtime serve, on the same component, in one run.
#   bench/startup.sh [COMPONENT] [RUNS]   (defaults examples/components/javascript/hello.wasm, 3)
# Prints "server cache seconds" per run; the warm figure is the one the
# issue's bar is about (no slower than wasmtime serve from its cache).
set -euo pipefail
cd "$(dirname "$0")/.."
comp=$(realpath "${1:-examples/components/javascript/hello.wasm}")
runs=${2:-3}
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/wasmesh" ./cmd/wasmesh

# since START: seconds from START (date +%s.%N) to now.
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { print b - a }'; }

run_wasmesh() { # CACHE-STATE
  printf 'listen: "127.0.0.1:18380"\nadmin: off\nstore: %s/store\nservices:\n  c: { versions: [ { path: %s } ] }\nroutes:\n  - { match: { path_prefix: / }, service: c }\n' "$work" "$comp" > "$work/wasmesh.yaml"
  local start
  start=$(date +%s.%N)
  "$work/wasmesh" serve --config "$work/wasmesh.yaml" --log-level error --cache-dir "$work/cache" >/dev/null 2>&1 & pid=$!
  until curl -sf -o /dev/null http://127.0.0.1:18380/; do sleep 0.005; done
  printf '%-16s %-5s %.3f\n' "wasmesh serve" "$1" "$(since "$start")"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

run_wasmtime() { # CACHE-STATE FLAGS...
  local state=$1; shift
  local start
  start=$(date +%s.%N)
  wasmtime serve -Scli "$@" --addr 127.0.0.1:18381 "$comp" >/dev/null 2>&1 & pid=$!
  until curl -sf -o /dev/null http://127.0.0.1:18381/; do sleep 0.005; done
  printf '%-16s %-5s %.3f\n' "wasmtime serve" "$state" "$(since "$start")"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

echo "# $(date -u +%Y-%m-%d) $(nproc) cores, $(uname -r); $(basename "$(dirname "$comp")")/$(basename "$comp") ($(stat -c %s "$comp") bytes); wasmtime: $(wasmtime --version 2>/dev/null || echo 'not installed')"
rm -rf "$work/cache" "$work/store"
run_wasmesh cold
for _ in $(seq "$runs"); do run_wasmesh warm; done
if command -v wasmtime >/dev/null; then
  printf '[cache]\ndirectory = "%s/wasmtime-cache"\n' "$work" > "$work/wasmtime-cache.toml"
  run_wasmtime cold -C cache=n
  run_wasmtime fill -C cache-config="$work/wasmtime-cache.toml"
  for _ in $(seq "$runs"); do run_wasmtime warm -C cache-config="$work/wasmtime-cache.toml"; done
fi
