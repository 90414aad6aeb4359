;; callbadheader: an http_call to wasmesh://hello with a header field whose
;; value has a bare CR ("X-A: a\rb"). The host answers INVALID (3), the
;; guest's malformed argument, without sending it (not UNAVAILABLE, as if
;; the target were down). Answers "X-Rc: <code>".
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasmesh" "http_call" (func $call (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "GET wasmesh://hello/\nX-A: a\0db\n\n")
  (data (i32.const 3000) "X-Rc: 0\n\nrc\n")
  (func (export "_start")
    (i32.store8 (i32.const 3006)
      (i32.add (i32.const 48) (call $call (i32.const 1024) (i32.const 31) (i32.const 4096) (i32.const 1024) (i32.const 8))))
    (i32.store (i32.const 0) (i32.const 3000))
    (i32.store (i32.const 4) (i32.const 12))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))
