package fs

import (
	"context"
	"syscall"
	"testing"
)

// TestDirHandleOffsets reads a listing through a handle as the kernel does
// across several READDIR requests: each entry's offset is where the next
// read resumes, and a seek there resumes after that entry.
func TestDirHandleOffsets(t *testing.T) {
	d := &dirHandle{dir: &entryNode{}, list: []Entry{{Name: "a"}, {Name: "b"}, {Name: "c"}}}
	ctx := context.Background()
	var names []string
	var offs []uint64
	for {
		e, errno := d.Readdirent(ctx)
		if errno != 0 {
			t.Fatal(errno)
		}
		if e == nil {
			break
		}
		names = append(names, e.Name)
		offs = append(offs, e.Off)
	}
	if len(names) != 3 || names[0] != "a" || names[2] != "c" || offs[0] != 1 || offs[2] != 3 {
		t.Fatalf("read %q at offsets %v, want a b c at 1 2 3", names, offs)
	}
	if errno := d.Seekdir(ctx, offs[0]); errno != 0 {
		t.Fatal(errno)
	}
	if e, _ := d.Readdirent(ctx); e == nil || e.Name != "b" {
		t.Errorf("after seeking to a's offset: %+v, want b", e)
	}
	if errno := d.Seekdir(ctx, 4); errno != syscall.EINVAL {
		t.Errorf("seek past the end: %v, want EINVAL", errno)
	}
}
