;; Calls wasmesh://big/ (tests TestCallAnswerCapped) and answers with the
;; call's code and the length it was told, as "code=C len=L".
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasmesh" "http_call" (func $call (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 100) "GET wasmesh://big/\n\n")
  (data (i32.const 200) "Content-Type: text/plain\n\ncode=")
  ;; $dec writes n in decimal at p and returns the end.
  (func $dec (param $n i32) (param $p i32) (result i32) (local $q i32) (local $t i32)
    (local.set $t (local.get $n))
    (local.set $q (local.get $p))
    (loop $count ;; how many digits
      (local.set $q (i32.add (local.get $q) (i32.const 1)))
      (local.set $t (i32.div_u (local.get $t) (i32.const 10)))
      (br_if $count (local.get $t)))
    (local.set $t (local.get $q))
    (loop $digit
      (local.set $t (i32.sub (local.get $t) (i32.const 1)))
      (i32.store8 (local.get $t) (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $digit (i32.gt_u (local.get $t) (local.get $p))))
    (local.get $q))
  (func (export "_start") (local $code i32) (local $end i32)
    (local.set $code (call $call (i32.const 100) (i32.const 20) (i32.const 4096) (i32.const 1024) (i32.const 8)))
    (local.set $end (call $dec (local.get $code) (i32.const 231)))
    (i64.store (local.get $end) (i64.const 0x3d6e656c20)) ;; " len="
    (local.set $end (call $dec (i32.load (i32.const 8)) (i32.add (local.get $end) (i32.const 5))))
    (i32.store8 (local.get $end) (i32.const 10))
    (i32.store (i32.const 0) (i32.const 200))
    (i32.store (i32.const 4) (i32.sub (i32.add (local.get $end) (i32.const 1)) (i32.const 200)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 12))))
)
