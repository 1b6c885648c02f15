#!/usr/bin/env bash
# Compare forgetting half of 30 snapshots and pruning with hindsight, restic
# and kopia on the same deterministic dataset.
#
#   prune-compare.sh [--small] [--only TOOL[,TOOL...]] [--snapshots N] [--warm] [--out FILE]
#
#   --small        the 10x smaller dataset (dataset.sh --small)
#   --only T       run only these tools (hindsight, restic, kopia)
#   --snapshots N  how many snapshots to make (default 30); the oldest half
#                  is forgotten
#   --warm         do not drop the page cache before the timed step
#   --out FILE     results TSV (default $BENCH_CACHE/results/prune-<time>.tsv)
#
# Per tool, in a fresh repository under $BENCH_CACHE/run (not timed): N
# backups of the dataset, each after a different 1% mutation (mutate.sh
# DIR pcI, reverted after the backup), so that every snapshot holds data of
# its own. Then, timed under /usr/bin/time (wall seconds, peak RSS):
#   hindsight: `hindsight forget --keep-last N/2`, then `hindsight prune`
#              (default --max-unused 5%); peak RSS is the larger of the two
#   restic:    `restic forget --keep-last N/2 --prune` (default max-unused 5%)
#   kopia:     `kopia snapshot delete --delete` of the oldest half, then
#              `kopia maintenance run --full --safety=none` (without
#              --safety=none kopia keeps recent data for hours and deletes
#              nothing here)
# Afterwards (not timed): repository size, and each tool's own check.
#
# Environment: BENCH_CACHE, HINDSIGHT_BIN, RESTIC_BIN, KOPIA_BIN, as for
# compare.sh.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BENCH_CACHE=${BENCH_CACHE:-$HOME/.cache/hindsight-bench}
export BENCH_CACHE

small=
only=hindsight,restic,kopia
snaps=30
drop=1
out=
while [ $# -gt 0 ]; do
  case $1 in
    --small) small=--small ;;
    --only) only=$2; shift ;;
    --snapshots) snaps=$2; shift ;;
    --warm) drop=0 ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "prune-compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $snaps =~ ^[1-9][0-9]*$ ]] && [ "$snaps" -ge 2 ] || { echo "prune-compare.sh: --snapshots wants 2 or more" >&2; exit 2; }
keep=$((snaps - snaps / 2))

stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$BENCH_CACHE/results"
out=${out:-$BENCH_CACHE/results/prune-$stamp.tsv}
LOG=${out%.tsv}.log
: > "$LOG"
: > "$out"
RUN=$BENCH_CACHE/run/prune-$stamp
say() { printf '%s\n' "$*" | tee -a "$LOG" >&2; }

IFS=, read -r -a tools <<< "$only"
peers=()
for t in "${tools[@]}"; do
  case $t in hindsight) ;; restic|kopia) peers+=("$t") ;; *) echo "prune-compare.sh: unknown tool $t" >&2; exit 2 ;; esac
done
[ ${#peers[@]} = 0 ] || "$HERE/install-peers.sh" "${peers[@]}" 2>>"$LOG"
RESTIC=${RESTIC_BIN:-$BENCH_CACHE/bin/restic}
KOPIA=${KOPIA_BIN:-$BENCH_CACHE/bin/kopia}
HINDSIGHT=${HINDSIGHT_BIN:-$BENCH_CACHE/bin/hindsight}
if [ -z "${HINDSIGHT_BIN:-}" ]; then
  (cd "$ROOT" && go build -o "$HINDSIGHT" ./cmd/hindsight) >>"$LOG" 2>&1 || { echo "prune-compare.sh: cannot build ./cmd/hindsight (see $LOG)" >&2; exit 1; }
fi
DATA=$("$HERE/dataset.sh" $small 2>>"$LOG")
export HINDSIGHT RESTIC KOPIA DATA

dropcaches() { if [ $drop = 1 ]; then sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; fi; }

tool_env() {
  local d=$1
  export XDG_CACHE_HOME=$d/cache XDG_CONFIG_HOME=$d/config
  export HINDSIGHT_PASSWORD=bench-password
  export RESTIC_PASSWORD=bench-password RESTIC_REPOSITORY=$d/repo RESTIC_CACHE_DIR=$d/cache/restic
  export KOPIA_PASSWORD=bench-password KOPIA_CONFIG_PATH=$d/config/kopia.config \
    KOPIA_CACHE_DIRECTORY=$d/cache/kopia KOPIA_LOG_DIR=$d/logs KOPIA_CHECK_FOR_UPDATES=false
}

do_init() {
  case $1 in
    hindsight) "$HINDSIGHT" init --repo "$2/repo" ;;
    restic) "$RESTIC" init ;;
    # kopia applies its retention policy at each snapshot (by default it
    # keeps 10 of 30 made within an hour): keep them all until the forget.
    kopia) "$KOPIA" repository create filesystem --path "$2/repo" --override-hostname bench --override-username bench &&
      "$KOPIA" policy set --global --compression=zstd-fastest --keep-latest=1000 ;;
  esac
}

