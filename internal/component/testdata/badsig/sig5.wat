;; A wasi:http handler export whose handle has the wrong signature (host TestHandlerSignature).
(component
  (import "wasi:http/types@0.2.0" (instance $types
    (export "incoming-request" (type (sub resource)))
    (export "response-outparam" (type (sub resource)))
  ))
  (alias export $types "incoming-request" (type $request))
  (alias export $types "response-outparam" (type $response-out))
  (core module $m
    (func (export "handle") (param i32 i32) unreachable)
  )
  (core instance $i (instantiate $m))
  (type $handle (func (param "response-out" (own $response-out)) (param "request" (own $request))))
  (func $handle (type $handle) (canon lift (core func $i "handle")))
  (instance $handler (export "handle" (func $handle)))
  (export "wasi:http/incoming-handler@0.2.0" (instance $handler))
)
