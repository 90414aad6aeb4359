// misbehave as a wasi:http/proxy component: a test guest that does one
// odd thing on demand, by path, so that tests can see what the gateway
// makes of it. Built as hello.c is (examples/Makefile), on the bindings of
// the world misbehave in wit/.
//
//   /panic      a line to stderr, then abort(): a trap whose message the
//               gateway's log should carry
//   /print      a line to stdout, then 200 "printed"
//   /fan?URL    four GETs of URL (http://authority/path) handed to the
//               outgoing handler before any response is waited for, then
//               200 "fan: S S S S", their statuses (0: failed)
//   /head       200 declaring content-length: 1000, no body (a HEAD's
//               answer)
//   /slow?URL   one GET of URL with a first-byte-timeout of 300 ms, then
//               200 "slow: S" (its status) or "slow: error N" (its
//               error-code's case)
//   else        404
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "misbehave.h"

// answer sets the response: status, text/plain, body; with length, a
// content-length field of that value.
static void answer_declared(exports_wasi_http_incoming_handler_own_response_outparam_t response_out, int status, const char *text,
			    const char *length) {
	static char name[] = "content-type", cl[] = "content-length";
	static uint8_t value[] = "text/plain";
	wasi_http_types_tuple2_field_name_field_value_t entry[2] = {
		{.f0 = {.ptr = (uint8_t *)name, .len = sizeof name - 1}, .f1 = {.ptr = value, .len = sizeof value - 1}},
		{.f0 = {.ptr = (uint8_t *)cl, .len = sizeof cl - 1}, .f1 = {.ptr = (uint8_t *)length, .len = length ? strlen(length) : 0}},
	};
	wasi_http_types_list_tuple2_field_name_field_value_t entries = {.ptr = entry, .len = length ? 2 : 1};
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
		misbehave_list_u8_t contents = {.ptr = (uint8_t *)text, .len = strlen(text)};
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

static void answer(exports_wasi_http_incoming_handler_own_response_outparam_t response_out, int status, const char *text) {
	answer_declared(response_out, status, text, NULL);
}

// get hands a GET of url (http://authority/path) to the outgoing handler,
// with a first-byte-timeout of timeout_ms unless 0; false with *err set
// when it refuses it.
static bool get(const char *url, uint64_t timeout_ms, wasi_http_types_own_future_incoming_response_t *future,
		wasi_http_outgoing_handler_error_code_t *err) {
	const char *authority = strncmp(url, "http://", 7) == 0 ? url + 7 : url;
	const char *path = strchr(authority, '/');
	if (path == NULL) {
		path = authority + strlen(authority);
	}
	wasi_http_types_own_outgoing_request_t req = wasi_http_types_constructor_outgoing_request(wasi_http_types_constructor_fields());
	wasi_http_types_borrow_outgoing_request_t r = wasi_http_types_borrow_outgoing_request(req);
	wasi_http_types_scheme_t scheme = {.tag = WASI_HTTP_TYPES_SCHEME_HTTP};
	misbehave_string_t a = {.ptr = (uint8_t *)authority, .len = (size_t)(path - authority)};
	misbehave_string_t p = {.ptr = (uint8_t *)(*path ? path : "/"), .len = *path ? strlen(path) : 1};
	wasi_http_types_method_outgoing_request_set_scheme(r, &scheme);
	wasi_http_types_method_outgoing_request_set_authority(r, &a);
	wasi_http_types_method_outgoing_request_set_path_with_query(r, &p);
	if (timeout_ms == 0) {
		return wasi_http_outgoing_handler_handle(req, NULL, future, err);
	}
	wasi_http_types_own_request_options_t opts = wasi_http_types_constructor_request_options();
	wasi_http_types_duration_t ns = timeout_ms * 1000000;
	wasi_http_types_method_request_options_set_first_byte_timeout(wasi_http_types_borrow_request_options(opts), &ns);
	return wasi_http_outgoing_handler_handle(req, &opts, future, err);
}

// await waits for future's response and returns its status, or sets
// *code to its error-code's case (returning 0).
static unsigned await(wasi_http_types_own_future_incoming_response_t future, int *code) {
	unsigned status = 0;
	wasi_http_types_borrow_future_incoming_response_t f = wasi_http_types_borrow_future_incoming_response(future);
	wasi_io_poll_own_pollable_t ready = wasi_http_types_method_future_incoming_response_subscribe(f);
	wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(ready));
	wasi_io_poll_pollable_drop_own(ready);
	wasi_http_types_result_result_own_incoming_response_error_code_void_t got;
	*code = -1;
	if (wasi_http_types_method_future_incoming_response_get(f, &got) && !got.is_err) {
		if (got.val.ok.is_err) {
			*code = got.val.ok.val.err.tag;
			wasi_http_types_error_code_free(&got.val.ok.val.err);
		} else {
			wasi_http_types_own_incoming_response_t resp = got.val.ok.val.ok;
			status = wasi_http_types_method_incoming_response_status(wasi_http_types_borrow_incoming_response(resp));
			wasi_http_types_incoming_response_drop_own(resp);
		}
	}
	wasi_http_types_future_incoming_response_drop_own(future);
	return status;
}

