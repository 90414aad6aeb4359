#!/usr/bin/env bash
# Installs every toolchain wasmesh's examples, tests, manifests and benchmarks need.
# Idempotent: each step is skipped when its tool is already present.
# Used by `make examples`, `make toolchains` and .ci/run.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
log() { printf '== toolchains: %s\n' "$*" >&2; }

need_apt=()
[ -x /usr/bin/rustc ] || need_apt+=(rustc)
[ -d /usr/lib/rustlib/wasm32-wasi ] || need_apt+=(libstd-rust-dev-wasm32)
command -v wasm-ld-14 >/dev/null || command -v rust-lld >/dev/null || need_apt+=(lld-14)  # rustc links wasm32 with it
command -v wat2wasm >/dev/null || need_apt+=(wabt)
command -v clang >/dev/null || need_apt+=(clang)
command -v llvm-strip >/dev/null || need_apt+=(llvm)
command -v wrk >/dev/null || need_apt+=(wrk)
command -v nginx >/dev/null || need_apt+=(nginx)  # bench/upstream.sh compares the proxy with it
command -v chromium >/dev/null || need_apt+=(chromium)  # tests/ui_test.go drives the dashboard in it
command -v prometheus >/dev/null || need_apt+=(prometheus)  # tests/release_test.go: releases judged on a fleet's figures
command -v bpftool >/dev/null || need_apt+=(bpftool)
command -v nft >/dev/null || need_apt+=(nftables)  # bpf tests count marked packets with it
[ -x /usr/bin/docker-registry ] || need_apt+=(docker-registry)  # the OCI tests start their own registries
[ -e /usr/include/asm/types.h ] || [ -e /usr/include/x86_64-linux-gnu/asm/types.h ] || need_apt+=(linux-libc-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# The docker-registry package enables a daemon on :5000; the tests start
# their own registries on free loopback ports and need none running.
if command -v systemctl >/dev/null && systemctl is-enabled --quiet docker-registry 2>/dev/null; then
  log "systemctl disable --now docker-registry"
  systemctl disable --now docker-registry >/dev/null 2>&1 || systemctl disable docker-registry >/dev/null 2>&1 || true
fi

# Zig from PyPI (the ziglang wheel ships a real Zig binary), pinned: the
# examples use std APIs that later Zig versions removed, so a Zig of another
# version is replaced, not used.
ZIG_VERSION=0.13.0
if [ "$(python3 -m ziglang version 2>/dev/null)" != "$ZIG_VERSION" ]; then
  log "pip install ziglang==$ZIG_VERSION (found: $(python3 -m ziglang version 2>/dev/null || echo none))"
  python3 -m pip install -q --disable-pip-version-check "ziglang==$ZIG_VERSION.post1"
fi

# componentize-py from PyPI, pinned: it builds the Python component.
COMPONENTIZE_PY_VERSION=0.25.1
if [ "$(componentize-py --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY_VERSION" ]; then
  log "pip install componentize-py==$COMPONENTIZE_PY_VERSION (found: $(componentize-py --version 2>/dev/null || echo none))"
  python3 -m pip install -q --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
fi

# kubernetes-validate from PyPI (it bundles the Kubernetes JSON schemas, no
# network at run time): deploy/kubernetes's tests check the manifests with it.
if ! python3 -m kubernetes_validate --version >/dev/null 2>&1; then
  log "pip install kubernetes-validate"
  python3 -m pip install -q --disable-pip-version-check 'kubernetes-validate==1.37.0'
fi

# AssemblyScript, pinned by examples/hello/typescript/package-lock.json; jco
# and componentize-js, pinned by examples/components/package-lock.json.
for d in "$here"/*/typescript "$here"/components; do
  [ -f "$d/package.json" ] || continue
  if [ ! -d "$d/node_modules" ] || ! (cd "$d" && npm ls --silent >/dev/null 2>&1); then
    log "npm ci in ${d#$here/}"
    (cd "$d" && npm ci --silent --no-audit --no-fund)
  fi
done
# wasm-tools, pinned, built with the machine's cargo (about 5 minutes on 2
# cores): it makes the component test data from WIT and is the reference the
# component decoder's world is compared with.
WASM_TOOLS_VERSION=1.263.0
export PATH="$PATH:$HOME/.cargo/bin"
if ! wasm-tools --version 2>/dev/null | grep -qx "wasm-tools $WASM_TOOLS_VERSION.*"; then
  command -v cargo >/dev/null || { log "cargo is missing: install Rust with rustup to build wasm-tools"; exit 1; }
  log "cargo install wasm-tools@$WASM_TOOLS_VERSION (found: $(wasm-tools --version 2>/dev/null || echo none))"
  cargo install --quiet --locked "wasm-tools@$WASM_TOOLS_VERSION"
fi
# wit-bindgen, pinned, built with cargo (about 3 minutes): the C bindings of
# the world the C, Zig and Rust wasi:http components implement.
WIT_BINDGEN_VERSION=0.63.0
if ! wit-bindgen --version 2>/dev/null | grep -qx "wit-bindgen-cli $WIT_BINDGEN_VERSION.*"; then
  command -v cargo >/dev/null || { log "cargo is missing: install Rust with rustup to build wit-bindgen"; exit 1; }
  log "cargo install wit-bindgen-cli@$WIT_BINDGEN_VERSION (found: $(wit-bindgen --version 2>/dev/null || echo none))"
  cargo install --quiet --locked "wit-bindgen-cli@$WIT_BINDGEN_VERSION"
fi
log "ready"
