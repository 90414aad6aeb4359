;; The core module of echobody.wasm, a wasi:http/proxy component that
;; echoes its request's body as it reads it: it sets a 200 response, then
;; reads the body (blocking-read, 4 KiB at most) and writes each piece to
;; its own body (blocking-write-and-flush) until the body ends, and
;; finishes. Through the gateway, a client sees the first bytes it sent
;; come back before it has sent the rest.
(module
  (import "cm32p2|wasi:http/types@0.2" "[constructor]fields"
    (func $fields (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-request.consume"
    (func $consume (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-body.stream"
    (func $in-stream (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[constructor]outgoing-response"
    (func $response (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-response.body"
    (func $body (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-body.write"
    (func $write (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[static]response-outparam.set"
    (func $set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[static]outgoing-body.finish"
    (func $finish (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:io/streams@0.2" "[method]input-stream.blocking-read"
    (func $get (param i32 i64 i32)))
  (import "cm32p2|wasi:io/streams@0.2" "[method]output-stream.blocking-write-and-flush"
    (func $put (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:io/streams@0.2" "input-stream_drop"
    (func $drop-in (param i32)))
  (import "cm32p2|wasi:io/streams@0.2" "output-stream_drop"
    (func $drop-out (param i32)))
  (memory (export "cm32p2_memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  ;; A bump allocator, emptied before each read: what a read returned has
  ;; been written out by then.
  (func (export "cm32p2_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func (export "cm32p2|wasi:http/incoming-handler@0.2|handle") (param $request i32) (param $out i32)
    (local $resp i32) (local $body i32) (local $stream i32) (local $in i32)
    ;; result<own …> at 32 (case) and 36 (handle)
    (call $consume (local.get $request) (i32.const 32))
    (call $in-stream (i32.load (i32.const 36)) (i32.const 32))
    (local.set $in (i32.load (i32.const 36)))
    (local.set $resp (call $response (call $fields)))
    (call $body (local.get $resp) (i32.const 32))
    (local.set $body (i32.load (i32.const 36)))
    (call $write (local.get $body) (i32.const 32))
    (local.set $stream (i32.load (i32.const 36)))
    (call $set (local.get $out) (i32.const 0) (local.get $resp) (i32.const 0) (i64.const 0)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    ;; result<list<u8>, stream-error> at 64: case at 64, list at 68 (pointer) and 72 (length)
    (block $end
      (loop $next
        (global.set $heap (i32.const 4096))
        (call $get (local.get $in) (i64.const 4096) (i32.const 64))
        (br_if $end (i32.load8_u (i32.const 64))) ;; an error: closed, or the read failed
        (call $put (local.get $stream) (i32.load (i32.const 68)) (i32.load (i32.const 72)) (i32.const 96))
        (br $next)))
    (call $drop-in (local.get $in))
    (call $drop-out (local.get $stream))
    (call $finish (local.get $body) (i32.const 0) (i32.const 0) (i32.const 128)))
)
