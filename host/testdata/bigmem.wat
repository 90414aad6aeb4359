;; Asks for 512 MiB of memory at start (8192 pages).
;; Build: wat2wasm bigmem.wat -o bigmem.wasm
(module
  (memory (export "memory") 8192)
  (func (export "_start")))
