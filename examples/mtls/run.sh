#!/usr/bin/env bash
# Two wasmesh gateways talking mTLS with the development CA, end to end, in a
# temporary directory (see README.md for the same steps by hand):
#
#   examples/mtls/run.sh          # from anywhere; needs go, curl and openssl
#   KEEP=1 examples/mtls/run.sh   # keep the temp dir (CA, SVIDs, logs) afterwards
#
# It builds wasmesh and the example client, makes a CA, issues SVIDs, starts
# gateway B then gateway A (a-config.yaml and b-config.yaml, with the module
# paths and ports rewritten), sends requests that must succeed and requests
# that must be refused, rotates A's SVID by renaming new files over the old
# ones, and stops both gateways. Ports: A_PORT (8443), B_PORT (9443), A_ADMIN (9911),
# B_ADMIN (9912). It exits non-zero at the first check that fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
A_PORT=${A_PORT:-8443}
B_PORT=${B_PORT:-9443}
A_ADMIN=${A_ADMIN:-9911}
B_ADMIN=${B_ADMIN:-9912}
for tool in go curl openssl; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/wasmesh-mtls.XXXXXX")
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$rc" -ne 0 ]; then
    for g in a b; do
      [ -f "$work/$g.log" ] && { echo "--- gateway $g log (last 20 lines):"; tail -n 20 "$work/$g.log"; }
    done
  fi
  if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
pass() { printf 'ok: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
# contains WHAT TEXT NEEDLE: fail unless TEXT contains NEEDLE.
contains() { case "$2" in *"$3"*) pass "$1" ;; *) printf '%s\n' "$2" >&2; fail "$1: no \"$3\" in the output above"; esac; }

step "build wasmesh and the example client into $work"
go build -o "$work/wasmesh" ./cmd/wasmesh
go build -o "$work/client" ./examples/mtls/client
cd "$work"
export WASMESH_HOME=$work/home   # keeps the stores and caches in the temp dir

step "development CA for trust domain example.org, and one SVID per workload"
./wasmesh ca init --trust-domain example.org --dir ca
./wasmesh ca issue spiffe://example.org/gateway/a --out certs/a --dir ca
./wasmesh ca issue spiffe://example.org/gateway/b --out certs/b --dir ca
./wasmesh ca issue spiffe://example.org/client/alice --out certs/alice --dir ca
./wasmesh ca issue spiffe://example.org/client/mallory --out certs/mallory --dir ca
# eve's SVID comes from a CA the gateways do not trust.
./wasmesh ca init --trust-domain evil.example --dir evil-ca >/dev/null
./wasmesh ca issue spiffe://evil.example/client/eve --out certs/eve --dir evil-ca >/dev/null

# The configs as committed, with absolute module paths and the chosen ports.
for g in a b; do
  sed -e "s|path: \.\./|path: $repo/examples/|" \
      -e "s|127\.0\.0\.1:8443|127.0.0.1:$A_PORT|g" -e "s|127\.0\.0\.1:9443|127.0.0.1:$B_PORT|g" \
      -e "s|127\.0\.0\.1:9911|127.0.0.1:$A_ADMIN|g" -e "s|127\.0\.0\.1:9912|127.0.0.1:$B_ADMIN|g" \
      "$repo/examples/mtls/$g-config.yaml" > "$g-config.yaml"
done

# start NAME ADMIN_PORT: runs a gateway in the background and waits for /readyz.
start() {
  ./wasmesh serve --config "$1-config.yaml" --cache-dir "$work/cache" >"$1.out" 2>"$1.log" &
  pids+=($!)
  for _ in $(seq 300); do
    if curl -sf -o /dev/null "http://127.0.0.1:$2/readyz"; then
      pass "gateway $1 is up: $(head -n 1 "$1.out") (pid $!)"
      return
    fi
    kill -0 "$!" 2>/dev/null || fail "gateway $1 exited"
    sleep 0.1
  done
  fail "gateway $1 did not become ready"
}
step "start gateway B (env, only A may call it) and gateway A (frontend, calls B)"
start b "$B_ADMIN"
start a "$A_ADMIN"
a_pid=${pids[1]}
A=https://127.0.0.1:$A_PORT
B=https://127.0.0.1:$B_PORT

