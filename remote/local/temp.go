package local

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"time"
)

// RemoveTemp removes the temporary files of Saves that never finished (the
// process was killed), those last written before before, anywhere under
// the root, and reports how many it removed. A Save in progress writes its
// file continuously, so the caller picks a time no live writer's last
// write is that old.
func (b *Backend) RemoveTemp(ctx context.Context, before time.Time) (int, error) {
	return b.removeTemp(ctx, "", before)
}

func (b *Backend) removeTemp(ctx context.Context, dir string, before time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	names, err := b.readDir(dir)
	if err != nil {
		return 0, classify(err)
	}
	removed := 0
	for _, n := range names {
		name := joinName(dir, n)
		fi, err := b.fs.Stat(b.path(name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since readDir
		}
		if err != nil {
			return removed, classify(err)
		}
		switch {
		case fi.IsDir():
			r, err := b.removeTemp(ctx, name, before)
			removed += r
			if err != nil {
				return removed, err
			}
		case strings.HasPrefix(n, tempPrefix) && fi.ModTime().Before(before):
			if err := b.fs.Remove(b.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, classify(err)
			}
			removed++
		}
	}
	return removed, nil
}
