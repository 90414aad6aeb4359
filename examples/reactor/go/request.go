package main

import (
	"strings"
	"unsafe"
)

// The Go runtime copies the environment at initialisation, so os.Getenv in
// a reactor sees the environment of _initialize, not the request's. These
// read the current request's environment straight from WASI.

//go:wasmimport wasi_snapshot_preview1 environ_sizes_get
func environSizesGet(count, size unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 environ_get
func environGet(environ, buf unsafe.Pointer) uint32

// requestEnv returns the request's CGI variables.
func requestEnv() map[string]string {
	var count, size uint32
	if environSizesGet(unsafe.Pointer(&count), unsafe.Pointer(&size)) != 0 || count == 0 {
		return map[string]string{}
	}
	ptrs := make([]uint32, count)
	buf := make([]byte, size)
	if environGet(unsafe.Pointer(&ptrs[0]), unsafe.Pointer(&buf[0])) != 0 {
		return map[string]string{}
	}
	env := make(map[string]string, count)
	for _, kv := range strings.Split(strings.TrimSuffix(string(buf), "\x00"), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}
