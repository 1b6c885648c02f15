#!/usr/bin/env bash
# Installs the Debian packages the test suite drives (fresh bookworm, as root).
# Safe to rerun: when every package is already installed it returns at once
# without touching apt, so CI and developers can call it before every run.
set -euo pipefail

# Why each package is here (the tests call these tools or need what they provide):
#   fuse3        fusermount3 and /etc/fuse.conf for mounting snapshots
#   rsync        treecmp.RsyncDryRun, an independent second opinion on restores
#   acl, attr    getfacl/setfacl, getfattr/setfattr to check ACLs and xattrs
#   e2fsprogs, xfsprogs, btrfs-progs
#                mkfs for the filesystems restores and LVM emulation are tried on
#   util-linux   losetup, mount, umount for loop-device based tests
#   procps       pkill, to kill a backup together with its snapshot watchdog
# kmod is left out: the test kernels have no loadable modules (no /lib/modules),
# so modprobe could not load anything anyway.
packages=(fuse3 rsync acl attr e2fsprogs xfsprogs btrfs-progs util-linux procps)
packages+=(qemu-system-x86 busybox-static lvm2 cpio) # lvm-vm.sh: real LVM in a VM (integration/lvmvm)
packages+=(thin-provisioning-tools) # thin_delta, copied into that VM
packages+=(systemd) # systemd-analyze verify of docs/examples/systemd (integration/run)
# OpenStack Swift (2.30 on bookworm): remote/swift/swifttest runs the account,
# container, object and proxy servers from these packages on 127.0.0.1. Its
# tempauth keeps tokens in memcached: without it every token is refused (401).
# Nothing starts by itself: the postinst scripts' service starts are refused
# (policy-rc.d, or no systemd).
packages+=(swift swift-proxy swift-account swift-container swift-object memcached)
# OpenStack Keystone (22 on bookworm) for the Swift backend's Keystone tests:
# remote/swift/swifttest runs keystone-manage and serves keystone-wsgi-public
# with uWSGI, all from python3-keystone; the proxy checks its tokens with
# keystonemiddleware's authtoken. The "keystone" package is left out on
# purpose: its postinst writes /etc/keystone, bootstraps a database under
# /var/lib/keystone and starts a uWSGI service on port 5000 wherever
# policy-rc.d does not forbid it. The tests start Keystones of their own.
packages+=(python3-keystone python3-keystonemiddleware uwsgi-core uwsgi-plugin-python3)

log() { printf 'install-test-deps: %s\n' "$*"; }

bash "$(dirname "$0")/install-minio.sh" # S3 tests run against a real MinIO
missing=()
for p in "${packages[@]}"; do
	# dpkg -s alone reports removed-but-configured packages as present.
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
apt_opts=(-o DPkg::Lock::Timeout=300 -q)

# apt stamps list files with the server's Last-Modified, not the fetch time,
# so the age of the lists is tracked with a stamp of our own.
stamp=/var/lib/apt/hindsight-test-deps.update-stamp
if [[ -f $stamp && -n $(find "$stamp" -mmin -1440 2>/dev/null) ]] &&
	compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
	log "apt lists updated less than a day ago; skipping apt-get update"
else
	log "apt-get update"
	apt-get "${apt_opts[@]}" update
	touch "$stamp"
fi

log "apt-get install ${missing[*]}"
apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}"
log "installed: ${missing[*]}"
