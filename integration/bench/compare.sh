#!/usr/bin/env bash
# Compare hindsight with restic and kopia on the same deterministic dataset.
#
#   compare.sh [--reps N] [--small] [--only TOOL[,TOOL...]] [--warm] [--verify] [--out FILE]
#
#   --reps N     repetitions (default 3); the tool order rotates every rep
#   --small      use the 10x smaller dataset (a quick run)
#   --only T     run only these tools (hindsight, restic, kopia; comma-separated)
#   --warm       do not drop the page cache before each timed step
#   --verify     after each restore, compare the restored tree's contents with
#                the source byte for byte (diff -r; slow, not timed)
#   --out FILE   results JSON (default $BENCH_CACHE/results/compare-<time>.json)
#
# Per rep and tool, in a fresh repository under $BENCH_CACHE/run (default
# $HOME/.cache/hindsight-bench/run): init, first backup, no-change backup,
# mutate 1% of the files (mutate.sh), backup, full restore into an empty
# directory (deleted afterwards), repository size (du -sb). The mutation is
# reverted before the next tool runs, so every tool sees the same bytes.
# Each step runs under /usr/bin/time for its wall time and peak RSS.
#
# Environment: BENCH_CACHE, HINDSIGHT_BIN (use this binary instead of building
# ./cmd/hindsight), RESTIC_BIN, KOPIA_BIN.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BENCH_CACHE=${BENCH_CACHE:-$HOME/.cache/hindsight-bench}
export BENCH_CACHE

reps=3
small=
only=hindsight,restic,kopia
drop=1
verify=0
out=
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=$2; shift ;;
    --reps=*) reps=${1#*=} ;;
    --small) small=--small ;;
    --only) only=$2; shift ;;
    --only=*) only=${1#*=} ;;
    --warm) drop=0 ;;
    --verify) verify=1 ;;
    --out) out=$2; shift ;;
    --out=*) out=${1#*=} ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $reps =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: --reps wants a positive number" >&2; exit 2; }

say() { printf '%s\n' "$*" | tee -a "$LOG" >&2; }

stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$BENCH_CACHE/results"
out=${out:-$BENCH_CACHE/results/compare-$stamp.json}
LOG=${out%.json}.log
RAW=${out%.json}.tsv
: > "$LOG"
: > "$RAW"
RUN=$BENCH_CACHE/run/$stamp
t_start=$(date +%s)

IFS=, read -r -a tools <<< "$only"
for t in "${tools[@]}"; do
  case $t in hindsight|restic|kopia) ;; *) echo "compare.sh: unknown tool $t" >&2; exit 2 ;; esac
done
has() { local t; for t in "${tools[@]}"; do [ "$t" = "$1" ] && return 0; done; return 1; }

