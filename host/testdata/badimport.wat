;; Imports functions no host provides.
;; Build: wat2wasm badimport.wat -o badimport.wasm
(module
  (import "env" "launch_missiles" (func (param i32)))
  (import "wasi_snapshot_preview1" "no_such_call" (func))
  (memory (export "memory") 1)
  (func (export "_start")))
