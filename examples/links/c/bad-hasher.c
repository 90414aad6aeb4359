// A hasher that misbehaves on command, for tests of typed links: a
// component of world hasher in ../wit (example:crypto/hash@0.1.0 out),
// through wit-bindgen's C bindings of that world (generated into
// ../build/hasher by examples/Makefile, not committed).
//
// sha256(data) by data's first byte:
//   't'  traps (unreachable);
//   'l'  loops forever;
//   'm'  allocates memory 1 MiB at a time, touching every page, until
//        malloc fails, then traps;
//   else 32 zero bytes.
// hex is a real one.
//
// examples/Makefile builds it: zig cc as a preview-1 reactor, then
// `wasm-tools component new` with the preview-1 reactor adapter.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hasher.h"

// The chunks 'm' allocated, each linked to the one before it through its
// first word, so that the compiler can elide neither malloc nor the writes.
static void *volatile hoard;

static void exhaust_memory(void) {
	for (;;) {
		uint8_t *chunk = malloc(1 << 20);
		if (chunk == NULL) {
			__builtin_trap();
		}
		for (size_t i = 0; i < (1 << 20); i += 4096) {
			((volatile uint8_t *)chunk)[i] = (uint8_t)i | 1;
		}
		*(void **)chunk = hoard;
		hoard = chunk;
	}
}

void exports_example_crypto_hash_sha256(hasher_list_u8_t *data, hasher_list_u8_t *ret) {
	uint8_t first = data->len > 0 ? data->ptr[0] : 0;
	hasher_list_u8_free(data);
	switch (first) {
	case 't':
		__builtin_trap();
	case 'l': {
		volatile uint64_t n = 0;
		for (;;) {
			n++;
		}
	}
	case 'm':
		exhaust_memory();
	}
	// Freed by the bindings' post-return with free().
	uint8_t *out = calloc(32, 1);
	if (out == NULL) {
		__builtin_trap();
	}
	ret->ptr = out;
	ret->len = 32;
}

void exports_example_crypto_hash_hex(hasher_list_u8_t *data, hasher_string_t *ret) {
	static const char digits[] = "0123456789abcdef";
	ret->ptr = NULL;
	ret->len = 0;
	if (data->len > 0) {
		uint8_t *out = malloc(data->len * 2);
		if (out == NULL) {
			__builtin_trap();
		}
		for (size_t i = 0; i < data->len; i++) {
			out[2 * i] = (uint8_t)digits[data->ptr[i] >> 4];
			out[2 * i + 1] = (uint8_t)digits[data->ptr[i] & 0x0f];
		}
		ret->ptr = out;
		ret->len = data->len * 2;
	}
	hasher_list_u8_free(data);
}
