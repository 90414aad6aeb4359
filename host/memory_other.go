//go:build !linux

package host

import "github.com/tetratelabs/wazero/experimental"

func newLinearMemory(capacity, ceiling uint64) experimental.LinearMemory {
	return &sliceMemory{ceiling: ceiling, buf: make([]byte, 0, min(capacity, ceiling))}
}
