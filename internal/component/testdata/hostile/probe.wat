;; Hostile wasi:http handler: one case per first letter of the path.
(module
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-request.path-with-query" (func $pwq (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-request.consume" (func $consume (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-body.stream" (func $in-stream (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[constructor]fields" (func $fields (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[static]fields.from-list" (func $from-list (param i32 i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]fields.append" (func $append (param i32 i32 i32 i32 i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[constructor]outgoing-response" (func $response (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-response.set-status-code" (func $set-status (param i32 i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-response.headers" (func $resp-headers (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-response.body" (func $body (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-body.write" (func $write (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[static]outgoing-body.finish" (func $finish (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[static]response-outparam.set" (func $set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[constructor]outgoing-request" (func $oreq (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-request.set-authority" (func $set-auth (param i32 i32 i32 i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-request.body" (func $oreq-body (param i32 i32)))
  (import "cm32p2|wasi:http/outgoing-handler@0.2" "handle" (func $handle (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "fields_drop" (func $drop-fields (param i32)))
  (import "cm32p2|wasi:http/types@0.2" "incoming-request_drop" (func $drop-req (param i32)))
  (import "cm32p2|wasi:http/types@0.2" "response-outparam_drop" (func $drop-out (param i32)))
  (import "cm32p2|wasi:http/types@0.2" "outgoing-body_drop" (func $drop-obody (param i32)))
  (import "cm32p2|wasi:http/types@0.2" "future-incoming-response_drop" (func $drop-future (param i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]future-incoming-response.subscribe" (func $future-sub (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]future-incoming-response.get" (func $future-get (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "incoming-response_drop" (func $drop-iresp (param i32)))
  (import "cm32p2|wasi:io/streams@0.2" "[method]input-stream.blocking-read" (func $get (param i32 i64 i32)))
  (import "cm32p2|wasi:io/streams@0.2" "[method]input-stream.subscribe" (func $in-sub (param i32) (result i32)))
  (import "cm32p2|wasi:io/streams@0.2" "[method]output-stream.blocking-write-and-flush" (func $put (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:io/streams@0.2" "output-stream_drop" (func $drop-ostream (param i32)))
  (import "cm32p2|wasi:io/streams@0.2" "input-stream_drop" (func $drop-istream (param i32)))
  (import "cm32p2|wasi:clocks/monotonic-clock@0.2" "subscribe-duration" (func $after (param i64) (result i32)))
  (import "cm32p2|wasi:io/poll@0.2" "poll" (func $poll (param i32 i32 i32)))
  (import "cm32p2|wasi:io/poll@0.2" "[method]pollable.block" (func $block (param i32)))
  (import "cm32p2|wasi:io/poll@0.2" "pollable_drop" (func $drop-pollable (param i32)))
  (memory (export "cm32p2_memory") 20)
  (data (i32.const 512) "ok\n")
  (data (i32.const 600) "x-a")
  (data (i32.const 610) "va")
  (data (i32.const 700) "\ff\fe\fd")
  (data (i32.const 720) "content-length")
  (data (i32.const 740) "5")
  (data (i32.const 760) "127.0.0.1:9")
  (global $heap (mut i32) (i32.const 8192))
  (global $rmode (mut i32) (i32.const 0))
  (func (export "cm32p2_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (if (i32.eq (global.get $rmode) (i32.const 1)) (then (return (i32.const 0xfffffff0))))
    (if (i32.eq (global.get $rmode) (i32.const 2)) (then (return (i32.const 8193))))
    (if (i32.eq (global.get $rmode) (i32.const 3)) (then unreachable))
    (if (i32.eq (global.get $rmode) (i32.const 4)) (then (return (i32.const 0))))
    (if (i32.eq (global.get $rmode) (i32.const 5)) (then (return (i32.const 1310719)))) ;; straddles the end
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))

  ;; a response with status, its body handle in $b (global), its stream in $s
  (global $b (mut i32) (i32.const 0))
  (global $s (mut i32) (i32.const 0))
  (func $mk (param $status i32) (result i32)
    (local $resp i32)
    (local.set $resp (call $response (call $fields)))
    (drop (call $set-status (local.get $resp) (local.get $status)))
    (call $body (local.get $resp) (i32.const 64))
    (global.set $b (i32.load (i32.const 68)))
    (call $write (global.get $b) (i32.const 64))
    (global.set $s (i32.load (i32.const 68)))
    (local.get $resp))
  (func $setok (param $out i32) (param $resp i32)
    (call $set (local.get $out) (i32.const 0) (local.get $resp) (i32.const 0) (i64.const 0)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
  (func $finish-ok
    (call $put (global.get $s) (i32.const 512) (i32.const 3) (i32.const 64))
    (call $drop-ostream (global.get $s))
    (call $finish (global.get $b) (i32.const 0) (i32.const 0) (i32.const 64)))
  (func $answer (param $out i32) (param $status i32)
    (call $setok (local.get $out) (call $mk (local.get $status)))
    (call $finish-ok))

  (func (export "cm32p2|wasi:http/incoming-handler@0.2|handle") (param $req i32) (param $out i32)
    (local $p i32) (local $len i32) (local $c i32) (local $d i32) (local $i i32) (local $h i32) (local $r i32) (local $n i32)
    (call $pwq (local.get $req) (i32.const 32))
    (local.set $p (i32.load (i32.const 36)))
    (local.set $len (i32.load (i32.const 40)))
    (local.set $c (i32.load8_u (i32.add (local.get $p) (i32.const 1))))
    (if (i32.gt_u (local.get $len) (i32.const 2))
      (then (local.set $d (i32.sub (i32.load8_u (i32.add (local.get $p) (i32.const 2))) (i32.const 48)))))
    ;; a: well behaved
    (if (i32.eq (local.get $c) (i32.const 97)) (then (call $answer (local.get $out) (i32.const 200)) (return)))
    ;; b: handle 0 (HostFunc set-status-code)
    (if (i32.eq (local.get $c) (i32.const 98)) (then (drop (call $set-status (i32.const 0) (i32.const 200))) (return)))
    ;; c: huge handle, flat outgoing-response.body
    (if (i32.eq (local.get $c) (i32.const 99)) (then (call $body (i32.const 0x7fffffff) (i32.const 64)) (return)))
    ;; C: huge handle, HostFunc fields.append
    (if (i32.eq (local.get $c) (i32.const 67)) (then
      (call $append (i32.const 0x7fffffff) (i32.const 600) (i32.const 3) (i32.const 610) (i32.const 2) (i32.const 64)) (return)))
    ;; d: request handle passed as own<fields>
    (if (i32.eq (local.get $c) (i32.const 100)) (then (drop (call $response (local.get $req))) (return)))
    ;; e: use after drop
    (if (i32.eq (local.get $c) (i32.const 101)) (then
      (local.set $h (call $fields)) (call $drop-fields (local.get $h))
      (call $append (local.get $h) (i32.const 600) (i32.const 3) (i32.const 610) (i32.const 2) (i32.const 64)) (return)))
    ;; f: double drop
    (if (i32.eq (local.get $c) (i32.const 102)) (then
      (local.set $h (call $fields)) (call $drop-fields (local.get $h)) (call $drop-fields (local.get $h)) (return)))
    ;; g: drop the request, then use it
    (if (i32.eq (local.get $c) (i32.const 103)) (then
      (call $drop-req (local.get $req)) (call $pwq (local.get $req) (i32.const 32)) (return)))
    ;; h: outparam passed as the response too
    (if (i32.eq (local.get $c) (i32.const 104)) (then (call $setok (local.get $out) (local.get $out)) (return)))
    ;; i: set twice (second with a fresh response)
    (if (i32.eq (local.get $c) (i32.const 105)) (then
      (call $answer (local.get $out) (i32.const 200))
      (local.set $r (call $response (call $fields)))
      (call $setok (local.get $out) (local.get $r)) (return)))
    ;; j: outparam dropped, never set
    (if (i32.eq (local.get $c) (i32.const 106)) (then (call $drop-out (local.get $out)) (return)))
    ;; k: set with an error-code (d=0: HTTP-request-denied; d=1: internal-error(some(1 MiB string)))
    (if (i32.eq (local.get $c) (i32.const 107)) (then
      (if (i32.eq (local.get $d) (i32.const 1))
        (then
          (memory.fill (i32.const 131072) (i32.const 97) (i32.const 1048576))
          (call $set (local.get $out) (i32.const 1) (i32.const 38) (i32.const 1) (i64.const 131072)
            (i32.const 1048576) (i32.const 0) (i32.const 0) (i32.const 0)))
        (else
          (call $set (local.get $out) (i32.const 1) (i32.const 15) (i32.const 0) (i64.const 0)
            (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))))
      (return)))
    ;; l: body never finished (stream and body dropped)
    (if (i32.eq (local.get $c) (i32.const 108)) (then
      (call $setok (local.get $out) (call $mk (i32.const 200)))
      (call $put (global.get $s) (i32.const 512) (i32.const 3) (i32.const 64))
      (call $drop-ostream (global.get $s)) (call $drop-obody (global.get $b)) (return)))
    ;; m: body never finished, handles left
    (if (i32.eq (local.get $c) (i32.const 109)) (then
      (call $setok (local.get $out) (call $mk (i32.const 200)))
      (call $put (global.get $s) (i32.const 512) (i32.const 3) (i32.const 64)) (return)))
    ;; n: fields constructor 1e6 times, never dropped
    (if (i32.eq (local.get $c) (i32.const 110)) (then
      (loop $l (drop (call $fields))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 1000000))))
      (call $answer (local.get $out) (i32.const 200)) (return)))
    ;; o: 60000 fields kept, then answer
    (if (i32.eq (local.get $c) (i32.const 111)) (then
      (loop $l (drop (call $fields))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 60000))))
      (call $answer (local.get $out) (i32.const 200)) (return)))
    ;; q: from-list with an invalid UTF-8 name
    (if (i32.eq (local.get $c) (i32.const 113)) (then
      (i32.store (i32.const 800) (i32.const 700)) (i32.store (i32.const 804) (i32.const 3))
      (i32.store (i32.const 808) (i32.const 610)) (i32.store (i32.const 812) (i32.const 2))
      (call $from-list (i32.const 800) (i32.const 1) (i32.const 64))
      (call $answer (local.get $out) (i32.add (i32.const 200) (i32.load8_u (i32.const 64)))) (return)))
    ;; Q: fields.append with an invalid UTF-8 name (HostFunc)
    (if (i32.eq (local.get $c) (i32.const 81)) (then
      (local.set $h (call $fields))
      (call $append (local.get $h) (i32.const 700) (i32.const 3) (i32.const 610) (i32.const 2) (i32.const 64))
      (call $answer (local.get $out) (i32.add (i32.const 200) (i32.load8_u (i32.const 64)))) (return)))
    ;; r: fields.append, name near 4 GiB
    (if (i32.eq (local.get $c) (i32.const 114)) (then
      (local.set $h (call $fields))
      (call $append (local.get $h) (i32.const 0xfffffff0) (i32.const 100) (i32.const 610) (i32.const 2) (i32.const 64))
      (call $answer (local.get $out) (i32.const 200)) (return)))
    ;; s: from-list, list pointer near 4 GiB, huge length (d=0), or overflowing pointer+len*16 (d=1)
    (if (i32.eq (local.get $c) (i32.const 115)) (then
      (if (i32.eq (local.get $d) (i32.const 1))
        (then (call $from-list (i32.const 0xfffffff0) (i32.const 0x00100000) (i32.const 64)))
        (else (call $from-list (i32.const 0xfffffff0) (i32.const 0x7fffffff) (i32.const 64))))
      (call $answer (local.get $out) (i32.const 200)) (return)))
    ;; P: write, list ptr near 4GiB with huge len
    (if (i32.eq (local.get $c) (i32.const 80)) (then
      (call $setok (local.get $out) (call $mk (i32.const 200)))
      (call $put (global.get $s) (i32.const 0xfffffff0) (i32.const 0x7fffffff) (i32.const 64)) (return)))
    ;; t: realloc misbehaves (mode d) while lowering path-with-query's string
    (if (i32.eq (local.get $c) (i32.const 116)) (then
      (global.set $rmode (local.get $d))
      (call $pwq (local.get $req) (i32.const 32))
      (global.set $rmode (i32.const 0))
      (call $answer (local.get $out) (i32.const 200)) (return)))
    ;; u: read the whole body, answer 200 + (bytes/1000 mod 100)
    (if (i32.eq (local.get $c) (i32.const 117)) (then
      (call $consume (local.get $req) (i32.const 64))
      (call $in-stream (i32.load (i32.const 68)) (i32.const 64))
      (local.set $h (i32.load (i32.const 68)))
      (block $end (loop $next
        (global.set $heap (i32.const 8192))
        (call $get (local.get $h) (i64.const 4096) (i32.const 96))
        (br_if $end (i32.load8_u (i32.const 96)))
        (local.set $n (i32.add (local.get $n) (i32.load (i32.const 104))))
        (br $next)))
      (call $answer (local.get $out) (i32.add (i32.const 200) (i32.rem_u (i32.div_u (local.get $n) (i32.const 1000)) (i32.const 100)))) (return)))
    ;; v: poll an empty list
    (if (i32.eq (local.get $c) (i32.const 118)) (then
      (call $poll (i32.const 65536) (i32.const 0) (i32.const 64))
      (call $answer (local.get $out) (i32.const 200)) (return)))
    ;; w: poll 10000 pollables of 1 ms
    (if (i32.eq (local.get $c) (i32.const 119)) (then
      (loop $l
        (i32.store (i32.add (i32.const 65536) (i32.shl (local.get $i) (i32.const 2))) (call $after (i64.const 1000000)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 10000))))
      (call $poll (i32.const 65536) (i32.const 10000) (i32.const 64))
      (call $answer (local.get $out) (i32.const 200)) (return)))
    ;; x: subscribe repeatedly, 1e6 times
    (if (i32.eq (local.get $c) (i32.const 120)) (then
      (call $consume (local.get $req) (i32.const 64))
      (call $in-stream (i32.load (i32.const 68)) (i32.const 64))
      (local.set $h (i32.load (i32.const 68)))
      (loop $l (drop (call $in-sub (local.get $h)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 1000000))))
      (call $answer (local.get $out) (i32.const 200)) (return)))
    ;; X: poll with the same pollable 10000 times; block on a pollable of 1 hour
    (if (i32.eq (local.get $c) (i32.const 88)) (then
      (call $block (call $after (i64.const 3600000000000)))
      (call $answer (local.get $out) (i32.const 200)) (return)))
    ;; y: outgoing-handler.handle with handle 0 (d=0), or the fields handle (d=1)
    (if (i32.eq (local.get $c) (i32.const 121)) (then
      (call $handle (i32.mul (local.get $d) (call $fields)) (i32.const 0) (i32.const 0) (i32.const 64))
      (call $answer (local.get $out) (i32.const 200)) (return)))
    ;; Y: outgoing request to a target not allowed: answer 200 + error case (or 299 if ok)
    (if (i32.eq (local.get $c) (i32.const 89)) (then
      (local.set $h (call $oreq (call $fields)))
      (drop (call $set-auth (local.get $h) (i32.const 1) (i32.const 760) (i32.const 11)))
      (call $handle (local.get $h) (i32.const 0) (i32.const 0) (i32.const 64))
      (if (i32.load8_u (i32.const 64))
        (then (call $answer (local.get $out) (i32.add (i32.const 200) (i32.load8_u (i32.const 72)))))
        (else (call $answer (local.get $out) (i32.const 299))))
      (return)))
    ;; G: 100 outgoing requests one after another, each response waited
    ;; for, taken (future-incoming-response.get: its option at 64, the
    ;; outer result at 72, the inner at 80, its handle at 88) and dropped
    ;; with its future before the next: answer 200 + how many failed
    (if (i32.eq (local.get $c) (i32.const 71)) (then
      (loop $l
        (local.set $h (call $oreq (call $fields)))
        (call $handle (local.get $h) (i32.const 0) (i32.const 0) (i32.const 64))
        (if (i32.load8_u (i32.const 64))
          (then (local.set $n (i32.add (local.get $n) (i32.const 1))))
          (else
            (local.set $d (i32.load (i32.const 72)))
            (local.set $h (call $future-sub (local.get $d)))
            (call $block (local.get $h))
            (call $drop-pollable (local.get $h))
            (call $future-get (local.get $d) (i32.const 64))
            (if (i32.load8_u (i32.const 80))
              (then (local.set $n (i32.add (local.get $n) (i32.const 1))))
              (else (call $drop-iresp (i32.load (i32.const 88)))))
            (call $drop-future (local.get $d))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 100))))
      (call $answer (local.get $out) (i32.add (i32.const 200) (local.get $n))) (return)))
    ;; K: 100 outgoing requests one after another, each response waited
    ;; for and its future dropped, never taken; then one more, taken:
    ;; answer 200, or 201 if that one failed
    (if (i32.eq (local.get $c) (i32.const 75)) (then
      (loop $l
        (local.set $h (call $oreq (call $fields)))
        (call $handle (local.get $h) (i32.const 0) (i32.const 0) (i32.const 64))
        (local.set $d (i32.load (i32.const 72)))
        (local.set $h (call $future-sub (local.get $d)))
        (call $block (local.get $h))
        (call $drop-pollable (local.get $h))
        (call $drop-future (local.get $d))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 100))))
      (local.set $h (call $oreq (call $fields)))
      (call $handle (local.get $h) (i32.const 0) (i32.const 0) (i32.const 64))
      (local.set $d (i32.load (i32.const 72)))
      (local.set $h (call $future-sub (local.get $d)))
      (call $block (local.get $h))
      (call $future-get (local.get $d) (i32.const 64))
      (call $answer (local.get $out) (i32.add (i32.const 200) (i32.load8_u (i32.const 80)))) (return)))
    ;; D: 100 outgoing requests, each response waited for, its future
    ;; kept (never taken, never dropped); then one more, taken: answer
    ;; 200, or 201 if that one failed
    (if (i32.eq (local.get $c) (i32.const 68)) (then
      (loop $l
        (local.set $h (call $oreq (call $fields)))
        (call $handle (local.get $h) (i32.const 0) (i32.const 0) (i32.const 64))
        (local.set $d (i32.load (i32.const 72)))
        (local.set $h (call $future-sub (local.get $d)))
        (call $block (local.get $h))
        (call $drop-pollable (local.get $h))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 100))))
      (local.set $h (call $oreq (call $fields)))
      (call $handle (local.get $h) (i32.const 0) (i32.const 0) (i32.const 64))
      (local.set $d (i32.load (i32.const 72)))
      (local.set $h (call $future-sub (local.get $d)))
      (call $block (local.get $h))
      (call $future-get (local.get $d) (i32.const 64))
      (call $answer (local.get $out) (i32.add (i32.const 200) (i32.load8_u (i32.const 80)))) (return)))
    ;; S: status from three digits
    (if (i32.eq (local.get $c) (i32.const 83)) (then
      (local.set $n (i32.add (i32.mul (local.get $d) (i32.const 100))
        (i32.add (i32.mul (i32.sub (i32.load8_u (i32.add (local.get $p) (i32.const 3))) (i32.const 48)) (i32.const 10))
                 (i32.sub (i32.load8_u (i32.add (local.get $p) (i32.const 4))) (i32.const 48)))))
      (call $answer (local.get $out) (local.get $n)) (return)))
    ;; T: trailers content-length: 5
    (if (i32.eq (local.get $c) (i32.const 84)) (then
      (call $setok (local.get $out) (call $mk (i32.const 200)))
      (call $put (global.get $s) (i32.const 512) (i32.const 3) (i32.const 64))
      (call $drop-ostream (global.get $s))
      (i32.store (i32.const 800) (i32.const 720)) (i32.store (i32.const 804) (i32.const 14))
      (i32.store (i32.const 808) (i32.const 740)) (i32.store (i32.const 812) (i32.const 1))
      (call $from-list (i32.const 800) (i32.const 1) (i32.const 64))
      (call $finish (global.get $b) (i32.const 1) (i32.load (i32.const 68)) (i32.const 64)) (return)))
    ;; N: d responses (never set), each body 32 MiB buffered; then answer ok
    (if (i32.eq (local.get $c) (i32.const 78)) (then
      (loop $resps
        (drop (call $mk (i32.const 200)))
        (local.set $i (i32.const 0))
        (loop $l
          (call $put (global.get $s) (i32.const 131072) (i32.const 1048576) (i32.const 64))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 32))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br_if $resps (i32.lt_u (local.get $n) (local.get $d))))
      (call $answer (local.get $out) (i32.const 200)) (return)))
    ;; O: d outgoing requests, each body 32 MiB buffered, never sent; then answer ok
    (if (i32.eq (local.get $c) (i32.const 79)) (then
      (loop $reqs
        (local.set $h (call $oreq (call $fields)))
        (call $oreq-body (local.get $h) (i32.const 64))
        (call $write (i32.load (i32.const 68)) (i32.const 64))
        (local.set $r (i32.load (i32.const 68)))
        (local.set $i (i32.const 0))
        (loop $l
          (call $put (local.get $r) (i32.const 131072) (i32.const 1048576) (i32.const 64))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 32))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br_if $reqs (i32.lt_u (local.get $n) (local.get $d))))
      (call $answer (local.get $out) (i32.const 200)) (return)))
    ;; A: answer with fields made by two appends of "x-a: va"
    (if (i32.eq (local.get $c) (i32.const 65)) (then
      (local.set $h (call $fields))
      (call $append (local.get $h) (i32.const 600) (i32.const 3) (i32.const 610) (i32.const 2) (i32.const 64))
      (call $append (local.get $h) (i32.const 600) (i32.const 3) (i32.const 610) (i32.const 2) (i32.const 64))
      (local.set $r (call $response (local.get $h)))
      (call $body (local.get $r) (i32.const 64))
      (global.set $b (i32.load (i32.const 68)))
      (call $write (global.get $b) (i32.const 64))
      (global.set $s (i32.load (i32.const 68)))
      (call $setok (local.get $out) (local.get $r))
      (call $finish-ok) (return)))
    ;; E: a 201 whose body is never taken (an empty body, as in wasmtime)
    (if (i32.eq (local.get $c) (i32.const 69)) (then
      (local.set $r (call $response (call $fields)))
      (drop (call $set-status (local.get $r) (i32.const 201)))
      (call $setok (local.get $out) (local.get $r)) (return)))
    ;; H: a response with a 70000-byte header value (over 64 KiB of fields)
    (if (i32.eq (local.get $c) (i32.const 72)) (then
      (memory.fill (i32.const 0x20000) (i32.const 118) (i32.const 70000))
      (local.set $h (call $fields))
      (call $append (local.get $h) (i32.const 600) (i32.const 3) (i32.const 0x20000) (i32.const 70000) (i32.const 64))
      (local.set $r (call $response (local.get $h)))
      (call $body (local.get $r) (i32.const 64))
      (global.set $b (i32.load (i32.const 68)))
      (call $write (global.get $b) (i32.const 64))
      (global.set $s (i32.load (i32.const 68)))
      (call $setok (local.get $out) (local.get $r))
      (call $finish-ok) (return)))
    ;; R: a body finished with a 70000-byte trailer value (over 64 KiB of fields)
    (if (i32.eq (local.get $c) (i32.const 82)) (then
      (memory.fill (i32.const 0x20000) (i32.const 118) (i32.const 70000))
      (local.set $h (call $fields))
      (call $append (local.get $h) (i32.const 600) (i32.const 3) (i32.const 0x20000) (i32.const 70000) (i32.const 64))
      (call $setok (local.get $out) (call $mk (i32.const 200)))
      (call $put (global.get $s) (i32.const 512) (i32.const 3) (i32.const 64))
      (call $drop-ostream (global.get $s))
      (call $finish (global.get $b) (i32.const 1) (local.get $h) (i32.const 64)) (return)))
    ;; M: after set, mutate the response's headers child (immutable)
    (if (i32.eq (local.get $c) (i32.const 77)) (then
      (local.set $r (call $mk (i32.const 200)))
      (local.set $h (call $resp-headers (local.get $r)))
      (call $setok (local.get $out) (local.get $r))
      (call $append (local.get $h) (i32.const 600) (i32.const 3) (i32.const 610) (i32.const 2) (i32.const 64))
      (call $finish-ok) (return)))
    ;; B: body over 32 MiB: 40 writes of 1 MiB, ignoring errors
    (if (i32.eq (local.get $c) (i32.const 66)) (then
      (call $setok (local.get $out) (call $mk (i32.const 200)))
      (loop $l
        (call $put (global.get $s) (i32.const 131072) (i32.const 1048576) (i32.const 64))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 40))))
      (call $finish-ok) (return)))
    ;; F: d x fields.from-list of 1M entries (a 16 MiB list), all "x-a: va"; then answer ok
    (if (i32.eq (local.get $c) (i32.const 70)) (then
      (drop (memory.grow (i32.const 300)))
      (loop $l
        (local.set $p (i32.add (i32.const 2097152) (i32.shl (local.get $i) (i32.const 4))))
        (i32.store (local.get $p) (i32.const 600)) (i32.store offset=4 (local.get $p) (i32.const 3))
        (i32.store offset=8 (local.get $p) (i32.const 610)) (i32.store offset=12 (local.get $p) (i32.const 2))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 1000000))))
      (loop $k
        (call $from-list (i32.const 2097152) (i32.const 1000000) (i32.const 64))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br_if $k (i32.lt_u (local.get $n) (local.get $d))))
      (call $answer (local.get $out) (i32.const 200)) (return)))
    ;; default: 404-ish well-behaved
    (call $answer (local.get $out) (i32.const 404)))
)
