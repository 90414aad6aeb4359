// The echo client: a wasi:http/proxy component of world echo-client in
// wit-types/types.wit, which imports example:types/echo@0.1.0 (served,
// through a link, by echoer.zig's export) and exports
// wasi:http/incoming-handler, through wit-bindgen's C bindings of that
// world (generated into build/echo-client by the Makefile, not committed).
//
// Each request calls every echo function with values that stress its type
// (extremes, negative numbers, non-ASCII text, empty and non-empty lists,
// every case of the variant, option and result, several flags) and
// compares what comes back with what it sent. It answers 200, text/plain,
// "ok <number of checks>\n" when all of them match, else 500 with one line
// per mismatch, each starting with the function's name.
//
// The imports borrow their arguments; what they return is ours, freed with
// the bindings' *_free helpers.
//
// The Makefile builds it: zig cc as a preview-1 reactor, then
// `wasm-tools component new` with the preview-1 reactor adapter.
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echo_client.h"

typedef echo_client_string_t string_t;
typedef example_types_echo_point_t point_t;
typedef example_types_echo_list_point_t points_t;
typedef example_types_echo_mixed_t mixed_t;
typedef example_types_echo_shape_t shape_t;

// ---- The report: a count of checks and the lines of the failed ones.

static int checks;
static char *report;
static size_t report_len, report_cap;

static void fail(const char *fn, const char *format, ...) {
	char line[512];
	int n = snprintf(line, sizeof line, "%s: ", fn);
	va_list ap;
	va_start(ap, format);
	n += vsnprintf(line + n, sizeof line - n, format, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2) {
		n = sizeof line - 2;
	}
	line[n++] = '\n';
	if (report_len + n > report_cap) {
		report_cap = 2 * (report_len + n);
		report = realloc(report, report_cap);
		if (report == NULL) {
			__builtin_trap();
		}
	}
	memcpy(report + report_len, line, n);
	report_len += n;
}

// check counts one check, recording fn as failed unless ok.
static void check(const char *fn, bool ok, const char *what) {
	checks++;
	if (!ok) {
		fail(fn, "%s", what);
	}
}

// ---- Values and comparisons.

// S is a borrowed string_t of a C string literal.
static string_t S(const char *s) {
	return (string_t){(uint8_t *)s, strlen(s)};
}

