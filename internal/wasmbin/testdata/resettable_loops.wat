;; Loops in a component's core module without a memory for the yield
;; check's memory.grow: Resettable gives it a check of the stop global
;; alone. spin(n) loops n times.
(module
  (global $n (mut i32) (i32.const 0))
  (func (export "spin") (param $k i32)
    (loop $l
      (global.set $n (i32.add (global.get $n) (i32.const 1)))
      (local.set $k (i32.sub (local.get $k) (i32.const 1)))
      (br_if $l (local.get $k)))))
