// Build (from this directory):
//   /usr/bin/rustc --target wasm32-wasi -C opt-level=s -C strip=symbols -C link-arg=-zstack-size=65536 -o frontend.wasm main.rs
//
// frontend: a wasmesh guest that calls another service through the host's
// http_call (see wasmesh.rs) and shows what it got, with the trace context
// it runs under. Env USERS_URL (if unset or empty: "wasmesh://users") is the
// target; this request's PATH_INFO and QUERY_STRING are appended to it.
use std::env;
use std::io::{self, Write};

mod wasmesh;

fn main() {
    let target = match env::var("USERS_URL") {
        Ok(t) if !t.is_empty() => t,
        _ => "wasmesh://users".to_string(),
    };
    let path = env::var("PATH_INFO").unwrap_or_default();
    let query = env::var("QUERY_STRING").unwrap_or_default();
    let mut url = target + &path;
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query);
    }

    let _ = wasmesh::log(wasmesh::INFO, &format!("frontend rust calling {}", url));
    let (tp, _) = wasmesh::trace_context();

    let mut out = Vec::new();
    match wasmesh::http_call("GET", &url, &[("X-From", "frontend-rust")], &[]) {
        Ok(r) => {
            out.extend_from_slice(b"Content-Type: text/plain\n\n");
            let version = r.header("X-Wasmesh-Version").unwrap_or("-").to_string();
            out.extend_from_slice(format!("frontend rust (traceparent {}) -> {} {} ", tp, r.status, version).as_bytes());
            out.extend_from_slice(&r.body);
            if !r.body.ends_with(b"\n") {
                out.push(b'\n');
            }
        }
        Err(e) => {
            out.extend_from_slice(b"Status: 502\nContent-Type: text/plain\n\n");
            out.extend_from_slice(format!("frontend rust: http_call failed: {}\n", e).as_bytes());
        }
    }
    let stdout = io::stdout();
    let mut lock = stdout.lock();
    let _ = lock.write_all(&out);
    let _ = lock.flush();
}
