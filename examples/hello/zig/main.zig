// Build (from this directory), Zig 0.13:
//   python3 -m ziglang build-exe main.zig -target wasm32-wasi -O ReleaseSmall --stack 65536 -femit-bin=hello.wasm
//
// A wasmesh guest: the request arrives CGI-style (RFC 3875) as environment
// variables plus the body on stdin; the response is CGI headers, a blank
// line and the body on stdout.
const std = @import("std");

// Small requests are served from a fixed buffer, larger ones from pages.
// page_allocator grows the memory on every allocation, whatever the memory
// already has; a run that grows memory costs the gateway a new instance for
// the next request (docs/abi.md, "Reused instances"), so the common case
// should not.
// (undefined, so the buffer is zeroed memory, not a 64 KiB data segment).
var small: std.heap.StackFallbackAllocator(64 << 10) = undefined;

pub fn main() !void {
    small.fallback_allocator = std.heap.page_allocator;
    var arena = std.heap.ArenaAllocator.init(small.get());
    defer arena.deinit();
    const allocator = arena.allocator();

    // On WASI the environment is only reachable through an allocated map.
    var env = try std.process.getEnvMap(allocator);
    const method = env.get("REQUEST_METHOD") orelse "";
    const path = env.get("PATH_INFO") orelse "";
    _ = env.get("QUERY_STRING");

    const body = try std.io.getStdIn().readToEndAlloc(allocator, std.math.maxInt(usize));

    var out = std.io.bufferedWriter(std.io.getStdOut().writer());
    try out.writer().print("Content-Type: text/plain\n\nhello from zig: {s} {s} {d} bytes\n", .{ method, path, body.len });
    try out.flush();
}
