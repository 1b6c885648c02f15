package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/snapshot/fsmeta"
)

// RestoreOptions control a restore.
type RestoreOptions struct {
	Workers int  // chunks loaded and written at once; default GOMAXPROCS+1
	Verify  bool // read every restored file back and check it against its chunk IDs
	Owner   fsmeta.OwnerPolicy
}

// RestoreProgress counters; safe to read while the restore runs.
type RestoreProgress struct {
	Files, Dirs, Others atomic.Uint64
	Bytes               atomic.Uint64 // content bytes written
	TotalBytes          atomic.Uint64 // content bytes known so far
}

// RestoreWarning is a metadata step that failed (an xattr the target
// filesystem refuses, say) without stopping the restore.
type RestoreWarning struct {
	Path string
	Err  error
}

// ErrVerify is wrapped when --verify finds a restored file that differs.
var ErrVerify = errors.New("restored file does not match the snapshot")

type restorer struct {
	repo   Repo
	opts   RestoreOptions
	prog   *RestoreProgress
	rootfd int
	root   bool // running as root, whom no directory mode locks out
	jobs   chan *chunkWrite
	names  *fsmeta.IDNames

	linkMu sync.Mutex
	links  map[[2]uint64]string // (device, inode) of a hardlinked file → restored rel path

	warnMu   sync.Mutex
	warnings []RestoreWarning

	deferMu  sync.Mutex
	deferred []deferredDir
}

type deferredDir struct {
	rel  string
	node Node
}

// restoreFile is a regular file being written by several workers at once;
// the last chunk written finishes it.
type restoreFile struct {
	f       *os.File
	dirfd   int // a dup of the parent directory, for path-based metadata calls
	name    string
	rel     string
	node    Node
	pending atomic.Int64
}

type chunkWrite struct {
	file *restoreFile
	off  int64
	c    Chunk
}

// Restore writes the snapshot's subtree at sub ("" for everything) into
// target, which is created if missing. Files already in target are
// replaced. Returns the metadata warnings.
func Restore(ctx context.Context, repo Repo, rec *Record, sub, target string, o RestoreOptions, prog *RestoreProgress) ([]RestoreWarning, error) {
	n, err := Lookup(ctx, repo, rec, sub)
	if err != nil {
		return nil, err
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0) + 1
	}
	if prog == nil {
		prog = &RestoreProgress{}
	}
	if err := os.MkdirAll(target, 0o700); err != nil {
		return nil, err
	}
	rootfd, err := unix.Open(target, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: target, Err: err}
	}
	defer unix.Close(rootfd)
	r := &restorer{repo: repo, opts: o, prog: prog, rootfd: rootfd, root: os.Geteuid() == 0, jobs: make(chan *chunkWrite, 64),
		names: fsmeta.NewIDNames(4096), links: make(map[[2]uint64]string)}

	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < o.Workers; i++ {
		g.Go(func() error { return r.worker(gctx) })
	}
	g.Go(func() error {
		defer close(r.jobs)
		if n.Type != TypeDir {
			return r.entry(gctx, rootfd, "", n)
		}
		if err := r.dir(gctx, rootfd, "", n); err != nil {
			return err
		}
		if r.blocksUs(n) {
			r.deferDir("", n)
			return nil
		}
		r.apply(rootfd, ".", "", n)
		return nil
	})
	err = g.Wait()
	if err == nil {
		r.applyDeferred()
	}
	return r.warnings, err
}

// dir restores the entries of directory n into the directory open as fd.
func (r *restorer) dir(ctx context.Context, fd int, rel string, n *Node) error {
	t, err := LoadTree(ctx, r.repo, n.Subtree)
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	for i := range t.Nodes {
		if err := r.entry(ctx, fd, path.Join(rel, t.Nodes[i].Name), &t.Nodes[i]); err != nil {
			return err
		}
	}
	return nil
}

