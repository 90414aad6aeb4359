;; Traps with "oob" when run.
;; Build: wat2wasm trap_oob.wat -o trap_oob.wasm
(module
  (memory (export "memory") 1)
  (func $recurse (param i32) (result i32)
    (i32.add (call $recurse (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func (export "_start") (drop (i32.load (i32.const 0x7ffffff0)))))
