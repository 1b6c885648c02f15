package snapshot

import "github.com/hindsight-backup/hindsight/chunkstore/blob"

// blobChecker is what a repository that prune may shrink offers
// (chunkstore.Repository): whether packs are condemned, and the lookup
// that does not count their blobs.
type blobChecker interface {
	Condemning() (bool, error)
	HasBlob(t blob.Type, id blob.ID) (bool, error)
}

// checkReuse returns the checker a backup must pass reused content
// through, or nil when reuse needs no check. It is asked once, after the
// caller locked and opened the repository; chunkstore/prune.go explains
// why that is enough.
func checkReuse(repo Repo) (blobChecker, error) {
	c, ok := repo.(blobChecker)
	if !ok {
		return nil, nil
	}
	condemning, err := c.Condemning()
	if err != nil || !condemning {
		return nil, err
	}
	return c, nil
}

// reusable reports whether a parent's content list may be reused as it
// is: every blob it names must be found, outside condemned packs, or the
// file is read again.
func (a *archiver) reusable(content []Chunk) bool {
	if a.reuse == nil {
		return true
	}
	for _, c := range content {
		if c.IsHole() {
			continue
		}
		if ok, err := a.reuse.HasBlob(blob.Data, c.ID); err != nil || !ok {
			return false
		}
	}
	return true
}
