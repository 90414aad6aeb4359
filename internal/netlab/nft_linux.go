//go:build linux

package netlab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// nftTable is the nftables table NFTCounters installs.
const nftTable = "wasmesh_test"

// Mark selects the packets a counter counts by their mark: those whose mark
// is Value exactly or, when Mask is not zero, whose mark & Mask is Value.
type Mark struct{ Value, Mask uint32 }

// NFTCounters installs, in namespace ns, named nftables counters on the
// egress hook of dev (after every cgroup_skb program, where a real consumer
// of the mark sees packets) for the TCP packets from port: one per entry of
// marks, and "unmarked" for the packets with none of mask's bits set. The
// table is deleted when the test ends.
func NFTCounters(t testing.TB, ns, dev string, port int, mask uint32, marks map[string]Mark) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "table netdev %s {\n", nftTable)
	for name := range marks {
		fmt.Fprintf(&b, "counter %s {}\n", name)
	}
	fmt.Fprintf(&b, "counter unmarked {}\n")
	fmt.Fprintf(&b, "chain out { type filter hook egress device %q priority 0; policy accept;\n", dev)
	for name, m := range marks {
		if m.Mask == 0 {
			fmt.Fprintf(&b, "tcp sport %d meta mark %#08x counter name %q\n", port, m.Value, name)
		} else {
			fmt.Fprintf(&b, "tcp sport %d meta mark & %#08x == %#08x counter name %q\n", port, m.Mask, m.Value, name)
		}
	}
	fmt.Fprintf(&b, "tcp sport %d meta mark & %#08x == 0 counter name \"unmarked\"\n}\n}\n", port, mask)
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil && bytes.Contains(out, []byte("Operation not permitted")) {
		SkipRefusal(t, "nft: "+string(bytes.TrimSpace(out)))
	} else if err != nil {
		t.Fatalf("nft: %v\n%s\n%s", err, out, b.String())
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "exec", ns, "nft", "delete", "table", "netdev", nftTable).CombinedOutput(); err != nil {
			t.Errorf("nft delete table: %v %s", err, out)
		}
	})
}

// Count is what one nftables counter counted.
type Count struct{ Packets, Bytes uint64 }

// Sub returns what a counted since b.
func (a Count) Sub(b Count) Count { return Count{a.Packets - b.Packets, a.Bytes - b.Bytes} }

// ReadNFT returns the counters NFTCounters installed in ns, by name.
func ReadNFT(t testing.TB, ns string) map[string]Count {
	t.Helper()
	out := run(t, "ip", "netns", "exec", ns, "nft", "-j", "list", "counters", "table", "netdev", nftTable)
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name    string
				Packets uint64
				Bytes   uint64
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("nft json: %v\n%s", err, out)
	}
	m := make(map[string]Count)
	for _, o := range doc.Nftables {
		if o.Counter != nil {
			m[o.Counter.Name] = Count{o.Counter.Packets, o.Counter.Bytes}
		}
	}
	return m
}
