;; pollstdin: poll_oneoff on stdin (fd_read, userdata 2) and a 100 ms
;; monotonic clock (userdata 1), then writes the first event's type to
;; stdout: "0" the clock, "1" stdin.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; subscription 0 at 0: userdata 1, clock, monotonic, 100 ms relative
  (data (i32.const 0) "\01\00\00\00\00\00\00\00" "\00")
  (data (i32.const 16) "\01\00\00\00")
  (data (i32.const 24) "\00\e1\f5\05\00\00\00\00")
  ;; subscription 1 at 48: userdata 2, fd_read of fd 0
  (data (i32.const 48) "\02\00\00\00\00\00\00\00" "\01")
  ;; the iovec of the answer: 1 byte at 200
  (data (i32.const 208) "\c8\00\00\00\01\00\00\00")
  (func (export "_start")
    (if (call $poll (i32.const 0) (i32.const 128) (i32.const 2) (i32.const 192))
      (then unreachable))
    (i32.store8 (i32.const 200) (i32.add (i32.load8_u (i32.const 138)) (i32.const 48)))
    (drop (call $write (i32.const 1) (i32.const 208) (i32.const 1) (i32.const 216)))))
