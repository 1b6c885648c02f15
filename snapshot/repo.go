// Package snapshot turns directory trees and volumes into snapshots and back:
// the tree encoding, snapshot records, the archiver (walk → chunk → trees),
// the restorer, per-file history rows and snapshot lookup.
package snapshot

import (
	"context"
	"io"

	"github.com/restic/chunker"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
)

// Repo is what this package needs of a repository; *chunkstore.Repository
// implements it.
type Repo interface {
	BlobID(data []byte) blob.ID
	SaveBlob(ctx context.Context, t blob.Type, id blob.ID, plain []byte) (known bool, err error)
	LoadBlob(ctx context.Context, t blob.Type, id blob.ID, buf []byte) ([]byte, error)
	LoadBlobIn(ctx context.Context, t blob.Type, id blob.ID, buf []byte) ([]byte, error)
	TreeLoader
	NewChunker(rd io.Reader) *chunker.Chunker
	ResetChunker(c *chunker.Chunker, rd io.Reader)
	SaveSnapshot(ctx context.Context, id blob.ID, record []byte) error
	Flush(ctx context.Context) error
	LoadSnapshot(ctx context.Context, id blob.ID) ([]byte, error)
	ListSnapshots(ctx context.Context, fn func(id blob.ID, record []byte) error) error
	Index() index.Store
}