step "alice -> A -> B: the SPIFFE-aware client verifies A's SVID and ID"
out=$(./client -fail -certs certs/alice -expect spiffe://example.org/gateway/a "$A/?do=env" 2>&1)
printf '%s\n' "$out" | grep -E 'client |-> |X_SPIFFE_PEER_ID|REMOTE_ADDR' || true
contains "A answered alice and B answered A" "$out" "-> 200 "
contains "B's guest saw A's verified SPIFFE ID" "$out" "X_SPIFFE_PEER_ID=spiffe://example.org/gateway/a"

step "the same with curl: -k plus a pinned public key (curl cannot check a SPIFFE ID)"
pin=$(openssl x509 -in certs/a/svid.pem -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | openssl base64)
out=$(curl -sS -k --pinnedpubkey "sha256//$pin" --cert certs/alice/svid.pem --key certs/alice/svid.key "$A/?do=env")
contains "curl -k --pinnedpubkey with alice's SVID" "$out" "X_SPIFFE_PEER_ID=spiffe://example.org/gateway/a"
if out=$(curl -sS --cacert certs/alice/bundle.pem --cert certs/alice/svid.pem --key certs/alice/svid.key "$A/" 2>&1); then
  fail "curl --cacert accepted a certificate without a DNS name"
fi
contains "curl --cacert alone fails on the missing DNS name, as expected" "$out" "curl: (60)"

step "the same with openssl s_client: chain verified against the bundle, SAN printed"
out=$(printf 'GET /?do=env HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' |
  openssl s_client -quiet -verify_return_error -CAfile certs/alice/bundle.pem \
    -cert certs/alice/svid.pem -key certs/alice/svid.key -connect "127.0.0.1:$A_PORT" 2>/dev/null)
contains "openssl s_client with alice's SVID" "$out" "X_SPIFFE_PEER_ID=spiffe://example.org/gateway/a"
san=$(openssl s_client -verify_return_error -CAfile certs/alice/bundle.pem -cert certs/alice/svid.pem \
  -key certs/alice/svid.key -connect "127.0.0.1:$A_PORT" </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName)
contains "A's certificate names it by URI SAN" "$san" "URI:spiffe://example.org/gateway/a"

step "refusals"
out=$(./client -certs certs/mallory -expect spiffe://example.org/gateway/a "$A/?do=env" 2>&1)
contains "mallory (same trust domain, not in allow_peers) gets a 403" "$out" "403 Forbidden"
sleep 0.2
contains "A's log names the peer and the service" "$(grep 'peer not allowed' a.log)" \
  'service=frontend peer_id=spiffe://example.org/client/mallory'
if out=$(curl -sS -k --cert certs/eve/svid.pem --key certs/eve/svid.key "$A/" 2>&1); then
  fail "eve's SVID from another CA got through: $out"
fi
pass "eve (SVID of another CA) cannot connect: $out"
sleep 0.2
contains "A's log says why eve's handshake failed" "$(grep 'TLS handshake error' a.log)" \
  'no X.509 bundle for trust domain \"evil.example\"'
if out=$(curl -sS -k "$A/" 2>&1); then fail "a client without an SVID got through: $out"; fi
pass "a client without an SVID cannot connect: $out"
out=$(./client -certs certs/alice -expect spiffe://example.org/gateway/b "$B/?do=env" 2>&1)
contains "alice calling B directly gets a 403 (only A may)" "$out" "403 Forbidden"
if out=$(./client -certs certs/alice -expect spiffe://example.org/gateway/b "$A/" 2>&1); then
  fail "a client expecting gateway/b accepted gateway A: $out"
fi
contains "a client expecting B's ID refuses A" "$out" 'unexpected ID "spiffe://example.org/gateway/a"'

step "rotate A's SVID: issue a new one elsewhere, rename it over A's files (as cert-manager does)"
old=$(./wasmesh identity --svid certs/a/svid.pem --key certs/a/svid.key --bundle certs/a/bundle.pem | awk '/^Serial/ {print $2}')
./wasmesh ca issue spiffe://example.org/gateway/a --out staging --dir ca
new=$(./wasmesh identity --svid staging/svid.pem --key staging/svid.key --bundle staging/bundle.pem | awk '/^Serial/ {print $2}')
mv staging/svid.key certs/a/svid.key
mv staging/svid.pem certs/a/svid.pem
mv staging/bundle.pem certs/a/bundle.pem
for _ in $(seq 50); do
  out=$(./client -certs certs/alice -expect spiffe://example.org/gateway/a "$A/?do=status&arg=200" 2>&1) || fail "request after rotation: $out"
  case "$out" in *"serial $new,"*) break ;; esac
  sleep 0.1
done
contains "new connections get the new SVID (serial $old -> $new)" "$out" "serial $new,"
contains "A logged the rotation" "$(grep 'identity loaded' a.log | tail -n 1)" "serial $new,"
kill -0 "$a_pid" || fail "gateway A is gone"
pass "no restart: gateway A still runs as pid $a_pid"

step "stop both gateways"
for p in "${pids[@]}"; do kill "$p"; done
for p in "${pids[@]}"; do wait "$p" || fail "a gateway exited with status $?"; done
pids=()
pass "both gateways drained and exited 0"
printf '\nall checks passed\n'
