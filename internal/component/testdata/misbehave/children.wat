;; A wasi:http/proxy component whose handler finishes the request's body
;; while the body's stream still lives, which wasi:http forbids ("resource
;; has children"): the host traps, and the gateway answers 502.
(component
  (import "wasi:io/streams@0.2.0" (instance $streams
    (export "input-stream" (type (sub resource)))
  ))
  (alias export $streams "input-stream" (type $input-stream))
  (import "wasi:http/types@0.2.0" (instance $types
    (export "incoming-request" (type $request (sub resource)))
    (export "incoming-body" (type $body (sub resource)))
    (export "future-trailers" (type $trailers (sub resource)))
    (export "response-outparam" (type (sub resource)))
    (alias outer 1 $input-stream (type $is))
    (export "input-stream" (type $is' (eq $is)))
    (export "[method]incoming-request.consume"
      (func (param "self" (borrow $request)) (result (result (own $body)))))
    (export "[method]incoming-body.stream"
      (func (param "self" (borrow $body)) (result (result (own $is')))))
    (export "[static]incoming-body.finish"
      (func (param "this" (own $body)) (result (own $trailers))))
  ))
  (alias export $types "incoming-request" (type $request))
  (alias export $types "response-outparam" (type $response-out))
  (core module $mem (memory (export "memory") 1))
  (core instance $mem (instantiate $mem))
  (alias core export $mem "memory" (core memory $memory))
  (core func $consume (canon lower (func $types "[method]incoming-request.consume") (memory $memory)))
  (core func $stream (canon lower (func $types "[method]incoming-body.stream") (memory $memory)))
  (core func $finish (canon lower (func $types "[static]incoming-body.finish")))
  (core module $m
    (import "mem" "memory" (memory 1))
    (import "http" "consume" (func $consume (param i32 i32)))
    (import "http" "stream" (func $stream (param i32 i32)))
    (import "http" "finish" (func $finish (param i32) (result i32)))
    (func (export "handle") (param $request i32) (param $out i32)
      (local $body i32)
      (call $consume (local.get $request) (i32.const 0))
      (local.set $body (i32.load (i32.const 4)))
      (call $stream (local.get $body) (i32.const 8))
      ;; the stream (at 12) is kept, not dropped: finish must trap
      (drop (call $finish (local.get $body))))
  )
  (core instance $i (instantiate $m
    (with "mem" (instance $mem))
    (with "http" (instance
      (export "consume" (func $consume))
      (export "stream" (func $stream))
      (export "finish" (func $finish))))))
  (type $handle (func (param "request" (own $request)) (param "response-out" (own $response-out))))
  (func $handle (type $handle) (canon lift (core func $i "handle")))
  (instance $handler (export "handle" (func $handle)))
  (export "wasi:http/incoming-handler@0.2.0" (instance $handler))
)
