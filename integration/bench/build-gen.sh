#!/usr/bin/env bash
# Build integration/bench/gen (standard library only) in a scratch module
# outside the checkout and print the binary's path. Rebuilt only when the
# source or the Go version changes.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_CACHE=${BENCH_CACHE:-$HOME/.cache/hindsight-bench}
sum=$( (go env GOVERSION; cat "$HERE/gen/main.go") | sha256sum | cut -c1-16)
bin=$BENCH_CACHE/bin/gen-$sum
if [ ! -x "$bin" ]; then
  d=$BENCH_CACHE/src/gen-$sum
  # Drop the builds of older versions of the source.
  rm -rf "$BENCH_CACHE"/bin/gen-* "$BENCH_CACHE"/src/gen-*
  mkdir -p "$d" "$BENCH_CACHE/bin"
  cp "$HERE/gen/main.go" "$d/"
  (cd "$d" && GOWORK=off GOFLAGS= go mod init bench.local/gen >/dev/null 2>&1 &&
    GOWORK=off GOFLAGS= go build -o "$bin.tmp" . && mv "$bin.tmp" "$bin")
fi
echo "$bin"
