#!/usr/bin/env bash
# lvm-vm.sh - exercise real LVM2 + device-mapper inside a throw-away QEMU VM.
# integration/lvmvm runs hindsight's real-LVM tests with it; it is the
# recipe in shared/recipes/lvm-vm with the cache moved under $HOME.
#
# The host kernel here has no device-mapper, so we boot Debian bookworm's stock
# kernel (linux-image-amd64, dm-mod/dm-snapshot as modules) under
# qemu-system-x86_64 with a tiny busybox initramfs that carries the host's
# lvm2 / dmsetup / e2fsprogs / xfsprogs binaries (+ their shared libs) and the
# needed kernel modules. Test disks are sparse raw files attached via virtio.
#
# Usage:
#   lvm-vm.sh [options] [BINARY [SCRIPT]] [-- ARGS...]
#
#   no BINARY/SCRIPT   run the built-in LVM self-test (create/snapshot/verify/
#                      restore/merge/remove on ext4, plus an xfs snapshot)
#   BINARY             a statically linked executable (e.g. CGO_ENABLED=0 Go
#                      test binary); copied to /payload/bin/ (on PATH) in the VM
#   SCRIPT             a busybox-sh script run in the VM as `sh /payload/run.sh`
#                      (cwd /payload). Without SCRIPT, BINARY is run with ARGS.
#   The exit status of SCRIPT (or BINARY) decides PASS/FAIL.
#
# Options:
#   --dir DIR          copy host directory DIR into the VM at /payload/dir
#   --out DIR          files the guest writes under $LVMVM_OUT (/out) are
#                      copied back to host DIR (via a raw tar "results disk")
#   --selftest         also run the built-in self-test before the payload
#   --disks N          number of blank test disks (default 2) -> $LVMVM_DISKS
#   --disk-size SIZE   size of each sparse test disk (default 1G)
#   --mem MB           guest RAM (default 1024; the initramfs lives in RAM)
#   --smp N            guest CPUs (default 1; >1 uses multi-threaded TCG)
#   --accel auto|kvm|tcg  default auto = kvm only if /proc/cpuinfo has vmx/svm
#   --timeout SEC      kill the VM after SEC seconds (default 600) -> FAIL
#   --skip-modules L   comma list of modules not to insmod at boot, e.g. "xfs"
#                      (saves ~1.7 s under TCG); load later in the guest with
#                      `lvmvm-modload xfs`. Loaded by default: virtio_blk,
#                      dm_mod, dm_snapshot, dm_thin_pool, ext4, xfs, loop (+deps)
#   --rebuild          rebuild the cached kernel/initramfs
#   -q, --quiet        do not stream the VM console (still printed on FAIL)
#
# Inside the VM: PATH=/payload/bin:/usr/sbin:/usr/bin:/sbin:/bin, root, no udev
# (DM_DISABLE_UDEV=1, lvm.conf udev_sync=0/udev_rules=0/monitoring=0), /dev is
# devtmpfs, / is the initramfs (tmpfs). Env: LVMVM_DISKS="/dev/vda /dev/vdb",
# LVMVM_OUT=/out.
#
# Output: the VM console; last line "LVMVM-RESULT: PASS" or
# "LVMVM-RESULT: FAIL ...". Exit status 0 on PASS, 1 on FAIL/timeout, 2 on
# usage/setup errors.
#
# Cache: ${LVMVM_CACHE:-$HOME/.cache/hindsight/lvm-vm} keeps the kernel .deb, vmlinuz,
# the unpacked vmlinux and the base initramfs (~70+8+66+27 MB) so later runs
# skip the build (rm -rf it to reclaim ~170 MB). Per-run files live in a
# mktemp dir /tmp/lvm-vm-run.XXXXXX that is always removed.
set -euo pipefail

