#!/usr/bin/env bash
# Builds etcd and kube-apiserver from the Go module proxy into a cache
# outside the repository, once per release: the Kubernetes tests
# (tests/kubernetes_api_test.go) start them as processes, as envtest does.
#   tools/controlplane/build.sh              builds (when not built yet), prints the directory
#   tools/controlplane/build.sh --print-dir  prints the directory, builds nothing
# The directory is $WASMESH_K8S_CACHE (default ~/.cache/wasmesh/k8s)/<release>.
# Each module here has its own go.mod, made by this script: etcd's requires
# go.etcd.io/etcd/server/v3; kube-apiserver's requires k8s.io/kubernetes and
# replaces every staging module its go.mod names with the published one of
# the same release (k8s.io/api => k8s.io/api v0.36.3, …), read from that
# go.mod in the module cache, so that all k8s.io modules are one release.
set -euo pipefail
K8S=${K8S_VERSION:-v1.36.3}
ETCD=${ETCD_VERSION:-v3.6.16}
here=$(cd "$(dirname "$0")" && pwd)
out=${WASMESH_K8S_CACHE:-$HOME/.cache/wasmesh/k8s}/$K8S-etcd$ETCD
if [ "${1:-}" = --print-dir ]; then echo "$out"; exit 0; fi
mkdir -p "$out"
export GOFLAGS=-mod=mod GOWORK=off
# The build's objects (gigabytes, of Kubernetes' packages, which nothing
# else builds) go in a cache of their own, removed after: the binaries
# are what is kept.
tmp=$(mktemp -d); trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
export GOCACHE="$tmp/gocache"
staging=0.${K8S#v1.}      # v1.36.3 → 0.36.3, the staging modules' release
minor=$(echo "$K8S" | cut -d. -f2)

if [ ! -x "$out/etcd" ]; then
  work="$tmp/etcd"; mkdir -p "$work"
  cp "$here/etcd/main.go" "$work/"
  (cd "$work" && go mod init wasmesh.test/etcd >/dev/null 2>&1 &&
    go get "go.etcd.io/etcd/server/v3@$ETCD" >&2 && go mod tidy >&2 &&
    go build -trimpath -ldflags "-s -w" -o "$out/etcd.tmp" . && mv "$out/etcd.tmp" "$out/etcd") >&2
fi

if [ ! -x "$out/kube-apiserver" ]; then
  work="$tmp/kube-apiserver"; mkdir -p "$work"
  cp "$here/kube-apiserver/main.go" "$work/"
  dir=$(go mod download -json "k8s.io/kubernetes@$K8S" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  {
    echo "module wasmesh.test/kube-apiserver"
    echo
    echo "go $(sed -n 's/^go //p' "$dir/go.mod")"
    echo
    echo "require k8s.io/kubernetes $K8S"
    echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => \./staging/src/k8s.io/.*#\t\1 => \1 v'"$staging"'#p' "$dir/go.mod"
    echo ")"
  } > "$work/go.mod"
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S -X k8s.io/component-base/version.gitMajor=1"
  ldflags="$ldflags -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$K8S"
  (cd "$work" && go mod tidy >&2 && go build -trimpath -ldflags "$ldflags" -o "$out/kube-apiserver.tmp" . &&
    mv "$out/kube-apiserver.tmp" "$out/kube-apiserver") >&2
fi
echo "$out"
