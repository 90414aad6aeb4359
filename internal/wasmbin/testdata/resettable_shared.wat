;; A shared memory: refused by Resettable.
(module (memory 1 1 shared))
