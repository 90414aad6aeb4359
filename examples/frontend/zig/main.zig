// Build (from this directory), Zig 0.13:
//   python3 -m ziglang build-exe main.zig -target wasm32-wasi -O ReleaseSmall --stack 65536 -femit-bin=frontend.wasm
//
// frontend: a wasmesh guest that calls another service through the host's
// http_call (see wasmesh.zig) and shows what it got, with the trace context
// it runs under. Env USERS_URL (if unset or empty: "wasmesh://users") is the
// target; this request's PATH_INFO and QUERY_STRING are appended to it.
const std = @import("std");
const wasmesh = @import("wasmesh.zig");

pub fn main() !void {
    var arena = std.heap.ArenaAllocator.init(std.heap.page_allocator);
    defer arena.deinit();
    const allocator = arena.allocator();

    // On WASI the environment is only reachable through an allocated map.
    var env = try std.process.getEnvMap(allocator);
    var target = env.get("USERS_URL") orelse "";
    if (target.len == 0) target = "wasmesh://users";
    const path = env.get("PATH_INFO") orelse "";
    const query = env.get("QUERY_STRING") orelse "";
    const url = if (query.len > 0)
        try std.mem.concat(allocator, u8, &.{ target, path, "?", query })
    else
        try std.mem.concat(allocator, u8, &.{ target, path });

    wasmesh.log(.info, try std.fmt.allocPrint(allocator, "frontend zig calling {s}", .{url})) catch {};
    const tc = try wasmesh.traceContext(allocator);

    var out = std.io.bufferedWriter(std.io.getStdOut().writer());
    const w = out.writer();
    if (wasmesh.httpCall(allocator, "GET", url, &.{.{ .name = "X-From", .value = "frontend-zig" }}, "")) |r| {
        const version = r.header("X-Wasmesh-Version") orelse "-";
        try w.print("Content-Type: text/plain\n\nfrontend zig (traceparent {s}) -> {d} {s} ", .{ tc.traceparent, r.status, version });
        try w.writeAll(r.body);
        if (!std.mem.endsWith(u8, r.body, "\n")) try w.writeAll("\n");
    } else |err| {
        try w.print("Status: 502\nContent-Type: text/plain\n\nfrontend zig: http_call failed: {s} ({d})\n", .{ wasmesh.errorName(err), wasmesh.errorCode(err) });
    }
    try out.flush();
}
