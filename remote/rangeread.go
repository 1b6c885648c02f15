package remote

import "context"

// RangeReader is a Backend that reads part of an object into memory its
// caller provides. A Load hands its bytes over through a reader, which
// costs a copy; a local disk can put them where the caller wants them,
// and for sparse reads (WithSparseReads) past the page cache.
type RangeReader interface {
	// ReadRange returns the n bytes of name at offset. They lie in buf's
	// memory, though not necessarily at its start, when cap(buf) is at
	// least n+RangeSlack; otherwise in memory of their own. A range that
	// runs past the end of the object fails with io.ErrUnexpectedEOF, as
	// io.ReadFull of a Load of it would.
	ReadRange(ctx context.Context, name string, offset, n int64, buf []byte) ([]byte, error)
}

// RangeSlack is the room a ReadRange buffer needs beyond the range: reads
// past the page cache want memory and file offsets aligned to 4 KiB.
const RangeSlack = 3 << 12
