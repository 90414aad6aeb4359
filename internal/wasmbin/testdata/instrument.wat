;; What Instrument must take and Prepare refuses: an imported global (so the
;; added globals' indices start after it) and a table write.
;; Build: make -C internal/wasmbin/testdata
(module
  (import "env" "base" (global $base i32))
  (memory 1)
  (table 1 funcref)
  (global $n (mut i32) (i32.const 0))
  (func (export "init") (global.set $n (global.get $base)))
  (func (export "sum") (param $k i32) (result i32)
    (local $acc i32)
    (table.set 0 (i32.const 0) (ref.null func))
    (block $done
      (loop $l
        (br_if $done (i32.eqz (local.get $k)))
        (local.set $acc (i32.add (local.get $acc) (local.get $k)))
        (local.set $k (i32.sub (local.get $k) (i32.const 1)))
        (br $l)))
    (i32.add (local.get $acc) (global.get $n))))
