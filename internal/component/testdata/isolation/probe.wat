;; The core module of isolation.wasm, a wasi:http/proxy component that
;; reports in its status code what earlier requests left in its instance:
;;
;;   status = 200 + the count in memory + 10 * the count in a global
;;              + 100 * (the handle of a new fields - 3)
;;
;; Each request increments both counts. In an instance as instantiation
;; left it, every request answers 211: 1 in memory, 1 in the global, and the
;; new fields gets handle 3 (after the request's 1 and the outparam's 2).
;; By method: GET answers; POST traps after counting; PUT grows the memory
;; and answers; DELETE leaks a fields handle and answers; PATCH answers
;; with a response handle it does not have (99).
(module
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-request.method"
    (func $method (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[constructor]fields"
    (func $fields (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[constructor]outgoing-response"
    (func $response (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-response.set-status-code"
    (func $set-status (param i32 i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[static]response-outparam.set"
    (func $set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
  (memory (export "cm32p2_memory") 1)
  (global $count (mut i32) (i32.const 0))
  (global $heap (mut i32) (i32.const 4096))
  (func (export "cm32p2_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func (export "cm32p2|wasi:http/incoming-handler@0.2|handle") (param $request i32) (param $out i32)
    (local $m i32) (local $h i32) (local $resp i32)
    (i32.store (i32.const 1024) (i32.add (i32.load (i32.const 1024)) (i32.const 1)))
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (call $method (local.get $request) (i32.const 16))
    (local.set $m (i32.load8_u (i32.const 16)))
    (if (i32.eq (local.get $m) (i32.const 2)) (then unreachable))
    (if (i32.eq (local.get $m) (i32.const 3))
      (then (drop (memory.grow (i32.const 1)))))
    (local.set $h (call $fields))
    (if (i32.eq (local.get $m) (i32.const 4))
      (then (drop (call $fields))))
    (local.set $resp (call $response (local.get $h)))
    (drop (call $set-status (local.get $resp)
      (i32.add (i32.const 200)
        (i32.add (i32.load (i32.const 1024))
          (i32.add (i32.mul (global.get $count) (i32.const 10))
                   (i32.mul (i32.sub (local.get $h) (i32.const 3)) (i32.const 100)))))))
    (if (i32.eq (local.get $m) (i32.const 8))
      (then (local.set $resp (i32.const 99))))
    (call $set (local.get $out) (i32.const 0) (local.get $resp) (i32.const 0) (i64.const 0)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
)
