#!/usr/bin/env bash
# Compare browsing a backup through FUSE: hindsight mount vs restic mount,
# kopia mount and borg mount, on the dataset of dataset.sh.
#
#   mount-compare.sh [--small] [--reps N] [--only TOOL[,TOOL...]] [--out FILE]
#                    [--repos DIR]
#
#   --small      use the 10x smaller dataset (a quick run)
#   --reps N     repetitions (default 3); the tool order rotates every rep
#   --only T     run only these tools (hindsight, restic, kopia, borg)
#   --out FILE   results JSON (default $BENCH_CACHE/results/mount-<time>.json)
#   --repos DIR  make the repositories and mount points under DIR (default
#                $BENCH_CACHE/run); --repos /dev/shm takes the disk out of
#                the cold cat: what each mount makes of this machine's CPU
#                (the run needs about three times the dataset's size there)
#
# Each tool backs the dataset up once into a fresh repository (not timed).
# Then, per rep and tool, with the page cache dropped before each step:
#   mount        start the mount process until the mount point answers
#   first ls     ls -l of the snapshot's root, the first access after mounting
#                (also timed from the start of the mount)
#   cat cold     cat of one 512 MiB file never read before (rep N reads
#                large/rand<(N-1) mod 4>.bin); cat warm reads it again with
#                the page cache kept; both are checked against the source.
#                Right before it, in column "machine": the same file read
#                cold from the source tree (what the disk gives a plain read
#                at that moment, a ceiling for any mount of a local
#                repository), and 512 MiB of fresh memory filled by dd (what
#                filling the page cache costs at least; in a VM whose freed
#                memory goes back to the host this is slow, and it is paid
#                by the mount process, which writes the data in)
#   find         find | wc -l over the whole tree (the count is checked),
#                then the mount process's RSS
#   du -s        over the whole tree, then the RSS and its peak (VmHWM)
# and unmounts. Every mount is unmounted and every mount process ended on
# any exit, Ctrl-C included.
#
# Environment: BENCH_CACHE, HINDSIGHT_BIN (use this binary instead of
# building ./cmd/hindsight), RESTIC_BIN, KOPIA_BIN.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BENCH_CACHE=${BENCH_CACHE:-$HOME/.cache/hindsight-bench}
export BENCH_CACHE

reps=3
small=
only=hindsight,restic,kopia,borg
out=
repos=$BENCH_CACHE/run
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=$2; shift ;;
    --reps=*) reps=${1#*=} ;;
    --small) small=--small ;;
    --only) only=$2; shift ;;
    --only=*) only=${1#*=} ;;
    --out) out=$2; shift ;;
    --out=*) out=${1#*=} ;;
    --repos) repos=$2; shift ;;
    --repos=*) repos=${1#*=} ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "mount-compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $reps =~ ^[1-9][0-9]*$ ]] || { echo "mount-compare.sh: --reps wants a positive number" >&2; exit 2; }
IFS=, read -r -a tools <<< "$only"
for t in "${tools[@]}"; do
  case $t in hindsight|restic|kopia|borg) ;; *) echo "mount-compare.sh: unknown tool $t" >&2; exit 2 ;; esac
done
has() { [[ ,$only, == *,$1,* ]]; }
[ "$(id -u)" = 0 ] || { echo "mount-compare.sh: run as root (drop_caches, FUSE)" >&2; exit 1; }

stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$BENCH_CACHE/results"
out=${out:-$BENCH_CACHE/results/mount-$stamp.json}
LOG=${out%.json}.log
RAW=${out%.json}.tsv
: > "$LOG"
: > "$RAW"
RUN=$repos/mount-$stamp
say() { printf '%s\n' "$*" | tee -a "$LOG" >&2; }

