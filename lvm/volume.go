package lvm

import (
	"context"
	"fmt"
	"strconv"
)

// CreateVolume creates the logical volume VG/LV of at least size bytes
// (lvm2 rounds up to whole extents) to restore onto. Old signatures in
// the reused space are wiped, so blkid cannot mistake the new volume for
// what was there before.
func (m *Manager) CreateVolume(ctx context.Context, name string, size uint64) (*LV, error) {
	vg, lv, err := SplitName(name)
	if err != nil {
		return nil, err
	}
	_, err = m.run.Run(context.WithoutCancel(ctx), "lvcreate", "-y", "-Wy", "-Zy",
		"-n", lv, "-L", strconv.FormatUint(size, 10)+"b", vg)
	if err != nil {
		return nil, volErr(name, "create volume", err)
	}
	return m.LV(ctx, name)
}

// Mkfs makes a filesystem of fs.Type on dev, with fs's UUID and label
// when set, so that fstab entries and boot loaders that name them find
// the restored filesystem.
func (m *Manager) Mkfs(ctx context.Context, dev string, fs Filesystem) error {
	var args []string
	switch fs.Type {
	case "ext2", "ext3", "ext4":
		args = []string{"-F", "-q"}
		args = appendIf(args, fs.UUID, "-U")
		args = appendIf(args, fs.Label, "-L")
	case "xfs":
		args = []string{"-f", "-q"}
		if fs.UUID != "" {
			args = append(args, "-m", "uuid="+fs.UUID)
		}
		args = appendIf(args, fs.Label, "-L")
	case "btrfs":
		args = []string{"-f", "-q"}
		args = appendIf(args, fs.UUID, "-U")
		args = appendIf(args, fs.Label, "-L")
	default:
		return volErr(dev, "mkfs", fmt.Errorf("cannot make a filesystem of type %q", fs.Type))
	}
	_, err := m.run.Run(ctx, "mkfs."+fs.Type, append(args, dev)...)
	return volErr(dev, "mkfs", err)
}

func appendIf(args []string, v, flag string) []string {
	if v == "" {
		return args
	}
	return append(args, flag, v)
}
