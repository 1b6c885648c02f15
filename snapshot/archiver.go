package snapshot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/snapshot/fsmeta"
)

// BackupOptions control one backup of a directory tree.
type BackupOptions struct {
	Host          string
	Source        string // source name; default: the absolute path
	Tags          []string
	Parent        *blob.ID // nil: the newest snapshot of the same host and source; zero: none
	Excludes      []string // patterns, see Excluder
	OneFileSystem bool
	ExcludeCaches bool
	Time          time.Time // the snapshot's time; default now
	Program       string
	User          string
	Volume        *Volume // recorded: the volume the tree was mounted from
	// NewDevice says the tree is mounted from a new device on every run,
	// as an LVM snapshot is: unchanged files are then recognised without
	// comparing device numbers, which differ from run to run.
	NewDevice bool
	// BeforeCommit runs after the tree is stored and before the record is
	// written; its error fails the backup with nothing recorded. LVM
	// backups check here that the snapshot they read did not overflow.
	BeforeCommit func(context.Context) error

	FileWorkers int   // files read at once; default 2
	BlobWorkers int   // chunks hashed, compressed and encrypted at once; default GOMAXPROCS
	InFlight    int64 // bytes of chunk buffers between reading and packing; default 16 MiB
}

// Progress counters of a running backup; safe to read while it runs.
type Progress struct {
	Files, Dirs, Others atomic.Uint64
	Bytes               atomic.Uint64 // content bytes seen, read or not
	ReadBytes           atomic.Uint64 // content bytes actually read
	GuidedBytes         atomic.Uint64 // of those, bytes found unchanged in the parent's chunks, not chunked again
	UnreadBytes         atomic.Uint64 // bytes not read at all: a ChangeOracle vouched for them
	NewBytes            atomic.Uint64 // bytes in blobs the repository lacked
	Errors              atomic.Uint64
	Current             atomic.Pointer[string]
}

// Result is a finished backup.
type Result struct {
	ID     blob.ID
	Record *Record
}

// ErrIncomplete is wrapped by Backup's error when the snapshot was written
// but some files changed while read or could not be read.
var ErrIncomplete = errors.New("snapshot is incomplete")

type archiver struct {
	repo    Repo
	opts    BackupOptions
	prog    *Progress
	names   *fsmeta.IDNames
	excl    *Excluder
	snap    blob.ID
	rootDev uint64
	// zeroHoles records all-zero chunks as holes: volume images have no
	// extent map, and their free space reads as zeros.
	zeroHoles bool

	fileCh   chan *fileJob
	blobCh   chan *chunkJob
	inFlight *semaphore.Weighted
	dirs     sync.WaitGroup

	recMu sync.Mutex
	rec   *Record

	hist *historyWriter
	// reuse is set while prune has condemned packs: a parent's content
	// list is then reused only once each blob is found with it.
	reuse blobChecker
	// changes, in an image backup, says which of the parent's chunks
	// need not even be read (see ChangeOracle).
	changes ChangeOracle
}

