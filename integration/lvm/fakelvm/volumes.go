package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

type syscallStat struct{ syscall.Stat_t }

func stat(p string, st *syscallStat) error { return syscall.Stat(p, &st.Stat_t) }
func (s *syscallStat) major() uint64       { return (s.Rdev >> 8) & 0xfff }
func (s *syscallStat) minor() uint64       { return (s.Rdev & 0xff) | ((s.Rdev >> 12) & 0xfff00) }

// lvcreate handles "-n NAME -L SIZE VG" and "-s -n NAME [-l N | -kn] VG/LV".
func lvcreate(st *state, args []string) error {
	var name, size, extents string
	snap, thin := false, false
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-n":
			i++
			name = args[i]
		case "-L":
			i++
			size = args[i]
		case "-l":
			i++
			extents = args[i]
		case "-s":
			snap = true
		case "-kn":
			thin = true
		case "-T", "--thin":
			thin = true
		}
	}
	pos := positional(args, "-n", "-L", "-l")
	if name == "" || len(pos) != 1 {
		return errors.New("fakelvm lvcreate: want -n NAME and one VG or VG/LV")
	}
	if snap {
		return createSnapshot(st, pos[0], name, extents, thin)
	}
	g := st.VGs[pos[0]]
	if g == nil {
		return failf("Volume group %q not found", pos[0])
	}
	n, err := parseSize(size)
	if err != nil {
		return err
	}
	n = (n + extentSize - 1) / extentSize * extentSize
	l := &lv{Size: n, Thin: thin}
	if err := addLV(g, pos[0], name, l); err != nil {
		return err
	}
	f, err := os.Create(l.Image)
	if err == nil {
		err = errors.Join(f.Truncate(int64(n)), f.Close())
	}
	if err != nil {
		return err
	}
	fmt.Printf("  Logical volume %q created.\n", name)
	return attach(l)
}

func parseSize(s string) (uint64, error) {
	mult := uint64(1)
	switch {
	case strings.HasSuffix(s, "b"), strings.HasSuffix(s, "B"):
		s = s[:len(s)-1]
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		s, mult = s[:len(s)-1], 1<<20
	case strings.HasSuffix(s, "G"), strings.HasSuffix(s, "g"):
		s, mult = s[:len(s)-1], 1<<30
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n * mult, err
}

func addLV(g *vg, vgName, name string, l *lv) error {
	if g.LVs[name] != nil {
		return failf("Logical Volume %q already exists in volume group %q", name, vgName)
	}
	if free := g.Size - g.used(); !(l.Thin && l.Origin != "") && l.Size > free {
		return failf("Volume group %q has insufficient free space (%d extents): %d required.", vgName, free/extentSize, l.Size/extentSize)
	}
	dir := os.Getenv("FAKELVM_DIR")
	if p := os.Getenv("FAKELVM_POOL_DIR"); p != "" && l.Thin {
		dir = p
	}
	l.Image = filepath.Join(dir, vgName+"-"+name+".img")
	g.NextUUID++
	l.UUID = fmt.Sprintf("fake%02d-%s-%s", g.NextUUID, vgName, name)
	if l.Thin {
		g.NextThinID++
		l.ThinID = g.NextThinID
	}
	g.LVs[name] = l
	return nil
}

func createSnapshot(st *state, origin, name, extents string, thin bool) error {
	o, g, err := find(st, origin)
	if err != nil {
		return err
	}
	vgName, _, _ := strings.Cut(strings.TrimPrefix(origin, "/dev/"), "/")
	if o.Thin != thin {
		return failf("fakelvm: thin snapshots (-kn) for thin volumes only, and only for them")
	}
	l := &lv{Origin: origin[strings.IndexByte(origin, '/')+1:], Thin: thin, Size: o.Size}
	if !thin {
		n, err := strconv.ParseUint(extents, 10, 64)
		if err != nil || n == 0 {
			return failf("Invalid argument for --extents: %q", extents)
		}
		// lvm2 shrinks a snapshot larger than its origin could need.
		l.Size = min(n*extentSize, o.Size+extentSize)
	}
	if err := addLV(g, vgName, name, l); err != nil {
		return err
	}
	// lvcreate -s suspends the origin, which flushes it; a copy of the
	// image after a sync is what the snapshot would hold.
	syscall.Sync()
	copyImage := copySparse
	if thin {
		copyImage = thinImage
	}
	if err := copyImage(o.Image, l.Image); err != nil {
		return err
	}
	fmt.Printf("  Logical volume %q created.\n", name)
	return attach(l)
}

// copySparse copies src to dst, leaving all-zero blocks as holes.
func copySparse(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	var off int64
	for {
		n, err := io.ReadFull(in, buf)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, werr := out.WriteAt(buf[:n], off); werr != nil {
				return werr
			}
		}
		off += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return err
		}
	}
	return errors.Join(out.Truncate(off), out.Close())
}

func attach(l *lv) error {
	out, err := exec.Command("losetup", "-f", "--show", l.Image).CombinedOutput()
	if err != nil {
		return fmt.Errorf("losetup %s: %v: %s", l.Image, err, out)
	}
	l.Loop = strings.TrimSpace(string(out))
	return nil
}

func lvremove(st *state, args []string) error {
	for _, name := range positional(args) {
		l, g, err := find(st, name)
		if err != nil {
			return err
		}
		lvName := name[strings.LastIndexByte(name, '/')+1:]
		for _, o := range g.LVs {
			if o.Origin == lvName {
				return failf("Logical volume %s has snapshots; remove them first", name)
			}
		}
		if mounted(l.Loop) {
			return failf("Logical volume %s contains a filesystem in use.", name)
		}
		// Device-mapper refuses to remove a device that is open; losetup -d
		// would detach it lazily instead, under a mount still under way.
		if inUse(l.Loop) {
			return failf("Logical volume %s in use.", name)
		}
		if err := detach(l); err != nil {
			return err
		}
		delete(g.LVs, lvName)
		fmt.Printf("  Logical volume %q successfully removed.\n", lvName)
	}
	return nil
}

// inUse says someone holds dev open exclusively, as mount does from the
// start of its work.
func inUse(dev string) bool {
	f, err := os.OpenFile(dev, os.O_RDONLY|syscall.O_EXCL, 0)
	if err != nil {
		return errors.Is(err, syscall.EBUSY)
	}
	f.Close()
	return false
}

func detach(l *lv) error {
	if err := deactivate(l); err != nil {
		return err
	}
	return os.Remove(l.Image)
}

// deactivate detaches l's loop device; an inactive volume has none.
func deactivate(l *lv) error {
	if l.Loop == "" {
		return nil
	}
	if out, err := exec.Command("losetup", "-d", l.Loop).CombinedOutput(); err != nil {
		return fmt.Errorf("losetup -d %s: %v: %s", l.Loop, err, out)
	}
	l.Loop = ""
	return nil
}

func teardown(st *state) error {
	var errs []error
	for _, g := range st.VGs {
		for _, l := range g.LVs {
			errs = append(errs, detach(l))
		}
	}
	st.VGs = map[string]*vg{}
	return errors.Join(errs...)
}