do_backup() {
  case $1 in
    hindsight) "$HINDSIGHT" backup --repo "$2/repo" --quiet "$DATA" ;;
    restic) "$RESTIC" backup --quiet --compression auto --host bench "$DATA" ;;
    kopia) "$KOPIA" snapshot create "$DATA" ;;
  esac
}

# The timed step: forget the oldest half, and prune.
do_forget_prune() {
  local tool=$1 d=$2 keep=$3
  case $tool in
    hindsight)
      "$HINDSIGHT" forget --repo "$d/repo" --quiet --keep-last "$keep" &&
      "$HINDSIGHT" prune --repo "$d/repo" ;;
    restic) "$RESTIC" forget --keep-last "$keep" --prune ;;
    kopia)
      local ids
      ids=$("$KOPIA" snapshot list "$DATA" --json | jq -r "sort_by(.startTime) | .[:-$keep][] | .id")
      # shellcheck disable=SC2086
      "$KOPIA" snapshot delete --delete $ids &&
      "$KOPIA" maintenance run --full --safety=none ;;
  esac
}

do_check() {
  case $1 in
    hindsight) "$HINDSIGHT" check --repo "$2/repo" --read-data ;;
    restic) "$RESTIC" check --read-data ;;
    kopia) "$KOPIA" snapshot verify --verify-files-percent=100 ;;
  esac
}
export -f do_init do_backup do_forget_prune do_check

record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$out"; }

run_tool() {
  local tool=$1 d=$RUN/$1 st=0
  rm -rf "$d"; mkdir -p "$d"
  (
    tool_env "$d"
    do_init "$tool" "$d" >>"$LOG" 2>&1
    for ((i = 1; i <= snaps; i++)); do
      "$HERE/mutate.sh" "$DATA" "pc$i" >>"$LOG" 2>&1
      do_backup "$tool" "$d" >>"$LOG" 2>&1
      "$HERE/mutate.sh" --revert "$DATA" >>"$LOG" 2>&1
    done
    local before after secs kib
    before=$(du -sb "$d/repo" | cut -f1)
    dropcaches
    echo "--- $tool forget+prune (loadavg $(cut -d' ' -f1-3 /proc/loadavg))" >>"$LOG"
    /usr/bin/time -f '%e %M' -o "$d/time.out" bash -c '"$@"' step do_forget_prune "$tool" "$d" "$keep" >>"$LOG" 2>&1
    read -r secs kib < <(tail -1 "$d/time.out")
    after=$(du -sb "$d/repo" | cut -f1)
    do_check "$tool" "$d" >>"$LOG" 2>&1 || { say "  $tool: CHECK FAILED after prune (see $LOG)"; exit 1; }
    record "$tool" prune_s "$secs"
    record "$tool" prune_rss_mib "$(awk -v k="$kib" 'BEGIN {printf "%.1f", k/1024}')"
    record "$tool" repo_before_mib "$(awk -v b="$before" 'BEGIN {printf "%.1f", b/1048576}')"
    record "$tool" repo_after_mib "$(awk -v b="$after" 'BEGIN {printf "%.1f", b/1048576}')"
    say "$(printf '  %-9s forget+prune %7.2f s  %7.1f MiB RSS  repository %s -> %s MiB' "$tool" "$secs" \
      "$(awk -v k="$kib" 'BEGIN {print k/1024}')" "$(awk -v b="$before" 'BEGIN {printf "%.1f", b/1048576}')" \
      "$(awk -v b="$after" 'BEGIN {printf "%.1f", b/1048576}')")"
  ) || st=$?
  "$HERE/mutate.sh" --revert "$DATA" >>"$LOG" 2>&1 || true
  rm -rf "$d"
  [ $st = 0 ] || say "  $tool FAILED (see $LOG)"
}

mkdir -p "$RUN"
trap '"$HERE/mutate.sh" --revert "$DATA" >/dev/null 2>&1 || true; rm -rf "$RUN"' EXIT
say "prune comparison, $stamp: $snaps snapshots of $DATA, the oldest $((snaps / 2)) forgotten"
say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for tool in "${tools[@]}"; do run_tool "$tool"; done
say "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
if grep -q '^hindsight' "$out"; then
  for peer in restic kopia; do
    grep -q "^$peer" "$out" || continue
    for m in prune_s prune_rss_mib; do
      h=$(awk -v m=$m '$1 == "hindsight" && $2 == m {print $3}' "$out")
      p=$(awk -v t=$peer -v m=$m '$1 == t && $2 == m {print $3}' "$out")
      say "$(printf '  hindsight/%s %-14s %.2f' "$peer" "$m" "$(awk -v h="$h" -v p="$p" 'BEGIN {print h/p}')")"
    done
  done
fi
say "results: $out (log: $LOG)"