# --- binaries -------------------------------------------------------------
peers=()
for t in "${tools[@]}"; do [ "$t" = hindsight ] || peers+=("$t"); done
if [ ${#peers[@]} -gt 0 ]; then
  "$HERE/install-peers.sh" "${peers[@]}" 2>>"$LOG"
fi
RESTIC=${RESTIC_BIN:-$BENCH_CACHE/bin/restic}
KOPIA=${KOPIA_BIN:-$BENCH_CACHE/bin/kopia}
HINDSIGHT=${HINDSIGHT_BIN:-}
if has hindsight && [ -z "$HINDSIGHT" ]; then
  HINDSIGHT=$BENCH_CACHE/bin/hindsight
  if ! (cd "$ROOT" && go build -o "$HINDSIGHT" ./cmd/hindsight) >>"$LOG" 2>&1; then
    if [ "$only" = hindsight ]; then
      echo "compare.sh: cannot build ./cmd/hindsight (see $LOG)" >&2; exit 1
    fi
    say "WARNING: ./cmd/hindsight does not build (see $LOG); running the peers only"
    peers=()
    for t in "${tools[@]}"; do [ "$t" = hindsight ] || peers+=("$t"); done
    tools=("${peers[@]}")
  fi
fi
[ ${#tools[@]} -gt 0 ] || { echo "compare.sh: no tool to run" >&2; exit 1; }

# --- dataset --------------------------------------------------------------
DATA=$("$HERE/dataset.sh" $small 2>>"$LOG")
data_files=$(find "$DATA" -type f | wc -l)
data_bytes=$(du -sb "$DATA" | cut -f1)

# --- page cache -----------------------------------------------------------
drop_status=off
if [ $drop = 1 ]; then
  if sync && { echo 3 > /proc/sys/vm/drop_caches; } 2>/dev/null; then
    drop_status=on
  else
    drop_status="unavailable (cannot write /proc/sys/vm/drop_caches)"
    drop=0
  fi
fi
dropcaches() { if [ $drop = 1 ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi; }

version() {
  case $1 in
    hindsight)
      if [ -n "${HINDSIGHT_BIN:-}" ]; then echo "binary $HINDSIGHT_BIN"
      else echo "built from $ROOT (HEAD $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?') plus the work tree's changes)"; fi ;;
    restic) "$RESTIC" version | head -1 ;;
    kopia) echo "kopia $("$KOPIA" --version | head -1 | cut -d' ' -f1)" ;;
  esac
}

say "hindsight benchmark comparison, $stamp"
say "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -r), $(go env GOVERSION)"
say "dataset: $DATA ($data_files files, $data_bytes bytes apparent)"
say "tools: ${tools[*]}; reps: $reps (order rotates each rep)"
for t in "${tools[@]}"; do say "  $t: $(version "$t" | paste -sd' ')"; done
say "settings: restic --compression auto (its default); kopia compression ON: policy set --global --compression=zstd-fastest; hindsight defaults (zstd)"
say "page cache dropped before each timed step: $drop_status"
load0=$(cut -d' ' -f1 /proc/loadavg)
say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v l="$load0" 'BEGIN {exit !(l > 0.5)}'; then
  say "WARNING: the machine is busy (load $load0); other work skews the timings"
fi
say "log: $LOG"

# --- measurement ----------------------------------------------------------
# record REP TOOL METRIC VALUE
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$RAW"; }

# measure REP TOOL STEP CMD...: run CMD under /usr/bin/time after dropping
# caches; records STEP_s and rss_STEP_mib. Returns CMD's status.
measure() {
  local rep=$1 tool=$2 step=$3; shift 3
  local tf=$RUN/time.out st=0
  dropcaches
  echo "--- rep $rep $tool $step: $* (loadavg $(cut -d' ' -f1-3 /proc/loadavg))" >> "$LOG"
  # The steps are shell functions: run them in a child bash under time.
  # %M is the largest RSS of the process tree, i.e. the tool's own.
  /usr/bin/time -f '%e %M' -o "$tf" bash -c '"$@"' step "$@" >> "$LOG" 2>&1 || st=$?
  if [ $st != 0 ]; then
    say "  $tool $step FAILED (exit $st), see $LOG"
    return $st
  fi
  local secs kib
  read -r secs kib < <(tail -1 "$tf")
  record "$rep" "$tool" "${step}_s" "$secs"
  record "$rep" "$tool" "rss_${step}_mib" "$(awk -v k="$kib" 'BEGIN {printf "%.1f", k/1024}')"
  # Peak RSS is over the routine operations (backups, restore); init's
  # (mostly the key derivation) is recorded as rss_init_mib.
  if [ "$step" != init ] && [ "$kib" -gt "${peak_kib:-0}" ]; then peak_kib=$kib; fi
  printf '  %-9s %-16s %8.2f s  %7.1f MiB RSS\n' "$tool" "$step" "$secs" "$(awk -v k="$kib" 'BEGIN {print k/1024}')" | tee -a "$LOG" >&2
}

mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b/1048576}'; }

# Each tool: setup (environment), and commands for init, backup, restore.
tool_env() {
  local tool=$1 d=$2
  export XDG_CACHE_HOME=$d/cache XDG_CONFIG_HOME=$d/config
  case $tool in
    hindsight)
      export HINDSIGHT_PASSWORD=bench-password ;;
    restic)
      export RESTIC_PASSWORD=bench-password RESTIC_REPOSITORY=$d/repo RESTIC_CACHE_DIR=$d/cache/restic ;;
    kopia)
      export KOPIA_PASSWORD=bench-password KOPIA_CONFIG_PATH=$d/config/kopia.config \
        KOPIA_CACHE_DIRECTORY=$d/cache/kopia KOPIA_LOG_DIR=$d/logs KOPIA_CHECK_FOR_UPDATES=false ;;
  esac
}

do_init() {
  local tool=$1 d=$2
  case $tool in
    hindsight) "$HINDSIGHT" init --repo "$d/repo" ;;
    restic) "$RESTIC" init ;;
    kopia)
      "$KOPIA" repository create filesystem --path "$d/repo" \
        --override-hostname bench --override-username bench &&
      "$KOPIA" policy set --global --compression=zstd-fastest ;;
  esac
}

do_backup() {
  local tool=$1 d=$2
  case $tool in
    hindsight) "$HINDSIGHT" backup --repo "$d/repo" "$DATA" ;;
    restic) "$RESTIC" backup --compression auto --host bench "$DATA" ;;
    kopia) "$KOPIA" snapshot create "$DATA" ;;
  esac
}

do_restore() {
  local tool=$1 d=$2 target=$3
  case $tool in
    hindsight) "$HINDSIGHT" restore --repo "$d/repo" latest --target "$target" ;;
    restic) "$RESTIC" restore latest --host bench --target "$target" ;;
    kopia) "$KOPIA" snapshot restore --snapshot-time=latest "$DATA" "$target" ;;
  esac
}

export -f do_init do_backup do_restore
export HINDSIGHT RESTIC KOPIA DATA

