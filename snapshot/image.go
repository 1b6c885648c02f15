package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/snapshot/fsmeta"
)

// ImageOptions control one backup of a block device or image file.
type ImageOptions struct {
	Host string
	// Origin is the path recorded as backed up, when the path read is a
	// copy of it (a reflink clone); default the path read.
	Origin string
	Source string // default "image:" + Origin
	// Name is the image's file name in the snapshot; default the base
	// name of Origin plus ".img".
	Name         string
	Tags         []string
	Time         time.Time // default now
	Program      string
	User         string
	Volume       *Volume // recorded with Size set to the image's size
	BeforeCommit func(context.Context) error
	// Changes, if the parent snapshot was made from the copy it compares
	// with, spares reading what did not change since (see ChangeOracle).
	Changes ChangeOracle

	BlobWorkers int   // default GOMAXPROCS
	InFlight    int64 // default 32 MiB
}

// imageDirName is the top directory of an image snapshot. The image is a
// file inside a directory, rather than the top node itself, so that a
// mount shows each image snapshot as a directory like any other, holding
// one file that can be loop-mounted.
const imageDirName = "image"

// BackupImage backs up the raw content of a block device or file as one
// stream through the chunker, and writes a snapshot of kind KindImage.
// All-zero chunks are recorded as holes and not stored; a sparse image
// file's holes are not even read. Large images are read in 128 MiB pieces,
// two at a time. The latest image snapshot of the same source guides the
// chunking (see guide): what did not change is hashed, not chunked again.
func BackupImage(ctx context.Context, repo Repo, path string, o ImageOptions, prog *Progress) (*Result, error) {
	start := time.Now()
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	o = o.withDefaults(abs, start)
	if prog == nil {
		prog = &Progress{}
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, exts, err := imageExtents(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", abs, err)
	}
	prog.Files.Store(1)
	prog.Bytes.Store(uint64(size))
	prog.Current.Store(&abs)

	var rd io.ReaderAt = f
	if d := openDirect(abs); d != nil {
		defer d.Close()
		rd = directReaderAt{d}
	}
	parent, guide, changes := imageParent(ctx, repo, o)
	mark := markWrites(repo)
	content, err := chunkImage(ctx, repo, rd, abs, size, exts, guide, changes, o, prog)
	if err == nil && o.BeforeCommit != nil {
		err = o.BeforeCommit(ctx)
	}
	if err != nil {
		// As for a tree: what was stored is reused by the next run.
		if ferr := repo.Flush(context.WithoutCancel(ctx)); ferr != nil {
			slog.Debug("flush after a failed image backup", "err", ferr)
		}
		return nil, err
	}
	rec := &Record{Time: o.Time, Host: o.Host, Source: o.Source, Paths: []string{o.Origin}, Kind: KindImage,
		Tags: o.Tags, User: o.User, Program: o.Program, Volume: o.Volume}
	rec.Volume.Size = uint64(size)
	if rec.Tree, err = saveImageTree(ctx, repo, o, uint64(size), content); err != nil {
		return nil, err
	}
	rec.Parent = parent
	rec.Stats = Stats{Files: 1, Dirs: 1, Bytes: uint64(size), NewBytes: prog.NewBytes.Load()}
	mark.addTo(&rec.Stats)
	rec.Stats.Duration = time.Since(start)
	if err := repo.Flush(ctx); err != nil {
		return nil, err
	}
	id, err := newSnapshotID()
	if err != nil {
		return nil, err
	}
	b, err := EncodeRecord(rec)
	if err != nil {
		return nil, err
	}
	if err := repo.SaveSnapshot(ctx, id, b); err != nil {
		return nil, err
	}
	return &Result{ID: id, Record: rec}, nil
}

func (o ImageOptions) withDefaults(abs string, now time.Time) ImageOptions {
	if o.Origin == "" {
		o.Origin = abs
	}
	if o.Source == "" {
		o.Source = "image:" + o.Origin
	}
	if o.Name == "" {
		o.Name = filepath.Base(o.Origin) + ".img"
	}
	if o.Time.IsZero() {
		o.Time = now
	}
	if o.BlobWorkers <= 0 {
		o.BlobWorkers = runtime.GOMAXPROCS(0)
	}
	if o.InFlight <= 0 {
		o.InFlight = 32 << 20
	}
	v := Volume{}
	if o.Volume != nil {
		v = *o.Volume
	}
	o.Volume = &v
	return o
}

// imageExtents returns the size of a device or file and the ranges worth
// reading: all of a device, only the data of a sparse file.
func imageExtents(f *os.File) (int64, []fsmeta.Extent, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, nil, err
	}
	if !fi.Mode().IsRegular() && fi.Mode()&os.ModeDevice == 0 {
		return 0, nil, errors.New("neither a block device nor a regular file")
	}
	// A block device's stat size is 0; seeking to its end gives its size.
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, nil, err
	}
	exts := []fsmeta.Extent{{Off: 0, Len: size}}
	if fi.Mode().IsRegular() {
		if e, err := fsmeta.DataExtents(f, size); err == nil {
			exts = e
		}
	}
	return size, exts, nil
}

