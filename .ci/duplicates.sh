#!/usr/bin/env bash
# Fails when the `duplicates` tool finds a pair of files sharing six or more
# identical lines that .ci/duplicates-allowed does not list. Pairs alike
# only in shape (the same statements with other names: Go's error checks,
# table tests, constant blocks) are not counted here; `duplicates --change`
# shows them to whoever writes them. Each listed pair was
# looked at and kept on purpose (generated code, import blocks, test tables
# and fixtures of the same shape). A new pair means a helper written again:
# use the one that exists, or, if the repetition is right, add the pair with
# its reason.
#
# `duplicates` is a tool of the machines this project is developed on and
# CI runs on, not a package: where it is missing this check says so, and
# passes, unless CI is set.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v duplicates >/dev/null; then
  if [ -n "${CI:-}" ]; then
    echo "duplicates: not installed on this machine (CI is set: failing)" >&2
    exit 1
  fi
  echo "duplicates: not installed on this machine; check skipped"
  exit 0
fi
allowed=.ci/duplicates-allowed
out=$(duplicates --most 200 --seconds 300)
if grep -q '^incomplete:' <<<"$out"; then
  echo "duplicates: $(grep '^incomplete:' <<<"$out")" >&2
  exit 1
fi
# The list without its comments, read once (a grep -q reading sed's
# output through a pipe would stop it early: SIGPIPE, which pipefail
# counts as a failure once the file is longer than sed's buffer).
pairs=$(sed 's/[[:space:]]*#.*//' "$allowed")
new=$(grep '^D[0-9]' <<<"$out" | grep -v ' shape' | while read -r _ a _ b _; do
  pair="${a%%:*} ~ ${b%%:*}" swapped="${b%%:*} ~ ${a%%:*}"
  grep -qxF -e "$pair" -e "$swapped" <<<"$pairs" || echo "$pair   ($a ~ $b)"
done)
if [ -n "$new" ]; then
  echo "duplicates: pairs of places not in $allowed:" >&2
  echo "$new" >&2
  exit 1
fi
echo "duplicates: $(head -1 <<<"$out" | cut -d'(' -f1)- all reviewed in $allowed"
