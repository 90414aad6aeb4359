;; Traps with "divzero" when run.
;; Build: wat2wasm trap_divzero.wat -o trap_divzero.wasm
(module
  (memory (export "memory") 1)
  (func $recurse (param i32) (result i32)
    (i32.add (call $recurse (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func (export "_start") (drop (i32.div_s (i32.const 1) (i32.sub (memory.size) (i32.const 1))))))
