package lvm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
)

// Filesystem is what blkid finds on a device.
type Filesystem struct {
	Type  string // "ext4", "xfs", "btrfs", ...; "" when none
	UUID  string
	Label string
}

// Probe detects the filesystem on dev with blkid. It reads the device
// itself (-p) rather than blkid's cache, which knows nothing of a
// snapshot that is seconds old.
func (m *Manager) Probe(ctx context.Context, dev string) (Filesystem, error) {
	out, err := m.run.Run(ctx, "blkid", "-p", "-o", "export", dev)
	var ce *CommandError
	if errors.As(err, &ce) && exitCode(ce) == 2 { // nothing recognised
		return Filesystem{}, nil
	}
	if err != nil {
		return Filesystem{}, volErr(dev, "detect filesystem", err)
	}
	var fs Filesystem
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "TYPE":
			fs.Type = v
		case "UUID":
			fs.UUID = v
		case "LABEL":
			fs.Label = v
		}
	}
	return fs, nil
}

func exitCode(ce *CommandError) int {
	var ec interface{ ExitCode() int }
	if errors.As(ce.Err, &ec) {
		return ec.ExitCode()
	}
	return -1
}

// MountOptions are the read-only mount options for a snapshot of a
// filesystem of type fstype. The snapshot holds the filesystem as a crash
// would have left it; the snapshot device itself is writable, so a plain
// "ro" mount lets ext3/4 and XFS replay their journal onto the snapshot
// (never the origin) and show a consistent tree. "noload"/"norecovery"
// would skip that and expose half-done metadata.
func MountOptions(fstype string) (string, error) {
	switch fstype {
	case "ext2", "ext3", "ext4":
		return "ro", nil
	case "xfs":
		// The snapshot has the mounted origin's UUID, which XFS refuses
		// twice unless told not to check.
		return "ro,nouuid", nil
	case "btrfs":
		// Linux 6.7+ gives a single-device clone a temporary fsid; older
		// kernels confuse it with its mounted origin, and need the origin
		// unmounted or an image backup.
		return "ro", nil
	case "":
		return "", fmt.Errorf("no filesystem found; back it up with --image")
	}
	return "ro", nil
}

// Mount mounts dev read-only at dir and returns the filesystem found.
func (m *Manager) Mount(ctx context.Context, dev, dir string) (Filesystem, error) {
	fs, err := m.Probe(ctx, dev)
	if err != nil {
		return fs, err
	}
	opts, err := MountOptions(fs.Type)
	if err != nil {
		return fs, volErr(dev, "mount", err)
	}
	return fs, m.mount(ctx, dev, dir, fs.Type, opts)
}

// MountWritable mounts a filesystem of type fstype read-write, to restore
// into it.
func (m *Manager) MountWritable(ctx context.Context, dev, dir, fstype string) error {
	opts := "rw"
	if fstype == "xfs" {
		// A restore keeps the UUID, which the original may still have
		// mounted on this machine.
		opts += ",nouuid"
	}
	return m.mount(ctx, dev, dir, fstype, opts)
}

func (m *Manager) mount(ctx context.Context, dev, dir, fstype, opts string) error {
	if err := mkdirAll(dir); err != nil {
		return err
	}
	_, err := m.run.Run(ctx, "mount", "-t", fstype, "-o", opts, dev, dir)
	return volErr(dev, "mount", err)
}

// Fsck checks the unmounted filesystem on dev without changing it, and
// fails unless it is clean.
func (m *Manager) Fsck(ctx context.Context, dev, fstype string) error {
	var name string
	var args []string
	switch fstype {
	case "ext2", "ext3", "ext4":
		name, args = "e2fsck", []string{"-f", "-n"}
	case "xfs":
		name, args = "xfs_repair", []string{"-n"}
	case "btrfs":
		name, args = "btrfs", []string{"check", "--readonly"}
	default:
		return volErr(dev, "fsck", fmt.Errorf("no checker for filesystem type %q", fstype))
	}
	_, err := m.run.Run(ctx, name, append(args, dev)...)
	return volErr(dev, "fsck", err)
}

// Unmount unmounts dir; it runs to the end even once ctx is cancelled.
func (m *Manager) Unmount(ctx context.Context, dir string) error {
	_, err := m.run.Run(context.WithoutCancel(ctx), "umount", dir)
	return volErr(dir, "unmount", err)
}
