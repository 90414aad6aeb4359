package main

import (
	"strings"
	"unsafe"
)

// The Go runtime copies the environment at initialisation, so os.Getenv in
// a reactor sees the environment of _initialize, not the request's. getenv
// reads the current request's environment straight from WASI.

//go:wasmimport wasi_snapshot_preview1 environ_sizes_get
func environSizesGet(count, size unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 environ_get
func environGet(environ, buf unsafe.Pointer) uint32

// Buffers made once, in _initialize, so they are part of the snapshot every
// request starts from: a request allocates only if its environment is
// larger.
var (
	envPtrs = make([]uint32, 64)
	envBuf  = make([]byte, 4096)
)

// requestEnv returns the request's variables as WASI lays them out:
// "KEY=VALUE\x00" after one another. It is valid until the next call.
func requestEnv() string {
	var count, size uint32
	if environSizesGet(unsafe.Pointer(&count), unsafe.Pointer(&size)) != 0 || count == 0 {
		return ""
	}
	if int(count) > len(envPtrs) {
		envPtrs = make([]uint32, count)
	}
	if int(size) > len(envBuf) {
		envBuf = make([]byte, size)
	}
	if environGet(unsafe.Pointer(&envPtrs[0]), unsafe.Pointer(&envBuf[0])) != 0 {
		return ""
	}
	return unsafe.String(&envBuf[0], size)
}

// getenv returns the value of key in env, as requestEnv returns it.
func getenv(env, key string) string {
	for env != "" {
		kv, rest, _ := strings.Cut(env, "\x00")
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
		env = rest
	}
	return ""
}
