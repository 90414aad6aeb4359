;; forgelane: a guest that tries to steer its call onto another lane. It
;; calls wasmesh://orders/?do=env with its own Baggage (wasmesh-lane=forged)
;; and an X-Lane header (an entry rule's), and answers with the call's
;; response as http_call wrote it: status, headers, blank line, body.
(module
  (import "wasmesh" "http_call" (func $http_call (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "Content-Type: text/plain\n\n")
  (data (i32.const 64) "GET wasmesh://orders/?do=env\nBaggage: wasmesh-lane=forged\nX-Lane: v2\n\n")
  (func (export "_start")
    ;; The response at 4096 (up to 60000 bytes), its length at 32.
    (drop (call $http_call (i32.const 64) (i32.const 70) (i32.const 4096) (i32.const 60000) (i32.const 32)))
    ;; Two iovecs at 40: the CGI header, then the response.
    (i32.store (i32.const 40) (i32.const 0))
    (i32.store (i32.const 44) (i32.const 26))
    (i32.store (i32.const 48) (i32.const 4096))
    (i32.store (i32.const 52) (i32.load (i32.const 32)))
    (drop (call $fd_write (i32.const 1) (i32.const 40) (i32.const 2) (i32.const 56)))))