// Backup backs up the tree at root and writes a snapshot. If some files
// could not be read completely, the snapshot is still written and the
// error wraps ErrIncomplete; Result is then non-nil.
func Backup(ctx context.Context, repo Repo, root string, o BackupOptions, prog *Progress) (*Result, error) {
	start := time.Now()
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if o.Source == "" {
		o.Source = abs
	}
	if o.Time.IsZero() {
		o.Time = start
	}
	if o.FileWorkers <= 0 {
		o.FileWorkers = 2
	}
	if o.BlobWorkers <= 0 {
		o.BlobWorkers = runtime.GOMAXPROCS(0)
	}
	if o.InFlight <= 0 {
		o.InFlight = 16 << 20
	}
	if prog == nil {
		prog = &Progress{}
	}
	excl, err := NewExcluder(o.Excludes)
	if err != nil {
		return nil, err
	}
	excl.SetRoot(abs)
	parent, err := findParent(ctx, repo, o)
	if err != nil {
		return nil, err
	}
	snap, err := newSnapshotID()
	if err != nil {
		return nil, err
	}
	a := &archiver{
		repo: repo, opts: o, prog: prog, names: fsmeta.NewIDNames(4096), excl: excl, snap: snap,
		fileCh:   make(chan *fileJob, 16),
		blobCh:   make(chan *chunkJob, 16),
		inFlight: semaphore.NewWeighted(o.InFlight),
		rec: &Record{Time: o.Time, Host: o.Host, Source: o.Source, Paths: []string{abs}, Kind: KindFiles,
			Tags: o.Tags, User: o.User, Program: o.Program, Excludes: o.Excludes, Volume: o.Volume},
		hist: newHistoryWriter(repo, HistorySource(o.Host, o.Source), o.Time.UnixNano(), snap),
	}
	if a.reuse, err = checkReuse(repo); err != nil {
		return nil, err
	}
	var parentTop *Tree
	if parent != nil {
		a.rec.Parent = parent.ID
		if parentTop, err = LoadTree(ctx, repo, parent.Record.Tree); err != nil {
			return nil, fmt.Errorf("parent snapshot %s: %w", parent.ID.Short(), err)
		}
	}

	mark := markWrites(repo)
	top, err := a.run(ctx, abs, parentTop)
	if err == nil && o.BeforeCommit != nil {
		err = o.BeforeCommit(ctx)
	}
	if err != nil {
		a.hist.abort()
		// Make what was stored durable and listed, so that the next run
		// (interrupted or not) reuses it; a Flush that fails also retires
		// a pack writer broken by this run's error.
		if ferr := repo.Flush(context.WithoutCancel(ctx)); ferr != nil {
			slog.Debug("flush after a failed backup", "err", ferr)
		}
		return nil, err
	}
	a.rec.Tree = top
	a.rec.Stats.Files = prog.Files.Load()
	a.rec.Stats.Dirs = prog.Dirs.Load()
	a.rec.Stats.Others = prog.Others.Load()
	a.rec.Stats.Bytes = prog.Bytes.Load()
	a.rec.Stats.NewBytes = prog.NewBytes.Load()
	mark.addTo(&a.rec.Stats)
	a.rec.Stats.Duration = time.Since(start)
	if err := a.hist.commit(); err != nil {
		return nil, err
	}
	b, err := EncodeRecord(a.rec)
	if err != nil {
		return nil, err
	}
	if err := repo.SaveSnapshot(ctx, snap, b); err != nil {
		a.hist.deleteRows()
		return nil, err
	}
	res := &Result{ID: snap, Record: a.rec}
	if len(a.rec.Incomplete) > 0 {
		return res, fmt.Errorf("%w: %d paths changed while read or could not be read", ErrIncomplete, len(a.rec.Incomplete)+int(a.rec.IncompleteMore))
	}
	return res, nil
}

// written returns the repository's write counters when it keeps them.
func written(repo Repo) *chunkstore.WriteCounters {
	if w, ok := repo.(interface {
		Written() *chunkstore.WriteCounters
	}); ok {
		return w.Written()
	}
	return nil
}

// writeMark holds the repository's write counters at some point, to tell
// what a backup added since.
type writeMark struct {
	w                  *chunkstore.WriteCounters
	blobs, storedBytes uint64
}

func markWrites(repo Repo) writeMark {
	m := writeMark{w: written(repo)}
	if m.w != nil {
		m.blobs, m.storedBytes = m.w.Blobs.Load(), m.w.StoredBytes.Load()
	}
	return m
}

// addTo sets the new blobs and stored bytes since the mark.
func (m writeMark) addTo(s *Stats) {
	if m.w != nil {
		s.NewBlobs = m.w.Blobs.Load() - m.blobs
		s.StoredBytes = m.w.StoredBytes.Load() - m.storedBytes
	}
}

// run walks the tree with a pool of file readers and a pool of chunk
// savers, and returns the top tree's ID.
func (a *archiver) run(ctx context.Context, abs string, parentTop *Tree) (blob.ID, error) {
	g, ctx := errgroup.WithContext(ctx)
	var readers sync.WaitGroup
	for i := 0; i < a.opts.FileWorkers; i++ {
		readers.Add(1)
		g.Go(func() error { defer readers.Done(); return a.fileWorker(ctx) })
	}
	for i := 0; i < a.opts.BlobWorkers; i++ {
		g.Go(func() error { return a.blobWorker(ctx) })
	}
	var top blob.ID
	g.Go(func() error {
		defer func() {
			close(a.fileCh)
			readers.Wait()
			// Readers that stopped on an error left jobs queued: their files
			// are still open.
			for job := range a.fileCh {
				job.f.Close()
			}
			close(a.blobCh)
		}()
		fut, err := a.saveRoot(ctx, abs, parentTop)
		if err != nil {
			return err
		}
		n, err := fut.wait(ctx)
		if err != nil {
			return err
		}
		a.dirs.Wait()
		if n.skip {
			return fmt.Errorf("cannot back up %s", abs)
		}
		top, err = SaveTree(ctx, a.repo, &Tree{Nodes: []Node{n.Node}})
		return err
	})
	return top, g.Wait()
}

// saveRoot handles the backed-up path itself, which may be a directory or
// a single file; it becomes the only node of the top tree.
func (a *archiver) saveRoot(ctx context.Context, abs string, parentTop *Tree) (*future, error) {
	dir, name := filepath.Split(abs)
	if name == "" { // "/"
		dir, name = "/", "/"
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	relName := name
	if name == "/" {
		relName = "."
	}
	m, err := fsmeta.Read(procPath(dfd, relName), a.names)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", abs, err)
	}
	a.rootDev = m.DeviceID
	return a.saveEntry(ctx, dfd, relName, "", nodeName(abs), parentTop)
}

