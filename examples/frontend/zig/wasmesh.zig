//! wasmesh host functions (import module "wasmesh") for Zig guests (Zig 0.13).
//!
//! Dependency-free beyond std; copy this file next to main.zig and
//! `const wasmesh = @import("wasmesh.zig");`. All imports take and return
//! i32; pointers are offsets into this module's linear memory and u32
//! values written by the host are little-endian (wasm's byte order).
//!
//!   traceContext(allocator) -> TraceContext    traceparent/tracestate, "" outside a request
//!   log(level, msg)                            .debug/.info/.warn/.err
//!   httpCall(allocator, method, url, headers, body) -> Response
const std = @import("std");

const sys = struct {
    extern "wasmesh" fn trace_context(buf: [*]u8, cap: u32, len_out: *u32) i32;
    extern "wasmesh" fn log(level: i32, msg: [*]const u8, msg_len: u32) i32;
    extern "wasmesh" fn http_call(req: [*]const u8, req_len: u32, resp: [*]u8, resp_cap: u32, resp_len_out: *u32) i32;
};

/// The non-zero return codes of the host functions, as Zig errors.
pub const HostError = error{
    TooSmall, // 1
    Denied, // 2
    Invalid, // 3
    Unavailable, // 4
    Timeout, // 5
    Internal, // 6
    Unknown, // any other code (not in the ABI)
};

pub const Error = HostError || std.mem.Allocator.Error;

/// The HostError for a non-zero return code.
pub fn errorFromCode(code: i32) HostError {
    return switch (code) {
        1 => error.TooSmall,
        2 => error.Denied,
        3 => error.Invalid,
        4 => error.Unavailable,
        5 => error.Timeout,
        6 => error.Internal,
        else => error.Unknown,
    };
}

/// The ABI's return code for err (-1 for Unknown or OutOfMemory).
pub fn errorCode(err: Error) i32 {
    return switch (err) {
        error.TooSmall => 1,
        error.Denied => 2,
        error.Invalid => 3,
        error.Unavailable => 4,
        error.Timeout => 5,
        error.Internal => 6,
        error.Unknown, error.OutOfMemory => -1,
    };
}

/// The ABI's name for err: "TOO_SMALL", "DENIED", ...
pub fn errorName(err: Error) []const u8 {
    return switch (err) {
        error.TooSmall => "TOO_SMALL",
        error.Denied => "DENIED",
        error.Invalid => "INVALID",
        error.Unavailable => "UNAVAILABLE",
        error.Timeout => "TIMEOUT",
        error.Internal => "INTERNAL",
        error.Unknown => "UNKNOWN",
        error.OutOfMemory => "OUT_OF_MEMORY",
    };
}

pub const Level = enum(i32) { debug = 0, info = 1, warn = 2, err = 3 };

/// Logs msg; the host adds service, version, request id and trace id.
pub fn log(level: Level, msg: []const u8) HostError!void {
    const rc = sys.log(@intFromEnum(level), msg.ptr, @intCast(msg.len));
    if (rc != 0) return errorFromCode(rc);
}

/// The current request's W3C trace context. Both fields are empty outside a
/// request (e.g. when run from the CLI). Free with deinit.
pub const TraceContext = struct {
    traceparent: []const u8,
    tracestate: []const u8,
    /// The W3C baggage the host sends with this request's calls, "" for
    /// none; its member wasmesh-lane is the request's traffic lane.
    baggage: []const u8 = "",
    raw: []u8,

    pub fn deinit(self: TraceContext, allocator: std.mem.Allocator) void {
        allocator.free(self.raw);
    }
};

pub fn traceContext(allocator: std.mem.Allocator) Error!TraceContext {
    // traceparent is 55 bytes, tracestate at most 512 by the W3C spec; retry
    // with whatever size the host asks for.
    var buf = try allocator.alloc(u8, 256);
    errdefer allocator.free(buf);
    while (true) {
        var len: u32 = 0;
        const rc = sys.trace_context(buf.ptr, @intCast(buf.len), &len);
        if (rc == 1 and len > buf.len) {
            allocator.free(buf);
            buf = try allocator.alloc(u8, len);
            continue;
        }
        if (rc != 0) return errorFromCode(rc);
        const s = buf[0..@min(len, buf.len)];
        // traceparent, tracestate and, when the request has any, baggage,
        // one per line.
        var it = std.mem.splitScalar(u8, s, '\n');
        const tp = it.next() orelse "";
        const ts = it.next() orelse "";
        return .{ .traceparent = tp, .tracestate = ts, .baggage = it.rest(), .raw = buf };
    }
}

