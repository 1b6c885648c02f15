package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"syscall"

	"github.com/hindsight-backup/hindsight/remote"
)

// List calls fn for every object whose name starts with prefix, in
// lexical order within each directory. It reads only the directory named
// by prefix up to its last '/' and the subdirectories that can match, so
// listing "snapshots/" never walks the packs.
func (b *Backend) List(ctx context.Context, prefix string, fn func(remote.FileInfo) error) error {
	if err := remote.CheckPrefix(prefix); err != nil {
		return err
	}
	return b.walk(ctx, parentOf(prefix), prefix, fn)
}

func (b *Backend) walk(ctx context.Context, dir, prefix string, fn func(remote.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local: list %s: %w", prefix, err)
	}
	names, err := b.readDir(dir)
	if err != nil {
		return classify(fmt.Errorf("local: list %s: %w", prefix, err))
	}
	for _, n := range names {
		// Temp files, and anything else no valid name can produce.
		if strings.HasPrefix(n, ".") {
			continue
		}
		name := joinName(dir, n)
		// Inside dir, prefix has no further '/', so this one test decides
		// for files and subdirectories alike.
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		fi, err := b.fs.Stat(b.path(name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since readDir
		}
		if err != nil {
			return classify(fmt.Errorf("local: list %s: %w", prefix, err))
		}
		if fi.IsDir() {
			if err := b.walk(ctx, name, prefix, fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(remote.FileInfo{Name: name, Size: fi.Size()}); err != nil {
			return err
		}
	}
	return nil
}

// readDir returns dir's entries sorted, and none for a directory that does
// not exist (or is a file): an empty listing, not an error.
func (b *Backend) readDir(dir string) ([]string, error) {
	fi, err := b.fs.Stat(b.path(dir))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, nil
	}
	names, err := b.fs.List(b.path(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	slices.Sort(names)
	return names, err
}
