#!/usr/bin/env bash
# Push throughput to MinIO on loopback: `hindsight push` against
# `restic copy` of the same dataset, each from a local repository holding
# one backup of it into an empty bucket prefix. Prints seconds and MiB/s
# of repository data uploaded.
#
#   integration/s3/bench-push.sh [DATASET_DIR]
#
# DATASET_DIR defaults to integration/bench's small dataset if it was
# generated, else to 512 MiB of random files made here. Needs MinIO
# (integration/scripts/install-minio.sh) and restic ($RESTIC_BIN, or the
# one integration/bench/install-peers.sh caches). Runs as any user; all
# servers listen on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:${HOME:-/root}/go/bin:$PATH"

cache=${HOME:-/root}/.cache
minio=${HINDSIGHT_MINIO:-$cache/hindsight-test/bin/minio}
restic=${RESTIC_BIN:-$cache/hindsight-bench/bin/restic}
[[ -x $minio ]] || bash integration/scripts/install-minio.sh
[[ -x $restic ]] || { echo "bench-push: restic not found; run integration/bench/install-peers.sh" >&2; exit 1; }

work=$(mktemp -d)
minio_pid=
cleanup() {
	[[ -n $minio_pid ]] && kill "$minio_pid" 2>/dev/null && wait "$minio_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

data=${1:-}
if [[ -z $data ]]; then
	data=$(ls -d "$cache"/hindsight-bench/data/v1-small-*/tree 2>/dev/null | head -n 1 || true)
fi
if [[ -z $data ]]; then
	data=$work/data
	mkdir -p "$data"
	for i in $(seq 8); do head -c $((64 << 20)) /dev/urandom >"$data/f$i"; done
fi
echo "dataset: $data ($(du -sh "$data" | cut -f1))"

go build -o "$work/hindsight" ./cmd/hindsight
hs=$work/hindsight

port=$((20000 + RANDOM % 20000))
export MINIO_ROOT_USER=bench MINIO_ROOT_PASSWORD=bench-secret-key MINIO_BROWSER=off
HOME=$work "$minio" server --quiet --address "127.0.0.1:$port" --console-address "127.0.0.1:$((port + 1))" "$work/minio" &
minio_pid=$!
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.2; done
sleep 1 # the port opens a moment before MinIO serves
mkdir -p "$work/minio/bench"
export AWS_ACCESS_KEY_ID=$MINIO_ROOT_USER AWS_SECRET_ACCESS_KEY=$MINIO_ROOT_PASSWORD

now() { date +%s.%N; }
report() { # name start end bytes
	awk -v n="$1" -v s="$(awk -v a="$2" -v b="$3" 'BEGIN { print b - a }')" -v b="$4" \
		'BEGIN { printf "%-36s %7.2f s  %8.1f MiB  %7.1f MiB/s\n", n, s, b / 1048576, b / 1048576 / s }'
}

export HINDSIGHT_PASSWORD=bench XDG_CACHE_HOME=$work/cache XDG_CONFIG_HOME=$work/config
export HINDSIGHT_REPOSITORY=$work/hs-repo
"$hs" init -q
"$hs" backup -q "$data"
"$hs" remote add offsite "s3:http://127.0.0.1:$port/bench/hindsight"
t0=$(now)
"$hs" push offsite --jobs 4 -q
t1=$(now)
report "hindsight push" "$t0" "$t1" "$(du -sb "$HINDSIGHT_REPOSITORY/packs" | cut -f1)"
t0=$(now)
"$hs" push offsite -q
t1=$(now)
report "hindsight push, nothing to send" "$t0" "$t1" 0

export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$work/restic-cache
"$restic" -q -r "$work/restic-repo" init
"$restic" -q -r "$work/restic-repo" backup "$data" >/dev/null
export RESTIC_FROM_PASSWORD=bench
"$restic" -q -r "s3:http://127.0.0.1:$port/bench/restic" init --from-repo "$work/restic-repo" --copy-chunker-params >/dev/null
t0=$(now)
"$restic" -q -r "s3:http://127.0.0.1:$port/bench/restic" copy --from-repo "$work/restic-repo" >/dev/null
t1=$(now)
report "restic copy" "$t0" "$t1" "$(du -sb "$work/restic-repo/data" | cut -f1)"