func (r *restorer) entry(ctx context.Context, dirfd int, rel string, n *Node) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch n.Type {
	case TypeDir:
		r.prog.Dirs.Add(1)
		fd, err := makeDir(dirfd, n.Name)
		if err != nil {
			return &os.PathError{Op: "mkdir", Path: rel, Err: err}
		}
		err = r.dir(ctx, fd, rel, n)
		unix.Close(fd)
		if err != nil {
			return err
		}
		if r.blocksUs(n) {
			r.deferDir(rel, n)
			return nil
		}
		r.apply(dirfd, n.Name, rel, n)
		return nil
	case TypeFile:
		r.prog.Files.Add(1)
		return r.file(ctx, dirfd, rel, n)
	default:
		r.prog.Others.Add(1)
		p := procPath(dirfd, n.Name)
		if err := r.removeExisting(dirfd, n.Name); err != nil {
			return &os.PathError{Op: "remove", Path: rel, Err: err}
		}
		if err := fsmeta.Create(p, metaFromNode(n)); err != nil {
			if isDevice(n) && errors.Is(err, unix.EPERM) {
				// Only root may make device nodes; the rest of the tree
				// is still worth restoring.
				r.warn(rel, err)
				return nil
			}
			return fmt.Errorf("%s: %w", rel, err)
		}
		r.apply(dirfd, n.Name, rel, n)
		return nil
	}
}

// makeDir makes and opens directory name, reusing one already there and
// replacing anything else in the way (a file left by an older restore).
func makeDir(dirfd int, name string) (int, error) {
	err := unix.Mkdirat(dirfd, name, 0o700)
	if err == unix.EEXIST {
		fd, oerr := openDir(dirfd, name)
		if oerr != unix.ENOTDIR && oerr != unix.ELOOP {
			return fd, oerr
		}
		if err := unix.Unlinkat(dirfd, name, 0); err != nil {
			return -1, err
		}
		err = unix.Mkdirat(dirfd, name, 0o700)
	}
	if err != nil {
		return -1, err
	}
	return openDir(dirfd, name)
}

