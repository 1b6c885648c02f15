#!/usr/bin/env bash
# Build the peer backup tools (restic, kopia) used by compare.sh, plus the
# host tools the benchmark needs.
#
#   install-peers.sh [restic] [kopia]     (default: both)
#
# Idempotent: binaries are cached under
# $BENCH_CACHE/bin (default $HOME/.cache/hindsight-bench/bin) and rebuilt
# only when missing.
#
# The Go module proxy refuses version listings for these modules, so
# `go install M@vX` fails; each tool is built from a scratch module instead
# (outside the hindsight checkout, so the project's go.mod is never touched).
set -euo pipefail

RESTIC_VERSION=${RESTIC_VERSION:-v0.19.1}
KOPIA_VERSION=${KOPIA_VERSION:-v0.23.1}
BENCH_CACHE=${BENCH_CACHE:-$HOME/.cache/hindsight-bench}
BIN=$BENCH_CACHE/bin
SRC=$BENCH_CACHE/src
mkdir -p "$BIN" "$SRC"

log() { printf '[install-peers] %s\n' "$*" >&2; }

# Host tools: GNU time (wall time and peak RSS), e2fsprogs (mkfs.ext4 and
# debugfs for the dataset's ext4 image), jq (kopia's JSON, results file).
need_pkgs=()
[ -x /usr/bin/time ] || need_pkgs+=(time)
command -v mkfs.ext4 >/dev/null 2>&1 || need_pkgs+=(e2fsprogs)
command -v jq >/dev/null 2>&1 || need_pkgs+=(jq)
command -v debugfs >/dev/null 2>&1 || need_pkgs+=(e2fsprogs)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian packages: ${need_pkgs[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  else
    log "missing host tools (${need_pkgs[*]}) and cannot apt-get install them"
    exit 1
  fi
fi

# build NAME VERSION MODULE PKG
build() {
  local name=$1 version=$2 module=$3 pkg=$4
  local out=$BIN/$name-$version
  if [ -x "$out" ]; then
    log "$name $version: cached at $out"
  else
    local dir=$SRC/$name-$version
    log "$name $version: building in $dir (this takes a few minutes)"
    rm -rf "$dir"; mkdir -p "$dir"
    (
      cd "$dir"
      export GOFLAGS=-mod=mod GOWORK=off
      go mod init "bench.local/$name" >/dev/null 2>&1
      go get "$module@$version"
      CGO_ENABLED=0 go build -trimpath -o "$out.tmp" "$pkg"
    )
    mv "$out.tmp" "$out"
  fi
  ln -sfn "$name-$version" "$BIN/$name"
}

[ $# -gt 0 ] || set -- restic kopia
for tool in "$@"; do
  case $tool in
    restic)
      build restic "$RESTIC_VERSION" github.com/restic/restic/cmd/restic github.com/restic/restic/cmd/restic
      log "restic: $("$BIN/restic" version 2>/dev/null | head -1)" ;;
    kopia)
      build kopia "$KOPIA_VERSION" github.com/kopia/kopia github.com/kopia/kopia
      log "kopia: $("$BIN/kopia" --version 2>/dev/null | head -1)" ;;
    *) log "unknown tool $tool (want restic or kopia)"; exit 2 ;;
  esac
done
