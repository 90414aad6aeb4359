# wasmesh — see README.md. Every target works on a fresh machine of this kind:
# `make toolchains` installs what the examples, eBPF and benchmarks need.

GO      ?= go
BIN     := bin/wasmesh
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X main.version=$(VERSION)
LANGS   := rust zig c typescript go

.PHONY: all build test run smoke examples examples-force toolchains controlplane peers bench check clean generate k8s-validate fuzz

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/wasmesh

# go vet, then every test with the race detector.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

# The main job on the bundled examples: the gateway serving every hello guest
# (examples/wasmesh.yaml). Ctrl-C drains and stops it.
run: build
	./$(BIN) serve --config examples/wasmesh.yaml

# Like run, but fails unless every guest answers exactly as expected.
smoke: build
	@set -e; for l in $(LANGS); do \
	  got=$$(printf 'hello' | ./$(BIN) run --env REQUEST_METHOD=POST --env PATH_INFO=/hello examples/hello/$$l/hello.wasm); \
	  want=$$(printf 'Content-Type: text/plain\n\nhello from %s: POST /hello 5 bytes' $$l); \
	  if [ "$$got" != "$$want" ]; then echo "smoke: $$l: got '$$got'"; exit 1; fi; \
	  echo "smoke: $$l ok"; \
	done

# Rebuild the guests whose sources changed (examples/ and the testdata/ dirs).
examples:
	$(MAKE) -C examples
	$(MAKE) -C host/testdata
	$(MAKE) -C internal/wasmbin/testdata
	$(MAKE) -C tests/testdata
	$(MAKE) -C tests/testdata/links
	$(MAKE) -C internal/component/testdata

# Rebuild every guest from source, whatever the timestamps say.
examples-force:
	$(MAKE) -C examples clean all
	$(MAKE) -C host/testdata -B
	$(MAKE) -C internal/wasmbin/testdata -B
	$(MAKE) -C tests/testdata -B
	$(MAKE) -C tests/testdata/links -B
	$(MAKE) -C internal/component/testdata -B

toolchains:
	bash examples/toolchains.sh

# etcd and kube-apiserver for the Kubernetes tests (tests/kubernetes_api_test.go),
# built from the Go module proxy once into ~/.cache/wasmesh/k8s (4-5 minutes on
# 2 cores; tools/controlplane/build.sh).
controlplane:
	bash tools/controlplane/build.sh

# The reference hosts the differential tests compare with, outside the
# repository and outside CI (a long build): wasmtime serve, for components
# (tests/peers_test.go runs where it is installed).
WASMTIME_VERSION ?= 48.0.8
peers:
	@wasmtime --version 2>/dev/null | grep -q "^wasmtime $(WASMTIME_VERSION) " || \
	  cargo install --locked wasmtime-cli@$(WASMTIME_VERSION)

# The Kubernetes manifests (deploy/kubernetes): the schemas of Kubernetes,
# strictly (kubernetes-validate, from make toolchains), and their agreement
# with the wasmesh config they carry. CI=true fails instead of skipping
# when a tool is missing.
k8s-validate:
	CI=$${CI:-true} $(GO) test -count=1 ./deploy/kubernetes/

# Regenerate the eBPF objects and their Go bindings (bpf2go, Debian clang);
# the output is committed and byte-identical when regenerated.
generate:
	$(GO) generate ./bpf/

# Every fuzz target, each for FUZZTIME (default 30s; docs/operations.md says
# how long each has run) with FUZZPARALLEL workers (default one per CPU).
fuzz:
	FUZZTIME=$(FUZZTIME) FUZZPARALLEL=$(FUZZPARALLEL) bash .ci/fuzz.sh

# Engine microbenchmarks (compile, instantiate+run per language), then the
# end-to-end HTTP benchmark: native net/http vs the gateway, with wrk.
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=2s ./host/
	$(GO) test -run='^$$' -bench=ServeHTTP -benchmem -benchtime=2s ./mesh/
	$(GO) test -run='^$$' -bench=ReloadOneOf -benchtime=40x ./mesh/
	$(GO) test -run='^$$' -bench='FleetScale|IdleConnections' -benchtime=1x ./tests/
	$(GO) test -run='^$$' -bench='ReleaseFigures|LinkCall' -benchmem -benchtime=3s ./internal/dataplane/
	$(GO) test -run='^$$' -bench=Native -benchtime=3s -count=2 ./bench/mtls/
	$(GO) test -run='^$$' -bench='OTLPEncode|RequestSpans' -benchmem -benchtime=2s ./internal/telemetry/
	bash bench/http.sh 4s 32 3

# gofmt, go vet, staticcheck (pinned, from the Go module proxy), no new
# duplicated code (.ci/duplicates.sh), and go.mod/go.sum as go mod tidy
# leaves them. .ci/run runs it.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) mod tidy
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	bash .ci/duplicates.sh
	@git diff --exit-code --stat -- go.mod go.sum || { echo 'check: go mod tidy changed go.mod or go.sum'; exit 1; }

clean:
	rm -rf bin