// imageParent returns the latest image snapshot of the same source, its
// content as a guide: an image changes in place, so nearly all of it is
// backed up again without the chunker, and o.Changes if it may be trusted
// to say which of that need not even be read. A parent that cannot be
// read only costs speed.
func imageParent(ctx context.Context, repo Repo, o ImageOptions) (blob.ID, *guide, ChangeOracle) {
	parent, err := Resolve(ctx, repo, "latest", Filter{Host: o.Host, Source: o.Source})
	if err != nil || parent.Record.Kind != KindImage {
		return blob.ID{}, nil, nil
	}
	n, err := ImageNode(ctx, repo, parent.Record)
	if err != nil {
		slog.Debug("image backup without its parent's chunks", "parent", parent.ID.Short(), "err", err)
		return parent.ID, nil, nil
	}
	return parent.ID, newGuide(n.Content), trustedChanges(o.Changes, parent.Record)
}

// chunkImage runs the archiver's chunk pipeline over the extents of f.
func chunkImage(ctx context.Context, repo Repo, rd io.ReaderAt, name string, size int64, exts []fsmeta.Extent, gd *guide, changes ChangeOracle, o ImageOptions, prog *Progress) ([]Chunk, error) {
	a := &archiver{
		repo: repo, opts: BackupOptions{InFlight: o.InFlight}, prog: prog, zeroHoles: true,
		blobCh:   make(chan *chunkJob, 16),
		inFlight: semaphore.NewWeighted(o.InFlight),
		changes:  changes,
	}
	if changes != nil {
		var err error
		if a.reuse, err = checkReuse(repo); err != nil {
			return nil, err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for range o.BlobWorkers {
		g.Go(func() error { return a.blobWorker(gctx) })
	}
	var content []Chunk
	g.Go(func() error {
		defer close(a.blobCh)
		pending, err := a.chunkExtents(gctx, repo.NewChunker(nil), rd, exts, size, gd)
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		content, err = collect(gctx, pending)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if got := contentSize(content); got != uint64(size) {
		return nil, fmt.Errorf("%s: read %d bytes, expected %d: the device changed size", name, got, size)
	}
	return content, nil
}

// saveImageTree stores the image file inside its directory. Both are
// root's alone: an image holds every file of the volume, whoever owned it.
func saveImageTree(ctx context.Context, repo Repo, o ImageOptions, size uint64, content []Chunk) (blob.ID, error) {
	t := o.Time.UnixNano()
	file := Node{Name: o.Name, Type: TypeFile, Mode: 0o600, Size: size, Atime: t, Mtime: t, Ctime: t, Links: 1, Content: content}
	sub, err := SaveTree(ctx, repo, &Tree{Nodes: []Node{file}})
	if err != nil {
		return blob.ID{}, err
	}
	dir := Node{Name: imageDirName, Type: TypeDir, Mode: 0o700, Atime: t, Mtime: t, Ctime: t, Links: 2, Subtree: sub}
	return SaveTree(ctx, repo, &Tree{Nodes: []Node{dir}})
}

// ImageNode returns the image file of an image snapshot.
func ImageNode(ctx context.Context, repo Repo, rec *Record) (*Node, error) {
	if rec.Kind != KindImage {
		return nil, fmt.Errorf("snapshot of %s is of kind %q, not an image", rec.Source, rec.Kind)
	}
	root, err := RootNode(ctx, repo, rec)
	if err != nil {
		return nil, err
	}
	t, err := LoadTree(ctx, repo, root.Subtree)
	if err != nil {
		return nil, err
	}
	if len(t.Nodes) != 1 || t.Nodes[0].Type != TypeFile {
		return nil, fmt.Errorf("image snapshot of %s: expected one file in its tree", rec.Source)
	}
	return &t.Nodes[0], nil
}
