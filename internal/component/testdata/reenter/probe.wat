;; The core module of reenter.wasm, a wasi:http/proxy component whose
;; realloc calls the host: the handler asks for the request's path, which
;; the host lowers into memory through cm32p2_realloc, and the realloc
;; calls [constructor]fields. The canonical ABI forbids it (may_leave):
;; the call traps, the request fails.
(module
  (import "cm32p2|wasi:http/types@0.2" "[constructor]fields"
    (func $fields (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-request.path-with-query"
    (func $path (param i32 i32)))
  (memory (export "cm32p2_memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (func (export "cm32p2_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (drop (call $fields))
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func (export "cm32p2|wasi:http/incoming-handler@0.2|handle") (param $request i32) (param $out i32)
    (call $path (local.get $request) (i32.const 32)))
)
