;; Has a start function, which runs at instantiation: not reusable.
(module
  (memory 1)
  (func $init (i32.store (i32.const 0) (i32.const 1)))
  (start $init)
  (func (export "_start")))
