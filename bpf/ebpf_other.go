//go:build !linux

package bpf

import (
	"errors"
	"fmt"
)

func newEBPF(Options) (Colourer, error) {
	return nil, fmt.Errorf("cgroup_skb programs need Linux: %w", errors.ErrUnsupported)
}
