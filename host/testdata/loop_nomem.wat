;; An endless loop in a module without memory: it cannot be instrumented
;; (the yield check needs memory.grow), so wazero's own check must stop it.
;; Build: wat2wasm loop_nomem.wat -o loop_nomem.wasm
(module
  (func (export "_start")
    (loop $forever (br $forever))))