# --- cleanup: every mount this run made, every process it started --------
# The measurements run in a background job whose mounts and mount processes
# are listed in $STATE. The script waits for the job with `wait`, which a
# trapped signal interrupts at once: a foreground command that handles
# Ctrl-C itself (as a mount command does) would make bash ignore it.
STATE=$RUN/state
job=
is_mounted() { awk -v d="$1" '$2 == d {f = 1} END {exit !f}' /proc/self/mounts; }
alive() { [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
cleanup() {
  local kind x i left=0
  if [ -n "$job" ]; then kill "$job" 2>/dev/null || true; fi
  [ -f "$STATE" ] || { rm -rf "$RUN"; return; }
  # Mount processes unmount when told to stop; a mount whose process is
  # gone is then detached.
  while read -r kind x; do if [ "$kind" = pid ] && alive "$x"; then kill "$x" 2>/dev/null || true; fi; done < "$STATE"
  while read -r kind x; do
    if [ "$kind" = pid ]; then for ((i = 0; i < 100; i++)); do alive "$x" || break; sleep 0.1; done; fi
  done < "$STATE"
  while read -r kind x; do
    if [ "$kind" = mount ] && is_mounted "$x"; then
      fusermount3 -u -z "$x" 2>/dev/null || umount -l "$x" 2>/dev/null || true
      if is_mounted "$x"; then echo "mount-compare.sh: $x is still mounted" >&2; left=1; fi
    fi
  done < "$STATE"
  if [ $left = 0 ]; then rm -rf "$RUN"; else echo "mount-compare.sh: leaving $RUN" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools ----------------------------------------------------------------
# fusermount3 and borg come from Debian, borg with pyfuse3 for borg mount.
# Debian's borg runs under /usr/bin/python3, which is where the module
# must be.
debs=()
command -v fusermount3 >/dev/null || debs+=(fuse3)
if has borg && ! { command -v borg && /usr/bin/python3 -c 'import pyfuse3'; } >/dev/null 2>&1; then
  debs+=(borgbackup python3-pyfuse3)
fi
if [ ${#debs[@]} -gt 0 ]; then
  say "installing Debian packages: ${debs[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${debs[@]}" >>"$LOG"
fi
peers=()
for t in restic kopia; do if has $t; then peers+=($t); fi; done
# install-peers.sh also installs jq and GNU time; it wants at least one peer.
"$HERE/install-peers.sh" "${peers[@]:-restic}" 2>>"$LOG"
command -v fusermount3 >/dev/null || { echo "mount-compare.sh: fusermount3 missing (Debian package fuse3)" >&2; exit 1; }
RESTIC=${RESTIC_BIN:-$BENCH_CACHE/bin/restic}
KOPIA=${KOPIA_BIN:-$BENCH_CACHE/bin/kopia}
HINDSIGHT=${HINDSIGHT_BIN:-}
if has hindsight && [ -z "$HINDSIGHT" ]; then
  HINDSIGHT=$BENCH_CACHE/bin/hindsight
  (cd "$ROOT" && go build -o "$HINDSIGHT" ./cmd/hindsight) >>"$LOG" 2>&1 ||
    { echo "mount-compare.sh: cannot build ./cmd/hindsight (see $LOG)" >&2; exit 1; }
fi

version() {
  case $1 in
    hindsight) if [ -n "${HINDSIGHT_BIN:-}" ]; then echo "binary $HINDSIGHT_BIN"
               else echo "built from $ROOT (HEAD $(cd "$ROOT" && git rev-parse --short HEAD) plus the work tree's changes)"; fi ;;
    restic) "$RESTIC" version | head -1 ;;
    kopia) echo "kopia $("$KOPIA" --version | head -1 | cut -d' ' -f1)" ;;
    borg) borg --version ;;
  esac
}

# --- dataset --------------------------------------------------------------
DATA=$("$HERE/dataset.sh" $small 2>>"$LOG")
data_entries=$(find "$DATA" | wc -l)
big_size=$(stat -c %s "$DATA/large/rand0.bin")

dropcaches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

say "mount benchmark, $stamp"
say "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
say "dataset: $DATA ($data_entries entries; large files of $big_size bytes)"
say "tools: ${tools[*]}; reps: $reps (order rotates each rep); repositories under $repos"
for t in "${tools[@]}"; do say "  $t: $(version "$t")"; done
load0=$(cut -d' ' -f1 /proc/loadavg)
say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v l="$load0" 'BEGIN {exit !(l > 0.5)}'; then
  say "WARNING: the machine is busy (load $load0); other work skews the timings"
fi

# tool_env TOOL DIR: passwords, and every cache and config inside DIR.
tool_env() {
  local d=$2
  export XDG_CACHE_HOME=$d/cache XDG_CONFIG_HOME=$d/config
  case $1 in
    hindsight) export HINDSIGHT_PASSWORD=bench-password HINDSIGHT_REPOSITORY=$d/repo ;;
    restic) export RESTIC_PASSWORD=bench-password RESTIC_REPOSITORY=$d/repo RESTIC_CACHE_DIR=$d/cache/restic ;;
    kopia) export KOPIA_PASSWORD=bench-password KOPIA_CONFIG_PATH=$d/config/kopia.config \
             KOPIA_CACHE_DIRECTORY=$d/cache/kopia KOPIA_LOG_DIR=$d/logs KOPIA_CHECK_FOR_UPDATES=false ;;
    borg) export BORG_PASSPHRASE=bench-password BORG_REPO=$d/repo BORG_BASE_DIR=$d/borg ;;
  esac
}