pub const Header = struct { name: []const u8, value: []const u8 };

/// An HTTP response (any status, 4xx and 5xx included). Headers and body
/// point into raw. Free with deinit.
pub const Response = struct {
    status: u16,
    headers: []Header,
    body: []const u8,
    raw: []u8,

    pub fn deinit(self: Response, allocator: std.mem.Allocator) void {
        allocator.free(self.headers);
        allocator.free(self.raw);
    }

    /// The first header named name (case-insensitive).
    pub fn header(self: Response, name: []const u8) ?[]const u8 {
        for (self.headers) |h| {
            if (std.ascii.eqlIgnoreCase(h.name, name)) return h.value;
        }
        return null;
    }
};

/// The largest response httpCall accepts (the host answers TOO_SMALL beyond
/// it, and discards the response).
pub const max_response = 1 << 20;

fn hasNewline(s: []const u8) bool {
    return std.mem.indexOfAny(u8, s, "\r\n") != null;
}

/// Makes an HTTP request through the host. url is "wasmesh://SERVICE/path?query"
/// (another service of this gateway) or "http://..."/"https://..." (subject to
/// the service's outbound allow-list). The host adds traceparent/tracestate.
///
/// error.Invalid without calling the host if method, url or a header contains
/// CR or LF (it would end the line early) or a header name contains ':'.
pub fn httpCall(
    allocator: std.mem.Allocator,
    method: []const u8,
    url: []const u8,
    headers: []const Header,
    body: []const u8,
) Error!Response {
    if (method.len == 0 or hasNewline(method) or std.mem.indexOfScalar(u8, method, ' ') != null or
        url.len == 0 or hasNewline(url)) return error.Invalid;

    var req = std.ArrayList(u8).init(allocator);
    defer req.deinit();
    try req.appendSlice(method);
    try req.append(' ');
    try req.appendSlice(url);
    try req.append('\n');
    for (headers) |h| {
        if (h.name.len == 0 or hasNewline(h.name) or std.mem.indexOfScalar(u8, h.name, ':') != null or
            hasNewline(h.value)) return error.Invalid;
        try req.appendSlice(h.name);
        try req.appendSlice(": ");
        try req.appendSlice(h.value);
        try req.append('\n');
    }
    try req.append('\n');
    try req.appendSlice(body);

    var buf = try allocator.alloc(u8, max_response);
    var len: u32 = 0;
    const rc = sys.http_call(req.items.ptr, @intCast(req.items.len), buf.ptr, @intCast(buf.len), &len);
    if (rc != 0) {
        allocator.free(buf);
        return errorFromCode(rc);
    }
    // Give back what the response does not use.
    const n = @min(len, buf.len);
    if (allocator.resize(buf, n)) {
        buf = buf[0..n];
    } else {
        const small = allocator.dupe(u8, buf[0..n]) catch buf[0..n];
        if (small.ptr != buf.ptr) allocator.free(buf);
        buf = small;
    }
    errdefer allocator.free(buf);
    return parseResponse(allocator, buf);
}

/// "<STATUS>\n" (3 digits), "Name: value\n"..., "\n", body.
fn parseResponse(allocator: std.mem.Allocator, raw: []u8) Error!Response {
    var rest: []const u8 = raw;
    const status_line = try nextLine(&rest);
    if (status_line.len != 3) return error.Internal;
    const status = std.fmt.parseUnsigned(u16, status_line, 10) catch return error.Internal;

    var headers = std.ArrayList(Header).init(allocator);
    errdefer headers.deinit();
    while (true) {
        const line = try nextLine(&rest);
        if (line.len == 0) break;
        const colon = std.mem.indexOfScalar(u8, line, ':') orelse return error.Internal;
        try headers.append(.{
            .name = line[0..colon],
            .value = std.mem.trimLeft(u8, line[colon + 1 ..], " \t"),
        });
    }
    return .{ .status = status, .headers = try headers.toOwnedSlice(), .body = rest, .raw = raw };
}

fn nextLine(rest: *[]const u8) HostError![]const u8 {
    const nl = std.mem.indexOfScalar(u8, rest.*, '\n') orelse return error.Internal;
    const line = rest.*[0..nl];
    rest.* = rest.*[nl + 1 ..];
    return line;
}
