;; A reactor whose _initialize grows its memory 1 MiB at a time, touching
;; each page, and traps when memory.grow fails: a runtime's start-up that
;; takes what it is given. Compiled under a set-up memory limit it must
;; fail within the limit (host TestSetupMemoryLimit).
;; Build: wat2wasm initbomb.wat -o initbomb.wasm
(module
  (memory (export "memory") 1)
  (func (export "_initialize")
    (loop $grow
      (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1))
        (then unreachable))
      (i32.store8 (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 1)) (i32.const 1))
      (br_if $grow (i32.lt_u (memory.size) (i32.const 16384)))))
  (func (export "wasmesh_handle")))
