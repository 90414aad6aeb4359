;; A core module as components hold them: an imported table and
;; global, a start function, a memory with data, and mutable
;; globals. Resettable accepts it and exports g1 and g2 (globals 1 and 2,
;; after the imported one).
(module
  (import "env" "table" (table 1 funcref))
  (import "env" "base" (global i32))
  (memory 1)
  (global $g1 (mut i32) (i32.const 7))
  (global $g2 (mut i64) (i64.const 9))
  (global $c i32 (i32.const 3))
  (func $init (global.set $g1 (i32.add (global.get $g1) (i32.const 1))))
  (func (export "bump") (result i32)
    (global.set $g1 (i32.add (global.get $g1) (i32.const 1)))
    (global.get $g1))
  (start $init)
  (data (i32.const 0) "own"))
