package bpf_test

import (
	"fmt"

	"github.com/wasmesh/wasmesh/bpf"
)

// What a packet consumer (nftables, tc, a router's QoS) matches for a
// version's colour.
func ExampleOptions_Mark() {
	opts := bpf.Options{} // the default mark mask, 0xff000000
	value, mask := opts.Mark(5)
	fmt.Printf("meta mark & %#08x == %#08x\n", mask, value)
	fmt.Println("colours:", opts.MaxColour())
	// Output:
	// meta mark & 0xff000000 == 0x05000000
	// colours: 255
}
