package crashfs

import (
	"fmt"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
)

type opKind uint8

const (
	opCreate opKind = iota
	opOpen
	opOpenDir
	opOpenReadWrite
	opReuseForWrite
	opLink
	opRemove
	opRemoveAll
	opRename
	opMkdirAll
	opWriteAt
	opSync
	opClose
	opLock
)

var opNames = [...]string{"create", "open", "opendir", "open-rw", "reuse", "link", "remove",
	"remove-all", "rename", "mkdir-all", "write", "sync", "close", "lock"}

// change is one recorded change. Files are named by handle, not path: a
// write lands in the file that was opened, whatever its name is by then.
type change struct {
	kind     opKind
	name, to string
	h        int // the handle opened, or written, synced, closed
	off      int64
	data     []byte
	perm     os.FileMode
	failed   bool
}

func (c change) String() string {
	switch c.kind {
	case opWriteAt:
		return fmt.Sprintf("write handle %d, %d bytes at %d", c.h, len(c.data), c.off)
	case opSync, opClose:
		return fmt.Sprintf("%s handle %d", opNames[c.kind], c.h)
	}
	s := opNames[c.kind] + " " + c.name
	if c.to != "" {
		s += " → " + c.to
	}
	return s
}

// replay applies c to mem, which must be in the state c was recorded in.
// A replay that succeeds where the recorded change failed, or the reverse,
// has diverged from the recorded run, and so would every later change.
func (c change) replay(mem *vfs.MemFS, files map[int]vfs.File) error {
	var f vfs.File
	var err error
	const cat = vfs.WriteCategoryUnspecified
	switch c.kind {
	case opCreate:
		f, err = mem.Create(c.name, cat)
	case opOpen:
		f, err = mem.Open(c.name)
	case opOpenDir:
		f, err = mem.OpenDir(c.name)
	case opOpenReadWrite:
		f, err = mem.OpenReadWrite(c.name, cat)
	case opReuseForWrite:
		f, err = mem.ReuseForWrite(c.name, c.to, cat)
	case opLink:
		err = mem.Link(c.name, c.to)
	case opRemove:
		err = mem.Remove(c.name)
	case opRemoveAll:
		err = mem.RemoveAll(c.name)
	case opRename:
		err = mem.Rename(c.name, c.to)
	case opMkdirAll:
		err = mem.MkdirAll(c.name, c.perm)
	case opWriteAt:
		_, err = files[c.h].WriteAt(c.data, c.off)
	case opSync:
		err = files[c.h].Sync()
	case opClose:
		err = files[c.h].Close()
		delete(files, c.h)
	case opLock:
		// Only the file: no process of the crashed state holds a lock.
		var lf vfs.File
		if lf, err = mem.Create(c.name, cat); err == nil {
			err = lf.Close()
		}
	}
	if f != nil {
		files[c.h] = f
	}
	if (err != nil) != c.failed {
		return fmt.Errorf("diverged: recorded failed=%v, replayed: %v", c.failed, err)
	}
	return nil
}
