;; A fan-out bomb (tests TestFanOutBounded): each run calls wasmesh://bomb/
;; 10 times (each call does the same, up to the 8-hop limit), then answers.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasmesh" "http_call" (func $call (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 100) "GET wasmesh://bomb/\n\n")
  (data (i32.const 200) "Content-Type: text/plain\n\nok\n")
  (func (export "_start") (local $i i32)
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $i) (i32.const 10)))
      (drop (call $call (i32.const 100) (i32.const 21) (i32.const 4096) (i32.const 60000) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (i32.store (i32.const 0) (i32.const 200)) (i32.store (i32.const 4) (i32.const 29))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
)
