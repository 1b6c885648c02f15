package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/hindsight-backup/hindsight/snapshot/fsmeta"
)

// Thin volumes live in one pool, "pool", of each volume group. With
// FAKELVM_POOL_DIR set to a directory on a filesystem that clones files
// (XFS made with reflink=1, btrfs), their images go there and a thin
// snapshot is a reflink clone of its origin's image: it shares the
// origin's blocks until either is written, as a thin snapshot shares pool
// blocks. thin_delta then tells shared from changed by the two images'
// extent maps. Elsewhere a thin snapshot is a copy, and thin_delta fails.
//
// FAKELVM_THIN_DELTA_FAIL=1 makes thin_delta fail as a corrupt metadata
// snapshot would.

// poolBlock is the pool's data block: 128 sectors, lvm2's default chunk
// size for a small pool.
const poolBlock = 128 * 512

// thinImage makes a thin snapshot's image dst: a clone of its origin's
// src where the pool can, else a sparse copy.
func thinImage(src, dst string) error {
	if os.Getenv("FAKELVM_POOL_DIR") == "" {
		return copySparse(src, dst)
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	return errors.Join(fsmeta.Clone(src, f), f.Close())
}

// lvrename handles "VG OLD NEW" and "VG/OLD NEW".
func lvrename(st *state, args []string) error {
	pos := positional(args)
	if len(pos) == 3 {
		pos = []string{pos[0] + "/" + pos[1], pos[2]}
	}
	if len(pos) != 2 {
		return errors.New("fakelvm lvrename: want VG OLD NEW")
	}
	l, g, err := find(st, pos[0])
	if err != nil {
		return err
	}
	vgName, old, _ := strings.Cut(pos[0], "/")
	if g.LVs[pos[1]] != nil {
		return failf("Logical Volume %q already exists in volume group %q", pos[1], vgName)
	}
	delete(g.LVs, old)
	g.LVs[pos[1]] = l
	for _, o := range g.LVs {
		if o.Origin == old {
			o.Origin = pos[1]
		}
	}
	fmt.Printf("  Renamed %q to %q in volume group %q\n", old, pos[1], vgName)
	return nil
}

// lvchange handles "-an -ky VG/LV": deactivated, a volume has no device.
func lvchange(st *state, args []string) error {
	pos := positional(args)
	if len(pos) != 1 || !slices.Contains(args, "-an") {
		return fmt.Errorf("fakelvm lvchange: want -an [-ky] VG/LV, got %q", args)
	}
	l, _, err := find(st, pos[0])
	if err != nil {
		return err
	}
	if mounted(l.Loop) || inUse(l.Loop) {
		return failf("Logical volume %s in use.", pos[0])
	}
	return deactivate(l)
}

// dmsetup handles "message VG-pool-tpool 0 reserve_metadata_snap" and
// release_metadata_snap: the kernel keeps one metadata snapshot per pool.
func dmsetup(st *state, args []string) error {
	if len(args) != 4 || args[0] != "message" || args[2] != "0" {
		return fmt.Errorf("fakelvm dmsetup: want message VG-pool-tpool 0 MESSAGE, got %q", args)
	}
	vgName, ok := strings.CutSuffix(args[1], "-pool-tpool")
	if st.VGs[vgName] == nil || !ok {
		return fmt.Errorf("device-mapper: message ioctl on %s failed: No such device or address", args[1])
	}
	if st.MetadataSnaps == nil {
		st.MetadataSnaps = map[string]bool{}
	}
	held := st.MetadataSnaps[vgName]
	switch args[3] {
	case "reserve_metadata_snap":
		if held {
			return fmt.Errorf("device-mapper: message ioctl on %s failed: Invalid argument", args[1])
		}
		st.MetadataSnaps[vgName] = true
	case "release_metadata_snap":
		if !held {
			return fmt.Errorf("device-mapper: message ioctl on %s failed: Invalid argument", args[1])
		}
		delete(st.MetadataSnaps, vgName)
	default:
		return fmt.Errorf("fakelvm dmsetup: unknown message %q", args[3])
	}
	return nil
}

// thinDelta handles "-m --thin1 A --thin2 B /dev/mapper/VG-pool_tmeta":
// the blocks of B that A maps alike are <same>, the others <different>.
func thinDelta(st *state, args []string) error {
	if os.Getenv("FAKELVM_THIN_DELTA_FAIL") != "" {
		return errors.New("bad checksum in metadata index block")
	}
	var ids [2]string
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--thin1", "--snap1":
			ids[0] = args[i+1]
		case "--thin2", "--snap2":
			ids[1] = args[i+1]
		}
	}
	pos := positional(args, "--thin1", "--thin2", "--snap1", "--snap2")
	if len(pos) != 1 || !strings.HasSuffix(pos[0], "-pool_tmeta") || !slices.Contains(args, "-m") {
		return fmt.Errorf("fakelvm thin_delta: want -m --thin1 A --thin2 B /dev/mapper/VG-pool_tmeta, got %q", args)
	}
	vgName := strings.TrimSuffix(strings.TrimPrefix(pos[0], "/dev/mapper/"), "-pool_tmeta")
	if !st.MetadataSnaps[vgName] {
		return errors.New("no current metadata snap")
	}
	var files [2]*os.File
	for i, id := range ids {
		l := byThinID(st.VGs[vgName], id)
		if l == nil {
			return fmt.Errorf("unknown thin device %q", id)
		}
		f, err := os.Open(l.Image)
		if err != nil {
			return err
		}
		defer f.Close()
		files[i] = f
	}
	same, err := fsmeta.Unchanged(files[0], files[1])
	if err != nil {
		return err
	}
	fi, err := files[1].Stat()
	if err != nil {
		return err
	}
	fmt.Printf("<superblock uuid=\"\" time=\"1\" transaction=\"1\" data_block_size=\"%d\" nr_data_blocks=\"0\">\n", poolBlock/512)
	fmt.Printf("  <diff left=\"%s\" right=\"%s\">\n", ids[0], ids[1])
	blocks := (fi.Size() + poolBlock - 1) / poolBlock
	for b := int64(0); b < blocks; {
		alike := same.Contain(b*poolBlock, min(poolBlock, fi.Size()-b*poolBlock))
		n := int64(1)
		for b+n < blocks && same.Contain((b+n)*poolBlock, min(poolBlock, fi.Size()-(b+n)*poolBlock)) == alike {
			n++
		}
		fmt.Printf("    <%s begin=\"%d\" length=\"%d\"/>\n", map[bool]string{true: "same", false: "different"}[alike], b, n)
		b += n
	}
	fmt.Println("  </diff>\n</superblock>")
	return nil
}

func byThinID(g *vg, id string) *lv {
	if g == nil {
		return nil
	}
	for _, l := range g.LVs {
		if l.Thin && strconv.Itoa(l.ThinID) == id {
			return l
		}
	}
	return nil
}
