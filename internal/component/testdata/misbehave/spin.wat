;; A wasi:http/proxy component whose handler never returns, in a core module
;; with a memory: the host gives it the yield check (wasmbin.Resettable) and
;; stops it by its stop global, where loop.wat, without a memory, is stopped
;; by wazero closing it.
(component
  (import "wasi:http/types@0.2.0" (instance $types
    (export "incoming-request" (type (sub resource)))
    (export "response-outparam" (type (sub resource)))
  ))
  (alias export $types "incoming-request" (type $request))
  (alias export $types "response-outparam" (type $response-out))
  (core module $m
    (memory (export "memory") 1)
    (func (export "handle") (param i32 i32)
      (loop $l (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1))) (br $l)))
  )
  (core instance $i (instantiate $m))
  (type $handle (func (param "request" (own $request)) (param "response-out" (own $response-out))))
  (func $handle (type $handle) (canon lift (core func $i "handle")))
  (instance $handler (export "handle" (func $handle)))
  (export "wasi:http/incoming-handler@0.2.0" (instance $handler))
)