func openDir(dirfd int, name string) (int, error) {
	return unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

func isDevice(n *Node) bool { return n.Type == TypeCharDev || n.Type == TypeBlockDev }

// blocksUs says whether giving directory n its mode now would lock this
// restore out of it while files inside are still being written and given
// their metadata by path: without root, a directory without write and
// search permission for its owner can be neither.
func (r *restorer) blocksUs(n *Node) bool {
	return !r.root && n.Mode&0o300 != 0o300
}

// deferDir keeps a directory's metadata for the end of the restore. Such
// directories are rare (a restore as a user of 0500 or 0000 directories),
// so the list stays short.
func (r *restorer) deferDir(rel string, n *Node) {
	r.deferMu.Lock()
	defer r.deferMu.Unlock()
	r.deferred = append(r.deferred, deferredDir{rel: rel, node: *n})
}

// applyDeferred gives the deferred directories their metadata once every
// file is written, deepest first (they were deferred after their
// children), so that each is still reachable when its turn comes.
func (r *restorer) applyDeferred() {
	for _, d := range r.deferred {
		if d.rel == "" { // the target itself
			r.apply(r.rootfd, ".", "", &d.node)
			continue
		}
		pfd, err := openDirPath(r.rootfd, path.Dir(d.rel))
		if err != nil {
			r.warn(d.rel, err)
			continue
		}
		r.apply(pfd, d.node.Name, d.rel, &d.node)
		unix.Close(pfd)
	}
}

// removeExisting clears the way for a new entry; a directory in the way
// is left alone (and creation will fail, naming it).
func (r *restorer) removeExisting(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == unix.ENOENT || err == unix.EISDIR {
		return nil
	}
	return err
}

func (r *restorer) file(ctx context.Context, dirfd int, rel string, n *Node) error {
	if err := r.removeExisting(dirfd, n.Name); err != nil {
		return &os.PathError{Op: "remove", Path: rel, Err: err}
	}
	if n.Links > 1 {
		key := [2]uint64{n.DeviceID, n.Inode}
		r.linkMu.Lock()
		first, seen := r.links[key]
		if !seen {
			r.links[key] = rel
		}
		r.linkMu.Unlock()
		if seen {
			return r.link(dirfd, first, rel, n.Name)
		}
	}
	fd, err := unix.Openat(dirfd, n.Name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: rel, Err: err}
	}
	dup, err := unix.Dup(dirfd)
	if err != nil {
		unix.Close(fd)
		return err
	}
	rf := &restoreFile{f: os.NewFile(uintptr(fd), rel), dirfd: dup, name: n.Name, rel: rel, node: *n}
	r.prog.TotalBytes.Add(n.Size)
	// One extra count keeps the file open until every chunk is queued.
	rf.pending.Store(1)
	var off int64
	for _, c := range n.Content {
		if !c.IsHole() {
			rf.pending.Add(1)
			select {
			case r.jobs <- &chunkWrite{file: rf, off: off, c: c}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		off += int64(c.Size)
	}
	return r.done(ctx, rf)
}

// link makes rel a hardlink of the already restored first.
func (r *restorer) link(dirfd int, first, rel, name string) error {
	// A relative path from the restore root; deep trees go through the
	// parent directory's descriptor so that no path exceeds PATH_MAX.
	pfd, err := openDirPath(r.rootfd, path.Dir(first))
	if err != nil {
		return &os.PathError{Op: "link", Path: rel, Err: err}
	}
	defer unix.Close(pfd)
	if err := unix.Linkat(pfd, path.Base(first), dirfd, name, 0); err != nil {
		return &os.PathError{Op: "link", Path: rel, Err: fmt.Errorf("to %s: %w", first, err)}
	}
	return nil
}

// openDirPath opens the directory at rel below rootfd one component at a
// time.
func openDirPath(rootfd int, rel string) (int, error) {
	fd, err := unix.Dup(rootfd)
	if err != nil {
		return -1, err
	}
	if rel == "." || rel == "" {
		return fd, nil
	}
	for _, c := range splitPath(rel) {
		next, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

func splitPath(p string) []string {
	var out []string
	for _, c := range bytes.Split([]byte(p), []byte{'/'}) {
		if len(c) > 0 {
			out = append(out, string(c))
		}
	}
	return out
}

func (r *restorer) worker(ctx context.Context) error {
	var buf []byte
	for j := range r.jobs {
		var err error
		buf, err = r.repo.LoadBlob(ctx, blob.Data, j.c.ID, buf)
		if err == nil && uint64(len(buf)) != j.c.Size {
			err = fmt.Errorf("blob %s has %d bytes, the file's content list says %d", j.c.ID.Short(), len(buf), j.c.Size)
		}
		if err == nil {
			_, err = j.file.f.WriteAt(buf, j.off)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", j.file.rel, err)
		}
		r.prog.Bytes.Add(uint64(len(buf)))
		if err := r.done(ctx, j.file); err != nil {
			return err
		}
	}
	return nil
}

// done counts one finished piece of a file; the last one sets the size
// (trailing holes), verifies, applies metadata and closes the file.
func (r *restorer) done(ctx context.Context, rf *restoreFile) error {
	if rf.pending.Add(-1) != 0 {
		return nil
	}
	defer unix.Close(rf.dirfd)
	defer rf.f.Close()
	if err := rf.f.Truncate(int64(rf.node.Size)); err != nil {
		return fmt.Errorf("%s: %w", rf.rel, err)
	}
	if r.opts.Verify {
		if err := r.verify(rf); err != nil {
			return err
		}
	}
	r.apply(rf.dirfd, rf.name, rf.rel, &rf.node)
	return nil
}

func (r *restorer) verify(rf *restoreFile) error {
	var off int64
	var buf []byte
	for _, c := range rf.node.Content {
		if cap(buf) < int(c.Size) {
			buf = make([]byte, c.Size)
		}
		b := buf[:c.Size]
		if _, err := rf.f.ReadAt(b, off); err != nil {
			return fmt.Errorf("verify %s: %w", rf.rel, err)
		}
		ok := c.IsHole() && allZero(b) || !c.IsHole() && r.repo.BlobID(b) == c.ID
		if !ok {
			return fmt.Errorf("%w: %s at offset %d", ErrVerify, rf.rel, off)
		}
		off += int64(c.Size)
	}
	return nil
}

// allZero reports whether b holds only zeros. Comparing b with itself
// shifted by one byte lets memequal's vector loop do the work: image
// backups ask this of every chunk, free space being long runs of zeros.
func allZero(b []byte) bool {
	return len(b) == 0 || b[0] == 0 && bytes.Equal(b[1:], b[:len(b)-1])
}

func (r *restorer) apply(dirfd int, name, rel string, n *Node) {
	err := fsmeta.Apply(procPath(dirfd, name), metaFromNode(n), fsmeta.ApplyOptions{Owner: r.opts.Owner, Names: r.names})
	if err == nil {
		return
	}
	r.warn(rel, err)
}

func (r *restorer) warn(rel string, err error) {
	r.warnMu.Lock()
	defer r.warnMu.Unlock()
	r.warnings = append(r.warnings, RestoreWarning{Path: rel, Err: err})
}
