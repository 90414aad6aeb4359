;; Grows memory 1 MiB at a time until memory.grow fails, then exits with code 3
;; (or 0 if it reached 4 GiB). A memory limit must make the grow fail in the guest.
;; Build: wat2wasm membomb.wat -o membomb.wasm
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $grow
      (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1))
        (then (call $proc_exit (i32.const 3))))
      ;; touch the new memory so it is really used
      (i32.store8 (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 1)) (i32.const 1))
      (br_if $grow (i32.lt_u (memory.size) (i32.const 65535))))))
