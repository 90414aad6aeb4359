;; recurse: runs for ever without a loop. A function that calls itself
;; twice, 62 deep, makes 2^62 calls: only a yield check at its start (the
;; engine's rewrite gives one to every function that can recurse) stops it.
(module
  (memory (export "memory") 1)
  (func $f (param i32)
    (if (local.get 0) (then
      (call $f (i32.sub (local.get 0) (i32.const 1)))
      (call $f (i32.sub (local.get 0) (i32.const 1))))))
  (func (export "_start") (call $f (i32.const 62))))
