// Build (from this directory):
//   /usr/bin/rustc --target wasm32-wasi -C opt-level=s -C strip=symbols -C link-arg=-zstack-size=65536 -o misbehave.wasm main.rs
//
// misbehave: a wasmesh test/demo guest that does one bad (or odd) thing on
// demand, so host and gateway tests can prove a bad guest only fails itself.
//
// The action is argv[1] (its argument argv[2]) when given on the command
// line, else it comes from QUERY_STRING as `do=<action>&arg=<value>`
// (values are %XX-decoded; nothing else is).
//
//   env               text body: every env var as K=V sorted by key, then body=<stdin>
//   echo              body = stdin, Content-Type = CONTENT_TYPE or application/octet-stream
//   status <code>     Status: <code>, body "status <code>"
//   redirect <url>    only a Location: <url> header
//   sleep <ms>        sleep, then body "slept <ms>"
//   trap              wasm `unreachable`
//   divzero [<d>]     integer division by d (default 0: an i32.div_u trap)
//   stack             unbounded recursion until the stack runs out
//   loop              spin forever
//   oom               leak 1 MiB Vecs forever (Rust aborts when allocation fails)
//   garbage           output that is not a CGI response
//   big <n>           n bytes of 'x' as body, in 64 KiB writes
//   write <path>      fs::write(path, "data"): "ok", or Status 500 + exit code 1
//   read <path>       the file as body, or Status 500 + exit code 1
//   exit <code>       exit with that code (default 1), printing nothing
//   stderr <n>        n bytes to stderr, then a normal body
//   secret <s>        store "SECRET-<s>" in a static and bump a static counter
//   peek              show the static and the counter (a fresh instance: empty, 0)
//
// std only; no Cargo. Rust 1.63: no std::hint::black_box, so volatile
// accesses keep the optimiser from deleting the loops and recursion.
use std::env;
use std::io::{self, Read, Write};
use std::num::NonZeroU32;
use std::process;
use std::ptr;

const CHUNK: usize = 64 * 1024;

static mut SECRET: [u8; 64] = [0; 64];
static mut SECRET_LEN: usize = 0;
static mut COUNTER: u32 = 0;
static mut SINK: u64 = 0;

fn main() {
    let args: Vec<String> = env::args().collect();
    let (action, arg) = if args.len() > 1 {
        (args[1].clone(), args.get(2).cloned().unwrap_or_default())
    } else {
        parse_query(&env::var("QUERY_STRING").unwrap_or_default())
    };

    match action.as_str() {
        "env" => do_env(),
        "echo" => {
            let body = read_stdin();
            let ct = env::var("CONTENT_TYPE").unwrap_or_default();
            let ct = if ct.is_empty() { "application/octet-stream".to_string() } else { ct };
            respond(None, &ct, &body);
        }
        "status" => {
            let code = if arg.is_empty() { "500".to_string() } else { arg };
            respond(Some(&code), "text/plain", format!("status {}\n", code).as_bytes());
        }
        "redirect" => out(format!("Location: {}\n\n", arg).as_bytes()),
        "sleep" => {
            let ms: u64 = arg.trim().parse().unwrap_or(0);
            std::thread::sleep(std::time::Duration::from_millis(ms));
            text(&format!("slept {}\n", ms));
        }
        "trap" => core::arch::wasm32::unreachable(),
        "divzero" => {
            let d: u32 = arg.trim().parse().unwrap_or(0);
            // Plain `/` would be checked and panic; dividing by NonZeroU32
            // emits a bare i32.div_u, which traps on 0 ("integer divide by
            // zero"). The volatile read stops LLVM from reasoning backwards
            // from "d != 0" into the parse above.
            let d = unsafe { ptr::read_volatile(&d) };
            let q = 1000u32 / unsafe { NonZeroU32::new_unchecked(d) };
            text(&format!("1000/{} = {}\n", d, q));
        }
        "stack" => {
            let depth = recurse(0);
            text(&format!("recursed {}\n", depth));
        }
        "loop" => loop {
            unsafe { ptr::write_volatile(&mut SINK, ptr::read_volatile(&SINK).wrapping_add(1)) }
        },
        "oom" => loop {
            let mut v: Vec<u8> = Vec::with_capacity(1 << 20);
            v.resize(1 << 20, 1);
            // Touch every page so the memory is really used, then leak it.
            for i in (0..v.len()).step_by(4096) {
                unsafe { ptr::write_volatile(&mut v[i], 2) }
            }
            std::mem::forget(v);
        },
        "garbage" => out(b"\x00\x01 not a header line without colon\n"),
        "big" => {
            let n: u64 = arg.trim().parse().unwrap_or(0);
            let stdout = io::stdout();
            let mut w = stdout.lock();
            let _ = w.write_all(b"Content-Type: text/plain\n\n");
            let chunk = vec![b'x'; CHUNK];
            let mut left = n;
            while left > 0 {
                let k = left.min(CHUNK as u64) as usize;
                if w.write_all(&chunk[..k]).is_err() {
                    break;
                }
                left -= k as u64;
            }
            let _ = w.flush();
        }
        "write" => match std::fs::write(&arg, "data") {
            Ok(()) => text("ok\n"),
            Err(e) => fail(&e),
        },
        "read" => match std::fs::read(&arg) {
            Ok(data) => respond(None, "text/plain", &data),
            Err(e) => fail(&e),
        },
        "exit" => process::exit(arg.trim().parse().unwrap_or(1)),
        "stderr" => {
            let n: u64 = arg.trim().parse().unwrap_or(0);
            let chunk = vec![b'e'; CHUNK];
            let stderr = io::stderr();
            let mut w = stderr.lock();
            let mut left = n;
            while left > 0 {
                let k = left.min(CHUNK as u64) as usize;
                if w.write_all(&chunk[..k]).is_err() {
                    break;
                }
                left -= k as u64;
            }
            drop(w);
            text(&format!("wrote {} bytes to stderr\n", n));
        }
        "secret" => unsafe {
            let s = format!("SECRET-{}", arg);
            let n = s.len().min(SECRET.len());
            SECRET[..n].copy_from_slice(&s.as_bytes()[..n]);
            SECRET_LEN = n;
            COUNTER += 1;
            show_secret();
        },
        "peek" => show_secret(),
        other => text(&format!("misbehave: unknown action {}\n", other)),
    }
}

