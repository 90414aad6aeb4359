#!/usr/bin/env bash
# What packet colouring costs: the gateway serving the Rust hello on
# loopback, with `bpf: off` (the fallback: SO_MARK and IP_TOS set by
# setsockopt on every request, counters in userspace) and with `bpf: auto`
# (eBPF: an sk_storage update per request, cgroup_skb programs marking and
# counting every packet). Colouring cannot be switched off altogether: `off`
# is the cheapest mode there is.
#   bench/colour.sh [DURATION] [CONNECTIONS] [ROUNDS]     (defaults 5s, 32, 2)
# Each round runs wrk once per mode, alternating, so that drift on a busy
# machine hits both alike. Prints one line per run: req/s, p50 and p99
# latency (wrk --latency), then each mode's mean req/s and its ratio to off.
#
# Run as root for eBPF (otherwise `auto` falls back and the script says so).
# Each gateway runs in a cgroup v2 of its own when one can be made, as a
# systemd service would: the programs then see the gateway's sockets only,
# not wrk's. Without one, the gateway attaches to the cgroup it runs in.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-5s}
conns=${2:-32}
rounds=${3:-2}
command -v wrk >/dev/null || { echo "bench/colour.sh: wrk is not installed (make toolchains)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cgroups=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for cg in "${cgroups[@]}"; do rmdir "$cg" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/wasmesh" ./cmd/wasmesh

# The cgroup2 mount (unified or hybrid), if any.
cg2=$(awk '$9 == "cgroup2" && $4 == "/" {print $5; exit}' /proc/self/mountinfo)

declare -A port admin
port[off]=18180 admin[off]=19180
port[ebpf]=18181 admin[ebpf]=19181
modes=(off ebpf)

for m in "${modes[@]}"; do
  bpfmode=$m; [ "$m" = ebpf ] && bpfmode=auto
  cat > "$work/$m.yaml" <<EOF
listen: 127.0.0.1:${port[$m]}
admin: 127.0.0.1:${admin[$m]}
store: $work/store-$m
bpf: $bpfmode
services:
  rust:
    versions:
      - path: $PWD/examples/hello/rust/hello.wasm
routes:
  - { match: { path_prefix: /rust }, service: rust, strip_prefix: true }
EOF
  cg=""
  if [ -n "$cg2" ] && [ -w "$cg2" ]; then
    cg="$cg2/wasmesh-bench-$$-$m"
    mkdir "$cg" 2>/dev/null && cgroups+=("$cg") || cg=""
  fi
  # The gateway joins its cgroup before it starts, so that its cgroup (where
  # eBPF attaches) is exactly that one.
  CG=$cg sh -c '[ -z "$CG" ] || echo $$ > "$CG/cgroup.procs"; exec "$@"' sh \
    "$work/wasmesh" serve --config "$work/$m.yaml" --log-level error --cache-dir "$work/cache" >/dev/null &
  pids+=($!)
done

for m in "${modes[@]}"; do
  for _ in $(seq 200); do
    curl -sf -o /dev/null "http://127.0.0.1:${port[$m]}/rust/" && break
    sleep 0.1
  done
  curl -sf -o /dev/null "http://127.0.0.1:${port[$m]}/rust/" || { echo "bench: the $m gateway did not start" >&2; exit 1; }
done

# colours NAME: the gateway's colour table (`wasmesh colours`).
colours() { "$work/wasmesh" colours --admin "127.0.0.1:${admin[$1]}"; }
# mode NAME: "mode MODE: REASON", as the gateway reports it.
mode() { colours "$1" | head -1; }
for m in "${modes[@]}"; do echo "# $m gateway: $(mode "$m")"; done
case $(mode ebpf) in
  "mode ebpf:"*) ;;
  *) echo "bench: bpf: auto did not get eBPF here (see the reason above); the ebpf line measures the fallback" >&2 ;;
esac

# run NAME: prints "NAME req/s p50 p99"
run() {
  local out rps p50 p99
  out=$(wrk -t2 -c"$conns" -d"$dur" --latency "http://127.0.0.1:${port[$1]}/rust/hi")
  if echo "$out" | grep -q "Non-2xx"; then echo "bench: $1 had non-2xx responses:" >&2; echo "$out" >&2; exit 1; fi
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  echo "$1 $rps $p50 $p99"
}

echo "# $(date -u +%Y-%m-%d) $(nproc) cores, $(uname -r), wrk -t2 -c$conns -d$dur, GET /rust/hi with keep-alive, $rounds rounds"
results=$(
  for r in $(seq "$rounds"); do
    if [ $((r % 2)) = 1 ]; then order="off ebpf"; else order="ebpf off"; fi
    for m in $order; do run "$m"; done
  done
)
printf '%-8s %12s %10s %10s\n' mode req/s p50 p99
echo "$results" | while read -r name rps p50 p99; do
  printf '%-8s %12s %10s %10s\n' "$name" "$rps" "$p50" "$p99"
done
echo "$results" | awk '{sum[$1]+=$2; n[$1]++} END {
  off = sum["off"]/n["off"]
  for (m in sum) printf "mean %-5s %10.0f req/s  %6.1f%% of off\n", m, sum[m]/n[m], 100*(sum[m]/n[m])/off
}' | sort

# The counters moved: the traffic really was coloured.
for m in "${modes[@]}"; do
  echo "# $m colours:"
  colours "$m" | tail -n +2 | sed 's/^/#   /'
done
