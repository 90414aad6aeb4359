;; Drops a passive segment: its instances cannot be reset.
(module
  (memory 1)
  (data $d "x")
  (func (export "_start") (data.drop $d)))
