;; logflood: 100 wasmesh log messages of 64 KiB each (6.25 MiB), then "ok".
;; The host keeps 16 KiB of a message and 1 MiB of a request's lines.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasmesh" "log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 2000) "Content-Type: text/plain\n\nok\n")
  (func (export "_start") (local $i i32)
    (memory.fill (i32.const 65536) (i32.const 0x41) (i32.const 65536))
    (loop $lines
      (drop (call $log (i32.const 2) (i32.const 65536) (i32.const 65536)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $lines (i32.lt_u (local.get $i) (i32.const 100))))
    (i32.store (i32.const 0) (i32.const 2000))
    (i32.store (i32.const 4) (i32.const 29))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
