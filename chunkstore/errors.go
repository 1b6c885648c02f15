package chunkstore

import (
	"errors"
	"fmt"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// ErrBlobMissing says a blob is not in the index, or its pack is gone.
var ErrBlobMissing = errors.New("blob missing")

// BlobMissingError names the blob (and, when known, the pack) that is missing.
type BlobMissingError struct {
	Type blob.Type
	ID   blob.ID
	Pack blob.ID // zero when the index does not know the blob
}

func (e *BlobMissingError) Error() string {
	if e.Pack.IsZero() {
		return fmt.Sprintf("%s blob %s is not in the index", e.Type, e.ID)
	}
	return fmt.Sprintf("%s blob %s: pack %s is missing", e.Type, e.ID, e.Pack)
}

func (e *BlobMissingError) Unwrap() error { return ErrBlobMissing }

// ErrCorrupt is wrapped by every CorruptPackError.
var ErrCorrupt = errors.New("corrupt data")

// CorruptPackError says a pack's bytes fail authentication, decoding or the
// blob-ID check. Blob is zero when the trailer itself is damaged.
type CorruptPackError struct {
	Pack blob.ID
	Blob blob.ID
	Err  error
}

func (e *CorruptPackError) Error() string {
	if e.Blob.IsZero() {
		return fmt.Sprintf("pack %s is corrupt: %v", e.Pack, e.Err)
	}
	return fmt.Sprintf("pack %s is corrupt: blob %s: %v", e.Pack, e.Blob, e.Err)
}

func (e *CorruptPackError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// ErrWrongPassword is returned by Open when no key file opens with the password.
var ErrWrongPassword = errors.New("wrong password: no key of this repository opens with it")
