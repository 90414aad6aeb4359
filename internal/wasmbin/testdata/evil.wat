;; Sets global 2 (Prepare's stop global: the module has one of its own, fuel
;; is 1, stop 2) back to 0 and fuel high on every iteration: invalid as it
;; is, valid once two globals are added, and then never stopped. Prepare and
;; Instrument must refuse it. Build: make -C internal/wasmbin/testdata
;; (wat2wasm --no-check: it is invalid on purpose).
(module
  (memory 1)
  (global $g (mut i32) (i32.const 0))
  (func (export "_start")
    (loop $forever
      (global.set 2 (i32.const 0))
      (global.set 1 (i32.const 1000000))
      (br $forever))))
