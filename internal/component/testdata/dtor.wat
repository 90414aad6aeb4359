;; A component-defined resource with a destructor: run makes one with rep
;; 42, drops its own handle, and returns what the destructor was given
;; (0 if it was not called).
(component
  (core module $A
    (global $dropped (export "dropped") (mut i32) (i32.const 0))
    (func (export "dtor") (param i32) (global.set $dropped (local.get 0))))
  (core instance $a (instantiate $A))
  (alias core export $a "dtor" (core func $dtor))
  (type $r (resource (rep i32) (dtor (core func $dtor))))
  (core func $new (canon resource.new $r))
  (core func $drop (canon resource.drop $r))
  (core module $B
    (import "a" "dropped" (global $dropped (mut i32)))
    (import "r" "new" (func $new (param i32) (result i32)))
    (import "r" "drop" (func $drop (param i32)))
    (func (export "run") (result i32)
      (call $drop (call $new (i32.const 42)))
      (global.get $dropped)))
  (core instance $b (instantiate $B
    (with "a" (instance $a))
    (with "r" (instance (export "new" (func $new)) (export "drop" (func $drop))))))
  (func (export "run") (result u32) (canon lift (core func $b "run")))
)
