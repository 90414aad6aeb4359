;; A reactor whose wasmesh_handle has the wrong signature (param i32) (result i32): refused at compile (host TestCompileErrors).
(module
  (memory (export "memory") 1)
  (func (export "wasmesh_handle") (param i32) (result i32) (i32.const 42)))
