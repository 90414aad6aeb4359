// The client of typed links: a wasi:http/proxy component of world
// hash-client in ../wit, which imports example:crypto/hash@0.1.0 (served,
// through a link, by a hasher's export) and exports
// wasi:http/incoming-handler, through wit-bindgen's C bindings of that
// world (generated into ../build/hash-client by examples/Makefile, not
// committed).
//
// It answers 200, text/plain, with hex(sha256(body)) and a newline; with
// an empty body, the request's path-with-query is what it hashes.
//
// examples/Makefile builds it: zig cc as a preview-1 reactor, then
// `wasm-tools component new` with the preview-1 reactor adapter.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hash_client.h"

typedef wasi_http_types_own_incoming_request_t request_t;

// read_body reads the request's body to its end into *out (malloc'd; its
// ptr NULL when the body is empty).
static void read_body(request_t request, hash_client_list_u8_t *out) {
	out->ptr = NULL;
	out->len = 0;
	wasi_http_types_own_incoming_body_t body;
	if (!wasi_http_types_method_incoming_request_consume(wasi_http_types_borrow_incoming_request(request), &body)) {
		return;
	}
	size_t cap = 0;
	wasi_io_streams_own_input_stream_t stream;
	if (wasi_http_types_method_incoming_body_stream(wasi_http_types_borrow_incoming_body(body), &stream)) {
		for (;;) {
			hash_client_list_u8_t chunk;
			wasi_io_streams_stream_error_t err;
			if (!wasi_io_streams_method_input_stream_blocking_read(wasi_io_streams_borrow_input_stream(stream), 64 << 10, &chunk, &err)) {
				if (err.tag == WASI_IO_STREAMS_STREAM_ERROR_LAST_OPERATION_FAILED) {
					wasi_io_error_error_drop_own(err.val.last_operation_failed);
				}
				break;
			}
			if (chunk.len > cap - out->len) {
				cap = 2 * (out->len + chunk.len);
				out->ptr = realloc(out->ptr, cap);
				if (out->ptr == NULL) {
					__builtin_trap();
				}
			}
			memcpy(out->ptr + out->len, chunk.ptr, chunk.len);
			out->len += chunk.len;
			hash_client_list_u8_free(&chunk);
		}
		wasi_io_streams_input_stream_drop_own(stream);
	}
	wasi_http_types_future_trailers_drop_own(wasi_http_types_static_incoming_body_finish(body));
}

void exports_wasi_http_incoming_handler_handle(request_t request,
					       exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
	hash_client_list_u8_t data;
	read_body(request, &data);
	if (data.len == 0) {
		free(data.ptr);
		hash_client_string_t p = {NULL, 0};
		wasi_http_types_method_incoming_request_path_with_query(wasi_http_types_borrow_incoming_request(request), &p);
		data.ptr = p.ptr;
		data.len = p.len;
	}
	wasi_http_types_incoming_request_drop_own(request);

	// The imports borrow their arguments; what they return is ours.
	hash_client_list_u8_t digest;
	example_crypto_hash_sha256(&data, &digest);
	hash_client_list_u8_free(&data);
	hash_client_string_t hex;
	example_crypto_hash_hex(&digest, &hex);
	hash_client_list_u8_free(&digest);

	uint8_t *text = malloc(hex.len + 1);
	if (text == NULL) {
		__builtin_trap();
	}
	memcpy(text, hex.ptr, hex.len);
	text[hex.len] = '\n';
	size_t len = hex.len + 1;
	hash_client_string_free(&hex);

	static char name[] = "content-type";
	static uint8_t value[] = "text/plain";
	wasi_http_types_tuple2_field_name_field_value_t entry = {
		.f0 = {.ptr = (uint8_t *)name, .len = sizeof name - 1},
		.f1 = {.ptr = value, .len = sizeof value - 1},
	};
	wasi_http_types_list_tuple2_field_name_field_value_t entries = {.ptr = &entry, .len = 1};
	wasi_http_types_own_fields_t headers;
	wasi_http_types_header_error_t herr;
	if (!wasi_http_types_static_fields_from_list(&entries, &headers, &herr)) {
		headers = wasi_http_types_constructor_fields();
	}
	wasi_http_types_own_outgoing_response_t response = wasi_http_types_constructor_outgoing_response(headers);
	wasi_http_types_own_outgoing_body_t body;
	wasi_http_types_method_outgoing_response_body(wasi_http_types_borrow_outgoing_response(response), &body);

	wasi_http_types_result_own_outgoing_response_error_code_t result = {.is_err = false, .val = {.ok = response}};
	wasi_http_types_static_response_outparam_set(response_out, &result);

	wasi_http_types_own_output_stream_t out;
	if (wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(body), &out)) {
		hash_client_list_u8_t contents = {.ptr = text, .len = len};
		wasi_io_streams_stream_error_t err;
		if (!wasi_io_streams_method_output_stream_blocking_write_and_flush(wasi_io_streams_borrow_output_stream(out), &contents, &err) &&
		    err.tag == WASI_IO_STREAMS_STREAM_ERROR_LAST_OPERATION_FAILED) {
			wasi_io_error_error_drop_own(err.val.last_operation_failed);
		}
		wasi_io_streams_output_stream_drop_own(out);
	}
	free(text);
	wasi_http_types_error_code_t ferr;
	wasi_http_types_static_outgoing_body_finish(body, NULL, &ferr);
}