static bool same_bytes(const void *a, size_t alen, const void *b, size_t blen) {
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool same_string(string_t a, string_t b) {
	return same_bytes(a.ptr, a.len, b.ptr, b.len);
}

static bool same_point(point_t a, point_t b) {
	return a.x == b.x && a.y == b.y;
}

static bool same_points(points_t a, points_t b) {
	if (a.len != b.len) {
		return false;
	}
	for (size_t i = 0; i < a.len; i++) {
		if (!same_point(a.ptr[i], b.ptr[i])) {
			return false;
		}
	}
	return true;
}

static bool same_mixed(const mixed_t *a, const mixed_t *b) {
	return a->flag == b->flag && a->small == b->small && same_string(a->name, b->name) &&
	       same_points(a->pts, b->pts) && a->maybe.is_some == b->maybe.is_some &&
	       (!a->maybe.is_some || a->maybe.val == b->maybe.val);
}

// Floats compare by their bits, so -0.0 must come back as -0.0.
static bool same_f32(float a, float b) {
	return memcmp(&a, &b, sizeof a) == 0;
}

static bool same_f64(double a, double b) {
	return memcmp(&a, &b, sizeof a) == 0;
}

static point_t tri[3] = {{-1, 2}, {INT32_MIN, INT32_MAX}, {1000000, -1000000}};

// ---- The checks, one function per echo.

static void scalars(void) {
	static const bool bools[] = {true, false};
	for (size_t i = 0; i < sizeof bools / sizeof *bools; i++) {
		bool got = example_types_echo_echo_bool(bools[i]);
		checks++;
		if (got != bools[i]) fail("echo-bool", "sent %d, got %d", bools[i], got);
	}
	static const int8_t s8s[] = {INT8_MIN, -1, 0, INT8_MAX};
	for (size_t i = 0; i < sizeof s8s / sizeof *s8s; i++) {
		int8_t got = example_types_echo_echo_s8(s8s[i]);
		checks++;
		if (got != s8s[i]) fail("echo-s8", "sent %d, got %d", s8s[i], got);
	}
	static const uint8_t u8s[] = {0, 200, UINT8_MAX};
	for (size_t i = 0; i < sizeof u8s / sizeof *u8s; i++) {
		uint8_t got = example_types_echo_echo_u8(u8s[i]);
		checks++;
		if (got != u8s[i]) fail("echo-u8", "sent %u, got %u", u8s[i], got);
	}
	static const int16_t s16s[] = {INT16_MIN, -12345, INT16_MAX};
	for (size_t i = 0; i < sizeof s16s / sizeof *s16s; i++) {
		int16_t got = example_types_echo_echo_s16(s16s[i]);
		checks++;
		if (got != s16s[i]) fail("echo-s16", "sent %d, got %d", s16s[i], got);
	}
	static const uint16_t u16s[] = {0, 40000, UINT16_MAX};
	for (size_t i = 0; i < sizeof u16s / sizeof *u16s; i++) {
		uint16_t got = example_types_echo_echo_u16(u16s[i]);
		checks++;
		if (got != u16s[i]) fail("echo-u16", "sent %u, got %u", u16s[i], got);
	}
	static const int32_t s32s[] = {INT32_MIN, -7, INT32_MAX};
	for (size_t i = 0; i < sizeof s32s / sizeof *s32s; i++) {
		int32_t got = example_types_echo_echo_s32(s32s[i]);
		checks++;
		if (got != s32s[i]) fail("echo-s32", "sent %ld, got %ld", (long)s32s[i], (long)got);
	}
	static const uint32_t u32s[] = {0, 3000000000u, UINT32_MAX};
	for (size_t i = 0; i < sizeof u32s / sizeof *u32s; i++) {
		uint32_t got = example_types_echo_echo_u32(u32s[i]);
		checks++;
		if (got != u32s[i]) fail("echo-u32", "sent %lu, got %lu", (unsigned long)u32s[i], (unsigned long)got);
	}
	static const int64_t s64s[] = {INT64_MIN, -1, INT64_MAX};
	for (size_t i = 0; i < sizeof s64s / sizeof *s64s; i++) {
		int64_t got = example_types_echo_echo_s64(s64s[i]);
		checks++;
		if (got != s64s[i]) fail("echo-s64", "sent %lld, got %lld", (long long)s64s[i], (long long)got);
	}
	static const uint64_t u64s[] = {0, UINT64_C(1) << 63, UINT64_MAX};
	for (size_t i = 0; i < sizeof u64s / sizeof *u64s; i++) {
		uint64_t got = example_types_echo_echo_u64(u64s[i]);
		checks++;
		if (got != u64s[i]) fail("echo-u64", "sent %llu, got %llu", (unsigned long long)u64s[i], (unsigned long long)got);
	}
	static const float f32s[] = {1.5f, -0.0f, -3.25e38f, 1e-45f};
	for (size_t i = 0; i < sizeof f32s / sizeof *f32s; i++) {
		float got = example_types_echo_echo_f32(f32s[i]);
		checks++;
		if (!same_f32(got, f32s[i])) fail("echo-f32", "sent %a, got %a", (double)f32s[i], (double)got);
	}
	static const double f64s[] = {-2.25e300, 1.5, -0.0, 5e-324};
	for (size_t i = 0; i < sizeof f64s / sizeof *f64s; i++) {
		double got = example_types_echo_echo_f64(f64s[i]);
		checks++;
		if (!same_f64(got, f64s[i])) fail("echo-f64", "sent %a, got %a", f64s[i], got);
	}
	// 😀, ASCII, é, the last before the surrogates, the first after, the last.
	static const uint32_t chars[] = {0x1F600, 'A', 0xE9, 0xD7FF, 0xE000, 0x10FFFF, 0};
	for (size_t i = 0; i < sizeof chars / sizeof *chars; i++) {
		uint32_t got = example_types_echo_echo_char(chars[i]);
		checks++;
		if (got != chars[i]) fail("echo-char", "sent U+%04lX, got U+%04lX", (unsigned long)chars[i], (unsigned long)got);
	}
	static const example_types_echo_colour_t colours[] = {
		EXAMPLE_TYPES_ECHO_COLOUR_RED, EXAMPLE_TYPES_ECHO_COLOUR_GREEN, EXAMPLE_TYPES_ECHO_COLOUR_BLUE};
	for (size_t i = 0; i < sizeof colours / sizeof *colours; i++) {
		example_types_echo_colour_t got = example_types_echo_echo_colour(colours[i]);
		checks++;
		if (got != colours[i]) fail("echo-colour", "sent %u, got %u", colours[i], got);
	}
	static const example_types_echo_style_t styles[] = {
		EXAMPLE_TYPES_ECHO_STYLE_BOLD | EXAMPLE_TYPES_ECHO_STYLE_UNDERLINE,
		EXAMPLE_TYPES_ECHO_STYLE_ITALIC | EXAMPLE_TYPES_ECHO_STYLE_UNDERLINE,
		EXAMPLE_TYPES_ECHO_STYLE_BOLD | EXAMPLE_TYPES_ECHO_STYLE_ITALIC | EXAMPLE_TYPES_ECHO_STYLE_UNDERLINE,
		0,
	};
	for (size_t i = 0; i < sizeof styles / sizeof *styles; i++) {
		example_types_echo_style_t got = example_types_echo_echo_style(styles[i]);
		checks++;
		if (got != styles[i]) fail("echo-style", "sent %#x, got %#x", styles[i], got);
	}
}

static void strings(void) {
	static char long_text[3000];
	for (size_t i = 0; i < sizeof long_text; i++) {
		long_text[i] = 'a' + i % 26;
	}
	string_t sent[] = {
		S("h\xc3\xa9llo, w\xc3\xb6rld \xe2\x80\x94 \xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac"),
		S(""),
		{(uint8_t *)long_text, sizeof long_text},
	};
	for (size_t i = 0; i < sizeof sent / sizeof *sent; i++) {
		string_t got;
		example_types_echo_echo_string(&sent[i], &got);
		check("echo-string", same_string(got, sent[i]), "string differs");
		echo_client_string_free(&got);
	}

	static uint8_t all[256];
	for (size_t i = 0; i < sizeof all; i++) {
		all[i] = (uint8_t)(255 - i);
	}
	echo_client_list_u8_t bytes[] = {{all, sizeof all}, {NULL, 0}};
	for (size_t i = 0; i < sizeof bytes / sizeof *bytes; i++) {
		echo_client_list_u8_t got;
		example_types_echo_echo_bytes(&bytes[i], &got);
		check("echo-bytes", same_bytes(got.ptr, got.len, bytes[i].ptr, bytes[i].len), "bytes differ");
		echo_client_list_u8_free(&got);
	}

	string_t words[] = {S("first"), S(""), S("\xc3\xbcn\xc3\xaf" "c\xc3\xb6" "de \xf0\x9f\x98\x80"), S("last")};
	echo_client_list_string_t lists[] = {{words, sizeof words / sizeof *words}, {NULL, 0}};
	for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
		echo_client_list_string_t got;
		example_types_echo_echo_strings(&lists[i], &got);
		bool ok = got.len == lists[i].len;
		for (size_t j = 0; ok && j < got.len; j++) {
			ok = same_string(got.ptr[j], lists[i].ptr[j]);
		}
		check("echo-strings", ok, "list<string> differs");
		echo_client_list_string_free(&got);
	}
}

