;; Writes its table: its instances cannot be reset, so each run gets a new one.
(module
  (table 1 funcref)
  (func $f)
  (elem declare func $f)
  (func (export "_start") (table.set 0 (i32.const 0) (ref.func $f))))
