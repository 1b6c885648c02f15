package snapshot

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// TestUnchangedOnNewDevice: an LVM snapshot is a new device on every run;
// with NewDevice its unchanged files are still recognised, changed ones
// still are not.
func TestUnchangedOnNewDevice(t *testing.T) {
	prev := Node{Type: TypeFile, Size: 5, Mtime: 1, Ctime: 2, Inode: 7, DeviceID: 0xfd01}
	moved := prev
	moved.DeviceID = 0xfd02
	edited := moved
	edited.Ctime = 3
	tests := []struct {
		name      string
		newDevice bool
		n         Node
		want      bool
	}{
		{"same device", false, prev, true},
		{"other device", false, moved, false},
		{"other device, NewDevice", true, moved, true},
		{"changed, NewDevice", true, edited, false},
	}
	for _, tt := range tests {
		a := &archiver{opts: BackupOptions{NewDevice: tt.newDevice}}
		if got := a.unchanged(&tt.n, &prev); got != tt.want {
			t.Errorf("%s: unchanged = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestAllZero(t *testing.T) {
	tests := []struct {
		b    []byte
		want bool
	}{
		{nil, true},
		{[]byte{0}, true},
		{[]byte{1}, false},
		{make([]byte, 1<<20), true},
		{append(make([]byte, 1<<20), 1), false},
		{append([]byte{0, 2}, make([]byte, 100)...), false},
	}
	for i, tt := range tests {
		if got := allZero(tt.b); got != tt.want {
			t.Errorf("case %d (%d bytes): allZero = %v, want %v", i, len(tt.b), got, tt.want)
		}
	}
}

// TestDirectReaderAt reads unaligned ranges of a file through O_DIRECT,
// across span boundaries and past the end.
func TestDirectReaderAt(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	data := make([]byte, 3*directSpan+1234)
	for i := range data {
		data[i] = byte(i * 7 / 5)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f := openDirect(p)
	if f == nil {
		t.Skip("no O_DIRECT on the temporary directory's filesystem")
	}
	defer f.Close()
	tests := []struct {
		off, n  int64
		wantN   int
		wantEOF bool
	}{
		{0, 100, 100, false},
		{4095, 2, 2, false},
		{12345, 2*directSpan + 17, 2*directSpan + 17, false},
		{int64(len(data)) - 10, 10, 10, false},
		{int64(len(data)) - 10, 4096, 10, true},
	}
	for _, tt := range tests {
		buf := make([]byte, tt.n)
		n, err := directReaderAt{f}.ReadAt(buf, tt.off)
		if n != tt.wantN || (err == io.EOF) != tt.wantEOF || (err != nil && err != io.EOF) {
			t.Errorf("ReadAt(%d bytes at %d) = %d, %v; want %d, EOF %v", tt.n, tt.off, n, err, tt.wantN, tt.wantEOF)
		}
		if !bytes.Equal(buf[:n], data[tt.off:tt.off+int64(n)]) {
			t.Errorf("ReadAt(%d bytes at %d) returned other bytes", tt.n, tt.off)
		}
		// readChunk reads the same, without a bounce copy, or fails.
		got, err := directReaderAt{f}.readChunk(tt.off, int(tt.n))
		if tt.wantEOF != (err != nil) {
			t.Errorf("readChunk(%d bytes at %d): %v, want EOF %v", tt.n, tt.off, err, tt.wantEOF)
		}
		if err == nil && !bytes.Equal(got, data[tt.off:tt.off+tt.n]) {
			t.Errorf("readChunk(%d bytes at %d) returned other bytes", tt.n, tt.off)
		}
	}
}

// TestGuideAfter: a chunk found by its ID leads to the chunk that followed
// it in the parent, unless the parent held it more than once.
func TestGuideAfter(t *testing.T) {
	id := func(b byte) blob.ID { return blob.ID{b} }
	zeros := id(9)
	g := newGuide([]Chunk{
		{ID: id(1), Size: 10}, {ID: zeros, Size: 10}, {ID: zeros, Size: 10},
		{ID: id(2), Size: 10}, {Size: 10}, {ID: id(3), Size: 10},
	})
	tests := []struct {
		id   blob.ID
		want int
	}{
		{id(1), 1},
		{zeros, -1}, // held twice: which one came before is unknown
		{id(2), 4},
		{id(3), -1}, // the last chunk
		{id(4), -1}, // never seen
	}
	for _, tt := range tests {
		if got := g.after(tt.id); got != tt.want {
			t.Errorf("after(%s) = %d, want %d", tt.id.Short(), got, tt.want)
		}
	}
}
