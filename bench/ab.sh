#!/usr/bin/env bash
# Side-by-side comparison of the gateway at another commit (before) and the
# working tree (after), in alternation so that the machine's drift falls on
# both: BenchmarkServeHTTP ROUNDS times each, then bench/http.sh twice each.
#   bench/ab.sh REV [ROUNDS]       (ROUNDS default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: bench/ab.sh REV [ROUNDS]}
rounds=${2:-3}
base=$(mktemp -d)
trap 'git worktree remove --force "$base" >/dev/null 2>&1 || rm -rf "$base"' EXIT
git worktree add -q --detach "$base" "$rev"
after=$PWD
for i in $(seq "$rounds"); do
  for side in before after; do
    dir=$base; [ "$side" = after ] && dir=$after
    echo "== BenchmarkServeHTTP, $side, run $i"
    (cd "$dir" && go test -run='^$' -bench=ServeHTTP -benchmem -benchtime=2s -count=1 ./mesh/ | grep '^Benchmark')
  done
done
for i in 1 2; do
  for side in before after; do
    dir=$base; [ "$side" = after ] && dir=$after
    echo "== bench/http.sh 3s 32 2, $side, run $i"
    (cd "$dir" && bash bench/http.sh 3s 32 2 2>/dev/null)
  done
done
