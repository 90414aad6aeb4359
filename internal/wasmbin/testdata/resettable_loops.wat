;; Loops in a component's core module without what the yield check needs:
;; no memory for its memory.grow. Resettable accepts it (Unstoppable says
;; why it has no check).
(module
  (global $n (mut i32) (i32.const 0))
  (func (export "spin") (loop $l (global.set $n (i32.add (global.get $n) (i32.const 1))) (br $l))))
