;; The exit is in a function _start calls, not in _start: it stays.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func $quit (call $proc_exit (i32.const 7)))
  (func (export "_start") (call $quit)))
