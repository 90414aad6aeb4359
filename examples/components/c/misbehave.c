// misbehave as a wasi:http/proxy component: a test guest that does one
// odd thing on demand, by path, so that tests can see what the gateway
// makes of it. Built as hello.c is (examples/Makefile), on its bindings.
//
//   /panic   a line to stderr, then abort(): a trap whose message the
//            gateway's log should carry
//   /print   a line to stdout, then 200 "printed"
//   else     404
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hello.h"

// answer sets the response: status, text/plain, body.
static void answer(exports_wasi_http_incoming_handler_own_response_outparam_t response_out, int status, const char *text) {
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
	wasi_http_types_method_outgoing_response_set_status_code(wasi_http_types_borrow_outgoing_response(response), status);
	wasi_http_types_own_outgoing_body_t body;
	wasi_http_types_method_outgoing_response_body(wasi_http_types_borrow_outgoing_response(response), &body);
	wasi_http_types_result_own_outgoing_response_error_code_t result = {.is_err = false, .val = {.ok = response}};
	wasi_http_types_static_response_outparam_set(response_out, &result);
	wasi_http_types_own_output_stream_t out;
	if (wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(body), &out)) {
		hello_list_u8_t contents = {.ptr = (uint8_t *)text, .len = strlen(text)};
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

void exports_wasi_http_incoming_handler_handle(wasi_http_types_own_incoming_request_t request,
					       exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
	char p[256] = "/";
	hello_string_t pq;
	if (wasi_http_types_method_incoming_request_path_with_query(wasi_http_types_borrow_incoming_request(request), &pq)) {
		size_t n = 0;
		while (n < pq.len && n < sizeof p - 1 && pq.ptr[n] != '?') {
			p[n] = pq.ptr[n];
			n++;
		}
		p[n] = 0;
		hello_string_free(&pq);
	}
	wasi_http_types_incoming_request_drop_own(request);
	if (strcmp(p, "/panic") == 0) {
		fprintf(stderr, "misbehave: panicking on purpose\n");
		fflush(stderr);
		abort();
	}
	if (strcmp(p, "/print") == 0) {
		printf("misbehave: a line on stdout\n");
		fflush(stdout);
		answer(response_out, 200, "printed\n");
		return;
	}
	answer(response_out, 404, "unknown\n");
}
