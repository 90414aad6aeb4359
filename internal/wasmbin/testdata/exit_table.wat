;; _start is in a table, so it can be called indirectly: the exit stays.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (table 1 funcref)
  (elem (i32.const 0) $start)
  (func $start (export "_start") (call $proc_exit (i32.const 7))))
