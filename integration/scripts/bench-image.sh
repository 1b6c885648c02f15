#!/usr/bin/env bash
# bench-image.sh: image backup of a 2 GiB volume with hindsight vs
# `restic backup --stdin` vs `dd | zstd`; then backups after changing 1%
# of the volume (clustered, then scattered), and an image restore. Run as root
# (loop mount to fill the volume, dropping the page cache). restic comes
# from integration/bench/install-peers.sh's cache, or PATH.
#
#   integration/scripts/bench-image.sh [WORKDIR]   (default a temp dir, removed)
#
# Prints one line per step: tool, step, seconds, MB/s, repository bytes.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"

work=${1:-$(mktemp -d /var/tmp/hindsight-bench-image.XXXXXX)}
[[ -n ${1:-} ]] || trap 'umount -q "$work/mnt" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work"
restic=$(command -v restic || echo "$HOME/.cache/hindsight-bench/bin/restic")
[[ -x $restic ]] || { echo "bench-image: no restic; run integration/bench/install-peers.sh" >&2; exit 2; }
go build -o "$work/hindsight" ./cmd/hindsight
hs=$work/hindsight
export HINDSIGHT_PASSWORD=bench RESTIC_PASSWORD=bench

img=$work/volume.img
size=$((2 << 30))
# A used ext4 volume: 1.2 GiB of files (random, and text that compresses),
# the rest free space that reads as zeros.
truncate -s $size "$img"
mkfs.ext4 -q -F "$img"
mkdir -p "$work/mnt"
mount -o loop "$img" "$work/mnt"
for i in $(seq 0 11); do
	head -c 80M /dev/urandom > "$work/mnt/random$i"
	(yes "hindsight bench line $i $(date +%N)" || true) | head -c 20M > "$work/mnt/text$i"
done
umount "$work/mnt"

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
bytes() { du -sb "$1" | cut -f1; }
step() { # step TOOL NAME REPO COMMAND...
	local tool=$1 name=$2 repo=$3; shift 3
	drop
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null
	t1=$(date +%s.%N)
	awk -v t="$tool" -v n="$name" -v a="$t0" -v b="$t1" -v s=$size -v r="$( [[ -e $repo ]] && bytes "$repo" || echo 0)" \
		'BEGIN { d = b - a; printf "%-10s %-9s %7.2f s %8.1f MB/s  repo %d\n", t, n, d, s / d / 1e6, r }'
}

"$hs" init --repo "$work/hs" >/dev/null
"$restic" init --repo "$work/restic" -q

step hindsight first "$work/hs" "$hs" --repo "$work/hs" -q backup-volume "$img"
step restic first "$work/restic" sh -c "'$restic' --repo '$work/restic' -q backup --stdin --stdin-filename volume.img < '$img'"
step dd+zstd first "$work/vol.zst" sh -c "dd if='$img' bs=4M status=none | zstd -q -T0 -3 > '$work/vol.zst'"

# change KIND: write 1% of the volume anew, either as 20 runs of about
# 1 MiB at random places, as a guest's file writes cluster (clustered), or
# as 1% of the 4 KiB blocks scattered at random, which touches nearly every
# 1 MiB chunk and is the worst case for any chunking (scattered).
change() {
	python3 - "$img" "$1" <<'PY'
import os, random, sys
f = os.open(sys.argv[1], os.O_WRONLY)
size = os.fstat(f).st_size
rnd = random.Random(sys.argv[2])
if sys.argv[2] == "clustered":
    run = size // 100 // 20
    for _ in range(20):
        os.pwrite(f, os.urandom(run), rnd.randrange(0, size - run) // 4096 * 4096)
else:
    blocks = size // 4096
    for b in rnd.sample(range(blocks), blocks // 100):
        os.pwrite(f, os.urandom(4096), b * 4096)
os.close(f)
PY
}

for kind in clustered scattered; do
	change $kind
	step hindsight $kind "$work/hs" "$hs" --repo "$work/hs" -q backup-volume "$img"
	step restic $kind "$work/restic" sh -c "'$restic' --repo '$work/restic' -q backup --stdin --stdin-filename volume.img < '$img'"
done

step hindsight restore "$work/hs" "$hs" --repo "$work/hs" -q restore-volume latest "$work/restored.img"
cmp "$img" "$work/restored.img"
rm -f "$work/restored.img"
step restic restore "$work/restic" sh -c "'$restic' --repo '$work/restic' -q dump latest volume.img > '$work/restored.img'"
cmp "$img" "$work/restored.img"
