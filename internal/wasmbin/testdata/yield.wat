;; Loops of every shape, for the yield check (yield.go): the prepared module
;; must compute what the original does. Build: make -C internal/wasmbin/testdata
(module
  (memory 1)
  (global $calls (mut i32) (i32.const 0))
  ;; Nested loops, a loop with parameters and a result, and a br_table back
  ;; to a loop: sum over i < n, j < i%7 of (i*j) mod 1000, plus twice the sum of 1..n.
  (func (export "run") (param $n i32) (result i32)
    (local $i i32) (local $j i32) (local $acc i32)
    (loop $outer
      (local.set $j (i32.const 0))
      (block $done
        (loop $inner
          (br_if $done (i32.ge_u (local.get $j) (i32.rem_u (local.get $i) (i32.const 7))))
          (local.set $acc (i32.add (local.get $acc)
            (i32.rem_u (i32.mul (local.get $i) (local.get $j)) (i32.const 1000))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $inner)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $outer (i32.lt_u (local.get $i) (local.get $n))))
    (i32.add (local.get $acc)
      (i32.add (call $params (local.get $n)) (call $table (local.get $n)))))
;; A loop that takes and returns values on the stack: sum of 1..n.
  (func $params (param $n i32) (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (i32.const 0) (local.get $n)
    (loop $l (param i32 i32) (result i32 i32)
      (call $step)
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (i32.gt_s (local.get $n) (i32.const 0))))
    (drop))
  (func $step (param i32 i32) (result i32 i32)
    (i32.add (local.get 0) (local.get 1)) (i32.sub (local.get 1) (i32.const 1)))
  ;; A br_table back to a loop: n*(n+1)/2 again, the other way round.
  (func $table (param $n i32) (result i32)
    (local $acc i32)
    (block $exit
      (loop $l
        (local.set $acc (i32.add (local.get $acc) (local.get $n)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br_table $exit $l (i32.ne (local.get $n) (i32.const 0)))))
    (local.get $acc))
  (func (export "calls") (result i32) (global.get $calls)))
