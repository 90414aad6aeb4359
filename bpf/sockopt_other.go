//go:build !linux

package bpf

import (
	"errors"
	"fmt"
)

// Outside Linux the fallback only counts: SO_MARK does not exist, and DSCP is
// left to the operating system.

func setDSCP(fd uintptr, dscp int) error { return nil }

func setMark(fd uintptr, value, mask uint32) error { return nil }

func probeMark() error {
	return fmt.Errorf("SO_MARK and DSCP need Linux: %w", errors.ErrUnsupported)
}
