;; Imports a wasmesh function that does not exist, and http_call with the
;; wrong signature.
;; Build: wat2wasm badwasmesh.wat -o badwasmesh.wasm
(module
  (import "wasmesh" "teleport" (func (param i32)))
  (import "wasmesh" "http_call" (func (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")))