# tree_summary DIR: "files bytes" of the regular files below DIR.
tree_summary() { find "$1" -type f -printf '%s\n' | awk '{n++; b+=$1} END {printf "%d %.0f\n", n, b}'; }

# run_tool REP TOOL: the whole sequence for one tool in one rep. The body
# runs in a subshell (its exports stay there); each step checks its status
# explicitly, since set -e does not apply in a subshell tested with ||.
run_tool() {
  local rep=$1 tool=$2 d=$RUN/$2 st=0
  rm -rf "$d"; mkdir -p "$d"
  (
    peak_kib=0
    tool_env "$tool" "$d"
    measure "$rep" "$tool" init do_init "$tool" "$d" || exit 1
    measure "$rep" "$tool" first_backup do_backup "$tool" "$d" || exit 1
    record "$rep" "$tool" repo_first_mib "$(mib "$(du -sb "$d/repo" | cut -f1)")"
    measure "$rep" "$tool" nochange_backup do_backup "$tool" "$d" || exit 1
    "$HERE/mutate.sh" "$DATA" "rep$rep" >> "$LOG" 2>&1 || { say "  mutate.sh failed"; exit 1; }
    measure "$rep" "$tool" incr_backup do_backup "$tool" "$d" || exit 1
    local repo_mib
    repo_mib=$(mib "$(du -sb "$d/repo" | cut -f1)")
    record "$rep" "$tool" repo_size_mib "$repo_mib"
    record "$rep" "$tool" cache_size_mib "$(mib "$( (du -sb "$d/cache" 2>/dev/null || echo 0) | cut -f1)")"
    mkdir -p "$d/restore"
    measure "$rep" "$tool" restore do_restore "$tool" "$d" "$d/restore" || exit 1
    local peak_mib
    peak_mib=$(awk -v k="$peak_kib" 'BEGIN {printf "%.1f", k/1024}')
    record "$rep" "$tool" peak_rss_mib "$peak_mib"
    # Check the restore: as many files and bytes as the source (the tools
    # lay the tree out differently below the target, so only totals).
    local want got
    want=$(tree_summary "$DATA"); got=$(tree_summary "$d/restore")
    if [ "$want" != "$got" ]; then
      say "  $tool restore MISMATCH: source has $want (files bytes), restore has $got"
      exit 1
    fi
    if [ $verify = 1 ]; then
      local rdir
      rdir=$(find "$d/restore" -type d -path "*/$(basename "$(dirname "$DATA")")/tree" -print -quit)
      [ -n "$rdir" ] || rdir=$d/restore
      diff -r --no-dereference "$DATA" "$rdir" >> "$LOG" 2>&1 || { say "  $tool restore differs from source (diff -r)"; exit 1; }
      say "  $tool restore verified byte for byte"
    fi
    say "  $tool: repository $repo_mib MiB, peak RSS $peak_mib MiB, restore has $got (files bytes)"
  ) || st=$?
  "$HERE/mutate.sh" --revert "$DATA" >> "$LOG" 2>&1
  rm -rf "$d"
  if [ $st != 0 ]; then
    say "  $tool rep $rep FAILED; its numbers for this rep are incomplete"
    record "$rep" "$tool" failed 1
  fi
}

mkdir -p "$RUN"
trap '"$HERE/mutate.sh" --revert "$DATA" >/dev/null 2>&1 || true; rm -rf "$RUN"' EXIT
n=${#tools[@]}
for ((rep = 1; rep <= reps; rep++)); do
  order=()
  for ((i = 0; i < n; i++)); do order+=("${tools[$(((i + rep - 1) % n))]}"); done
  say "rep $rep/$reps: ${order[*]}"
  for tool in "${order[@]}"; do
    run_tool "$rep" "$tool"
  done
done

"$(bash "$HERE/build-gen.sh")" report "$RAW" "$out" | tee -a "$LOG"
# Add the run's context to the JSON.
versions=$(for t in "${tools[@]}"; do jq -n --arg t "$t" --arg v "$(version "$t" | paste -sd' ')" '{($t): $v}'; done | jq -s add)
jq --arg stamp "$stamp" --argjson versions "$versions" --arg load "$load0 $(cut -d' ' -f1 /proc/loadavg)" --arg data "$DATA" --argjson files "$data_files" --argjson bytes "$data_bytes" \
   --arg drop "$drop_status" --argjson reps "$reps" --arg small "${small:+yes}" \
   --arg kopia "compression on (zstd-fastest)" --arg restic "compression auto" \
   --argjson secs "$(($(date +%s) - t_start))" \
   '{run: {time: $stamp, dataset: $data, small: ($small == "yes"), files: $files, bytes: $bytes,
           reps: $reps, drop_caches: $drop, restic: $restic, kopia: $kopia, total_seconds: $secs,
           versions: $versions, loadavg_start_end: $load}} + .' \
   "$out" > "$out.tmp" && mv "$out.tmp" "$out"
say ""
say "total time: $(($(date +%s) - t_start)) s"
say "results: $out (raw: $RAW, log: $LOG)"
