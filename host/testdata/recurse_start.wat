;; recurse_start: recursion without a loop in a start function, which runs
;; at instantiation, before the host can reach the stop global: the engine
;; exports it instead and calls it first, the stop armed
;; (wasmbin.Instrument).
(module
  (memory 1)
  (func $f (param i32)
    (if (local.get 0) (then
      (call $f (i32.sub (local.get 0) (i32.const 1)))
      (call $f (i32.sub (local.get 0) (i32.const 1))))))
  (func $init (call $f (i32.const 62)))
  (start $init)
  (func (export "_start")))
