package bpf

import (
	"testing"

	"github.com/wasmesh/wasmesh/internal/netlab"
)

// requireBPF fails on err, unless it is the kernel refusing eBPF: then it
// skips, or fails when WASMESH_REQUIRE_BPF=1.
func requireBPF(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if netlab.Refused(err) {
		netlab.SkipRefusal(t, "the kernel refuses eBPF here: "+err.Error())
	}
	t.Fatal(err)
}
