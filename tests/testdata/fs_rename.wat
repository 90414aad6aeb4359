;; Renames "f" to "g" in the first preopened directory (fd 3) and exits with
;; the WASI errno of path_rename: 0 when the file was renamed.
;; Build: wat2wasm fs_rename.wat -o fs_rename.wasm
(module
  (import "wasi_snapshot_preview1" "path_rename"
    (func $rename (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "f")
  (data (i32.const 32) "g")
  (func (export "_start")
    (call $exit (call $rename
      (i32.const 3) (i32.const 16) (i32.const 1)
      (i32.const 3) (i32.const 32) (i32.const 1)))))