# backup TOOL DIR: a repository in DIR/repo holding one snapshot of DATA,
# made as compare.sh makes it (borg: its default lz4 compression).
backup() {
  local d=$2
  case $1 in
    hindsight) "$HINDSIGHT" init && "$HINDSIGHT" backup --quiet --host bench "$DATA" ;;
    restic) "$RESTIC" init && "$RESTIC" backup --compression auto --host bench "$DATA" ;;
    kopia) "$KOPIA" repository create filesystem --path "$d/repo" --override-hostname bench --override-username bench &&
           "$KOPIA" policy set --global --compression=zstd-fastest && "$KOPIA" snapshot create "$DATA" ;;
    borg) borg init --encryption=repokey-blake2 && borg create "::bench" "$DATA" ;;
  esac
}

# snapshot_root TOOL MNT: where DATA's tree is inside the mount.
snapshot_root() {
  case $1 in
    hindsight) local src=${DATA#/}; echo "$2/bench-${src//\//-}/latest" ;;
    restic) echo "$2/snapshots/latest$DATA" ;;
    kopia) echo "$2" ;;
    borg) echo "$2$DATA" ;;
  esac
}

# start_mount TOOL MNT: mounts and prints the pid of the process serving
# the mount. restic, kopia and borg -f serve in the foreground.
start_mount() {
  local mnt=$2
  case $1 in
    hindsight)
      "$HINDSIGHT" mount --daemon --pid-file "$mnt.pid" "$mnt" >>"$LOG" 2>&1 && cat "$mnt.pid" ;;
    restic) "$RESTIC" mount "$mnt" >>"$LOG" 2>&1 & echo $! ;;
    kopia)
      local obj
      obj=$("$KOPIA" snapshot list --json "$DATA" | jq -r '.[-1].rootEntry.obj')
      "$KOPIA" mount "$obj" "$mnt" >>"$LOG" 2>&1 & echo $! ;;
    borg) borg mount -f "::bench" "$mnt" >>"$LOG" 2>&1 & echo $! ;;
  esac
}

# stop_mount MNT PID: unmount and wait for the process to end.
stop_mount() {
  local mnt=$1 pid=$2 i
  if is_mounted "$mnt"; then fusermount3 -u "$mnt" >>"$LOG" 2>&1 || fusermount3 -u -z "$mnt" >>"$LOG" 2>&1 || true; fi
  for ((i = 0; i < 200; i++)); do alive "$pid" || return 0; sleep 0.1; done
  say "  process $pid did not exit 20 s after unmount; killing it"
  kill "$pid" 2>/dev/null || true
}

record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$RAW"; }
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}'; }
# mbps BYTES SECS: the rate in MB/s.
mbps() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.1f", b / s / 1e6}'; }
# rss_mib PID [FIELD]: VmRSS (or FIELD) of PID in MiB; -1 once it is gone.
rss_mib() { awk -v f="${2:-VmRSS}:" '$1 == f {printf "%.1f", $2/1024; found = 1} END {if (!found) print -1}' "/proc/$1/status" 2>/dev/null || echo -1; }

