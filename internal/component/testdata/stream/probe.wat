;; The core module of stream.wasm, a wasi:http/proxy component that
;; streams: it sets a 200 response, writes "first" to its body (flushed),
;; waits 300 ms (monotonic-clock.subscribe-duration: 150 ms in
;; poll.poll, 150 ms in pollable.block), then writes "second" and finishes
;; the body. A client sees "first" before the wait is over.
(module
  (import "cm32p2|wasi:http/types@0.2" "[constructor]fields"
    (func $fields (result i32)))
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
  (import "cm32p2|wasi:io/streams@0.2" "[method]output-stream.blocking-write-and-flush"
    (func $put (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:io/streams@0.2" "output-stream_drop"
    (func $drop-stream (param i32)))
  (import "cm32p2|wasi:clocks/monotonic-clock@0.2" "subscribe-duration"
    (func $after (param i64) (result i32)))
  (import "cm32p2|wasi:io/poll@0.2" "[method]pollable.block"
    (func $block (param i32)))
  (import "cm32p2|wasi:io/poll@0.2" "poll"
    (func $poll (param i32 i32 i32)))
  (import "cm32p2|wasi:io/poll@0.2" "pollable_drop"
    (func $drop-pollable (param i32)))
  (memory (export "cm32p2_memory") 1)
  (data (i32.const 1024) "first\n")
  (data (i32.const 1040) "second\n")
  (global $heap (mut i32) (i32.const 4096))
  (func (export "cm32p2_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func (export "cm32p2|wasi:http/incoming-handler@0.2|handle") (param $request i32) (param $out i32)
    (local $resp i32) (local $body i32) (local $stream i32) (local $timer i32)
    (local.set $resp (call $response (call $fields)))
    ;; body and write: result<own …> at 32 (case) and 36 (handle)
    (call $body (local.get $resp) (i32.const 32))
    (local.set $body (i32.load (i32.const 36)))
    (call $write (local.get $body) (i32.const 32))
    (local.set $stream (i32.load (i32.const 36)))
    (call $set (local.get $out) (i32.const 0) (local.get $resp) (i32.const 0) (i64.const 0)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $put (local.get $stream) (i32.const 1024) (i32.const 6) (i32.const 64))
    ;; poll([timer]): the list (one handle) at 256, the result at 264
    (local.set $timer (call $after (i64.const 150000000)))
    (i32.store (i32.const 256) (local.get $timer))
    (call $poll (i32.const 256) (i32.const 1) (i32.const 264))
    (call $drop-pollable (local.get $timer))
    (local.set $timer (call $after (i64.const 150000000)))
    (call $block (local.get $timer))
    (call $drop-pollable (local.get $timer))
    (call $put (local.get $stream) (i32.const 1040) (i32.const 7) (i32.const 64))
    (call $drop-stream (local.get $stream))
    (call $finish (local.get $body) (i32.const 0) (i32.const 0) (i32.const 128)))
)
