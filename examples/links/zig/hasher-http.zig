// The Zig hasher over HTTP too: a component of world hasher-http in
// ../wit, which exports example:crypto/hash@0.1.0 as the Zig hasher does
// (hasher.zig itself, imported below) and wasi:http/incoming-handler,
// answering 200, application/octet-stream, with the 32 raw bytes of the
// SHA-256 of the request's body. The same work through a typed call and
// through an in-process HTTP call, for a benchmark to compare the two.
//
// Bindings: wit-bindgen's C bindings of world hasher-http (generated into
// ../build/hasher-http by examples/Makefile, not committed). hasher.zig
// includes "hasher.h" and names world hasher's types; hasher-http/hasher.h
// gives it those of this world under these names.
//
// examples/Makefile builds it as it builds hasher.zig: `zig build-exe` as
// a preview-1 reactor with the bindings' C, then `wasm-tools component new`
// with the preview-1 reactor adapter.
const std = @import("std");
const c = @cImport(@cInclude("hasher_http.h"));
const Sha256 = std.crypto.hash.sha2.Sha256;

// hasher.zig's exports (exports_example_crypto_hash_sha256 and _hex),
// which the bindings' example:crypto/hash export calls.
comptime {
    _ = @import("hasher.zig");
}

/// The SHA-256 of the request's body, read to its end a chunk at a time.
fn bodyDigest(request: c.wasi_http_types_own_incoming_request_t) [Sha256.digest_length]u8 {
    var h = Sha256.init(.{});
    var body: c.wasi_http_types_own_incoming_body_t = undefined;
    if (c.wasi_http_types_method_incoming_request_consume(c.wasi_http_types_borrow_incoming_request(request), &body)) {
        var stream: c.wasi_io_streams_own_input_stream_t = undefined;
        if (c.wasi_http_types_method_incoming_body_stream(c.wasi_http_types_borrow_incoming_body(body), &stream)) {
            while (true) {
                var chunk: c.hasher_http_list_u8_t = undefined;
                var err: c.wasi_io_streams_stream_error_t = undefined;
                if (!c.wasi_io_streams_method_input_stream_blocking_read(c.wasi_io_streams_borrow_input_stream(stream), 64 << 10, &chunk, &err)) {
                    if (err.tag == c.WASI_IO_STREAMS_STREAM_ERROR_LAST_OPERATION_FAILED) {
                        c.wasi_io_error_error_drop_own(err.val.last_operation_failed);
                    }
                    break;
                }
                if (chunk.len > 0) h.update(chunk.ptr[0..chunk.len]);
                c.hasher_http_list_u8_free(&chunk);
            }
            c.wasi_io_streams_input_stream_drop_own(stream);
        }
        c.wasi_http_types_future_trailers_drop_own(c.wasi_http_types_static_incoming_body_finish(body));
    }
    return h.finalResult();
}

export fn exports_wasi_http_incoming_handler_handle(
    request: c.wasi_http_types_own_incoming_request_t,
    response_out: c.exports_wasi_http_incoming_handler_own_response_outparam_t,
) void {
    var digest = bodyDigest(request);
    c.wasi_http_types_incoming_request_drop_own(request);

    const name = "content-type";
    const value = "application/octet-stream";
    var entry = c.wasi_http_types_tuple2_field_name_field_value_t{
        .f0 = .{ .ptr = @constCast(name.ptr), .len = name.len },
        .f1 = .{ .ptr = @constCast(value.ptr), .len = value.len },
    };
    var entries = c.wasi_http_types_list_tuple2_field_name_field_value_t{ .ptr = &entry, .len = 1 };
    var headers: c.wasi_http_types_own_fields_t = undefined;
    var herr: c.wasi_http_types_header_error_t = undefined;
    if (!c.wasi_http_types_static_fields_from_list(&entries, &headers, &herr)) {
        headers = c.wasi_http_types_constructor_fields();
    }
    const response = c.wasi_http_types_constructor_outgoing_response(headers);
    var body: c.wasi_http_types_own_outgoing_body_t = undefined;
    _ = c.wasi_http_types_method_outgoing_response_body(c.wasi_http_types_borrow_outgoing_response(response), &body);

    var result = c.wasi_http_types_result_own_outgoing_response_error_code_t{ .is_err = false, .val = .{ .ok = response } };
    c.wasi_http_types_static_response_outparam_set(response_out, &result);

    var out: c.wasi_io_streams_own_output_stream_t = undefined;
    if (c.wasi_http_types_method_outgoing_body_write(c.wasi_http_types_borrow_outgoing_body(body), &out)) {
        var contents = c.hasher_http_list_u8_t{ .ptr = &digest, .len = digest.len };
        var err: c.wasi_io_streams_stream_error_t = undefined;
        if (!c.wasi_io_streams_method_output_stream_blocking_write_and_flush(c.wasi_io_streams_borrow_output_stream(out), &contents, &err) and
            err.tag == c.WASI_IO_STREAMS_STREAM_ERROR_LAST_OPERATION_FAILED)
        {
            c.wasi_io_error_error_drop_own(err.val.last_operation_failed);
        }
        c.wasi_io_streams_output_stream_drop_own(out);
    }
    var ferr: c.wasi_http_types_error_code_t = undefined;
    _ = c.wasi_http_types_static_outgoing_body_finish(body, null, &ferr);
}
