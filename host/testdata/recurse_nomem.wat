;; recurse_nomem: recurse.wat without a memory. The engine gives the module
;; a memory of 0 pages for its yield check (wasmbin.Instrument): without
;; one it ran as given, which wazero stops at loop heads only, and the
;; process's next garbage collection waited for it for ever.
(module
  (func $f (param i32)
    (if (local.get 0) (then
      (call $f (i32.sub (local.get 0) (i32.const 1)))
      (call $f (i32.sub (local.get 0) (i32.const 1))))))
  (func (export "_start") (call $f (i32.const 62))))