static mixed_t mixed_full(void) {
	return (mixed_t){
		.flag = true,
		.small = UINT8_MAX,
		.name = S("n\xc3\xa4me \xe5\x90\x8d\xe5\x89\x8d"),
		.pts = {tri, 3},
		.maybe = {.is_some = true, .val = UINT64_MAX},
	};
}

static mixed_t mixed_empty(void) {
	return (mixed_t){.flag = false, .small = 0, .name = {NULL, 0}, .pts = {NULL, 0}, .maybe = {.is_some = false}};
}

static void records(void) {
	point_t points[] = {{-1, INT32_MAX}, {INT32_MIN, 0}};
	for (size_t i = 0; i < sizeof points / sizeof *points; i++) {
		point_t got;
		example_types_echo_echo_point(&points[i], &got);
		checks++;
		if (!same_point(got, points[i])) {
			fail("echo-point", "sent {%ld, %ld}, got {%ld, %ld}", (long)points[i].x, (long)points[i].y, (long)got.x, (long)got.y);
		}
	}

	mixed_t mixeds[] = {mixed_full(), mixed_empty(), {.flag = true, .small = 1, .name = S("x"), .pts = {tri + 1, 1}, .maybe = {.is_some = true, .val = 0}}};
	for (size_t i = 0; i < sizeof mixeds / sizeof *mixeds; i++) {
		mixed_t got;
		example_types_echo_echo_mixed(&mixeds[i], &got);
		check("echo-mixed", same_mixed(&got, &mixeds[i]), "record differs");
		example_types_echo_mixed_free(&got);
	}

	echo_client_tuple3_u8_string_f64_t tuples[] = {
		{.f0 = 7, .f1 = S("t\xc3\xbcple"), .f2 = -2.25e300},
		{.f0 = UINT8_MAX, .f1 = {NULL, 0}, .f2 = -0.0},
	};
	for (size_t i = 0; i < sizeof tuples / sizeof *tuples; i++) {
		echo_client_tuple3_u8_string_f64_t got;
		example_types_echo_echo_tuple(&tuples[i], &got);
		check("echo-tuple", got.f0 == tuples[i].f0 && same_string(got.f1, tuples[i].f1) && same_f64(got.f2, tuples[i].f2), "tuple differs");
		echo_client_tuple3_u8_string_f64_free(&got);
	}
}

