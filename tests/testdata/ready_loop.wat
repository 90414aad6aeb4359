;; Writes "ready\n" to stdout, then spins forever: a test can wait for the
;; line before it signals the host, knowing the guest is running.
;; Build: wat2wasm ready_loop.wat -o ready_loop.wasm
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "ready\n")
  (func (export "_start")
    ;; iovec at 0: {buf 64, len 6}
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (loop $forever (br $forever))))
