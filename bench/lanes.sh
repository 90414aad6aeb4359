#!/usr/bin/env bash
# Traffic lanes through real sockets, in one run: the three-hop chain
# frontend (Rust) → users (Zig frontend) → orders (Zig hello) behind one
# gateway, with wrk in turn outside any lane ("off"), in a lane without
# versions ("carry": entered at the edge and carried in baggage on both
# calls) and in a lane with a version of users and orders ("on": carried
# and selected; the lane's versions are copies of the same guests under
# other digests, so the guests' work is the same).
#   bench/lanes.sh [DURATION] [CONNECTIONS] [ROUNDS]     (defaults 5s, 16, 3)
# Prints each run's req/s, then the ratios of the means: carry/off, on/off.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-5s}
conns=${2:-16}
rounds=${3:-3}
command -v wrk >/dev/null || { echo "bench/lanes.sh: wrk is not installed (make toolchains)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/wasmesh" ./cmd/wasmesh
# A custom section named "v2" (payload "x"): the same guest, another digest.
{ cat examples/frontend/zig/frontend.wasm; printf '\x00\x04\x02v2x'; } > "$work/users-v2.wasm"
{ cat examples/hello/zig/hello.wasm; printf '\x00\x04\x02v2x'; } > "$work/orders-v2.wasm"
cat > "$work/wasmesh.yaml" <<YAML
listen: "127.0.0.1:18280"
admin: off
store: $work/store
services:
  frontend:
    versions: [ { path: $PWD/examples/frontend/rust/frontend.wasm } ]
    outbound: [ "wasmesh://users" ]
  users:
    versions:
      - { path: $PWD/examples/frontend/zig/frontend.wasm, name: stable, weight: 100 }
      - { path: $work/users-v2.wasm, name: v2, weight: 0 }
    env: { USERS_URL: "wasmesh://orders" }
    outbound: [ "wasmesh://orders" ]
  orders:
    versions:
      - { path: $PWD/examples/hello/zig/hello.wasm, name: stable, weight: 100 }
      - { path: $work/orders-v2.wasm, name: v2, weight: 0 }
lanes:
  v2: { versions: { users: v2, orders: v2 }, entry: [ { header: X-Lane=v2 } ] }
  carry: { entry: [ { header: X-Lane=carry } ] }
routes:
  - { match: { path_prefix: / }, service: frontend }
YAML
"$work/wasmesh" serve --config "$work/wasmesh.yaml" --log-level error --cache-dir "$work/cache" >/dev/null & pids+=($!)
for _ in $(seq 300); do curl -sf -o /dev/null http://127.0.0.1:18280/ && break; sleep 0.1; done
v2=$(sha256sum "$work/users-v2.wasm" | cut -d' ' -f1)
curl -sf -H 'X-Lane: v2' http://127.0.0.1:18280/ | grep -q "$v2" || { echo "bench/lanes.sh: lane v2 does not reach users v2" >&2; exit 1; }

declare -A sum
orders=("off carry on" "carry on off" "on off carry") # each mode first in turn
for r in $(seq "$rounds"); do
  for mode in ${orders[$(((r - 1) % 3))]}; do
    hdr=()
    [ "$mode" != off ] && hdr=(-H "X-Lane: $([ "$mode" = on ] && echo v2 || echo carry)")
    [ "$r" = 1 ] && wrk -t1 -c"$conns" -d1s "${hdr[@]}" http://127.0.0.1:18280/ >/dev/null # warm the instances
    rps=$(wrk -t1 -c"$conns" -d"$dur" "${hdr[@]}" http://127.0.0.1:18280/ | awk '/Requests\/sec/ {print $2}')
    echo "round $r $mode $rps req/s"
    sum[$mode]=$(echo "${sum[$mode]:-0} + $rps" | bc -l)
  done
done
printf 'carry/off %.3f  on/off %.3f\n' "$(echo "${sum[carry]} / ${sum[off]}" | bc -l)" "$(echo "${sum[on]} / ${sum[off]}" | bc -l)"
