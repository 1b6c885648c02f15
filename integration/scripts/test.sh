#!/usr/bin/env bash
# The whole test run: README's second command, and exactly what .ci/run runs.
# Run it as root: the integration tests mknod, chown, mount and use loop
# devices. Under CI=true a test that lacks a component fails instead of
# skipping; that decision is the tests' own, this script only passes CI on.
set -euo pipefail
cd "$(dirname "$0")/../.."

# CI starts from a bare environment; Go is installed here on every machine
# of this kind, and Go-installed test tools are cached in ~/go/bin.
export PATH="/usr/local/go/bin:${HOME:-/root}/go/bin:$PATH"
if [[ -v CI ]]; then
	export CI
fi

step() { printf '\n== %s\n' "$*"; }

if ((EUID != 0)); then
	if [[ ${CI:-} == true ]]; then
		echo "test.sh: CI must run as root" >&2
		exit 1
	fi
	echo "test.sh: not root; tests that need root will skip" >&2
fi

step "install test dependencies"
bash integration/scripts/install-test-deps.sh

step "go vet ./..."
go vet ./...

# -count=1: results cached from another machine state prove nothing about
# this one. The timeout stays well inside CI's 90 minutes.
step "go test -count=1 -timeout 60m ./..."
go test -count=1 -timeout 60m ./...

# Every decoder's fuzz target, briefly: new inputs each run, and the corpus
# under testdata/fuzz replayed (go test above already replays it too).
step "fuzz every target for 10 s"
FUZZTIME=10s bash integration/scripts/fuzz.sh
