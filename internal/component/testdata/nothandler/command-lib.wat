;; A wasi:cli command that also exports an instance of its own, as
;; componentize-py's commands do ("exports"): not a wasi:http handler, and
;; says so (host TestNotHandlerSaysWhy).
(component
  (core module $m
    (func (export "run") (result i32) i32.const 0)
    (func (export "f") (result i32) i32.const 1))
  (core instance $i (instantiate $m))
  (type $run (func (result (result))))
  (func $run (type $run) (canon lift (core func $i "run")))
  (instance $cli (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli))
  (type $f (func (result u32)))
  (func $f (type $f) (canon lift (core func $i "f")))
  (instance $own (export "f" (func $f)))
  (export "exports" (instance $own))
)
