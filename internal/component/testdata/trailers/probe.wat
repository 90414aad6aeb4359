;; The core module of trailers.wasm, a wasi:http/proxy component that
;; answers 200 with no body and the request's trailers as its own: it
;; consumes the request's body, finishes it, gets its trailers from the
;; future-trailers, and finishes its response body with them (none when
;; the request had none).
(module
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-request.consume"
    (func $consume (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[static]incoming-body.finish"
    (func $finish-in (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]future-trailers.get"
    (func $get (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[constructor]fields"
    (func $fields (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[constructor]outgoing-response"
    (func $response (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-response.body"
    (func $body (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[static]response-outparam.set"
    (func $set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[static]outgoing-body.finish"
    (func $finish-out (param i32 i32 i32 i32)))
  (memory (export "cm32p2_memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (func (export "cm32p2_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func (export "cm32p2|wasi:http/incoming-handler@0.2|handle") (param $request i32) (param $out i32)
    (local $resp i32) (local $outbody i32) (local $has i32) (local $trailers i32)
    ;; consume: result<own incoming-body> at 0 (case at 0, handle at 4)
    (call $consume (local.get $request) (i32.const 0))
    ;; get: option<result<result<option<own trailers>, error-code>>> at 64:
    ;; the option's case at 64, the results' at 72 and 80, the inner
    ;; option's at 88 and its handle at 92
    (call $get (call $finish-in (i32.load (i32.const 4))) (i32.const 64))
    (if (i32.and (i32.eq (i32.load8_u (i32.const 64)) (i32.const 1))
                 (i32.and (i32.eqz (i32.load8_u (i32.const 72))) (i32.eqz (i32.load8_u (i32.const 80)))))
      (then
        (local.set $has (i32.load8_u (i32.const 88)))
        (local.set $trailers (i32.load (i32.const 92)))))
    (local.set $resp (call $response (call $fields)))
    ;; body: result<own outgoing-body> at 32
    (call $body (local.get $resp) (i32.const 32))
    (local.set $outbody (i32.load (i32.const 36)))
    (call $set (local.get $out) (i32.const 0) (local.get $resp) (i32.const 0) (i64.const 0)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $finish-out (local.get $outbody) (local.get $has) (local.get $trailers) (i32.const 128)))
)
