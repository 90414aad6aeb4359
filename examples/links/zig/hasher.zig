// The Zig hasher: a component of world hasher in ../wit, exporting
// example:crypto/hash@0.1.0 through wit-bindgen's C bindings of that world
// (generated into ../build/hasher by examples/Makefile, not committed),
// imported here with @cImport as components/zig/hello.zig does.
//
// The canonical ABI's ownership: an export's arguments are the callee's
// (allocated with the bindings' cabi_realloc, that is realloc), so each
// function frees its data; what it returns is freed by the bindings'
// post-return with free(), so it is allocated with libc's malloc.
//
// examples/Makefile builds it: `zig build-exe` as a preview-1 reactor with
// the bindings' C, then `wasm-tools component new` with the preview-1
// reactor adapter.
const std = @import("std");
const c = @cImport(@cInclude("hasher.h"));

/// malloc(n) from libc, trapping when there is no memory left; never for n == 0.
fn alloc(n: usize) [*]u8 {
    const p = std.c.malloc(n) orelse @trap();
    return @ptrCast(p);
}

export fn exports_example_crypto_hash_sha256(data: *c.hasher_list_u8_t, ret: *c.hasher_list_u8_t) void {
    defer c.hasher_list_u8_free(data);
    const in: []const u8 = if (data.len == 0) &.{} else data.ptr[0..data.len];
    const out = alloc(std.crypto.hash.sha2.Sha256.digest_length);
    std.crypto.hash.sha2.Sha256.hash(in, @ptrCast(out), .{});
    ret.* = .{ .ptr = out, .len = std.crypto.hash.sha2.Sha256.digest_length };
}

const digits = "0123456789abcdef";

export fn exports_example_crypto_hash_hex(data: *c.hasher_list_u8_t, ret: *c.hasher_string_t) void {
    defer c.hasher_list_u8_free(data);
    if (data.len == 0) {
        // The empty string: nothing allocated, so nothing for the
        // post-return to free (it frees only when len > 0).
        ret.* = .{ .ptr = null, .len = 0 };
        return;
    }
    const out = alloc(data.len * 2);
    for (data.ptr[0..data.len], 0..) |b, i| {
        out[2 * i] = digits[b >> 4];
        out[2 * i + 1] = digits[b & 0x0f];
    }
    ret.* = .{ .ptr = out, .len = data.len * 2 };
}
