// A component exporting example:crypto/hash@0.1.0 with the wrong types
// (wit/mismatch.wit: sha256 takes a string, not a list<u8>), for tests that
// a typed link refuses an export whose signature differs from the import.
// sha256 returns 32 zero bytes; hex returns an empty string. Built by the
// Makefile here through wit-bindgen's C bindings of world mismatch
// (generated into build/, not committed).
#include <stdint.h>
#include <stdlib.h>

#include "mismatch.h"

void exports_example_crypto_hash_sha256(mismatch_string_t *data, mismatch_list_u8_t *ret) {
	mismatch_string_free(data);
	// Freed by the bindings' post-return with free().
	uint8_t *out = calloc(32, 1);
	if (out == NULL) {
		__builtin_trap();
	}
	ret->ptr = out;
	ret->len = 32;
}

void exports_example_crypto_hash_hex(mismatch_list_u8_t *data, mismatch_string_t *ret) {
	mismatch_list_u8_free(data);
	ret->ptr = NULL;
	ret->len = 0;
}
