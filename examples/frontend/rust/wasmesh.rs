//! wasmesh host functions (import module "wasmesh") for Rust guests.
//!
//! Dependency-free; copy this file next to main.rs and add `mod wasmesh;`.
//! All imports take and return i32; pointers are offsets into this module's
//! linear memory and u32 values written by the host are little-endian (which
//! is wasm's byte order, so `*mut u32` is the right type).
//!
//!   trace_context() -> (traceparent, tracestate)    both "" outside a request
//!   log(level, msg)                                 DEBUG/INFO/WARN/ERROR
//!   http_call(method, url, headers, body) -> Result<Response, Error>
#![allow(dead_code)]

use std::fmt;

mod sys {
    #[link(wasm_import_module = "wasmesh")]
    extern "C" {
        pub fn trace_context(buf: *mut u8, cap: u32, len_out: *mut u32) -> i32;
        pub fn log(level: i32, msg: *const u8, msg_len: u32) -> i32;
        pub fn http_call(
            req: *const u8,
            req_len: u32,
            resp: *mut u8,
            resp_cap: u32,
            resp_len_out: *mut u32,
        ) -> i32;
    }
}

/// Log levels for [`log`].
pub const DEBUG: i32 = 0;
pub const INFO: i32 = 1;
pub const WARN: i32 = 2;
pub const ERROR: i32 = 3;

/// The largest response [`http_call`] accepts (the host answers TOO_SMALL
/// beyond it, and discards the response).
pub const MAX_RESPONSE: usize = 1 << 20;

/// A non-zero return code of a host function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error(pub i32);

impl Error {
    pub const TOO_SMALL: Error = Error(1);
    pub const DENIED: Error = Error(2);
    pub const INVALID: Error = Error(3);
    pub const UNAVAILABLE: Error = Error(4);
    pub const TIMEOUT: Error = Error(5);
    pub const INTERNAL: Error = Error(6);

    /// The code's name, e.g. "DENIED"; "UNKNOWN" for a code this file does not know.
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "TOO_SMALL",
            2 => "DENIED",
            3 => "INVALID",
            4 => "UNAVAILABLE",
            5 => "TIMEOUT",
            6 => "INTERNAL",
            _ => "UNKNOWN",
        }
    }

    /// The code itself.
    pub fn code(self) -> i32 {
        self.0
    }
}

impl fmt::Display for Error {
    /// "DENIED (2)"
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

impl std::error::Error for Error {}

/// The current request's W3C trace context: (traceparent, tracestate).
/// Both are empty outside a request (e.g. when run from the CLI).
pub fn trace_context() -> (String, String) {
    let mut lines = trace_lines().into_iter();
    (lines.next().unwrap_or_default(), lines.next().unwrap_or_default())
}

/// The W3C baggage the host sends with this request's calls, "" for none.
/// Its member wasmesh-lane is the request's traffic lane.
pub fn baggage() -> String {
    trace_lines().into_iter().nth(2).unwrap_or_default()
}

/// trace_context's output: traceparent, tracestate and, when the request
/// has any, its baggage, one per line.
fn trace_lines() -> Vec<String> {
    // traceparent is 55 bytes; tracestate is at most 512 by the W3C spec, but
    // retry with whatever size the host asks for.
    let mut buf = vec![0u8; 256];
    loop {
        let mut len: u32 = 0;
        let rc = unsafe { sys::trace_context(buf.as_mut_ptr(), buf.len() as u32, &mut len) };
        match rc {
            0 => {
                let len = (len as usize).min(buf.len());
                let s = String::from_utf8_lossy(&buf[..len]);
                return s.splitn(3, '\n').map(|l| l.to_string()).collect();
            }
            1 if (len as usize) > buf.len() => buf.resize(len as usize, 0),
            _ => return Vec::new(),
        }
    }
}

/// Logs msg at level (DEBUG, INFO, WARN or ERROR). The host adds service,
/// version, request id and trace id.
pub fn log(level: i32, msg: &str) -> Result<(), Error> {
    match unsafe { sys::log(level, msg.as_ptr(), msg.len() as u32) } {
        0 => Ok(()),
        c => Err(Error(c)),
    }
}

/// An HTTP response; any status, 4xx and 5xx included.
#[derive(Clone, Debug, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Makes an HTTP request through the host. url is "wasmesh://SERVICE/path?query"
/// (another service of this gateway) or "http://..."/"https://..." (subject to
/// the service's outbound allow-list). The host adds traceparent/tracestate.
///
/// Err(INVALID) without calling the host if method, url or a header contains
/// CR or LF (it would end the line early) or a header name contains ':'.
pub fn http_call(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, Error> {
    let bad = |s: &str| s.bytes().any(|b| b == b'\n' || b == b'\r');
    if method.is_empty() || bad(method) || method.contains(' ') || url.is_empty() || bad(url) {
        return Err(Error::INVALID);
    }
    let mut req = Vec::with_capacity(method.len() + url.len() + 3 + body.len());
    req.extend_from_slice(method.as_bytes());
    req.push(b' ');
    req.extend_from_slice(url.as_bytes());
    req.push(b'\n');
    for (k, v) in headers {
        if k.is_empty() || bad(k) || k.contains(':') || bad(v) {
            return Err(Error::INVALID);
        }
        req.extend_from_slice(k.as_bytes());
        req.extend_from_slice(b": ");
        req.extend_from_slice(v.as_bytes());
        req.push(b'\n');
    }
    req.push(b'\n');
    req.extend_from_slice(body);

    // Reserved, not zeroed: the host writes only the bytes of the response,
    // so a small response touches (and costs) only a few pages.
    let mut resp: Vec<u8> = Vec::with_capacity(MAX_RESPONSE);
    let mut len: u32 = 0;
    let rc = unsafe {
        sys::http_call(
            req.as_ptr(),
            req.len() as u32,
            resp.as_mut_ptr(),
            MAX_RESPONSE as u32,
            &mut len,
        )
    };
    if rc != 0 {
        return Err(Error(rc));
    }
    // Safe: on success the host initialised exactly len <= MAX_RESPONSE bytes.
    unsafe { resp.set_len((len as usize).min(MAX_RESPONSE)) };
    parse_response(resp).ok_or(Error::INTERNAL)
}

/// "<STATUS>\n" (3 digits), "Name: value\n"..., "\n", body.
fn parse_response(mut resp: Vec<u8>) -> Option<Response> {
    let mut pos = 0;
    let line = |pos: &mut usize, resp: &[u8]| -> Option<(usize, usize)> {
        let start = *pos;
        let n = resp[start..].iter().position(|&b| b == b'\n')?;
        *pos = start + n + 1;
        Some((start, start + n))
    };
    let (s, e) = line(&mut pos, &resp)?;
    let st = &resp[s..e];
    if st.len() != 3 || !st.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let status = st.iter().fold(0u16, |a, &d| a * 10 + (d - b'0') as u16);
    let mut headers = Vec::new();
    loop {
        let (s, e) = line(&mut pos, &resp)?;
        if s == e {
            break;
        }
        let l = std::str::from_utf8(&resp[s..e]).ok()?;
        let (k, v) = l.split_once(':')?;
        headers.push((k.to_string(), v.trim_start_matches(|c| c == ' ' || c == '\t').to_string()));
    }
    let body = resp.split_off(pos);
    Some(Response { status, headers, body })
}
