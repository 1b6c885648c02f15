package remote

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// EmptyAtEnd answers a ranged Load that an object store refused as
// unsatisfiable (HTTP 416). A range starting exactly at the end, which
// includes any range of an empty object, is empty by the Backend
// contract; one past the end is a permanent error.
func EmptyAtEnd(ctx context.Context, b Backend, name string, offset int64) (io.ReadCloser, error) {
	fi, err := b.Stat(ctx, name)
	if err != nil {
		return nil, err
	}
	if offset == fi.Size {
		return io.NopCloser(strings.NewReader("")), nil
	}
	return nil, Permanent(fmt.Errorf("%s: load %s: offset %d beyond end of %d-byte object", b.Location(), name, offset, fi.Size))
}
