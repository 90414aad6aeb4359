// The echoer: a component of world echoer in wit-types/types.wit,
// exporting example:types/echo@0.1.0 through wit-bindgen's C bindings of
// that world (generated into build/echoer by the Makefile, not committed),
// imported with @cImport as examples/links/zig/hasher.zig does. Each
// function returns a copy of its argument(s); with echo-client.c it checks
// that a typed link carries every WIT value type intact both ways.
//
// The canonical ABI's ownership: an export's arguments are the callee's
// (allocated with the bindings' cabi_realloc, that is realloc), so each
// function frees them with the bindings' *_free helpers once copied; what
// it returns is freed by the bindings' post-return with free(), so each
// copy is allocated with libc's malloc. Freeing the host's allocations and
// returning fresh ones exercises both sides of that contract.
//
// The Makefile builds it: `zig build-exe` as a preview-1 reactor with the
// bindings' C, then `wasm-tools component new` with the preview-1 reactor
// adapter.
const std = @import("std");
const c = @cImport(@cInclude("echoer.h"));

const String = c.echoer_string_t;
const Point = c.exports_example_types_echo_point_t;
const Points = c.exports_example_types_echo_list_point_t;
const Mixed = c.exports_example_types_echo_mixed_t;
const Shape = c.exports_example_types_echo_shape_t;

/// A malloc'd copy of the len elements at ptr, trapping when there is no
/// memory left; null for none (the post-return frees only when len > 0).
fn dup(comptime T: type, ptr: [*c]T, len: usize) [*c]T {
    if (len == 0) return null;
    const raw = std.c.malloc(len * @sizeOf(T)) orelse @trap();
    const out: [*]T = @ptrCast(@alignCast(raw));
    @memcpy(out[0..len], ptr[0..len]);
    return out;
}

fn dupString(s: String) String {
    return .{ .ptr = dup(u8, s.ptr, s.len), .len = s.len };
}

fn dupPoints(l: Points) Points {
    return .{ .ptr = dup(Point, l.ptr, l.len), .len = l.len };
}

fn dupMixed(m: Mixed) Mixed {
    return .{
        .flag = m.flag,
        .small = m.small,
        .name = dupString(m.name),
        .pts = dupPoints(m.pts),
        .maybe = m.maybe,
    };
}

// Scalars: passed and returned by value, nothing owned.

export fn exports_example_types_echo_echo_bool(x: bool) bool {
    return x;
}
export fn exports_example_types_echo_echo_s8(x: i8) i8 {
    return x;
}
export fn exports_example_types_echo_echo_u8(x: u8) u8 {
    return x;
}
export fn exports_example_types_echo_echo_s16(x: i16) i16 {
    return x;
}
export fn exports_example_types_echo_echo_u16(x: u16) u16 {
    return x;
}
export fn exports_example_types_echo_echo_s32(x: i32) i32 {
    return x;
}
export fn exports_example_types_echo_echo_u32(x: u32) u32 {
    return x;
}
export fn exports_example_types_echo_echo_s64(x: i64) i64 {
    return x;
}
export fn exports_example_types_echo_echo_u64(x: u64) u64 {
    return x;
}
export fn exports_example_types_echo_echo_f32(x: f32) f32 {
    return x;
}
export fn exports_example_types_echo_echo_f64(x: f64) f64 {
    return x;
}
export fn exports_example_types_echo_echo_char(x: u32) u32 {
    return x;
}
export fn exports_example_types_echo_echo_colour(x: c.exports_example_types_echo_colour_t) c.exports_example_types_echo_colour_t {
    return x;
}
export fn exports_example_types_echo_echo_style(x: c.exports_example_types_echo_style_t) c.exports_example_types_echo_style_t {
    return x;
}
export fn exports_example_types_echo_echo_point(x: *Point, ret: *Point) void {
    ret.* = x.*;
}

// Owned arguments: copied, then freed.

export fn exports_example_types_echo_echo_string(x: *String, ret: *String) void {
    defer c.echoer_string_free(x);
    ret.* = dupString(x.*);
}

export fn exports_example_types_echo_echo_bytes(x: *c.echoer_list_u8_t, ret: *c.echoer_list_u8_t) void {
    defer c.echoer_list_u8_free(x);
    ret.* = .{ .ptr = dup(u8, x.ptr, x.len), .len = x.len };
}

export fn exports_example_types_echo_echo_strings(x: *c.echoer_list_string_t, ret: *c.echoer_list_string_t) void {
    defer c.echoer_list_string_free(x);
    const out = dup(String, x.ptr, x.len);
    for (0..x.len) |i| out[i] = dupString(x.ptr[i]);
    ret.* = .{ .ptr = out, .len = x.len };
}

export fn exports_example_types_echo_echo_mixed(x: *Mixed, ret: *Mixed) void {
    defer c.exports_example_types_echo_mixed_free(x);
    ret.* = dupMixed(x.*);
}

export fn exports_example_types_echo_echo_tuple(x: *c.echoer_tuple3_u8_string_f64_t, ret: *c.echoer_tuple3_u8_string_f64_t) void {
    defer c.echoer_tuple3_u8_string_f64_free(x);
    ret.* = .{ .f0 = x.f0, .f1 = dupString(x.f1), .f2 = x.f2 };
}

export fn exports_example_types_echo_echo_shape(x: *Shape, ret: *Shape) void {
    defer c.exports_example_types_echo_shape_free(x);
    ret.* = x.*;
    if (x.tag == c.EXPORTS_EXAMPLE_TYPES_ECHO_SHAPE_POLYGON) {
        ret.val.polygon = dupPoints(x.val.polygon);
    }
}

/// option<string>: the argument is null for none; true returns some(*ret).
export fn exports_example_types_echo_echo_option(maybe_x: ?*String, ret: *String) bool {
    const x = maybe_x orelse return false;
    defer c.echoer_string_free(x);
    ret.* = dupString(x.*);
    return true;
}

/// result<u32, string>: true returns ok(*ret), false err(*err).
export fn exports_example_types_echo_echo_result(x: *c.exports_example_types_echo_result_u32_string_t, ret: *u32, err: *String) bool {
    defer c.exports_example_types_echo_result_u32_string_free(x);
    if (x.is_err) {
        err.* = dupString(x.val.err);
        return false;
    }
    ret.* = x.val.ok;
    return true;
}

export fn exports_example_types_echo_echo_many(
    a: u8,
    b: *String,
    cs: *c.echoer_list_u16_t,
    maybe_d: ?*Point,
    e: f32,
    f: u64,
    g: u32,
    ret: *c.exports_example_types_echo_tuple7_u8_string_list_u16_option_point_f32_u64_char32_t,
) void {
    defer c.echoer_string_free(b);
    defer c.echoer_list_u16_free(cs);
    ret.* = .{
        .f0 = a,
        .f1 = dupString(b.*),
        .f2 = .{ .ptr = dup(u16, cs.ptr, cs.len), .len = cs.len },
        .f3 = if (maybe_d) |d| .{ .is_some = true, .val = d.* } else .{ .is_some = false, .val = .{ .x = 0, .y = 0 } },
        .f4 = e,
        .f5 = f,
        .f6 = g,
    };
}

export fn exports_example_types_echo_echo_spill(a: *Mixed, b: *Mixed, p: *Point, ret: *c.exports_example_types_echo_tuple3_mixed_mixed_point_t) void {
    defer c.exports_example_types_echo_mixed_free(a);
    defer c.exports_example_types_echo_mixed_free(b);
    ret.* = .{ .f0 = dupMixed(a.*), .f1 = dupMixed(b.*), .f2 = p.* };
}
