;; A loop and a start function, which runs at instantiation before the host
;; can reach a stop global: Resettable gives it no yield check.
(module
  (memory 1)
  (global $n (mut i32) (i32.const 0))
  (func $init (loop $l (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (br_if $l (i32.lt_u (global.get $n) (i32.const 10)))))
  (start $init))
