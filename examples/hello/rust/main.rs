// Build (from this directory):
//   /usr/bin/rustc --target wasm32-wasi -C opt-level=s -C strip=symbols -C link-arg=-zstack-size=65536 -o hello.wasm main.rs
//
// A wasmesh guest: the request arrives CGI-style (RFC 3875) as environment
// variables plus the body on stdin; the response is CGI headers, a blank
// line and the body on stdout.
use std::env;
use std::io::{self, Read, Write};

fn main() {
    let method = env::var("REQUEST_METHOD").unwrap_or_default();
    let path = env::var("PATH_INFO").unwrap_or_default();
    let _query = env::var("QUERY_STRING").unwrap_or_default();

    let mut body = Vec::new();
    let _ = io::stdin().read_to_end(&mut body);

    let out = format!(
        "Content-Type: text/plain\n\nhello from rust: {} {} {} bytes\n",
        method,
        path,
        body.len()
    );
    let stdout = io::stdout();
    let mut lock = stdout.lock();
    let _ = lock.write_all(out.as_bytes());
    let _ = lock.flush();
}
