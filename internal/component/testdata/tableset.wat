;; A component whose core module writes its table: its instances cannot be
;; reset (wasmbin.Resettable refuses it), so a gateway would serve it by a
;; new instance per request and say why.
(component
  (core module $m
    (table 1 funcref)
    (func (export "run") (table.set 0 (i32.const 0) (ref.null func))))
  (core instance $i (instantiate $m))
  (func (export "run") (canon lift (core func $i "run")))
)
