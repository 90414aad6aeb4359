//! The Rust hello as a wasi:http/proxy component: the same answer as the
//! CGI hello of examples/hello/rust, with Debian's rustc 1.63 (too old for
//! wit-bindgen's Rust generator and cargo component): it calls wit-bindgen's
//! C bindings of the world in ../c/wit through `extern "C"`, and exports
//! the handler they call. examples/Makefile builds it: the bindings compiled
//! by `zig cc -mcpu=mvp` (rustc 1.63's linker knows no later features), a
//! cdylib linked with the target's crt1-reactor.o and `--export=_initialize`
//! (without them the linker wraps every export as a command that re-runs
//! start-up), then `wasm-tools component new` with the preview-1 reactor
//! adapter.
//!
//! The types below are the bindings' C types as laid out on wasm32 (hello.h);
//! a resource handle is a struct of one i32, passed and returned as an i32.

use std::io::Write;

#[repr(C)]
struct Bytes {
    ptr: *mut u8,
    len: usize,
}

#[repr(C)]
struct Method {
    tag: u8,
    other: Bytes,
}

#[repr(C)]
struct StreamError {
    tag: u8,
    error: i32,
}

#[repr(C, align(8))]
struct ErrorCode([u8; 32]);

#[repr(C)]
struct ResponseResult {
    is_err: bool,
    val: ResponseVal,
}

#[repr(C, align(8))]
struct ResponseVal {
    ok: i32,
    rest: [u8; 28],
}

#[repr(C)]
struct Field {
    name: Bytes,
    value: Bytes,
}

#[repr(C)]
struct Fields {
    ptr: *mut Field,
    len: usize,
}

const STREAM_ERROR_LAST_OPERATION_FAILED: u8 = 0;

extern "C" {
    fn wasi_http_types_borrow_incoming_request(h: i32) -> i32;
    fn wasi_http_types_borrow_incoming_body(h: i32) -> i32;
    fn wasi_http_types_borrow_outgoing_response(h: i32) -> i32;
    fn wasi_http_types_borrow_outgoing_body(h: i32) -> i32;
    fn wasi_io_streams_borrow_input_stream(h: i32) -> i32;
    fn wasi_io_streams_borrow_output_stream(h: i32) -> i32;
    fn wasi_http_types_method_incoming_request_method(request: i32, ret: *mut Method);
    fn wasi_http_types_method_free(m: *mut Method);
    fn wasi_http_types_method_incoming_request_path_with_query(request: i32, ret: *mut Bytes) -> bool;
    fn hello_string_free(s: *mut Bytes);
    fn hello_list_u8_free(s: *mut Bytes);
    fn wasi_http_types_method_incoming_request_consume(request: i32, ret: *mut i32) -> bool;
    fn wasi_http_types_method_incoming_body_stream(body: i32, ret: *mut i32) -> bool;
    fn wasi_io_streams_method_input_stream_blocking_read(s: i32, len: u64, ret: *mut Bytes, err: *mut StreamError) -> bool;
    fn wasi_io_error_error_drop_own(h: i32);
    fn wasi_io_streams_input_stream_drop_own(h: i32);
    fn wasi_io_streams_output_stream_drop_own(h: i32);
    fn wasi_http_types_static_incoming_body_finish(body: i32) -> i32;
    fn wasi_http_types_future_trailers_drop_own(h: i32);
    fn wasi_http_types_incoming_request_drop_own(h: i32);
    fn wasi_http_types_static_fields_from_list(entries: *mut Fields, ret: *mut i32, err: *mut u8) -> bool;
    fn wasi_http_types_constructor_fields() -> i32;
    fn wasi_http_types_constructor_outgoing_response(headers: i32) -> i32;
    fn wasi_http_types_method_outgoing_response_body(response: i32, ret: *mut i32) -> bool;
    fn wasi_http_types_static_response_outparam_set(out: i32, response: *mut ResponseResult);
    fn wasi_http_types_method_outgoing_body_write(body: i32, ret: *mut i32) -> bool;
    fn wasi_io_streams_method_output_stream_blocking_write_and_flush(s: i32, contents: *mut Bytes, err: *mut StreamError) -> bool;
    fn wasi_http_types_static_outgoing_body_finish(body: i32, trailers: *mut i32, err: *mut ErrorCode) -> bool;
}

const METHODS: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];

