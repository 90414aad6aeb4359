package wasi

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Capabilities is what a guest may see of its host. The zero value grants
// nothing: no arguments, no environment, no files.
type Capabilities struct {
	// Args are the guest's argv; Args[0] is conventionally the program name.
	Args []string
	// Env holds "KEY=VALUE" pairs. The host environment is never inherited
	// implicitly: callers that want it add os.Environ() themselves.
	Env []string
	// Mounts are host directories preopened for the guest.
	Mounts []Mount
}

// Mount preopens the host directory HostPath at GuestPath in the guest.
type Mount struct {
	HostPath  string
	GuestPath string
	// ReadOnly refuses every write, create, rename and delete beneath the mount.
	ReadOnly bool
}

// ParseMount parses the command-line form HOST[:GUEST][:ro]. GUEST defaults to
// HOST. It checks the form only; whether HOST is a directory is the caller's
// to check.
func ParseMount(spec string) (Mount, error) {
	parts := strings.Split(spec, ":")
	var m Mount
	if n := len(parts); n > 1 && parts[n-1] == "ro" {
		m.ReadOnly = true
		parts = parts[:n-1]
	}
	switch len(parts) {
	case 1:
		m.HostPath, m.GuestPath = parts[0], parts[0]
	case 2:
		m.HostPath, m.GuestPath = parts[0], parts[1]
	default:
		return Mount{}, fmt.Errorf("invalid mount %q: want HOST[:GUEST][:ro]", spec)
	}
	if m.HostPath == "" || m.GuestPath == "" {
		return Mount{}, fmt.Errorf("invalid mount %q: empty path", spec)
	}
	m.HostPath = filepath.Clean(m.HostPath)
	return m, nil
}

// ParseEnv checks that kv has the form KEY=VALUE with a non-empty KEY.
func ParseEnv(kv string) (key, value string, err error) {
	key, value, ok := strings.Cut(kv, "=")
	if !ok || key == "" {
		return "", "", fmt.Errorf("invalid environment variable %q: want KEY=VALUE", kv)
	}
	return key, value, nil
}
