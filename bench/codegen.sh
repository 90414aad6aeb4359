#!/usr/bin/env bash
# Guest code speed: one compute-bound C program (bench/codegen/compute.c:
# recursive calls, then a string and hash-table loop through malloc),
# built with zig cc -O2 for wasm32-wasi as zig leaves it (with DWARF), run
# by wasmesh run, by wazero alone (bench/codegen/wazero) and by wasmtime
# run where it is installed (make peers), each after a first run that
# fills its compilation cache. Prints the best of three wall times.
#   bench/codegen.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m ziglang cc -target wasm32-wasi -O2 bench/codegen/compute.c -o "$work/compute.wasm"
go build -o "$work/wasmesh" ./cmd/wasmesh
go build -o "$work/wazero" ./bench/codegen/wazero
best() {
  local name=$1; shift
  "$@" >/dev/null 2>&1 # fills the cache
  local b=""
  for _ in 1 2 3; do
    local s e
    s=$EPOCHREALTIME; "$@" >/dev/null 2>&1; e=$EPOCHREALTIME
    b=$(awk -v s="$s" -v e="$e" -v b="$b" 'BEGIN {t = e - s; print (b == "" || t < b) ? t : b}')
  done
  printf "%-14s %6.2f s\n" "$name" "$b"
}
echo "# $(date -u +%Y-%m-%d) $(nproc) cores, $(uname -r); best of three"
best "wasmesh run" "$work/wasmesh" run --cache-dir "$work/cache-wasmesh" "$work/compute.wasm"
best "wazero" env CACHE_DIR="$work/cache-wazero" "$work/wazero" "$work/compute.wasm"
if command -v wasmtime >/dev/null; then best "wasmtime run" wasmtime run "$work/compute.wasm"; fi