PROG=${0##*/}
CACHE=${LVMVM_CACHE:-${HOME:-/root}/.cache/hindsight/lvm-vm}
BASE_VERSION=9            # bump when the initramfs contents below change
NDISKS=2 DISK_SIZE=1G MEM=1024 SMP=1 ACCEL=auto TIMEOUT=600
REBUILD=0 QUIET=0 SELFTEST=0 SKIP_MODULES="" DIR_IN="" OUT_DIR="" BINARY="" SCRIPT=""
ARGS=()

die() { echo "$PROG: $*" >&2; exit 2; }
log() { echo "[$PROG] $*" >&2; }
now() { date +%s.%N; }
dt()  { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", b-a}'; }

pos=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR_IN=$2; shift 2;;
    --out) OUT_DIR=$2; shift 2;;
    --selftest) SELFTEST=1; shift;;
    --disks) NDISKS=$2; shift 2;;
    --disk-size) DISK_SIZE=$2; shift 2;;
    --mem) MEM=$2; shift 2;;
    --smp) SMP=$2; shift 2;;
    --accel) ACCEL=$2; shift 2;;
    --timeout) TIMEOUT=$2; shift 2;;
    --skip-modules) SKIP_MODULES=$2; shift 2;;
    --rebuild) REBUILD=1; shift;;
    -q|--quiet) QUIET=1; shift;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
    --) shift; ARGS=("$@"); break;;
    -*) die "unknown option $1 (see --help)";;
    *) pos+=("$1"); shift;;
  esac
