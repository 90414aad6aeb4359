// wasmesh host functions (import module "wasmesh") for AssemblyScript guests.
//
// Dependency-free; copy this file next to index.ts and
// `import { ... } from "./wasmesh"`. All imports take and return i32;
// pointers are offsets into this module's linear memory and u32 values
// written by the host are little-endian (wasm's byte order).
//
//   traceContext(): TraceContext          traceparent/tracestate, "" outside a request
//   log(level, msg): i32                  DEBUG/INFO/WARN/ERROR
//   httpCall(method, url, headers, body): HttpResult
//
// AssemblyScript cannot catch exceptions, so failures are return codes.

@external("wasmesh", "trace_context")
declare function _trace_context(buf: usize, cap: u32, len_out: usize): i32;

@external("wasmesh", "log")
declare function _log(level: i32, msg: usize, msg_len: u32): i32;

@external("wasmesh", "http_call")
declare function _http_call(req: usize, req_len: u32, resp: usize, resp_cap: u32, resp_len_out: usize): i32;

// Return codes.
export const OK: i32 = 0;
export const TOO_SMALL: i32 = 1;
export const DENIED: i32 = 2;
export const INVALID: i32 = 3;
export const UNAVAILABLE: i32 = 4;
export const TIMEOUT: i32 = 5;
export const INTERNAL: i32 = 6;

/** The name of a return code: "OK", "TOO_SMALL", "DENIED", ...; "UNKNOWN" otherwise. */
export function errorName(code: i32): string {
  switch (code) {
    case OK: return "OK";
    case TOO_SMALL: return "TOO_SMALL";
    case DENIED: return "DENIED";
    case INVALID: return "INVALID";
    case UNAVAILABLE: return "UNAVAILABLE";
    case TIMEOUT: return "TIMEOUT";
    case INTERNAL: return "INTERNAL";
  }
  return "UNKNOWN";
}

// Log levels.
export const DEBUG: i32 = 0;
export const INFO: i32 = 1;
export const WARN: i32 = 2;
export const ERROR: i32 = 3;

/** Logs msg; the host adds service, version, request id and trace id. Returns OK or INVALID. */
export function log(level: i32, msg: string): i32 {
  const b = String.UTF8.encode(msg);
  return _log(level, changetype<usize>(b), <u32>b.byteLength);
}

/**
 * The current request's W3C trace context, both empty outside a request, and
 * the W3C baggage the host sends with its calls ("" for none; its member
 * wasmesh-lane is the request's traffic lane).
 */
export class TraceContext {
  constructor(public traceparent: string, public tracestate: string, public baggage: string = "") {}
}

export function traceContext(): TraceContext {
  // traceparent is 55 bytes, tracestate at most 512 by the W3C spec; retry
  // with whatever size the host asks for.
  let buf = new ArrayBuffer(256);
  const lenOut = new ArrayBuffer(4);
  while (true) {
    store<u32>(changetype<usize>(lenOut), 0);
    const rc = _trace_context(changetype<usize>(buf), <u32>buf.byteLength, changetype<usize>(lenOut));
    const len = load<u32>(changetype<usize>(lenOut));
    if (rc == TOO_SMALL && len > <u32>buf.byteLength) {
      buf = new ArrayBuffer(<i32>len);
      continue;
    }
    if (rc != OK) return new TraceContext("", "");
    const s = String.UTF8.decodeUnsafe(changetype<usize>(buf), min<usize>(len, buf.byteLength));
    // traceparent, tracestate and, when the request has any, baggage, one
    // per line.
    const nl = s.indexOf("\n");
    if (nl < 0) return new TraceContext(s, "");
    const nl2 = s.indexOf("\n", nl + 1);
    if (nl2 < 0) return new TraceContext(s.substring(0, nl), s.substring(nl + 1));
    return new TraceContext(s.substring(0, nl), s.substring(nl + 1, nl2), s.substring(nl2 + 1));
  }
}

export class Header {
  constructor(public name: string, public value: string) {}
}

/** An HTTP response; any status, 4xx and 5xx included. */
export class Response {
  constructor(public status: i32, public headers: Array<Header>, public body: Uint8Array) {}

