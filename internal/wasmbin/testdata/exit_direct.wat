;; _start exits from its own body, in a block and in a loop (whose yield
;; check goes in the same body): Prepare rewrites both exits to returns.
;; The code is the number of environment variables, or 3 from the loop
;; when there are more than 9; with none it returns.
(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $i i32)
    (drop (call $sizes (i32.const 0) (i32.const 4)))
    (block
      (br_if 0 (i32.eqz (i32.load (i32.const 0))))
      (br_if 0 (i32.gt_u (i32.load (i32.const 0)) (i32.const 9)))
      (call $proc_exit (i32.load (i32.const 0))))
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (if (i32.gt_u (i32.load (i32.const 0)) (i32.const 9))
        (then (call $proc_exit (i32.const 3))))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 5))))))
