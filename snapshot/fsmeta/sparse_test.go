package fsmeta

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDataExtentsRealFile(t *testing.T) {
	const block = 4096
	tests := []struct {
		name   string
		size   int64
		writes []int64 // offsets of one-block writes
		want   []Extent
	}{
		{"empty", 0, nil, nil},
		{"all hole", 10 * block, nil, nil},
		{"dense", 3 * block, []int64{0, block, 2 * block}, []Extent{{0, 3 * block}}},
		{"holes between", 256 * block, []int64{16 * block, 128 * block},
			[]Extent{{16 * block, block}, {128 * block, block}}},
		{"data at both ends", 64 * block, []int64{0, 63 * block},
			[]Extent{{0, block}, {63 * block, block}}},
		{"short tail block", 8*block + 100, []int64{8 * block}, []Extent{{8 * block, 100}}},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(dir, tt.name))
			must(t, err)
			defer f.Close()
			for _, off := range tt.writes {
				n := min(block, tt.size-off)
				_, err := f.WriteAt(make([]byte, n), off)
				must(t, err)
				// WriteAt of zeros still allocates; make it visibly data.
				_, err = f.WriteAt([]byte{1}, off)
				must(t, err)
			}
			must(t, f.Truncate(tt.size))
			must(t, f.Sync())
			if _, err := f.Seek(5, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			got, err := DataExtents(f, tt.size)
			must(t, err)
			if !reflect.DeepEqual(got, tt.want) {
				requireFeature(t, !(len(got) == 1 && got[0] == Extent{0, tt.size}),
					"filesystem of "+dir+" does not report holes")
				t.Errorf("extents %v, want %v", got, tt.want)
			}
			if pos, _ := f.Seek(0, io.SeekCurrent); pos != 5 {
				t.Errorf("file offset left at %d, want 5", pos)
			}
		})
	}
}

// A size smaller than the file reports only the first size bytes, which is
// what a backup wants when the file grew after it was stat'ed.
func TestDataExtentsClampsToSize(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	must(t, err)
	defer f.Close()
	_, err = f.WriteAt(make([]byte, 8192), 0)
	must(t, err)
	got, err := DataExtents(f, 1000)
	must(t, err)
	if want := []Extent{{0, 1000}}; !reflect.DeepEqual(got, want) {
		t.Errorf("extents %v, want %v", got, want)
	}
}

// fakeFile answers lseek like the kernel would for a file whose data lies
// in the given extents and which is end bytes long, or with err for the
// given whence.
type fakeFile struct {
	data   []Extent
	end    int64
	failOn int
	err    error
	calls  int
}

func (f *fakeFile) seek(off int64, whence int) (int64, error) {
	f.calls++
	if f.calls > 100 {
		return 0, errors.New("seek loop")
	}
	if whence == f.failOn && f.err != nil {
		return 0, f.err
	}
	if off >= f.end {
		return 0, unix.ENXIO
	}
	for _, e := range f.data {
		inData := off >= e.Off && off < e.Off+e.Len
		switch {
		case whence == unix.SEEK_DATA && inData:
			return off, nil
		case whence == unix.SEEK_DATA && e.Off > off && e.Off < f.end:
			return e.Off, nil
		case whence == unix.SEEK_HOLE && inData:
			return min(e.Off+e.Len, f.end), nil
		}
	}
	if whence == unix.SEEK_DATA {
		return 0, unix.ENXIO
	}
	return off, nil
}

func TestDataExtentsLseekSemantics(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		file    fakeFile
		size    int64
		want    []Extent
		wantErr error
	}{
		{"only hole", fakeFile{end: 100}, 100, nil, nil},
		{"trailing hole", fakeFile{data: []Extent{{0, 10}}, end: 100}, 100, []Extent{{0, 10}}, nil},
		{"data runs to EOF", fakeFile{data: []Extent{{50, 50}}, end: 100}, 100, []Extent{{50, 50}}, nil},
		{"file grew: clamp to size", fakeFile{data: []Extent{{0, 200}}, end: 200}, 100, []Extent{{0, 100}}, nil},
		{"file shrank under us", fakeFile{data: []Extent{{0, 10}, {80, 20}}, end: 50}, 100, []Extent{{0, 10}}, nil},
		{"data beyond size", fakeFile{data: []Extent{{0, 10}, {150, 10}}, end: 200}, 100, []Extent{{0, 10}}, nil},
		{"SEEK_DATA unsupported", fakeFile{end: 100, failOn: unix.SEEK_DATA, err: unix.EINVAL}, 100,
			[]Extent{{0, 100}}, nil},
		{"SEEK_HOLE unsupported", fakeFile{data: []Extent{{20, 10}}, end: 100, failOn: unix.SEEK_HOLE, err: unix.EINVAL}, 100,
			[]Extent{{20, 80}}, nil},
		{"other errors propagate", fakeFile{end: 100, failOn: unix.SEEK_DATA, err: boom}, 100, nil, boom},
		{"no seek on empty file", fakeFile{failOn: unix.SEEK_DATA, err: boom}, 0, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dataExtents(tt.file.seek, tt.size)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("extents %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDataExtentsStopsOnNoProgress(t *testing.T) {
	seek := func(off int64, whence int) (int64, error) { return off, nil } // hole == data
	got, err := dataExtents(seek, 100)
	if err != nil || !reflect.DeepEqual(got, []Extent{{0, 100}}) {
		t.Errorf("got %v, %v; want one extent and no loop", got, err)
	}
}
