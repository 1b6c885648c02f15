#!/usr/bin/env bash
# bench-image.sh: image backup of a 2 GiB volume with hindsight vs
# `restic backup --stdin` vs `dd | zstd`; then backups after changing 1%
# of the volume (clustered, then scattered), and an image restore. Then
# the same volume as an image file on XFS (reflink=1), backed up with
# `backup-volume --reflink` (hindsight-cbt) before and after the same
# clustered change: changed-block tracking through reflink clones. Run as
# root (loop mounts, dropping the page cache). restic comes from
# integration/bench/install-peers.sh's cache, or PATH.
#
#   integration/scripts/bench-image.sh [WORKDIR]   (default a temp dir, removed)
#
# Prints one line per step: tool, step, seconds, MB/s, CPU seconds (user +
# system), MB read from block devices, repository bytes; then the ratios
# second/first of hindsight's backups.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"

work=${1:-$(mktemp -d /var/tmp/hindsight-bench-image.XXXXXX)}
unmount() { umount -q "$work/mnt" 2>/dev/null || true; umount -q "$work/xfs" 2>/dev/null || true; }
if [[ -n ${1:-} ]]; then trap unmount EXIT; else trap 'unmount; rm -rf "$work"' EXIT; fi
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

# The same volume as a guest's image file on XFS with reflink, for
# backup-volume --reflink.
truncate -s $((3 << 30)) "$work/xfs.img"
mkfs.xfs -q -f -m reflink=1 "$work/xfs.img"
mkdir -p "$work/xfs"
mount -o loop "$work/xfs.img" "$work/xfs"
cp --reflink=never "$img" "$work/xfs/volume.img"
guest=$work/xfs/volume.img

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
bytes() { du -sb "$1" | cut -f1; }
declare -A secs
step() { # step TOOL NAME REPO COMMAND...
	local tool=$1 name=$2 repo=$3; shift 3
	drop
	# GNU time: wall and CPU seconds, and blocks of 512 bytes read from
	# block devices (rusage inblock, the children of sh -c included).
	/usr/bin/time -f "%e %U %S %I" -o "$work/time" "$@" >/dev/null
	read -r wall user sys inblocks < "$work/time"
	secs[$tool/$name]=$wall
	awk -v t="$tool" -v n="$name" -v d="$wall" -v c="$user + $sys" -v i="$inblocks" -v s=$size \
		-v r="$( [[ -e $repo ]] && bytes "$repo" || echo 0)" \
		'BEGIN { split(c, cs, " + "); printf "%-13s %-9s %7.2f s %8.1f MB/s  cpu %6.2f s  read %6.0f MB  repo %d\n",
			t, n, d, s / d / 1e6, cs[1] + cs[2], i * 512 / 1e6, r }'
}
ratio() { awk -v n="$1" -v a="${secs[$2]}" -v b="${secs[$3]}" 'BEGIN { printf "%-34s %.3f (%.2f s / %.2f s)\n", n, b / a, b, a }'; }

"$hs" init --repo "$work/hs" >/dev/null
"$hs" init --repo "$work/hs-cbt" >/dev/null
"$restic" init --repo "$work/restic" -q

step hindsight first "$work/hs" "$hs" --repo "$work/hs" -q backup-volume "$img"
step restic first "$work/restic" sh -c "'$restic' --repo '$work/restic' -q backup --stdin --stdin-filename volume.img < '$img'"
step dd+zstd first "$work/vol.zst" sh -c "dd if='$img' bs=4M status=none | zstd -q -T0 -3 > '$work/vol.zst'"

# change IMAGE KIND: write 1% of the volume anew, either as 20 runs of about
# 1 MiB at random places, as a guest's file writes cluster (clustered), or
# as 1% of the 4 KiB blocks scattered at random, which touches nearly every
# 1 MiB chunk and is the worst case for any chunking (scattered).
change() {
	python3 - "$1" "$2" <<'PY'
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

step hindsight-cbt first "$work/hs-cbt" "$hs" --repo "$work/hs-cbt" -q backup-volume --reflink "$guest"

for kind in clustered scattered; do
	change "$img" $kind
	step hindsight $kind "$work/hs" "$hs" --repo "$work/hs" -q backup-volume "$img"
	step restic $kind "$work/restic" sh -c "'$restic' --repo '$work/restic' -q backup --stdin --stdin-filename volume.img < '$img'"
	change "$guest" $kind
	step hindsight-cbt $kind "$work/hs-cbt" "$hs" --repo "$work/hs-cbt" -q backup-volume --reflink "$guest"
done

step hindsight restore "$work/hs" "$hs" --repo "$work/hs" -q restore-volume latest "$work/restored.img"
cmp "$img" "$work/restored.img"
rm -f "$work/restored.img"
step restic restore "$work/restic" sh -c "'$restic' --repo '$work/restic' -q dump latest volume.img > '$work/restored.img'"
cmp "$img" "$work/restored.img"
"$hs" --repo "$work/hs-cbt" -q restore-volume latest "$work/restored.img"
cmp "$guest" "$work/restored.img"
rm -f "$work/restored.img"

ratio "hindsight clustered/first" hindsight/first hindsight/clustered
ratio "hindsight-cbt clustered/first" hindsight-cbt/first hindsight-cbt/clustered
ratio "hindsight-cbt clustered/hindsight first" hindsight/first hindsight-cbt/clustered
