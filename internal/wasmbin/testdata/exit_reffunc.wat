;; _start is named by ref.func (declared by a declarative segment): the
;; exit stays.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (elem declare func $start)
  (func $start (export "_start") (call $proc_exit (i32.const 7)))
  (func (export "ref") (result funcref) (ref.func $start)))