done
[ ${#pos[@]} -le 2 ] || die "too many positional arguments"
BINARY=${pos[0]:-}; SCRIPT=${pos[1]:-}
[ -z "$BINARY" ] || [ -f "$BINARY" ] || die "binary not found: $BINARY"
[ -z "$SCRIPT" ] || [ -f "$SCRIPT" ] || die "script not found: $SCRIPT"
[ -z "$DIR_IN" ] || [ -d "$DIR_IN" ] || die "directory not found: $DIR_IN"
[ -n "$BINARY$SCRIPT" ] || SELFTEST=1
[ "$(id -u)" = 0 ] || die "must run as root (apt-get)"

T0=$(now)

# --------------------------------------------------------------- host setup --
apt_update() {   # other apt users may hold the lists lock: retry for ~5 min
  local i
  for i in $(seq 60); do apt-get update -qq 2>/dev/null && return 0; sleep 5; done
  apt-get update -qq
}
ensure_host_pkgs() {
  local need=()
  command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
  local bb
  bb=$(LC_ALL=C ldd /bin/busybox 2>&1 || true)
  if [[ $bb != *"not a dynamic"* ]]; then
    need+=(busybox-static)
  fi
  command -v lvm >/dev/null      || need+=(lvm2)
  command -v mke2fs >/dev/null   || need+=(e2fsprogs)
  command -v mkfs.xfs >/dev/null || need+=(xfsprogs)
  command -v cpio >/dev/null     || need+=(cpio)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt_update
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
      --no-install-recommends "${need[@]}" >/dev/null
  fi
}

# Debian's linux-image-amd64 -> linux-image-6.1.0-NN-amd64; fetch the .deb
# with `apt-get download` (not installed: no initramfs-tools, no /boot change).
ensure_kernel_deb() {
  mkdir -p "$CACHE"
  if [ "$REBUILD" = 1 ] || ! ls "$CACHE"/linux-image-*.deb >/dev/null 2>&1; then
    local pkg
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}') || true
    if [ -z "$pkg" ]; then
      apt_update
      pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    fi
    [ -n "$pkg" ] || die "cannot resolve linux-image-amd64"
    log "downloading $pkg"
    rm -f "$CACHE"/linux-image-*.deb
    (cd "$CACHE" && apt-get download -qq "$pkg" 2>&1 | grep -v 'unsandboxed' >&2 || true)
    ls "$CACHE"/linux-image-*.deb >/dev/null 2>&1 || die "download of $pkg failed"
    rm -f "$CACHE/base.stamp"
  fi
}

# ---------------------------------------------------------- guest: /init ----
write_guest_init() {
cat > "$1" <<'GUEST_INIT'
#!/bin/sh
# PID 1 inside the LVM test VM.
export PATH=/payload/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
export DM_DISABLE_UDEV=1 LVM_SUPPRESS_FD_WARNINGS=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /run /tmp /out /mnt
mount -t tmpfs tmpfs /run
mkdir -p /run/lock
up() { cut -d' ' -f1 /proc/uptime; }
echo "lvmvm: kernel $(uname -r) userspace up at $(up)s"
arg() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" /proc/cmdline; }
skip=$(arg lvmvm.skip)
while read -r m; do      # modules.load is in dependency order
  case ",$skip," in *",$m,"*) continue;; esac
  insmod "/lib/modules/lvmvm/$m.ko" || echo "lvmvm: insmod $m failed"
done < /etc/lvmvm/modules.load
ndisks=$(arg lvmvm.disks); selftest=$(arg lvmvm.selftest); want_out=$(arg lvmvm.out)
payload=$(arg lvmvm.payload)
LVMVM_DISKS=""; OUTDEV=""
i=0
while [ $i -lt 100 ]; do          # wait up to ~10 s for virtio disks
  found=0
  for b in /sys/block/vd*; do [ -e "$b" ] && found=$((found+1)); done
  [ "$found" -ge $(( ${ndisks:-0} + ${want_out:-0} )) ] && break
  sleep 0.1; i=$((i+1))
done
n=0
while [ $n -lt "${ndisks:-0}" ]; do   # order test disks by their serial
  for b in /sys/block/vd*; do
    [ "$(cat "$b/serial" 2>/dev/null)" = "lvmvm-disk$n" ] && LVMVM_DISKS="$LVMVM_DISKS /dev/${b##*/}"
  done
  n=$((n+1))
done
for b in /sys/block/vd*; do
  [ "$(cat "$b/serial" 2>/dev/null)" = "lvmvm-out" ] && OUTDEV=/dev/${b##*/}
done
LVMVM_DISKS=${LVMVM_DISKS# }
export LVMVM_DISKS LVMVM_OUT=/out
echo "lvmvm: modules loaded, disks: ${LVMVM_DISKS:-none} at $(up)s"
rc=0
if [ "$selftest" = 1 ]; then
  sh /etc/lvmvm/selftest.sh || rc=$?
fi
if [ "$payload" = 1 ] && [ ! -f /payload/run.sh ]; then
  echo "lvmvm: payload expected but /payload/run.sh missing (initramfs append failed?)"
  rc=97
fi
if [ $rc -eq 0 ] && [ -f /payload/run.sh ]; then
  echo "lvmvm: running payload at $(up)s"
  (cd /payload && sh /payload/run.sh) </dev/null || rc=$?
  echo "lvmvm: payload exited $rc at $(up)s"
fi
if [ -n "$OUTDEV" ]; then
  (cd /out && tar -cf "$OUTDEV" .) || echo "lvmvm: writing results disk failed"
fi
sync
if [ $rc -eq 0 ]; then
  echo "LVMVM-RESULT: PASS (guest uptime $(up)s)"
else
  echo "LVMVM-RESULT: FAIL (exit $rc, guest uptime $(up)s)"
fi
poweroff -f
echo o > /proc/sysrq-trigger
sleep 5
GUEST_INIT
}

# ----------------------------------------------------- guest: self-test -----
write_guest_selftest() {
cat > "$1" <<'GUEST_SELFTEST'
#!/bin/sh
# Built-in LVM self-test: classic (COW) snapshots on ext4 and xfs, thin snapshot.
up() { cut -d' ' -f1 /proc/uptime; }
fail() { echo "SELFTEST FAIL: $*"; lvs -a 2>&1; exit 1; }
run() { echo "+ $*"; "$@" || fail "command failed: $*"; }
sums() { (cd "$1" && find . -type f ! -path './lost+found/*' | sort | xargs sha256sum); }
same() { sums "$1" > /tmp/cmp.sums; cmp -s /tmp/cmp.sums "$2" || { diff "$2" /tmp/cmp.sums; fail "$3"; }; echo "ok: $3"; }

set -- $LVMVM_DISKS
[ $# -ge 1 ] || fail "no test disks"
t0=$(up)
echo "=== selftest start at ${t0}s on $*"
run pvcreate -y -ff "$@"
run vgcreate -y vg0 "$@"
run lvcreate -y -L 200M -n data vg0
run mkfs.ext4 -q /dev/vg0/data
mkdir -p /mnt/data /mnt/snap /mnt/restore /mnt/x /mnt/xsnap
run mount /dev/vg0/data /mnt/data
echo v1 > /mnt/data/a.txt
echo keep > /mnt/data/b.txt
mkdir -p /mnt/data/sub
dd if=/dev/urandom of=/mnt/data/sub/blob bs=1M count=8 2>/dev/null
sync
sums /mnt/data > /tmp/v1.sums

# snapshot of a mounted fs (dm suspend freezes ext4 -> consistent image)
run lvcreate -y -s -L 100M -n snap vg0/data
run mount -o ro /dev/vg0/snap /mnt/snap
same /mnt/snap /tmp/v1.sums "snapshot equals origin at snapshot time"

# modify the origin; the snapshot must keep the old content
echo v2 > /mnt/data/a.txt
rm /mnt/data/b.txt
echo new > /mnt/data/c.txt
dd if=/dev/urandom of=/mnt/data/sub/blob bs=1M count=8 conv=notrunc 2>/dev/null
sync
sums /mnt/data > /tmp/v2.sums
cmp -s /tmp/v1.sums /tmp/v2.sums && fail "origin did not change"
same /mnt/snap /tmp/v1.sums "snapshot still shows old content after origin changed"
[ "$(cat /mnt/snap/a.txt)" = v1 ] && [ -f /mnt/snap/b.txt ] && [ ! -e /mnt/snap/c.txt ] \
  || fail "snapshot file-level check"
run lvs -a -o lv_name,lv_attr,lv_size,origin,data_percent vg0

# restore: fresh LV, mkfs, copy from the snapshot
run lvcreate -y -L 200M -n restore vg0
run mkfs.ext4 -q /dev/vg0/restore
run mount /dev/vg0/restore /mnt/restore
run cp -a /mnt/snap/. /mnt/restore/
same /mnt/restore /tmp/v1.sums "restored LV equals snapshot"
run umount /mnt/snap
run lvremove -y vg0/snap
run umount /mnt/restore
run mount -o ro /dev/vg0/restore /mnt/restore
same /mnt/restore /tmp/v1.sums "restored LV intact after snapshot removal + remount"
run umount /mnt/restore
run lvremove -y vg0/restore

# rollback: snapshot, change origin, lvconvert --merge back into the origin
run lvcreate -y -s -L 100M -n snap2 vg0/data
echo v3 > /mnt/data/a.txt
rm -rf /mnt/data/sub
sync
run umount /mnt/data
run lvconvert -y --merge vg0/snap2
run mount /dev/vg0/data /mnt/data
same /mnt/data /tmp/v2.sums "origin rolled back by lvconvert --merge"
run umount /mnt/data

# xfs: snapshot has the same fs UUID -> mount it with -o nouuid
if command -v mkfs.xfs >/dev/null; then
  run lvmvm-modload xfs       # no-op unless skipped with --skip-modules
  run lvcreate -y -L 320M -n x vg0
  run mkfs.xfs -q /dev/vg0/x
  run mount /dev/vg0/x /mnt/x
  echo x1 > /mnt/x/f.txt; sync
  sums /mnt/x > /tmp/x1.sums
  run lvcreate -y -s -L 64M -n xsnap vg0/x
  echo x2 > /mnt/x/f.txt; sync
  run mount -o ro,nouuid /dev/vg0/xsnap /mnt/xsnap
  same /mnt/xsnap /tmp/x1.sums "xfs snapshot keeps old content"
  run umount /mnt/xsnap
  run lvremove -y vg0/xsnap
  run umount /mnt/x
fi

# thin pool + thin snapshot (thin_check is disabled in lvm.conf: the VM has
# no thin-provisioning-tools). Thin snapshots get the activation-skip flag.
run lvmvm-modload dm_thin_pool
run lvcreate -y -L 200M -T vg0/pool
run lvcreate -y -V 300M -T vg0/pool -n thin
run mkfs.ext4 -q /dev/vg0/thin
mkdir -p /mnt/thin /mnt/tsnap
run mount /dev/vg0/thin /mnt/thin
echo t1 > /mnt/thin/f.txt; sync
sums /mnt/thin > /tmp/t1.sums
run lvcreate -y -s -n tsnap vg0/thin
echo t2 > /mnt/thin/f.txt; sync
run lvchange -ay -K vg0/tsnap
run mount -o ro /dev/vg0/tsnap /mnt/tsnap
same /mnt/tsnap /tmp/t1.sums "thin snapshot keeps old content"
run umount /mnt/tsnap
run lvremove -y vg0/tsnap
run umount /mnt/thin

run lvs -a vg0
run dmsetup ls
run vgchange -an vg0
echo "=== selftest OK in $(awk -v a="$t0" -v b="$(up)" 'BEGIN{printf "%.1f", b-a}')s"
GUEST_SELFTEST
}

# ------------------------------------------------------- base initramfs -----
copy_with_libs() {   # copy_with_libs ROOT FILE... (keeps paths, adds ldd deps)
  local root=$1 f l; shift
  for f in "$@"; do
    mkdir -p "$root$(dirname "$f")"
    cp -L "$f" "$root$f"
    for l in $(ldd "$f" 2>/dev/null | awk '/=> \//{print $3} /^[[:space:]]*\/[^ ]+ \(/{print $1}'); do
      [ -e "$root$l" ] && continue
      mkdir -p "$root$(dirname "$l")"; cp -L "$l" "$root$l"
    done
  done
}

build_base() {
  local t b st ex kver mdir
  t=$(mktemp -d /tmp/lvm-vm-build.XXXXXX)
  st=$t/root; ex=$t/kernel
  log "extracting kernel package"
  dpkg-deb -x "$(ls "$CACHE"/linux-image-*.deb | head -1)" "$ex"
  cp "$ex"/boot/vmlinuz-* "$CACHE/vmlinuz"
  # Unpack the xz payload of the bzImage into the ELF vmlinux: it has a PVH
  # entry note (CONFIG_PVH=y), so `qemu -kernel vmlinux` boots it directly and
  # skips the real-mode setup + in-guest xz decompression (~4 s under TCG).
  rm -f "$CACHE/vmlinux"
  python3 - "$CACHE/vmlinuz" "$CACHE/vmlinux" <<'PY' || rm -f "$CACHE/vmlinux"
import lzma, sys
d = open(sys.argv[1], 'rb').read()
i = d.find(b'\xfd7zXZ\x00')
out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(d[i:]) if i >= 0 else b''
if out[:4] != b'\x7fELF':
    sys.exit(1)
open(sys.argv[2], 'wb').write(out)
PY
  kver=$(ls "$ex/lib/modules" | head -1)
  mdir=$ex/lib/modules/$kver

  mkdir -p "$st"/{bin,sbin,usr/bin,usr/sbin,etc/lvm,etc/lvmvm,proc,sys,dev,run,tmp,mnt,root,out,payload/bin,lib/modules/lvmvm}
  cp /bin/busybox "$st/bin/busybox"
  for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -sf busybox "$st/bin/$a"
  done
  local bins=(/usr/sbin/lvm /usr/sbin/dmsetup /usr/sbin/mke2fs /usr/sbin/e2fsck
              /usr/sbin/resize2fs /usr/sbin/tune2fs /usr/sbin/dumpe2fs /usr/sbin/blkid)
  for b in /usr/sbin/mkfs.xfs /usr/sbin/xfs_repair /usr/sbin/xfs_db /usr/sbin/xfs_io \
           /usr/sbin/xfs_growfs /usr/bin/lsblk /usr/sbin/wipefs /usr/sbin/xfs_admin; do
    [ -x "$b" ] && bins+=("$b")
  done
  copy_with_libs "$st" "${bins[@]}"
  for b in /usr/sbin/*; do     # pvcreate, lvcreate, lvremove, ... -> lvm
    [ -L "$b" ] && [ "$(readlink "$b")" = lvm ] && ln -sf lvm "$st/usr/sbin/${b##*/}"
  done
  for b in mkfs.ext2 mkfs.ext3 mkfs.ext4; do ln -sf mke2fs "$st/usr/sbin/$b"; done
  for b in fsck.ext2 fsck.ext3 fsck.ext4; do ln -sf e2fsck "$st/usr/sbin/$b"; done
  cp /etc/mke2fs.conf "$st/etc/" 2>/dev/null || true
  echo 'root:x:0:0:root:/root:/bin/sh' > "$st/etc/passwd"
  echo 'root:x:0:' > "$st/etc/group"
  cat > "$st/etc/lvm/lvm.conf" <<'LVMCONF'
# no udev, no dmeventd, no lvmpolld in the VM
devices {
    obtain_device_list_from_udev = 0
    external_device_info_source = "none"
    use_devicesfile = 0
}
activation {
    udev_sync = 0
    udev_rules = 0
    verify_udev_operations = 1
    monitoring = 0
}
global {
    use_lvmpolld = 0
    thin_check_executable = ""
    cache_check_executable = ""
}
LVMCONF

  # kernel modules: wanted set + dependency closure (from the .ko "depends=")
  declare -A path
  local ko name
  while read -r ko; do
    name=${ko##*/}; name=${name%.ko}; path[${name//-/_}]=$ko
  done < <(find "$mdir/kernel" -name '*.ko')
  local want=(crc32c_generic virtio_pci virtio_blk dm_mod dm_bufio dm_snapshot dm_thin_pool
              ext4 xfs loop ${LVMVM_EXTRA_MODULES:-})
  declare -A done_
  : > "$st/etc/lvmvm/modules.load"
  add_mod() {
    local n=${1//-/_} d deps
    [ -n "${done_[$n]:-}" ] && return 0
    done_[$n]=1
    [ -n "${path[$n]:-}" ] || { log "module $n not found (builtin?)"; return 0; }
    deps=$(grep -a -o 'depends=[^[:cntrl:]]*' "${path[$n]}" | head -1 | cut -d= -f2 | tr ',' ' ')
    for d in $deps; do add_mod "$d"; done
    cp "${path[$n]}" "$st/lib/modules/lvmvm/$n.ko"
    echo "$n" >> "$st/etc/lvmvm/modules.load"
  }
  for name in "${want[@]}"; do add_mod "$name"; done

  cat > "$st/sbin/lvmvm-modload" <<'MODLOAD'
#!/bin/sh
# lvmvm-modload NAME: insmod NAME and its deps (for modules skipped at boot)
for want in "$@"; do
  while read -r m; do
    grep -q "^$m " /proc/modules || insmod "/lib/modules/lvmvm/$m.ko" || exit 1
    [ "$m" = "$want" ] && break
  done < /etc/lvmvm/modules.load
done
MODLOAD
  chmod 755 "$st/sbin/lvmvm-modload"
  write_guest_init "$st/init"
  write_guest_selftest "$st/etc/lvmvm/selftest.sh"
  chmod 755 "$st/init"
  # Uncompressed: unpacking gzip under TCG costs ~2 s per boot. Pad to 512 B:
  # an appended cpio must start 4-byte aligned or the kernel rejects it
  # ("Initramfs unpacking failed: invalid magic ...").
  (cd "$st" && find . | cpio -o -H newc -R 0:0 --quiet) > "$CACHE/base.cpio.tmp"
  truncate -s %512 "$CACHE/base.cpio.tmp"
  mv "$CACHE/base.cpio.tmp" "$CACHE/base.cpio"
  echo "$BASE_VERSION $kver" > "$CACHE/base.stamp"
  rm -rf "$t"
}

# ---------------------------------------------------------------- main ------
WORK=$(mktemp -d /tmp/lvm-vm-run.XXXXXX)
QPID=""
cleanup() {
  if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then kill "$QPID" 2>/dev/null || true; wait "$QPID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ensure_host_pkgs
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"; flock 9          # parallel runs: one builds, others wait
ensure_kernel_deb
T1=$(now)
if [ "$REBUILD" = 1 ] || [ ! -f "$CACHE/base.cpio" ] || [ ! -f "$CACHE/vmlinuz" ] \
   || [ "$(cut -d' ' -f1 "$CACHE/base.stamp" 2>/dev/null)" != "$BASE_VERSION" ]; then
  log "building base initramfs in $CACHE"
  build_base
fi
cp "$CACHE/base.cpio" "$WORK/initrd.img"
KERNEL=$CACHE/vmlinuz
[ -f "$CACHE/vmlinux" ] && KERNEL=$CACHE/vmlinux            # PVH direct boot
cp "$KERNEL" "$WORK/kernel"
flock -u 9; exec 9>&-

# per-run payload: an uncompressed cpio appended to the base initramfs
P=$WORK/payload-root
mkdir -p "$P/payload/bin"
if [ -n "$BINARY" ]; then cp -L "$BINARY" "$P/payload/bin/"; chmod 755 "$P/payload/bin/${BINARY##*/}"; fi
[ -z "$DIR_IN" ] || cp -a "$DIR_IN" "$P/payload/dir"
if [ -n "$SCRIPT" ]; then
  cp "$SCRIPT" "$P/payload/run.sh"
elif [ -n "$BINARY" ]; then
  q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
  { printf 'exec /payload/bin/%s' "$(q "${BINARY##*/}")"
    for a in "${ARGS[@]+"${ARGS[@]}"}"; do printf ' %s' "$(q "$a")"; done; echo; } > "$P/payload/run.sh"
fi
(cd "$P" && find . | cpio -o -H newc -R 0:0 --quiet) >> "$WORK/initrd.img"

drives=()
for ((i = 0; i < NDISKS; i++)); do
  truncate -s "$DISK_SIZE" "$WORK/disk$i.img"
  drives+=(-drive "file=$WORK/disk$i.img,format=raw,if=none,id=d$i,cache=unsafe"
           -device "virtio-blk-pci,drive=d$i,serial=lvmvm-disk$i")
done
want_out=0
if [ -n "$OUT_DIR" ]; then
  want_out=1
  truncate -s 2G "$WORK/out.img"
  drives+=(-drive "file=$WORK/out.img,format=raw,if=none,id=dout,cache=unsafe"
           -device "virtio-blk-pci,drive=dout,serial=lvmvm-out")
fi

if [ "$ACCEL" = auto ]; then
  if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then ACCEL=kvm; else ACCEL=tcg; fi
fi
fw=()
[ -f /usr/share/qemu/qboot.rom ] && fw=(-bios /usr/share/qemu/qboot.rom)  # faster than SeaBIOS
case "$ACCEL" in
  kvm) accel=(-accel kvm -cpu host);;
  tcg) accel=(-accel "tcg,thread=$([ "$SMP" -gt 1 ] && echo multi || echo single)" -cpu max);;
  *) die "bad --accel $ACCEL";;
esac
T2=$(now)

LOG=$WORK/console.log
: > "$LOG"
log "booting VM (accel=$ACCEL, ${NDISKS}x$DISK_SIZE disks, ${MEM}M RAM, timeout ${TIMEOUT}s)"
qemu-system-x86_64 "${accel[@]}" -m "$MEM" -smp "$SMP" \
  -nodefaults -no-user-config -display none -no-reboot \
  -serial "file:$LOG" \
  "${fw[@]}" -kernel "$WORK/kernel" -initrd "$WORK/initrd.img" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 lvmvm.disks=$NDISKS lvmvm.selftest=$SELFTEST lvmvm.out=$want_out lvmvm.skip=${SKIP_MODULES:-none} lvmvm.payload=$([ -f "$P/payload/run.sh" ] && echo 1 || echo 0)" \
  "${drives[@]}" > "$WORK/qemu.log" 2>&1 &
QPID=$!
if [ "$QUIET" = 0 ]; then tail -n +1 -F --pid="$QPID" "$LOG" 2>/dev/null & TPID=$!; fi
timed_out=0
SECONDS=0
while kill -0 "$QPID" 2>/dev/null; do
  if [ "$SECONDS" -ge "$TIMEOUT" ]; then timed_out=1; kill "$QPID" 2>/dev/null || true; break; fi
  sleep 0.2
done
wait "$QPID" 2>/dev/null || true
QPID=""
[ "$QUIET" = 1 ] || wait "$TPID" 2>/dev/null || true
T3=$(now)

if [ -n "$OUT_DIR" ]; then
  mkdir -p "$OUT_DIR"
  tar -xf "$WORK/out.img" -C "$OUT_DIR" 2>/dev/null || log "no results archive on the results disk"
fi

result=$(tr -d '\r' < "$LOG" | grep -a '^LVMVM-RESULT:' | tail -1 || true)
if [ -z "$result" ]; then
  result="LVMVM-RESULT: FAIL (no result line)"
  [ "$timed_out" = 0 ] || result="LVMVM-RESULT: FAIL (no result line, timed out after ${TIMEOUT}s)"
fi
if [ "$QUIET" = 1 ] && [[ $result != *PASS* ]]; then tr -d '\r' < "$LOG" | tail -n 80 >&2; fi
[ -s "$WORK/qemu.log" ] && grep -v 'host doesn.t support requested feature' "$WORK/qemu.log" >&2 || true
log "timings: setup+kernel $(dt "$T0" "$T1")s, initramfs $(dt "$T1" "$T2")s, VM boot-to-result $(dt "$T2" "$T3")s, total $(dt "$T0" "$T3")s (accel=$ACCEL)"
echo "$result"
[[ $result == *PASS* ]]
