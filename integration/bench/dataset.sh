#!/usr/bin/env bash
# Build (or reuse) the deterministic benchmark dataset and print its path.
#
#   dataset.sh [--small] [DIR]
#
# Without DIR the dataset lives in $BENCH_CACHE/data/<key> (default
# $HOME/.cache/hindsight-bench/data/<key>); <key> names the dataset version,
# the size and the Go version (whose source tree is part of the data), so a
# rerun reuses what is there and a change of recipe makes a new one. The
# tree to back up is <dir>/tree; the path of that tree is the only thing
# printed on stdout.
#
# Contents of tree/ (full size; --small divides every count and size by 10):
#   gosrc/        copy of $(go env GOROOT)/src            (~11.5k files, 160 MB)
#   gen/          text-like files, 100 B..64 KiB, log-uniform sizes, seeded,
#                 enough to bring the small files to 100,000 (~900 MB, compresses ~3x)
#   large/rand{0..3}.bin   4 x 512 MiB of ChaCha8 output (incompressible)
#   image/ext4.img         2 GiB sparse ext4 image holding ~270 MiB of mixed
#                 data (text files, random files, zeros, a slice of Go's source)
#
# Everything depends only on fixed seeds and the Go version: two builds are
# byte-identical, the ext4 image included (fixed UUID, hash seed, inode times).
# The image is built with `mkfs.ext4 -d` (populate from a directory) rather
# than a loop mount, which needs no mount privileges and keeps it deterministic.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_CACHE=${BENCH_CACHE:-$HOME/.cache/hindsight-bench}
DATASET_VERSION=v1

small=0
dir=
while [ $# -gt 0 ]; do
  case $1 in
    --small) small=1 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    -*) echo "dataset.sh: unknown flag $1" >&2; exit 2 ;;
    *) dir=$1 ;;
  esac
  shift
done

log() { printf '[dataset] %s\n' "$*" >&2; }

GOROOT_SRC=$(go env GOROOT)/src
GOVER=$(go env GOVERSION)
if [ $small = 1 ]; then size=small; else size=full; fi
key=$DATASET_VERSION-$size-$GOVER
dir=${dir:-$BENCH_CACHE/data/$key}
tree=$dir/tree

if [ -f "$dir/COMPLETE" ] && [ "$(cat "$dir/COMPLETE")" = "$key" ]; then
  # A run that was interrupted between mutate and revert leaves an undo log:
  # put the dataset back as it was.
  if [ -f "$dir/mutate-undo/undo.json" ]; then
    log "reverting a leftover mutation"
    "$HERE/mutate.sh" --revert "$tree" >&2
  fi
  log "reusing $dir"
  echo "$tree"
  exit 0
fi

# The helper program, built in a scratch module outside the checkout.
GEN=$("$HERE/build-gen.sh")

if [ $small = 1 ]; then
  div=10
else
  div=1
fi
small_files=$((100000 / div))
large_size=$((512 * 1024 * 1024 / div))
image_size=$((2048 * 1024 * 1024 / div))
img_text_files=$((10000 / div))
img_rand_size=$((64 * 1024 * 1024 / div))
img_zero_size=$((32 * 1024 * 1024 / div))

start=$(date +%s)
log "building $key in $dir"
rm -rf "$dir"
mkdir -p "$tree"/{large,image}

# (a) Small files: Go's source tree (the whole of it, or two packages for
# --small), topped up with generated files to the target count.
if [ $small = 1 ]; then
  mkdir -p "$tree/gosrc/go" "$tree/gosrc/net"
  cp -a "$GOROOT_SRC/go/." "$tree/gosrc/go/"
  cp -a "$GOROOT_SRC/net/." "$tree/gosrc/net/"
else
  cp -a "$GOROOT_SRC" "$tree/gosrc"
fi
have=$(find "$tree/gosrc" -type f | wc -l)
gen_count=$((small_files > have ? small_files - have : 0))
log "small files: $have from GOROOT/src + $gen_count generated"
"$GEN" smallfiles "$tree/gen" "$gen_count" small-$DATASET_VERSION

# (b) Four incompressible files.
for i in 0 1 2 3; do
  "$GEN" random "$tree/large/rand$i.bin" "$large_size" large$i-$DATASET_VERSION
done
log "large files: 4 x $large_size bytes"

# (c) An ext4 image with files on it, populated from a staging directory.
stage=$dir/image-stage
rm -rf "$stage"; mkdir -p "$stage"/{text,bin,src}
"$GEN" smallfiles "$stage/text" "$img_text_files" image-$DATASET_VERSION
"$GEN" random "$stage/bin/blob0" "$img_rand_size" image0-$DATASET_VERSION
"$GEN" random "$stage/bin/blob1" "$img_rand_size" image1-$DATASET_VERSION
head -c "$img_zero_size" /dev/zero > "$stage/bin/zeros"
cp -a "$GOROOT_SRC/net/http/." "$stage/src/"
find "$stage" -exec touch -h -d '2024-01-02 03:04:05 UTC' {} +
img=$tree/image/ext4.img
truncate -s "$image_size" "$img"
# Fixed UUID, hash seed and creation time; -d copies the staged files in.
E2FSPROGS_FAKE_TIME=1704164645 mkfs.ext4 -q -F -t ext4 -b 4096 -L benchimg \
  -U 6b1e3c52-2f0a-4c1e-9d37-5a0c1b2d3e4f \
  -E hash_seed=0d5b7e11-8c3a-4f6e-a2b9-71c4d8e9f0a1,root_owner=0:0 \
  -d "$stage" "$img"
# mkfs -d copies the staged files' ctimes (and leaves crtimes at the fake
# time): set every inode's times to the fixed time so the image does not
# depend on when it was built.
scr=$dir/debugfs.cmds
(cd "$stage" && find . -mindepth 1) | sed 's|^\.||' | sort | while read -r p; do
  for f in atime ctime mtime crtime; do
    printf 'set_inode_field %s %s 20240102030405\n' "$p" "$f"
  done
done > "$scr"
for f in atime ctime mtime crtime; do
  printf 'set_inode_field / %s 20240102030405\n' "$f" >> "$scr"
done
E2FSPROGS_FAKE_TIME=1704164645 debugfs -w -f "$scr" "$img" >/dev/null 2>&1
e2fsck -fn "$img" >/dev/null 2>&1 || { log "e2fsck reports problems in $img"; exit 1; }
rm -rf "$stage" "$scr"
touch -d '2024-01-02 03:04:05 UTC' "$img"
log "image: $image_size bytes, $(du -sm "$img" | cut -f1) MiB allocated"

files=$(find "$tree" -type f | wc -l)
bytes=$(du -sb "$tree" | cut -f1)
log "done in $(($(date +%s) - start)) s: $files files, $bytes bytes (apparent), $(du -sm "$tree" | cut -f1) MiB on disk"
echo "$key" > "$dir/COMPLETE"
echo "$tree"
