;; Writes a page no earlier run of its instance wrote: OS page 1 + the
;; number of environment variables (0 to 14). It first reports the byte at
;; offset 100 of each of OS pages 1 to 15 (15 bytes, all 0 when it starts
;; in the state a new instance has), then writes 0x5e there in its page.
;; For the tests that prove a reset finds pages a run wrote for the first
;; time, however the fault count it reads is shared.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $p i32)
    (local.set $p (i32.const 1))
    (loop $report
      (i32.store8 (i32.add (i32.const 16) (local.get $p))
        (i32.load8_u (i32.add (i32.mul (local.get $p) (i32.const 4096)) (i32.const 100))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br_if $report (i32.lt_u (local.get $p) (i32.const 16))))
    (i32.store (i32.const 0) (i32.const 17))
    (i32.store (i32.const 4) (i32.const 15))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (drop (call $environ_sizes_get (i32.const 40) (i32.const 44)))
    (i32.store8
      (i32.add (i32.mul (i32.add (i32.const 1) (i32.rem_u (i32.load (i32.const 40)) (i32.const 15))) (i32.const 4096)) (i32.const 100))
      (i32.const 0x5e))))
