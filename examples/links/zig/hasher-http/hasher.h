// hasher.zig's view of the bindings of world hasher-http: it includes
// "hasher.h" and names the types and helpers of world hasher, whose
// example:crypto/hash export is the same; here they are those of
// hasher-http, so that ../hasher-http.zig builds hasher.zig unchanged.
// Only the -I of hasher-http's build in examples/Makefile finds this file.
#ifndef HASHER_HTTP_AS_HASHER_H
#define HASHER_HTTP_AS_HASHER_H

#include "hasher_http.h"

typedef hasher_http_list_u8_t hasher_list_u8_t;
typedef hasher_http_string_t hasher_string_t;

static inline void hasher_list_u8_free(hasher_list_u8_t *ptr) {
	hasher_http_list_u8_free(ptr);
}

#endif
