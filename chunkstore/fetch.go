package chunkstore

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/zeebo/blake3"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/remote"
)

// fetchPack copies pack p from src into a scratch file, hashing it on the
// way, and stores it here only once it hashes to its name, replacing the
// copy there was: so a damaged copy from src is never kept, and a damaged
// copy here is never swapped for another damaged one. ok is false when
// src's copy is damaged.
func (r *Repository) fetchPack(ctx context.Context, src remote.Backend, p index.PackInfo) (ok bool, err error) {
	name := packName(p.ID)
	if err := r.fs.MkdirAll(r.scratch, 0o700); err != nil {
		return false, err
	}
	path := filepath.Join(r.scratch, "fetch-"+p.ID.String()+".tmp")
	f, err := r.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return false, err
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		r.fs.Remove(path)
	}()
	rc, err := src.Load(ctx, name, 0, 0)
	if err != nil {
		return false, fmt.Errorf("fetch %s from %s: %w", name, src.Location(), err)
	}
	h := blake3.New()
	// The hash comes first: a vfs.File may scribble on what it is given.
	n, err := io.Copy(io.MultiWriter(h, f), rc)
	rc.Close()
	if err != nil {
		return false, fmt.Errorf("fetch %s from %s: %w", name, src.Location(), err)
	}
	if n != p.Size || blob.ID(h.Sum(nil)) != p.ID {
		return false, nil
	}
	if err := f.Sync(); err != nil {
		return false, err
	}
	if fsaver, ok := r.be.(remote.FileSaver); ok {
		err := f.Close()
		f = nil
		if err == nil {
			err = fsaver.SaveFile(ctx, name, path)
		}
		return err == nil, err
	}
	return true, r.be.Save(ctx, name, f, n)
}
