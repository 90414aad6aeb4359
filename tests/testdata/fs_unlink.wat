;; Deletes "f" in the first preopened directory (fd 3) and exits with the
;; WASI errno of path_unlink_file: 0 when the file was deleted.
;; Build: wat2wasm fs_unlink.wat -o fs_unlink.wasm
(module
  (import "wasi_snapshot_preview1" "path_unlink_file"
    (func $unlink (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "f")
  (func (export "_start")
    (call $exit (call $unlink (i32.const 3) (i32.const 16) (i32.const 1)))))