static void variants(void) {
	shape_t shapes[] = {
		{.tag = EXAMPLE_TYPES_ECHO_SHAPE_CIRCLE, .val = {.circle = 1.5}},
		{.tag = EXAMPLE_TYPES_ECHO_SHAPE_CIRCLE, .val = {.circle = -2.25e300}},
		{.tag = EXAMPLE_TYPES_ECHO_SHAPE_POLYGON, .val = {.polygon = {tri, 3}}},
		{.tag = EXAMPLE_TYPES_ECHO_SHAPE_POLYGON, .val = {.polygon = {NULL, 0}}},
		{.tag = EXAMPLE_TYPES_ECHO_SHAPE_NOTHING},
	};
	for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
		shape_t got;
		example_types_echo_echo_shape(&shapes[i], &got);
		bool ok = got.tag == shapes[i].tag;
		if (ok && got.tag == EXAMPLE_TYPES_ECHO_SHAPE_CIRCLE) {
			ok = same_f64(got.val.circle, shapes[i].val.circle);
		} else if (ok && got.tag == EXAMPLE_TYPES_ECHO_SHAPE_POLYGON) {
			ok = same_points(got.val.polygon, shapes[i].val.polygon);
		}
		checks++;
		if (!ok) fail("echo-shape", "case %zu: sent tag %u, got tag %u", i, shapes[i].tag, got.tag);
		example_types_echo_shape_free(&got);
	}

	// option<string>: none, some non-empty, some empty.
	{
		string_t got = {NULL, 0};
		bool some = example_types_echo_echo_option(NULL, &got);
		check("echo-option", !some, "sent none, got some");
		if (some) echo_client_string_free(&got);
	}
	string_t somes[] = {S("s\xc3\xb6m\xc3\xa9 \xf0\x9f\x98\x80"), S("")};
	for (size_t i = 0; i < sizeof somes / sizeof *somes; i++) {
		string_t got = {NULL, 0};
		bool some = example_types_echo_echo_option(&somes[i], &got);
		check("echo-option", some && same_string(got, somes[i]), some ? "sent some, got a different string" : "sent some, got none");
		if (some) echo_client_string_free(&got);
	}

	// result<u32, string>: ok extremes, err with and without text.
	example_types_echo_result_u32_string_t results[] = {
		{.is_err = false, .val = {.ok = UINT32_MAX}},
		{.is_err = false, .val = {.ok = 0}},
		{.is_err = true, .val = {.err = S("\xc3\xa9rror \xf0\x9f\x98\x80")}},
		{.is_err = true, .val = {.err = {NULL, 0}}},
	};
	for (size_t i = 0; i < sizeof results / sizeof *results; i++) {
		uint32_t ok = 0;
		string_t err = {NULL, 0};
		bool is_ok = example_types_echo_echo_result(&results[i], &ok, &err);
		bool same = is_ok == !results[i].is_err &&
			    (is_ok ? ok == results[i].val.ok : same_string(err, results[i].val.err));
		checks++;
		if (!same) fail("echo-result", "case %zu: sent %s, got %s", i, results[i].is_err ? "err" : "ok", is_ok ? "ok" : "err");
		if (!is_ok) echo_client_string_free(&err);
	}
}

