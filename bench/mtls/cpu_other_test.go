//go:build !unix

package mtls

func cpuTime() (ns int64, ok bool) { return 0, false }
