;; A wasi:http/proxy component whose handler never returns without a loop:
;; a function that calls itself twice, 62 deep, makes 2^62 calls. The host
;; gives the functions that can recurse the yield check at their start
;; (wasmbin's entryChecks) and stops it by its stop global.
(component
  (import "wasi:http/types@0.2.0" (instance $types
    (export "incoming-request" (type (sub resource)))
    (export "response-outparam" (type (sub resource)))
  ))
  (alias export $types "incoming-request" (type $request))
  (alias export $types "response-outparam" (type $response-out))
  (core module $m
    (memory (export "memory") 1)
    (func $f (param i32)
      (if (local.get 0) (then
        (call $f (i32.sub (local.get 0) (i32.const 1)))
        (call $f (i32.sub (local.get 0) (i32.const 1))))))
    (func (export "handle") (param i32 i32) (call $f (i32.const 62)))
  )
  (core instance $i (instantiate $m))
  (type $handle (func (param "request" (own $request)) (param "response-out" (own $response-out))))
  (func $handle (type $handle) (canon lift (core func $i "handle")))
  (instance $handler (export "handle" (func $handle)))
  (export "wasi:http/incoming-handler@0.2.0" (instance $handler))
)
