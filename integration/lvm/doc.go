// Package lvm tests "hindsight lvm", backup-volume and restore-volume
// from the outside, as a hypervisor host runs them.
//
// Layer 1 (this package's tests without a VM) puts fakelvm, an emulation
// of the lvm2 commands on loop devices, first on PATH: volumes are real
// block devices, mkfs, mount, fsck and restores are real, only LVM's
// metadata is emulated. They need root, losetup, mkfs.ext4 and mkfs.xfs;
// without them they skip, except under CI=true, where they fail.
package lvm
