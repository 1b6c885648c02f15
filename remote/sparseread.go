package remote

import "context"

type sparseReadsKey struct{}

// WithSparseReads marks the loads made with ctx as reads of scattered parts
// of objects: a mount reading one file takes that file's chunks, which
// packs interleave with other files' chunks. A backend may then skip
// prefetching what follows each range (the local one turns off the
// kernel's readahead), which for such reads fetches mostly bytes nobody
// asked for. Loads without the mark (restore, check, push) read most of
// what follows and keep the prefetching.
func WithSparseReads(ctx context.Context) context.Context {
	return context.WithValue(ctx, sparseReadsKey{}, true)
}

// SparseReads reports whether ctx carries WithSparseReads.
func SparseReads(ctx context.Context) bool {
	v, _ := ctx.Value(sparseReadsKey{}).(bool)
	return v
}