fn parse_query(q: &str) -> (String, String) {
    let (mut action, mut arg) = (String::new(), String::new());
    for pair in q.split('&') {
        let (k, v) = match pair.find('=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, ""),
        };
        match k {
            "do" => action = percent_decode(v),
            "arg" => arg = percent_decode(v),
            _ => {}
        }
    }
    (action, arg)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn read_stdin() -> Vec<u8> {
    let mut body = Vec::new();
    let _ = io::stdin().read_to_end(&mut body);
    body
}

fn out(bytes: &[u8]) {
    let stdout = io::stdout();
    let mut w = stdout.lock();
    let _ = w.write_all(bytes);
    let _ = w.flush();
}

fn respond(status: Option<&str>, content_type: &str, body: &[u8]) {
    let mut r = Vec::with_capacity(body.len() + 64);
    if let Some(code) = status {
        r.extend_from_slice(format!("Status: {}\n", code).as_bytes());
    }
    r.extend_from_slice(format!("Content-Type: {}\n\n", content_type).as_bytes());
    r.extend_from_slice(body);
    out(&r);
}

fn text(body: &str) {
    respond(None, "text/plain", body.as_bytes());
}

fn fail(e: &io::Error) -> ! {
    respond(Some("500"), "text/plain", format!("error: {}\n", e).as_bytes());
    process::exit(1);
}

fn do_env() {
    let mut vars: Vec<(String, String)> = env::vars_os()
        .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()))
        .collect();
    vars.sort();
    let mut body = String::new();
    for (k, v) in &vars {
        body.push_str(k);
        body.push('=');
        body.push_str(v);
        body.push('\n');
    }
    body.push_str("body=");
    body.push_str(&String::from_utf8_lossy(&read_stdin()));
    body.push('\n');
    text(&body);
}

fn show_secret() {
    let (s, n) = unsafe { (String::from_utf8_lossy(&SECRET[..SECRET_LEN]).into_owned(), COUNTER) };
    text(&format!("secret={}\ncounter={}\n", s, n));
}

// Not a tail call (the volatile read comes after), and each frame holds a
// buffer the optimiser can't drop, so this really eats the 64 KiB stack.
#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 256];
    unsafe { ptr::write_volatile(&mut frame[(depth % 256) as usize], depth as u8) };
    let deeper = recurse(depth + 1);
    deeper + unsafe { ptr::read_volatile(&frame[(depth % 256) as usize]) } as u64
}
