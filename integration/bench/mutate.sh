#!/usr/bin/env bash
# Change 1% of a dataset's regular files deterministically, or undo that.
#
#   mutate.sh DIR SEED [PERCENT]   change PERCENT (default 1) % of DIR's files
#   mutate.sh --revert DIR         put back the original bytes, sizes and mtimes
#
# The two largest files (for dataset.sh's tree: the ext4 image and one
# 512 MiB file) are always among them and are overwritten in place (16 B..4 KiB
# at a seeded offset); the others are chosen by a SEED-keyed shuffle of the
# sorted file list and are appended to (16 B..4 KiB), overwritten in place, or,
# if under 1 MiB, rewritten whole, always with random bytes.
# The original bytes go to an undo log in DIR's sibling ../mutate-undo (kept
# outside DIR so that no backup sees it); a second mutate refuses to run
# until the first one is reverted, so the dataset cannot drift.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
GEN=$("$HERE/build-gen.sh")

if [ "${1:-}" = --revert ]; then
  [ $# = 2 ] || { echo "usage: mutate.sh --revert DIR" >&2; exit 2; }
  dir=$(cd "$2" && pwd)
  exec "$GEN" revert "$dir" "$(dirname "$dir")/mutate-undo"
fi
[ $# -ge 2 ] && [ $# -le 3 ] || { echo "usage: mutate.sh DIR SEED [PERCENT] | --revert DIR" >&2; exit 2; }
dir=$(cd "$1" && pwd)
exec "$GEN" mutate "$dir" "$2" "${3:-1}" "$(dirname "$dir")/mutate-undo"