  /** The first header named name (case-insensitive), or null. */
  header(name: string): string | null {
    const want = name.toLowerCase();
    for (let i = 0; i < this.headers.length; i++) {
      if (this.headers[i].name.toLowerCase() == want) return this.headers[i].value;
    }
    return null;
  }
}

/** httpCall's outcome: response when code is OK, else null. */
export class HttpResult {
  constructor(public code: i32, public response: Response | null) {}
  get ok(): bool { return this.code == OK; }
}

/** The largest response httpCall accepts (the host answers TOO_SMALL beyond it, and discards the response). */
export const MAX_RESPONSE: i32 = 1 << 20;

function hasNewline(s: string): bool {
  return s.includes("\n") || s.includes("\r");
}

/**
 * Makes an HTTP request through the host. url is "wasmesh://SERVICE/path?query"
 * (another service of this gateway) or "http://..."/"https://..." (subject to the
 * service's outbound allow-list). The host adds traceparent/tracestate.
 *
 * INVALID without calling the host if method, url or a header contains CR or LF
 * (it would end the line early) or a header name contains ':'.
 */
export function httpCall(method: string, url: string, headers: Array<Header>, body: Uint8Array | null = null): HttpResult {
  if (method.length == 0 || hasNewline(method) || method.includes(" ") || url.length == 0 || hasNewline(url)) {
    return new HttpResult(INVALID, null);
  }
  let head = method + " " + url + "\n";
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i];
    if (h.name.length == 0 || hasNewline(h.name) || h.name.includes(":") || hasNewline(h.value)) {
      return new HttpResult(INVALID, null);
    }
    head += h.name + ": " + h.value + "\n";
  }
  head += "\n";
  const headBytes = Uint8Array.wrap(String.UTF8.encode(head));
  const bodyLen = body ? body.length : 0;
  const req = new Uint8Array(headBytes.length + bodyLen);
  req.set(headBytes, 0);
  if (bodyLen > 0) req.set(body!, headBytes.length);

  // Unmanaged and not zeroed: the host writes only the response's bytes, so
  // a small response touches (and costs) only a few pages.
  const buf = heap.alloc(<usize>MAX_RESPONSE);
  const lenOut = new ArrayBuffer(4);
  const rc = _http_call(req.dataStart, <u32>req.length, buf, <u32>MAX_RESPONSE, changetype<usize>(lenOut));
  if (rc != OK) {
    heap.free(buf);
    return new HttpResult(rc, null);
  }
  const len = min<i32>(<i32>load<u32>(changetype<usize>(lenOut)), MAX_RESPONSE);
  const resp = new Uint8Array(len);
  memory.copy(resp.dataStart, buf, <usize>len);
  heap.free(buf);
  const r = parseResponse(resp);
  if (!r) return new HttpResult(INTERNAL, null);
  return new HttpResult(OK, r);
}

// "<STATUS>\n" (3 digits), "Name: value\n"..., "\n", body.
function parseResponse(raw: Uint8Array): Response | null {
  let pos = 0;
  let nl = raw.indexOf(0x0a, pos);
  if (nl != 3) return null;
  let status = 0;
  for (let i = 0; i < 3; i++) {
    const d = <i32>raw[i] - 0x30;
    if (d < 0 || d > 9) return null;
    status = status * 10 + d;
  }
  pos = 4;
  const headers = new Array<Header>();
  while (true) {
    nl = raw.indexOf(0x0a, pos);
    if (nl < 0) return null;
    if (nl == pos) { pos++; break; }
    const line = String.UTF8.decodeUnsafe(raw.dataStart + <usize>pos, <usize>(nl - pos));
    pos = nl + 1;
    const colon = line.indexOf(":");
    if (colon < 0) return null;
    let v = colon + 1;
    while (v < line.length && (line.charCodeAt(v) == 0x20 || line.charCodeAt(v) == 0x09)) v++;
    headers.push(new Header(line.substring(0, colon), line.substring(v)));
  }
  // Copy the body out so the 1 MiB buffer can be freed.
  return new Response(status, headers, raw.slice(pos));
}
