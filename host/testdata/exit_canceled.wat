;; Exits with 0xffffffff, the code wazero closes a module with when its
;; context is canceled: still the guest's own exit, not a client gone
;; (host TestRunErrors).
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func $helper (call $exit (i32.const -1)))
  (func (export "_start") (call $helper)))