// nodeName is the top node's name: the base name of the backed-up path.
func nodeName(abs string) string {
	if abs == "/" {
		return "root"
	}
	return filepath.Base(abs)
}

// procPath names the entry name of the directory open as dirfd with a
// short path, so that trees deeper than PATH_MAX can be read and restored
// with path-based system calls (lgetxattr has no *at variant).
func procPath(dirfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

// future is a node that will be known once its content (file) or its
// children (directory) are saved.
type future struct {
	done chan struct{}
	node
	err error
}

// node is a resolved entry; skip drops it from its directory (it could not
// be read at all) without recording it as deleted.
type node struct {
	Node
	skip bool
}

func newFuture() *future { return &future{done: make(chan struct{})} }

func resolved(n Node) *future {
	f := &future{done: make(chan struct{}), node: node{Node: n}}
	close(f.done)
	return f
}

func (f *future) resolve(n node, err error) {
	f.node, f.err = n, err
	close(f.done)
}

func (f *future) wait(ctx context.Context) (node, error) {
	select {
	case <-f.done:
		return f.node, f.err
	case <-ctx.Done():
		return node{}, ctx.Err()
	}
}

// saveEntry reads one directory entry's metadata and returns its future:
// resolved at once for symlinks and special files, after a reader has
// chunked it for files, after its children for directories.
// relName is the name inside dirfd; rel the path relative to the source root.
func (a *archiver) saveEntry(ctx context.Context, dirfd int, relName, rel, name string, parentTree *Tree) (*future, error) {
	pn := parentTree.Find(name)
	m, reused, err := fsmeta.ReadReusing(procPath(dirfd, relName), a.names, func(m *fsmeta.Meta) bool {
		// Sizes only for files: nodes keep no size for the other types.
		return pn != nil && pn.Type == NodeType(m.Type) && (pn.Type != TypeFile || pn.Size == m.Size) &&
			pn.Mtime == m.Mtime && pn.Ctime == m.Ctime && pn.Inode == m.Inode && a.sameDevice(pn.DeviceID, m.DeviceID)
	})
	if errors.Is(err, fsmeta.ErrUnsupportedType) {
		a.skipped(rel)
		return nil, nil
	}
	if err != nil {
		a.incomplete(rel, err)
		return resolvedSkip(), nil
	}
	n := nodeFromMeta(name, &m)
	if reused {
		n.LinkTarget, n.Xattrs = pn.LinkTarget, pn.Xattrs
		if n.Type == TypeSymlink {
			// The last backup's readlink moved the atime (there is no
			// O_NOATIME for readlink); what it saw before is the link's own.
			n.Atime = pn.Atime
		}
	}
	switch n.Type {
	case TypeDir:
		a.prog.Dirs.Add(1)
		return a.saveDir(ctx, dirfd, relName, rel, n, pn)
	case TypeFile:
		a.prog.Files.Add(1)
		a.prog.Bytes.Add(n.Size)
		if pn != nil && a.unchanged(&n, pn) && a.reusable(pn.Content) {
			n.Content = pn.Content
			return resolved(n), nil
		}
		fd, err := openNoAtime(dirfd, relName, 0)
		if err != nil {
			a.incomplete(rel, err)
			return resolvedSkip(), nil
		}
		job := &fileJob{f: os.NewFile(uintptr(fd), rel), rel: rel, node: n, fut: newFuture()}
		if pn != nil && pn.Type == TypeFile {
			job.parent = pn.Content
		}
		select {
		case a.fileCh <- job:
		case <-ctx.Done():
			job.f.Close()
			return nil, ctx.Err()
		}
		return job.fut, nil
	default:
		a.prog.Others.Add(1)
		return resolved(n), nil
	}
}

// openNoAtime opens an entry for reading without updating its atime, so
// that a backup leaves the source as it found it and an unchanged directory
// encodes to the same tree blob next time. O_NOATIME needs ownership or
// CAP_FOWNER; without them the open is retried plainly.
func openNoAtime(dirfd int, name string, flags int) (int, error) {
	flags |= unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(dirfd, name, flags|unix.O_NOATIME, 0)
	if err == unix.EPERM {
		fd, err = unix.Openat(dirfd, name, flags, 0)
	}
	return fd, err
}

func resolvedSkip() *future {
	f := newFuture()
	f.resolve(node{skip: true}, nil)
	return f
}

// unchanged says a file may reuse the parent snapshot's content without
// being read: same size, mtime, ctime and inode. ctime catches writers that
// restore mtime; the inode catches a file replaced by another.
func (a *archiver) unchanged(n, p *Node) bool {
	return p.Type == TypeFile && n.Size == p.Size && n.Mtime == p.Mtime && n.Ctime == p.Ctime &&
		n.Inode == p.Inode && a.sameDevice(n.DeviceID, p.DeviceID)
}

func (a *archiver) sameDevice(x, y uint64) bool { return a.opts.NewDevice || x == y }

// cacheTagSignature starts every valid CACHEDIR.TAG (bford.net/cachedir).
const cacheTagSignature = "Signature: 8a477f597d28d172789f06886806bc55"

func (a *archiver) saveDir(ctx context.Context, parentfd int, relName, rel string, n Node, pn *Node) (*future, error) {
	if a.opts.OneFileSystem && a.rootDev != 0 && n.DeviceID != a.rootDev {
		return a.emptyDir(ctx, rel, n)
	}
	fd, err := openNoAtime(parentfd, relName, unix.O_DIRECTORY)
	if err != nil {
		a.incomplete(rel, err)
		return resolvedSkip(), nil
	}
	defer unix.Close(fd)
	if a.opts.ExcludeCaches && isCacheDir(fd) {
		return a.emptyDir(ctx, rel, n)
	}
	names, err := readNames(fd)
	if err != nil {
		a.incomplete(rel, err)
		return resolvedSkip(), nil
	}
	var parentTree *Tree
	if pn != nil && pn.Type == TypeDir {
		if parentTree, err = LoadTree(ctx, a.repo, pn.Subtree); err != nil {
			return nil, fmt.Errorf("parent tree of %s: %w", rel, err)
		}
	}
	a.prog.Current.Store(&rel)
	children := make([]*future, 0, len(names))
	var skipped []string
	for _, name := range names {
		childRel := path.Join(rel, name)
		if a.excl.Excluded(childRel, name) {
			skipped = append(skipped, name)
			continue
		}
		f, err := a.saveEntry(ctx, fd, name, childRel, name, parentTree)
		if err != nil {
			return nil, err
		}
		if f == nil {
			skipped = append(skipped, name)
			continue
		}
		children = append(children, f)
	}
	return a.finishDir(ctx, rel, n, children, parentTree, skipped), nil
}

func (a *archiver) emptyDir(ctx context.Context, rel string, n Node) (*future, error) {
	return a.finishDir(ctx, rel, n, nil, nil, nil), nil
}

func isCacheDir(dirfd int) bool {
	fd, err := unix.Openat(dirfd, "CACHEDIR.TAG", unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	// The os.File owns fd from here: its finalizer would close the number
	// again, by then perhaps another file's.
	f := os.NewFile(uintptr(fd), "CACHEDIR.TAG")
	defer f.Close()
	buf := make([]byte, len(cacheTagSignature))
	n, _ := io.ReadFull(f, buf)
	return n == len(buf) && string(buf) == cacheTagSignature
}

// readNames lists a directory's entries sorted by the bytes of their names.
func readNames(dirfd int) ([]string, error) {
	dup, err := unix.Dup(dirfd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names) // Go compares strings bytewise
	return names, nil
}

// finishDir returns a future that resolves once every child has: it then
// stores the directory's tree and writes its history rows.
func (a *archiver) finishDir(ctx context.Context, rel string, n Node, children []*future, parentTree *Tree, skipped []string) *future {
	f := newFuture()
	a.dirs.Add(1)
	go func() {
		defer a.dirs.Done()
		t := &Tree{Nodes: make([]Node, 0, len(children))}
		for _, c := range children {
			cn, err := c.wait(ctx)
			if err != nil {
				f.resolve(node{}, err)
				return
			}
			if cn.skip {
				skipped = append(skipped, cn.Name)
				continue
			}
			t.Nodes = append(t.Nodes, cn.Node)
		}
		id, err := SaveTree(ctx, a.repo, t)
		if err != nil {
			// A directory of several hundred thousand entries can
			// exceed the blob size limit; the error fails the whole
			// backup, so it must say which directory.
			err = fmt.Errorf("directory %s (%d entries): %w", cmp.Or(rel, "."), len(t.Nodes), err)
		} else {
			err = a.hist.diff(ctx, rel, t, parentTree, skipped)
		}
		n.Subtree = id
		f.resolve(node{Node: n}, err)
	}()
	return f
}

func (a *archiver) incomplete(rel string, err error) {
	// Drop the /proc/self/fd path of a PathError: rel names the file better.
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	a.prog.Errors.Add(1)
	a.recMu.Lock()
	defer a.recMu.Unlock()
	a.rec.AddIncomplete(rel + ": " + err.Error())
}

func (a *archiver) skipped(rel string) {
	a.recMu.Lock()
	defer a.recMu.Unlock()
	a.rec.AddSkipped(rel)
}
