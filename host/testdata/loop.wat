;; An endless loop: the guest must be stopped by its deadline.
;; Build: wat2wasm loop.wat -o loop.wasm
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $forever (br $forever))))