# measure_tool REP TOOL: one mount of TOOL's repository and every step on it.
measure_tool() {
  local rep=$1 tool=$2 d=$RUN/$2 mnt=$RUN/$2/mnt pid t root secs n disk_mbps
  local big=large/rand$(((rep - 1) % 4)).bin
  # failed WHAT: report a step that failed and unmount.
  failed() { say "  $tool: $1 failed (see $LOG)"; stop_mount "$mnt" "$pid"; }
  tool_env "$tool" "$d"
  mkdir -p "$mnt"
  echo "mount $mnt" >> "$STATE"
  echo "--- rep $rep $tool (loadavg $(cut -d' ' -f1-3 /proc/loadavg))" >> "$LOG"
  dropcaches
  t=$(now)
  pid=$(start_mount "$tool" "$mnt") || { say "  $tool: mount failed (see $LOG)"; return 1; }
  echo "pid $pid" >> "$STATE"
  # The slash makes find and du walk through hindsight's "latest" symlink.
  root=$(snapshot_root "$tool" "$mnt")/
  # Ready when the mount point answers; a dead process will not get there.
  local deadline=$((SECONDS + 300))
  until is_mounted "$mnt" && stat "$mnt" >/dev/null 2>&1; do
    if ! alive "$pid" || [ $SECONDS -gt $deadline ]; then failed "mount did not come up"; return 1; fi
    sleep 0.02
  done
  record "$rep" "$tool" mount_s "$(since "$t")"
  local t_ls
  t_ls=$(now)
  ls -l "$root" >/dev/null || { failed "ls $root"; return 1; }
  record "$rep" "$tool" first_ls_s "$(since "$t_ls")"
  # Some tools load the snapshot when mounting, others on the first access.
  record "$rep" "$tool" mount_ls_s "$(since "$t")"

  dropcaches
  t=$(now); cat "$DATA/$big" >/dev/null; secs=$(since "$t")
  disk_mbps=$(mbps "$big_size" "$secs")
  record "$rep" machine cat_cold_mbps "$disk_mbps"
  dropcaches
  t=$(now); dd if=/dev/zero of=/dev/null bs=512M count=1 status=none; secs=$(since "$t")
  record "$rep" machine fresh_mem_mbps "$(mbps $((512 << 20)) "$secs")"
  dropcaches
  t=$(now); cat "$root$big" >/dev/null || { failed "cat $big"; return 1; }; secs=$(since "$t")
  record "$rep" "$tool" cat_cold_mbps "$(mbps "$big_size" "$secs")"
  t=$(now); cat "$root$big" >/dev/null || { failed "cat $big"; return 1; }; secs=$(since "$t")
  record "$rep" "$tool" cat_warm_mbps "$(mbps "$big_size" "$secs")"
  cmp -s "$root$big" "$DATA/$big" || say "  $tool: $big read through the mount DIFFERS from the source"

  dropcaches
  t=$(now); n=$(find "$root" | wc -l); record "$rep" "$tool" find_s "$(since "$t")"
  [ "$n" = "$data_entries" ] || say "  $tool: find listed $n entries, the source has $data_entries"
  record "$rep" "$tool" rss_find_mib "$(rss_mib "$pid")"

  dropcaches
  t=$(now); du -s "$root" >/dev/null || { failed "du -s"; return 1; }; record "$rep" "$tool" du_s "$(since "$t")"
  record "$rep" "$tool" rss_du_mib "$(rss_mib "$pid")"
  record "$rep" "$tool" peak_rss_mib "$(rss_mib "$pid" VmHWM)"
  stop_mount "$mnt" "$pid"
  awk -v r="$rep" -v t="$tool" '$1 == r && $2 == t {printf "%s=%s ", $3, $4} END {print ""}' "$RAW" | sed "s/^/  $tool: /; s/\$/(source cat cold $disk_mbps MB\/s)/" | tee -a "$LOG" >&2
}

measure_all() {
  local tool rep i n=${#tools[@]} order
  for tool in "${tools[@]}"; do
    say "backing up with $tool (not timed)"
    mkdir -p "$RUN/$tool"
    ( tool_env "$tool" "$RUN/$tool"; cd "$RUN/$tool"; backup "$tool" "$RUN/$tool" ) >>"$LOG" 2>&1 ||
      { echo "mount-compare.sh: $tool backup failed (see $LOG)" >&2; exit 1; }
  done
  for ((rep = 1; rep <= reps; rep++)); do
    order=()
    for ((i = 0; i < n; i++)); do order+=("${tools[$(((i + rep - 1) % n))]}"); done
    say "rep $rep/$reps: ${order[*]}"
    for tool in "${order[@]}"; do
      measure_tool "$rep" "$tool" || record "$rep" "$tool" failed 1
    done
  done
}

mkdir -p "$RUN"
: > "$STATE"
measure_all &
job=$!
wait $job
job=

# --- report ---------------------------------------------------------------
# key, label, unit, which way is better
metrics='[
  ["mount_s", "mount until it answers", "s", "lower"],
  ["first_ls_s", "first ls of snapshot root", "s", "lower"],
  ["mount_ls_s", "mount + first ls", "s", "lower"],
  ["cat_cold_mbps", "cat large file, cold", "MB/s", "higher"],
  ["cat_warm_mbps", "cat large file, warm", "MB/s", "higher"],
  ["fresh_mem_mbps", "fill 512 MiB fresh memory", "MB/s", "higher"],
  ["find_s", "find | wc -l", "s", "lower"],
  ["du_s", "du -s", "s", "lower"],
  ["rss_find_mib", "RSS after find", "MiB", "lower"],
  ["rss_du_mib", "RSS after du", "MiB", "lower"],
  ["peak_rss_mib", "peak RSS (VmHWM)", "MiB", "lower"]]'
