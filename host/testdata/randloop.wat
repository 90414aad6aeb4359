;; A guest stopped at its deadline even inside host calls (host TestRunErrors):
;; 300 iterations of random_get over 64 MiB of memory (grown once), then a response.
;; Fewer than the 1,000 iterations between yield checks.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $rand (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "Content-Type: text/plain\n\nrand ok\n")
  (func (export "_start") (local $i i32)
    (drop (memory.grow (i32.const 1023)))
    (block $d (loop $l (br_if $d (i32.ge_u (local.get $i) (i32.const 300)))
      (drop (call $rand (i32.const 0x10000) (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 0x10000))))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l)))
    (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 34))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
)
