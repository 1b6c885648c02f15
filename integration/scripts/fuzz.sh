#!/usr/bin/env bash
# Runs every fuzz target of the module for a bounded time each, so that a
# decoder change that lets arbitrary bytes panic fails CI. The targets are
# found by grepping for 'func Fuzz' in the test files: a new one is run
# without editing this script.
#
# A failing input is written by go test under the package's
# testdata/fuzz/FuzzXxx/; commit it, and every later 'go test' replays it as
# a regression case. All targets run even after one fails; the exit status
# says whether any did.
#
#	FUZZTIME    time per target (default 10s; go test -fuzztime syntax)
#	FUZZ_PARALLEL  fuzzing workers per target (default: go test's, GOMAXPROCS)
set -euo pipefail
cd "$(dirname "$0")/../.."

export PATH="/usr/local/go/bin:${HOME:-/root}/go/bin:$PATH"
fuzztime=${FUZZTIME:-10s}
parallel=()
if [[ -n ${FUZZ_PARALLEL:-} ]]; then
	parallel=(-parallel "$FUZZ_PARALLEL")
fi

# "dir name" pairs; go test -fuzz takes one target of one package per run.
mapfile -t targets < <(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . |
	sed -E 's|^\./(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($|\1 \2|' | sort -u)
if ((${#targets[@]} == 0)); then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi

# fuzz DIR NAME runs one target and says whether it failed. Go 1.26's
# fuzzing coordinator can report "context deadline exceeded" as a failure
# when -fuzztime runs out while a worker is busy (golang/go#75804, fixed in
# Go 1.27), more often on a loaded machine; such a run wrote no failing
# input. Only that case is run again, up to twice; a failing input written,
# or any other failure, fails the target.
fuzz() {
	local dir=$1 name=$2 try out
	for try in 1 2 3; do
		local before
		before=$(ls "$dir/testdata/fuzz/$name" 2>/dev/null | sort)
		if out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "${parallel[@]}" "./$dir" 2>&1); then
			printf '%s\n' "$out"
			return 0
		fi
		printf '%s\n' "$out"
		if [[ $(ls "$dir/testdata/fuzz/$name" 2>/dev/null | sort) != "$before" ]] ||
			! grep -q '^    context deadline exceeded$' <<<"$out"; then
			return 1
		fi
		echo "fuzz.sh: $name stopped on golang/go#75804 (no failing input written); running it again"
	done
	return 1
}

failed=()
for t in "${targets[@]}"; do
	read -r dir name <<<"$t"
	printf '\n== fuzz ./%s %s for %s\n' "$dir" "$name" "$fuzztime"
	if ! fuzz "$dir" "$name"; then
		failed+=("./$dir $name")
	fi
done

if ((${#failed[@]} > 0)); then
	printf '\nfuzz.sh: %d of %d targets failed:\n' "${#failed[@]}" "${#targets[@]}" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
printf '\nfuzz.sh: %d targets, none failed\n' "${#targets[@]}"
