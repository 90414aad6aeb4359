;; denyflood: 1,000 http_calls to distinct hosts the service's outbound list
;; does not allow (h0000.example … h0999.example), then "ok". A guest
;; chooses its URLs: its refusals must not grow the log or the metrics'
;; series without bound.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasmesh" "http_call" (func $call (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "GET http://h0000.example/\n\n")
  (data (i32.const 2000) "Content-Type: text/plain\n\nok\n")
  (func (export "_start") (local $i i32) (local $v i32) (local $j i32)
    (loop $calls
      ;; the host's four digits, at 1036..1039
      (local.set $v (local.get $i))
      (local.set $j (i32.const 0))
      (loop $digit
        (i32.store8 (i32.sub (i32.const 1039) (local.get $j))
          (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
        (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br_if $digit (i32.lt_u (local.get $j) (i32.const 4))))
      (drop (call $call (i32.const 1024) (i32.const 27) (i32.const 4096) (i32.const 1000) (i32.const 200)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $calls (i32.lt_u (local.get $i) (i32.const 1000))))
    (i32.store (i32.const 0) (i32.const 2000))
    (i32.store (i32.const 4) (i32.const 29))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
