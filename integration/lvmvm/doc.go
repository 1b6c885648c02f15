// Package lvmvm runs hindsight's LVM tests against real lvm2 and
// device-mapper, which this machine's kernel lacks: TestRealLVM builds a
// static hindsight and this package's guest tests (build tag lvmvm_guest),
// and runs them inside a throw-away QEMU VM booting Debian's kernel
// (integration/scripts/lvm-vm.sh). One boot runs every guest test.
//
// It needs root, which the script needs for apt and its cache; without it
// the test skips, except under CI=true, where it fails.
package lvmvm
