package bpf

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// setDSCP sets the DSCP bits of the socket's IP header, keeping the ECN bits.
// An AF_INET6 socket gets both IPV6_TCLASS and IP_TOS, the latter for the
// IPv4 peers it reaches through v4-mapped addresses.
func setDSCP(fd uintptr, dscp int) error {
	family, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return fmt.Errorf("bpf: SO_DOMAIN: %w", err)
	}
	if family == unix.AF_INET6 {
		if err := setTOS(fd, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, "IPV6_TCLASS", dscp); err != nil {
			return err
		}
	}
	return setTOS(fd, unix.IPPROTO_IP, unix.IP_TOS, "IP_TOS", dscp)
}

func setTOS(fd uintptr, level, opt int, name string, dscp int) error {
	old, err := unix.GetsockoptInt(int(fd), level, opt)
	if err != nil {
		return fmt.Errorf("bpf: get %s: %w", name, err)
	}
	if err := unix.SetsockoptInt(int(fd), level, opt, old&0x03|dscp<<2); err != nil {
		return fmt.Errorf("bpf: set %s to dscp %d: %w", name, dscp, err)
	}
	return nil
}

// setMark replaces the mask bits of the socket's SO_MARK with value.
func setMark(fd uintptr, value, mask uint32) error {
	old, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK)
	if err != nil {
		return fmt.Errorf("bpf: get SO_MARK: %w", err)
	}
	mark := uint32(old)&^mask | value
	if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(int32(mark))); err != nil {
		return fmt.Errorf("bpf: set SO_MARK to %#08x: %w", mark, err)
	}
	return nil
}

// probeMark reports whether SO_MARK may be set (it needs CAP_NET_ADMIN or
// CAP_NET_RAW), on a socket of its own.
func probeMark() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("SO_MARK probe socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, 0); err != nil {
		return fmt.Errorf("SO_MARK: %w", err)
	}
	return nil
}
