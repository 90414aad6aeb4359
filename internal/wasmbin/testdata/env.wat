;; The "env" module instrument.wasm imports its global from.
(module (global (export "base") i32 (i32.const 7)))
