#!/usr/bin/env bash
# Builds the MinIO server the S3 conformance and replication tests run
# against, at one pinned version, into a cache under $HOME so that reruns
# (and CI on the same machine) take no time. Prints nothing but a status
# line; the tests find the binary at the path below (or $HINDSIGHT_MINIO).
#
# The version is a pseudo-version the Go module proxy serves: MinIO stopped
# tagging module versions the proxy accepts, and a prebuilt download is not
# reachable from these machines, so it is built from source (~4 minutes on
# two cores, once).
set -euo pipefail

version=v0.0.0-20260212201848-7aac2a2c5b7c
module=github.com/minio/minio

export PATH="/usr/local/go/bin:${HOME:-/root}/go/bin:$PATH"
bindir=${HINDSIGHT_TEST_BIN:-${HOME:-/root}/.cache/hindsight-test/bin}
bin=$bindir/minio-$version
link=$bindir/minio

log() { printf 'install-minio: %s\n' "$*"; }

if [[ -x $bin ]]; then
	ln -sfn "$(basename "$bin")" "$link"
	log "cached: $bin"
	exit 0
fi

mkdir -p "$bindir"
log "building $module@$version (first run only, a few minutes)"
# go install M@v refuses modules whose go.mod has replace directives, which
# MinIO's may; a scratch module that requires it builds either way.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
tmpbin=$scratch/minio
if ! GOBIN=$scratch GOFLAGS=-buildvcs=false go install "$module@$version" 2>"$scratch/install.log"; then
	log "go install refused ($(tail -n 1 "$scratch/install.log")); building from a scratch module"
	(
		cd "$scratch"
		go mod init tmp >/dev/null 2>&1
		go get "$module@$version"
		GOFLAGS=-buildvcs=false go build -o "$tmpbin" "$module"
	)
fi
# Rename into place only when whole, so an interrupted build is rebuilt
# rather than run.
mv "$tmpbin" "$bin.tmp"
mv "$bin.tmp" "$bin"
ln -sfn "$(basename "$bin")" "$link"
log "installed: $bin"