jq -Rs --argjson metrics "$metrics" '
  def round3: . * 1000 | round / 1000;
  def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end | round3;
  [split("\n")[] | select(length > 0) | split("\t") | {rep: (.[0] | tonumber), tool: .[1], metric: .[2], value: (.[3] | tonumber)}] as $raw
  | ($raw | group_by(.tool) | map({key: .[0].tool, value: (group_by(.metric) | map({key: .[0].metric, value: (map(.value) | median)}) | from_entries)}) | from_entries) as $med
  | {metrics: ($metrics | map({key: .[0], label: .[1], unit: .[2], better: .[3]})), raw: $raw, medians: $med,
     ratios: (if $med.hindsight == null then {} else
       $med | with_entries(select(.key != "hindsight")) | map_values(. as $p | $med.hindsight | with_entries(select(($p[.key] // 0) > 0) | .value = (.value / $p[.key] | round3))) end)}
' "$RAW" > "$out"
versions=$(for t in "${tools[@]}"; do jq -n --arg t "$t" --arg v "$(version "$t")" '{($t): $v}'; done | jq -s add)
jq --arg stamp "$stamp" --arg data "$DATA" --argjson entries "$data_entries" --argjson reps "$reps" \
   --argjson versions "$versions" --arg load "$load0 $(cut -d' ' -f1 /proc/loadavg)" --arg repos "$repos" \
   '{run: {time: $stamp, dataset: $data, entries: $entries, reps: $reps, repos: $repos, versions: $versions, loadavg_start_end: $load}} + .' \
   "$out" > "$out.tmp" && mv "$out.tmp" "$out"

# table: label and values, tab-separated, as aligned columns with three
# significant digits and no exponent.
table() {
  awk -F'\t' '{
    printf "%-28s", $1
    for (i = 2; i <= NF; i++) {
      v = $i; a = v < 0 ? -v : v
      printf " %10s", v == "-" ? v : sprintf(a >= 100 ? "%.0f" : a >= 10 ? "%.1f" : a >= 1 ? "%.2f" : "%.3f", v)
    }
    print ""
  }'
}

peers_run=()
for t in "${tools[@]}"; do [ "$t" = hindsight ] || peers_run+=("$t"); done
peers_run+=(machine)
{
  printf '\nMedians (%s reps):\n%-28s' "$reps" metric
  printf ' %10s' "${tools[@]}" machine; echo
  jq -r --args '.medians as $m | .metrics[] | . as $k | ["\($k.label) (\($k.unit))"] + [$ARGS.positional[] | $m[.][$k.key] // "-" | tostring] | @tsv' "${tools[@]}" machine < "$out" |
    table
  if has hindsight; then
    printf '\nhindsight / peer (MB/s: higher is better for hindsight; the rest: lower):\n%-28s' metric
    printf ' %10s' "${peers_run[@]/#//}"; echo
    jq -r --args '.ratios as $r | .metrics[] | . as $k | [$k.label] + [$ARGS.positional[] | $r[.][$k.key] // "-" | tostring] | @tsv' "${peers_run[@]}" < "$out" |
      table
  fi
  echo
  echo "targets (not asserted): cat cold >= 1000 MB/s (a local repository cannot beat the machine column) and >= 4x borg; find and du <= 0.5x kopia; RSS after the walk <= 150 MB (143 MiB)"
  echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "results: $out (raw: $RAW, log: $LOG)"
} | tee -a "$LOG"
