;; Writes 64 KiB chunks of 'x' to stdout until 1 GiB is written (16384 chunks).
;; An output cap must stop it long before.
;; Build: wat2wasm bigout.wat -o bigout.wasm
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "_start") (local $i i32)
    ;; fill [1024, 1024+65536) with 'x'
    (memory.fill (i32.const 1024) (i32.const 0x78) (i32.const 65536))
    ;; iovec at 0: {buf=1024, len=65536}
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 65536))
    (loop $write
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $write (i32.lt_u (local.get $i) (i32.const 16384))))))