// fan sends four GETs of url at once and answers with their statuses.
static void fan(const char *url, exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
	enum { n = 4 };
	wasi_http_types_own_future_incoming_response_t futures[n];
	bool sent[n];
	for (int i = 0; i < n; i++) {
		wasi_http_outgoing_handler_error_code_t err;
		if (!(sent[i] = get(url, 0, &futures[i], &err))) {
			wasi_http_outgoing_handler_error_code_free(&err);
		}
	}
	char text[64] = "fan:";
	for (int i = 0; i < n; i++) {
		int code;
		unsigned status = sent[i] ? await(futures[i], &code) : 0;
		snprintf(text + strlen(text), sizeof text - strlen(text), " %u", status);
	}
	strcat(text, "\n");
	answer(response_out, 200, text);
}

// slow sends one GET of url with a first-byte-timeout of 300 ms.
static void slow(const char *url, exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
	char text[64];
	wasi_http_types_own_future_incoming_response_t future;
	wasi_http_outgoing_handler_error_code_t err;
	int code = -1;
	unsigned status = 0;
	if (get(url, 300, &future, &err)) {
		status = await(future, &code);
	} else {
		code = err.tag;
		wasi_http_outgoing_handler_error_code_free(&err);
	}
	if (status != 0) {
		snprintf(text, sizeof text, "slow: %u\n", status);
	} else {
		snprintf(text, sizeof text, "slow: error %d\n", code);
	}
	answer(response_out, 200, text);
}

void exports_wasi_http_incoming_handler_handle(wasi_http_types_own_incoming_request_t request,
					       exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
	char p[256] = "/", query[256] = "";
	misbehave_string_t pq;
	if (wasi_http_types_method_incoming_request_path_with_query(wasi_http_types_borrow_incoming_request(request), &pq)) {
		size_t n = 0;
		while (n < pq.len && n < sizeof p - 1 && pq.ptr[n] != '?') {
			p[n] = pq.ptr[n];
			n++;
		}
		p[n] = 0;
		if (n < pq.len && pq.len - n - 1 < sizeof query) {
			memcpy(query, pq.ptr + n + 1, pq.len - n - 1);
			query[pq.len - n - 1] = 0;
		}
		misbehave_string_free(&pq);
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
	if (strcmp(p, "/fan") == 0) {
		fan(query, response_out);
		return;
	}
	if (strcmp(p, "/head") == 0) {
		answer_declared(response_out, 200, "", "1000");
		return;
	}
	if (strcmp(p, "/slow") == 0) {
		slow(query, response_out);
		return;
	}
	answer(response_out, 404, "unknown\n");
}
