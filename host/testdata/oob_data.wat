;; Compiles, but its data segment runs past the one-page memory: every
;; instantiation would fail, so the engine refuses it at compile.
(module
  (memory 1)
  (data (i32.const 65530) "0123456789")
  (func (export "_start")))
