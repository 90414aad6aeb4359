// The C hello as a wasi:http/proxy component: the same answer as the CGI
// hello of examples/hello/c, through wit-bindgen's C bindings of the world
// in wit/ (generated into ../build/bindings by examples/Makefile, not
// committed).
//
// examples/Makefile builds it: zig cc as a preview-1 reactor, then
// `wasm-tools component new` with the preview-1 reactor adapter.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hello.h"

typedef wasi_http_types_own_incoming_request_t request_t;

// method_name copies the request's method, as its name, into out (size
// bytes, with its NUL). The copies are memcpy's: a snprintf costs about
// 1.7 us under wazero, more than the rest of the handler's own code.
static void method_name(request_t request, char *out, size_t size) {
	static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
	wasi_http_types_method_t m;
	wasi_http_types_method_incoming_request_method(wasi_http_types_borrow_incoming_request(request), &m);
	const char *name = m.tag < sizeof names / sizeof names[0] ? names[m.tag] : (const char *)m.val.other.ptr;
	size_t n = m.tag < sizeof names / sizeof names[0] ? strlen(name) : m.val.other.len;
	n = n < size - 1 ? n : size - 1;
	memcpy(out, name, n);
	out[n] = 0;
	wasi_http_types_method_free(&m);
}

// path copies the request's path, without its query, into out (size
// bytes, with its NUL).
static void path(request_t request, char *out, size_t size) {
	hello_string_t p;
	size_t n = 0;
	if (!wasi_http_types_method_incoming_request_path_with_query(wasi_http_types_borrow_incoming_request(request), &p)) {
		memcpy(out, "/", 2);
		return;
	}
	while (n < p.len && n < size - 1 && p.ptr[n] != '?') {
		n++;
	}
	memcpy(out, p.ptr, n);
	out[n] = 0;
	hello_string_free(&p);
}

// body_length reads the request's body to its end and returns its length.
static size_t body_length(request_t request) {
	wasi_http_types_own_incoming_body_t body;
	if (!wasi_http_types_method_incoming_request_consume(wasi_http_types_borrow_incoming_request(request), &body)) {
		return 0;
	}
	size_t total = 0;
	wasi_io_streams_own_input_stream_t stream;
	if (wasi_http_types_method_incoming_body_stream(wasi_http_types_borrow_incoming_body(body), &stream)) {
		for (;;) {
			hello_list_u8_t chunk;
			wasi_io_streams_stream_error_t err;
			if (!wasi_io_streams_method_input_stream_blocking_read(wasi_io_streams_borrow_input_stream(stream), 64 << 10, &chunk, &err)) {
				if (err.tag == WASI_IO_STREAMS_STREAM_ERROR_LAST_OPERATION_FAILED) {
					wasi_io_error_error_drop_own(err.val.last_operation_failed);
				}
				break;
			}
			total += chunk.len;
			hello_list_u8_free(&chunk);
		}
		wasi_io_streams_input_stream_drop_own(stream);
	}
	wasi_http_types_future_trailers_drop_own(wasi_http_types_static_incoming_body_finish(body));
	return total;
}

void exports_wasi_http_incoming_handler_handle(request_t request,
					       exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
	char method[64], p[1024];
	method_name(request, method, sizeof method);
	path(request, p, sizeof p);
	size_t n = body_length(request);
	wasi_http_types_incoming_request_drop_own(request);

	// The greeting is the service's env GREETING (wasi:cli/environment),
	// "hello" without one.
	const char *greeting = getenv("GREETING");
	if (greeting == NULL) {
		greeting = "hello";
	}
	static char text[1200];
	int len = snprintf(text, sizeof text, "%s from c: %s %s %zu bytes\n", greeting, method, p, n);
	if (len > (int)sizeof text - 1) {
		len = sizeof text - 1;
	}

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
		hello_list_u8_t contents = {.ptr = (uint8_t *)text, .len = (size_t)len};
		wasi_io_streams_stream_error_t err;
		if (!wasi_io_streams_method_output_stream_blocking_write_and_flush(wasi_io_streams_borrow_output_stream(out), &contents, &err) &&
		    err.tag == WASI_IO_STREAMS_STREAM_ERROR_LAST_OPERATION_FAILED) {
			wasi_io_error_error_drop_own(err.val.last_operation_failed);
		}
		wasi_io_streams_output_stream_drop_own(out);
	}
	wasi_http_types_error_code_t ferr;
	wasi_http_types_static_outgoing_body_finish(body, NULL, &ferr);
}
