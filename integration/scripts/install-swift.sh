#!/usr/bin/env bash
# Installs Debian's OpenStack Swift (2.30 on bookworm) for the Swift tests:
# remote/swift/swifttest runs the account, container, object and proxy
# servers from these packages on 127.0.0.1, under a directory of its own.
# Safe to rerun: when every package is present it returns without apt.
#
#   swift, swift-proxy, swift-account, swift-container, swift-object
#              the servers, as python modules run by Debian's /usr/bin/python3
#   memcached  tempauth keeps its tokens there: without it every token it
#              hands out is refused with 401
#
# Nothing starts by itself: the packages' postinst scripts ask for their
# services, and policy-rc.d (or the missing systemd) refuses them.
set -euo pipefail

packages=(swift swift-proxy swift-account swift-container swift-object memcached)

log() { printf 'install-swift: %s\n' "$*"; }

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing+=("$p")
	fi
done
if ((${#missing[@]} == 0)); then
	log "all present: ${packages[*]}"
	exit 0
fi
if ((EUID != 0)); then
	log "missing ${missing[*]}; rerun as root to install them" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# The lock timeout matters on a shared machine: another apt run would
# otherwise fail this one at once.
apt_opts=(-o DPkg::Lock::Timeout=300 -q)
log "apt-get install ${missing[*]}"
# --no-install-recommends: about 70 packages (13 MB) instead of 170. The
# lists may be missing or stale on a fresh machine; update once and retry.
if ! apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}"; then
	apt-get "${apt_opts[@]}" update
	apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}"
fi
log "installed: ${missing[*]}"
