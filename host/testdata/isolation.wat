;; Reports the state it starts in, then leaves secrets behind: for the tests
;; that prove a reused instance starts each run as if it were new.
;; Output (32 bytes): the 16 bytes at 1024 ("pristine-memory!" when new), the
;; mutable global (7), environ count and size, the 4 bytes at 60000 (0).
;; With an environment, it closes stdout at the end.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 7))
  (data (i32.const 1024) "pristine-memory!")
  (func (export "_start")
    (i32.store (i32.const 1040) (global.get $g))
    (drop (call $environ_sizes_get (i32.const 1044) (i32.const 1048)))
    (i32.store (i32.const 1052) (i32.load (i32.const 60000)))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 32))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i64.store (i32.const 1024) (i64.const 0x2121544552434553))
    (i64.store (i32.const 1032) (i64.const 0x2121544552434553))
    (i32.store (i32.const 60000) (i32.const 0x5ec2e7))
    (global.set $g (i32.const 0x5ec2e7))
    (if (i32.load (i32.const 1044))
      (then (drop (call $fd_close (i32.const 1)))))))
