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

    // The environment straight from WASI, looked up in place: getEnvMap
    // would copy every variable into a hash map (a request has a dozen or
    // more, one per header), which cost more than the rest of the run.
    const env = try environ(allocator);
    const method = getenv(env, "REQUEST_METHOD") orelse "";
    const path = getenv(env, "PATH_INFO") orelse "";

    const body = try std.io.getStdIn().readToEndAlloc(allocator, std.math.maxInt(usize));

    var out = std.io.bufferedWriter(std.io.getStdOut().writer());
    try out.writer().print("Content-Type: text/plain\n\nhello from zig: {s} {s} {d} bytes\n", .{ method, path, body.len });
    try out.flush();
}

fn environ(allocator: std.mem.Allocator) ![][*:0]u8 {
    const wasi = std.os.wasi;
    var count: usize = 0;
    var size: usize = 0;
    if (wasi.environ_sizes_get(&count, &size) != .SUCCESS) return error.Environ;
    const vars = try allocator.alloc([*:0]u8, count);
    const buf = try allocator.alloc(u8, size);
    if (wasi.environ_get(vars.ptr, buf.ptr) != .SUCCESS) return error.Environ;
    return vars;
}

fn getenv(env: []const [*:0]u8, name: []const u8) ?[]const u8 {
    for (env) |entry| {
        const kv = std.mem.span(entry);
        if (kv.len > name.len and kv[name.len] == '=' and std.mem.eql(u8, kv[0..name.len], name)) {
            return kv[name.len + 1 ..];
        }
    }
    return null;
}