/// The request's method, as its name.
unsafe fn method_name(request: i32, out: &mut Vec<u8>) {
    let mut m = Method { tag: 0, other: Bytes { ptr: std::ptr::null_mut(), len: 0 } };
    wasi_http_types_method_incoming_request_method(wasi_http_types_borrow_incoming_request(request), &mut m);
    match METHODS.get(m.tag as usize) {
        Some(name) => out.extend_from_slice(name.as_bytes()),
        None => out.extend_from_slice(std::slice::from_raw_parts(m.other.ptr, m.other.len)),
    }
    wasi_http_types_method_free(&mut m);
}

/// The request's path, without its query.
unsafe fn path(request: i32, out: &mut Vec<u8>) {
    let mut p = Bytes { ptr: std::ptr::null_mut(), len: 0 };
    if !wasi_http_types_method_incoming_request_path_with_query(wasi_http_types_borrow_incoming_request(request), &mut p) {
        out.push(b'/');
        return;
    }
    let full = std::slice::from_raw_parts(p.ptr, p.len);
    out.extend_from_slice(full.split(|&b| b == b'?').next().unwrap_or(b"/"));
    hello_string_free(&mut p);
}

/// Reads the request's body to its end and returns its length.
unsafe fn body_length(request: i32) -> usize {
    let mut body = 0;
    if !wasi_http_types_method_incoming_request_consume(wasi_http_types_borrow_incoming_request(request), &mut body) {
        return 0;
    }
    let mut total = 0;
    let mut stream = 0;
    if wasi_http_types_method_incoming_body_stream(wasi_http_types_borrow_incoming_body(body), &mut stream) {
        loop {
            let mut chunk = Bytes { ptr: std::ptr::null_mut(), len: 0 };
            let mut err = StreamError { tag: 0, error: 0 };
            if !wasi_io_streams_method_input_stream_blocking_read(wasi_io_streams_borrow_input_stream(stream), 64 << 10, &mut chunk, &mut err) {
                if err.tag == STREAM_ERROR_LAST_OPERATION_FAILED {
                    wasi_io_error_error_drop_own(err.error);
                }
                break;
            }
            total += chunk.len;
            hello_list_u8_free(&mut chunk);
        }
        wasi_io_streams_input_stream_drop_own(stream);
    }
    wasi_http_types_future_trailers_drop_own(wasi_http_types_static_incoming_body_finish(body));
    total
}

#[no_mangle]
pub unsafe extern "C" fn exports_wasi_http_incoming_handler_handle(request: i32, response_out: i32) {
    let (mut method, mut p) = (Vec::with_capacity(16), Vec::with_capacity(256));
    method_name(request, &mut method);
    path(request, &mut p);
    let n = body_length(request);
    wasi_http_types_incoming_request_drop_own(request);
    let mut text = Vec::with_capacity(64 + p.len());
    let _ = write!(text, "hello from rust: {} {} {} bytes\n", String::from_utf8_lossy(&method), String::from_utf8_lossy(&p), n);

    let mut entry = Field {
        name: Bytes { ptr: b"content-type".as_ptr() as *mut u8, len: 12 },
        value: Bytes { ptr: b"text/plain".as_ptr() as *mut u8, len: 10 },
    };
    let mut entries = Fields { ptr: &mut entry, len: 1 };
    let (mut headers, mut herr) = (0, 0u8);
    if !wasi_http_types_static_fields_from_list(&mut entries, &mut headers, &mut herr) {
        headers = wasi_http_types_constructor_fields();
    }
    let response = wasi_http_types_constructor_outgoing_response(headers);
    let mut body = 0;
    wasi_http_types_method_outgoing_response_body(wasi_http_types_borrow_outgoing_response(response), &mut body);
    let mut result = ResponseResult { is_err: false, val: ResponseVal { ok: response, rest: [0; 28] } };
    wasi_http_types_static_response_outparam_set(response_out, &mut result);

    let mut out = 0;
    if wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(body), &mut out) {
        let mut contents = Bytes { ptr: text.as_mut_ptr(), len: text.len() };
        let mut err = StreamError { tag: 0, error: 0 };
        if !wasi_io_streams_method_output_stream_blocking_write_and_flush(wasi_io_streams_borrow_output_stream(out), &mut contents, &mut err)
            && err.tag == STREAM_ERROR_LAST_OPERATION_FAILED
        {
            wasi_io_error_error_drop_own(err.error);
        }
        wasi_io_streams_output_stream_drop_own(out);
    }
    let mut ferr = ErrorCode([0; 32]);
    wasi_http_types_static_outgoing_body_finish(body, std::ptr::null_mut(), &mut ferr);
}
