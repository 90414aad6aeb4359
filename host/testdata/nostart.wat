;; A reactor-style module with no _start.
;; Build: wat2wasm nostart.wat -o nostart.wasm
(module
  (memory (export "memory") 1)
  (func (export "run")))
