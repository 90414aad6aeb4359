;; A wasi:http handler of a pre-release wasi:http, which this host does not
;; serve: it says which version it exports (host TestNotHandlerSaysWhy).
(component
  (import "wasi:http/types@0.2.0-rc-2023-12-05" (instance $types
    (export "incoming-request" (type (sub resource)))
    (export "response-outparam" (type (sub resource)))
  ))
  (alias export $types "incoming-request" (type $request))
  (alias export $types "response-outparam" (type $response-out))
  (core module $m
    (func (export "handle") (param i32 i32) unreachable)
    (func (export "f") (result i32) i32.const 1))
  (core instance $i (instantiate $m))
  (type $handle (func (param "request" (own $request)) (param "response-out" (own $response-out))))
  (func $handle (type $handle) (canon lift (core func $i "handle")))
  (instance $handler (export "handle" (func $handle)))
  (export "wasi:http/incoming-handler@0.2.0-rc-2023-12-05" (instance $handler))
  (type $f (func (result u32)))
  (func $f (type $f) (canon lift (core func $i "f")))
  (instance $own (export "f" (func $f)))
  (export "exports" (instance $own))
)