static void many(void) {
	static uint16_t shorts[] = {1, UINT16_MAX, 0x8000, 0};
	struct {
		uint8_t a;
		string_t b;
		echo_client_list_u16_t c;
		example_types_echo_option_point_t d;
		float e;
		uint64_t f;
		uint32_t g;
	} cases[] = {
		{200, S("m\xc3\xa4ny \xf0\x9f\x98\x80"), {shorts, 4}, {true, {-5, INT32_MIN}}, 1.5f, UINT64_MAX, 0x1F600},
		{0, {NULL, 0}, {NULL, 0}, {false, {0, 0}}, -0.0f, 0, 'x'},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		example_types_echo_tuple7_u8_string_list_u16_option_point_f32_u64_char32_t got;
		example_types_echo_echo_many(cases[i].a, &cases[i].b, &cases[i].c, cases[i].d.is_some ? &cases[i].d.val : NULL,
					     cases[i].e, cases[i].f, cases[i].g, &got);
		checks++;
		const char *bad = NULL;
		if (got.f0 != cases[i].a) bad = "a (u8)";
		else if (!same_string(got.f1, cases[i].b)) bad = "b (string)";
		else if (!same_bytes(got.f2.ptr, got.f2.len * 2, cases[i].c.ptr, cases[i].c.len * 2)) bad = "c (list<u16>)";
		else if (got.f3.is_some != cases[i].d.is_some || (got.f3.is_some && !same_point(got.f3.val, cases[i].d.val))) bad = "d (option<point>)";
		else if (!same_f32(got.f4, cases[i].e)) bad = "e (f32)";
		else if (got.f5 != cases[i].f) bad = "f (u64)";
		else if (got.f6 != cases[i].g) bad = "g (char)";
		if (bad != NULL) fail("echo-many", "case %zu: %s differs", i, bad);
		example_types_echo_tuple7_u8_string_list_u16_option_point_f32_u64_char32_free(&got);
	}

	// echo-spill: 18 flat values, so the arguments go through memory.
	mixed_t a = mixed_full(), b = mixed_empty();
	point_t p = {INT32_MIN, INT32_MAX};
	example_types_echo_tuple3_mixed_mixed_point_t got;
	example_types_echo_echo_spill(&a, &b, &p, &got);
	check("echo-spill", same_mixed(&got.f0, &a) && same_mixed(&got.f1, &b) && same_point(got.f2, p), "tuple<mixed, mixed, point> differs");
	example_types_echo_tuple3_mixed_mixed_point_free(&got);
	example_types_echo_echo_spill(&b, &a, &p, &got);
	check("echo-spill", same_mixed(&got.f0, &b) && same_mixed(&got.f1, &a) && same_point(got.f2, p), "tuple<mixed, mixed, point> differs (swapped)");
	example_types_echo_tuple3_mixed_mixed_point_free(&got);
}

// ---- The handler.

void exports_wasi_http_incoming_handler_handle(exports_wasi_http_incoming_handler_own_incoming_request_t request,
					       exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
	wasi_http_types_incoming_request_drop_own(request);

	checks = 0;
	report_len = 0;
	scalars();
	strings();
	records();
	variants();
	many();

	uint16_t status = 200;
	char ok_line[32];
	uint8_t *text;
	size_t len;
	if (report_len == 0) {
		len = (size_t)snprintf(ok_line, sizeof ok_line, "ok %d\n", checks);
		text = (uint8_t *)ok_line;
	} else {
		status = 500;
		text = (uint8_t *)report;
		len = report_len;
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
	wasi_http_types_method_outgoing_response_set_status_code(wasi_http_types_borrow_outgoing_response(response), status);
	wasi_http_types_own_outgoing_body_t body;
	wasi_http_types_method_outgoing_response_body(wasi_http_types_borrow_outgoing_response(response), &body);

	wasi_http_types_result_own_outgoing_response_error_code_t result = {.is_err = false, .val = {.ok = response}};
	wasi_http_types_static_response_outparam_set(response_out, &result);

	wasi_http_types_own_output_stream_t out;
	if (wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(body), &out)) {
		// blocking-write-and-flush takes at most 4096 bytes at a time.
		for (size_t off = 0; off < len;) {
			size_t n = len - off < 4096 ? len - off : 4096;
			echo_client_list_u8_t contents = {.ptr = text + off, .len = n};
			wasi_io_streams_stream_error_t err;
			if (!wasi_io_streams_method_output_stream_blocking_write_and_flush(wasi_io_streams_borrow_output_stream(out), &contents, &err)) {
				if (err.tag == WASI_IO_STREAMS_STREAM_ERROR_LAST_OPERATION_FAILED) {
					wasi_io_error_error_drop_own(err.val.last_operation_failed);
				}
				break;
			}
			off += n;
		}
		wasi_io_streams_output_stream_drop_own(out);
	}
	wasi_http_types_error_code_t ferr;
	wasi_http_types_static_outgoing_body_finish(body, NULL, &ferr);
}
