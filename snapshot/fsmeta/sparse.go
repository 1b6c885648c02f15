package fsmeta

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Extent is a byte range [Off, Off+Len) of a file.
type Extent struct {
	Off, Len int64
}

// DataExtents returns the ranges of the first size bytes of f that may hold
// data, in order; everything between them is a hole that reads as zeros and
// need not be read. Ranges follow the filesystem's allocation, so they are
// block-aligned and may still contain zeros. Where the kernel or filesystem
// cannot tell (lseek rejects SEEK_DATA with EINVAL), the whole file is one
// extent. f's offset is restored before returning; read with ReadAt.
func DataExtents(f *os.File, size int64) ([]Extent, error) {
	cur, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, err
	}
	exts, err := dataExtents(func(off int64, whence int) (int64, error) { return f.Seek(off, whence) }, size)
	if _, serr := f.Seek(cur, io.SeekStart); err == nil {
		err = serr
	}
	return exts, err
}

// dataExtents walks the file with lseek(2). Its facts: SEEK_DATA and
// SEEK_HOLE fail with ENXIO when the offset is at or beyond end of file, and
// SEEK_DATA also when only a hole follows; there is an implicit hole at end
// of file, so SEEK_HOLE never fails inside it; filesystems without hole
// tracking report all of the file as data; EINVAL means the whence is not
// understood at all.
func dataExtents(seek func(off int64, whence int) (int64, error), size int64) ([]Extent, error) {
	var exts []Extent
	for off := int64(0); off < size; {
		data, err := seek(off, unix.SEEK_DATA)
		switch {
		case errors.Is(err, unix.ENXIO):
			return exts, nil // only a hole, or the file shrank
		case errors.Is(err, unix.EINVAL):
			return append(exts, Extent{off, size - off}), nil
		case err != nil:
			return nil, err
		case data >= size:
			return exts, nil
		case data < off:
			return nil, errors.New("lseek SEEK_DATA moved backwards")
		}
		hole, err := seek(data, unix.SEEK_HOLE)
		switch {
		case errors.Is(err, unix.ENXIO):
			return exts, nil // shrank below data since the last call
		case errors.Is(err, unix.EINVAL):
			return append(exts, Extent{data, size - data}), nil
		case err != nil:
			return nil, err
		case hole <= data:
			// No progress would loop forever; trust the data to the end.
			return append(exts, Extent{data, size - data}), nil
		}
		hole = min(hole, size)
		exts = append(exts, Extent{data, hole - data})
		off = hole
	}
	return exts, nil
}
