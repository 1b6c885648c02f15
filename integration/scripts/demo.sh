#!/usr/bin/env bash
# README's first command: one backup and restore round trip with the real
# CLI, on a small tree in a throw-away directory, checked with diff.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hindsight-demo.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The caller's own repository settings must not leak into the demo.
unset HINDSIGHT_REPOSITORY HINDSIGHT_PASSWORD_FILE HINDSIGHT_PASSWORD_COMMAND
export HINDSIGHT_PASSWORD=demo

run() {
	printf '+ %s\n' "$*"
	"$@"
}

run go build -o "$tmp/hindsight" ./cmd/hindsight
h=$tmp/hindsight
repo=$tmp/repo
src=$tmp/src

run "$h" init --repo "$repo"

mkdir -p "$src/docs/nested" "$src/empty-dir"
printf 'hello, hindsight\n' >"$src/hello.txt"
: >"$src/empty"
seq 1 300000 >"$src/docs/numbers.txt" # ~2 MB: more than one chunk
printf 'nested\n' >"$src/docs/nested/deep.txt"
printf 'private\n' >"$src/docs/private.txt"
chmod 0600 "$src/docs/private.txt"
chmod 0755 "$src/docs/nested"
ln -s hello.txt "$src/link-to-hello"
ln -s docs/nested "$src/link-to-dir"
ln -s does-not-exist "$src/dangling"
touch -h -d '2001-02-03 04:05:06.789' "$src/hello.txt" "$src/link-to-hello"

run "$h" backup --repo "$repo" "$src"
run "$h" snapshots --repo "$repo"
run "$h" ls --repo "$repo" latest
run "$h" restore --repo "$repo" latest --target "$tmp/restore"

# The restore lands either directly in the target or below it under the
# source's absolute path (restic's layout); accept both, say which.
restored=$tmp/restore
if [[ ! -e $restored/hello.txt && -d $tmp/restore$src ]]; then
	restored=$tmp/restore$src
fi
echo "restored tree: $restored"

run diff -r --no-dereference "$src" "$restored"

# diff sees content and symlink targets only; types, modes and mtimes too:
listing() { (cd "$1" && find . -mindepth 1 -printf '%y %m %T@ %p -> %l\n' | LC_ALL=C sort); }
if ! diff <(listing "$src") <(listing "$restored"); then
	echo "demo FAILED: types, modes or mtimes differ (< source, > restore)" >&2
	exit 1
fi

echo "demo OK"
