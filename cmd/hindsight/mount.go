package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/fs"
	"github.com/hindsight-backup/hindsight/snapshot"
)

type mountFlags struct {
	allowOther bool
	daemon     bool
	pidFile    string
	refresh    time.Duration
	debugFUSE  bool
	readyFD    int // set by --daemon for the process it starts
}

// mountMemoryLimit replaces the CLI's default heap limit for a mount. Its
// caches (8 MiB of trees, 32 MiB of chunks and up to 32 MiB of free chunk
// buffers) are live data, and so are the listings the kernel holds entries
// of, some 200 bytes an entry. Below the live data the collector runs
// without pause (find over 100,000 entries took 3.5 times the CPU when the
// limit was 112 MiB and each entry held 1 KiB).
//
// GOGC stays at Go's default. A mount held some 1 KiB of heap per entry
// the kernel knew when it ran at 50; with a fifth of that now, the heap
// after a walk of 100,000 entries is under 40 MB live, and at 50 the
// collector ran 11 times in a cold find and du instead of 5, and the
// heap it kept returning to the system faulted back in page by page
// (a tenth of the mount's CPU samples): find and du 6-8% slower.
const mountMemoryLimit = 192 << 20

// mountTreeCache is the bytes of decoded trees a mount keeps. The cache
// only has to hold the trees read ahead of a walk until it gets to them
// (a walk through 2,200 directories waited for the same few dozen with
// 8 or 16 MiB), and every byte of it is scanned by each collection.
const mountTreeCache = 8 << 20

func (a *app) mountCommand() *cobra.Command {
	var fl mountFlags
	cmd := &cobra.Command{
		Use:   "mount MOUNTPOINT",
		Short: "Browse every snapshot as a read-only filesystem",
		Long: `Mount the repository at MOUNTPOINT with FUSE, read-only:

  MOUNTPOINT/<source>/<time>/...        every snapshot's whole tree
  MOUNTPOINT/<source>/latest            symlink to the newest snapshot
  MOUNTPOINT/<source>/.history/<path>/  one entry per distinct version of
                                        the file at <path>, deleted ones too

A source is named from its host and path ("web01-home" for /home on web01),
a snapshot and a version by its UTC time (2026-11-01T030000Z). New backups
appear within seconds. Owners and modes are those of the original files and
are enforced; with --allow-other, other users may read what they could read
on the original system.

The mount runs in the foreground until Ctrl-C, SIGTERM or 'fusermount3 -u
MOUNTPOINT'. With --daemon it returns once the mount answers, leaving a
process whose pid is in the pid file (for systemd: Type=forking, PIDFile=).
In the foreground it tells systemd when it is ready (Type=notify).`,
		Example: `  hindsight mount /mnt/backup
  hindsight mount --daemon --allow-other /mnt/backup
  cp -a /mnt/backup/web01-home/latest/alice/report.odt ~/`,
		Args: cobra.ExactArgs(1),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			if fl.daemon {
				return a.startMountDaemon(cmd.Context(), args[0], fl)
			}
			return a.runMount(cmd.Context(), args[0], fl)
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&fl.allowOther, "allow-other", false, "let other users use the mount (as root, or with user_allow_other in /etc/fuse.conf)")
	f.BoolVar(&fl.daemon, "daemon", false, "run in the background; return once the mount answers")
	f.StringVar(&fl.pidFile, "pid-file", "", "write the mount process's pid to `FILE` (--daemon default: /run/hindsight-mount-<mountpoint>.pid, or under $XDG_RUNTIME_DIR)")
	f.DurationVar(&fl.refresh, "refresh", 3*time.Second, "look for new snapshots this often")
	f.BoolVar(&fl.debugFUSE, "debug-fuse", false, "log every FUSE request")
	f.IntVar(&fl.readyFD, "ready-fd", 0, "")
	_ = f.MarkHidden("ready-fd")
	return cmd
}

func (a *app) runMount(ctx context.Context, dir string, fl mountFlags) error {
	if a.getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(mountMemoryLimit)
	}
	s, err := a.openRepo(ctx, openOptions{lock: sharedLock, purpose: "mount", readOnly: true})
	if err != nil {
		return err
	}
	defer s.close()
	mr := newMountRepo(s.repo)
	srv, err := fs.Mount(s.ctx, dir, mr, fs.Options{
		AllowOther: fl.allowOther, Refresh: fl.refresh, Logger: a.log, Debug: fl.debugFUSE,
	})
	if err != nil {
		return s.err(err)
	}
	if fl.pidFile != "" {
		if err := os.WriteFile(fl.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			srv.Unmount()
			return fmt.Errorf("pid file: %w", err)
		}
		defer os.Remove(fl.pidFile)
	}
	a.announceReady(dir, fl)
	go mr.trimWhenIdle(s.ctx)
	done := make(chan struct{})
	go func() {
		srv.Wait()
		close(done)
	}()
	select {
	case <-done: // fusermount3 -u
		return nil
	case <-s.ctx.Done(): // Ctrl-C, SIGTERM, or the lock was lost
	}
	if err := srv.Unmount(); err != nil {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	// A mount detached with files still open ends when this process
	// exits; waiting for readers to close could take forever.
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	if ctx.Err() != nil {
		return nil // asked to stop: that is success
	}
	return s.err(context.Cause(s.ctx))
}

// announceReady tells whoever waits that the mount answers: the --daemon
// parent through its pipe, systemd through $NOTIFY_SOCKET, a person
// through stderr.
func (a *app) announceReady(dir string, fl mountFlags) {
	if fl.readyFD > 0 {
		// The terminal stays with the shell that started us.
		if null, err := os.Open(os.DevNull); err == nil {
			unix.Dup2(int(null.Fd()), 0)
			null.Close()
		}
		f := os.NewFile(uintptr(fl.readyFD), "ready")
		fmt.Fprintln(f, "ready")
		f.Close()
	}
	if sock := a.getenv("NOTIFY_SOCKET"); sock != "" {
		if c, err := net.Dial("unixgram", sock); err == nil {
			fmt.Fprintf(c, "READY=1\nMAINPID=%d", os.Getpid())
			c.Close()
		}
	}
	if !a.quiet && fl.readyFD == 0 {
		fmt.Fprintf(a.stderr, "hindsight: mounted at %s; Ctrl-C or 'fusermount3 -u %s' unmounts\n", dir, dir)
	}
}

// startMountDaemon starts this program again, without --daemon, in a new
// session, and returns once it reports that the mount answers. The new
// process inherits stdin, so it can still ask for the password on the
// terminal.
func (a *app) startMountDaemon(ctx context.Context, dir string, fl mountFlags) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	pidFile := fl.pidFile
	if pidFile == "" {
		if pidFile, err = a.defaultPidFile(dir); err != nil {
			return err
		}
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer readyR.Close()
	args := append(slices.DeleteFunc(slices.Clone(os.Args[1:]), func(s string) bool {
		return s == "--daemon" || s == "--daemon=true"
	}), "--ready-fd=3", "--pid-file="+pidFile)
	cmd := exec.Command(self, args...)
	cmd.Stdin, cmd.Stderr = a.stdin, a.stderr
	cmd.ExtraFiles = []*os.File{readyW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		readyW.Close()
		return err
	}
	readyW.Close()
	// In its own session the process gets no Ctrl-C from the terminal;
	// pressed while it prompts or mounts, it must stop all the same.
	stop := context.AfterFunc(ctx, func() { cmd.Process.Signal(syscall.SIGTERM) })
	msg, _ := io.ReadAll(readyR)
	stop()
	if string(msg) != "ready\n" {
		err := cmd.Wait()
		return fmt.Errorf("the mount process failed before the mount answered (%v)", err)
	}
	if !a.quiet {
		fmt.Fprintf(a.stderr, "hindsight: mounted at %s by process %d (pid file %s)\n", dir, cmd.Process.Pid, pidFile)
	}
	return cmd.Process.Release()
}

// defaultPidFile names the pid file after the mount point, in the runtime
// directory systemd gives services.
func (a *app) defaultPidFile(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	run := a.getenv("XDG_RUNTIME_DIR")
	if run == "" {
		run = "/run"
		if os.Geteuid() != 0 {
			run = os.TempDir()
		}
	}
	return filepath.Join(run, "hindsight-mount"+strings.ReplaceAll(abs, "/", "-")+".pid"), nil
}

// mountRepo serves a repository to fs: it turns snapshots and tree nodes
// into fs's types, reading through a View's caches.
type mountRepo struct {
	view *snapshot.View
	idx  index.Store
	// known is the snapshot set of the last listing: history shows only
	// versions the mount also lists, and a backup still running (whose
	// history rows are already written) stays invisible until it ends.
	known atomic.Pointer[map[blob.ID]bool]
}

func newMountRepo(repo *chunkstore.Repository) *mountRepo {
	return &mountRepo{view: snapshot.NewView(repo, snapshot.ViewOptions{TreeCache: mountTreeCache}), idx: repo.Index()}
}

// fileRef finds a file's node again on open: entries keep only this, not
// the content list, so that what the kernel holds stays small.
type fileRef struct {
	tree blob.ID
	name string
}

// trimWhenIdle gives the cached file content back to the system once
// nobody has read any for a while: the collector would otherwise keep the
// freed pages for the next burst, and an idle mount would hold them.
// A sequential reader asks every few milliseconds and the kernel's page
// cache keeps what it read, so half a second is idle enough; with 2 s, a
// walk of the tree right after a cat of a large file ran with the file's
// 48 MiB of chunks and buffers still held, and ended at 180 MiB instead of
// 120 (mount-compare.sh, in one run of two, depending on the timing).
const contentIdle = 500 * time.Millisecond

func (r *mountRepo) trimWhenIdle(ctx context.Context) {
	t := time.NewTicker(contentIdle / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if r.view.TrimIdle(contentIdle) {
				debug.FreeOSMemory()
			}
		}
	}
}

func (r *mountRepo) Snapshots(ctx context.Context) ([]fs.Snapshot, error) {
	all, err := snapshot.List(ctx, r.view.Repo())
	if err != nil && len(all) == 0 {
		return nil, err
	}
	known := make(map[blob.ID]bool, len(all))
	out := make([]fs.Snapshot, 0, len(all))
	// An image snapshot's tree is a directory holding the image file, so
	// it is served like any other and the image can be loop-mounted.
	for _, s := range all {
		known[s.ID] = true
		out = append(out, fs.Snapshot{ID: s.ID.String(), Time: s.Record.Time,
			Source: fs.Source{Host: s.Record.Host, Path: s.Record.Source}, Ref: s.Record.Tree})
	}
	r.known.Store(&known)
	return out, nil
}

func (r *mountRepo) Root(ctx context.Context, s *fs.Snapshot) (fs.Entry, error) {
	id := s.Ref.(blob.ID)
	t, err := r.view.Tree(ctx, id)
	if err != nil {
		return fs.Entry{}, err
	}
	if len(t.Nodes) != 1 {
		return fs.Entry{}, fmt.Errorf("top tree %s has %d entries, want 1", id.Short(), len(t.Nodes))
	}
	return entryOf(id, &t.Nodes[0]), nil
}

func (r *mountRepo) List(ctx context.Context, dir *fs.Entry, buf []fs.Entry) ([]fs.Entry, error) {
	id := dir.Ref.(blob.ID)
	t, err := r.view.Tree(ctx, id)
	if err != nil {
		return nil, err
	}
	out := buf[:0]
	for i := range t.Nodes {
		out = append(out, entryOf(id, &t.Nodes[i]))
	}
	r.view.PrefetchSubtrees(ctx, id, t)
	return out, nil
}

func (r *mountRepo) Lookup(ctx context.Context, dir *fs.Entry, name string) (fs.Entry, error) {
	id := dir.Ref.(blob.ID)
	n, err := r.node(ctx, id, name)
	if err != nil {
		return fs.Entry{}, err
	}
	return entryOf(id, n), nil
}

func (r *mountRepo) node(ctx context.Context, tree blob.ID, name string) (*snapshot.Node, error) {
	t, err := r.view.Tree(ctx, tree)
	if err != nil {
		return nil, err
	}
	n := t.Find(name)
	if n == nil {
		return nil, fs.ErrNotExist
	}
	return n, nil
}

func (r *mountRepo) Open(ctx context.Context, file *fs.Entry) (fs.File, error) {
	ref := file.Ref.(fileRef)
	n, err := r.node(ctx, ref.tree, ref.name)
	if err != nil {
		return nil, err
	}
	return r.view.Open(n), nil
}

func (r *mountRepo) History(_ context.Context, src fs.Source, p string) ([]fs.Version, error) {
	vs, err := snapshot.Versions(r.idx, *r.known.Load(), snapshot.HistorySource(src.Host, src.Path), p)
	out := make([]fs.Version, len(vs))
	for i, v := range vs {
		out[i] = fs.Version{Time: v.Time, Snapshot: v.Snapshot.String(), Deleted: v.Kind == index.KindDeleted, Type: kindType[v.Kind]}
	}
	return out, err
}

// kindType maps history kinds to file types; index.KindOther (a FIFO or a
// device) is left for fs to look up.
var kindType = map[index.Kind]uint32{
	index.KindFile: syscall.S_IFREG, index.KindDir: syscall.S_IFDIR, index.KindSymlink: syscall.S_IFLNK,
}

func (r *mountRepo) HistoryNames(_ context.Context, src fs.Source, p string) ([]string, error) {
	var names []string
	err := r.idx.HistoryChildren(snapshot.HistorySource(src.Host, src.Path), p, func(name string) error {
		names = append(names, name)
		return nil
	})
	return names, err
}

var nodeTypes = map[snapshot.NodeType]uint32{
	snapshot.TypeFile: syscall.S_IFREG, snapshot.TypeDir: syscall.S_IFDIR, snapshot.TypeSymlink: syscall.S_IFLNK,
	snapshot.TypeFIFO: syscall.S_IFIFO, snapshot.TypeCharDev: syscall.S_IFCHR, snapshot.TypeBlockDev: syscall.S_IFBLK,
}

// entryOf converts node n of tree. Strings are cloned: a decoded tree's
// strings share the tree blob's memory, which an entry must not pin.
func entryOf(tree blob.ID, n *snapshot.Node) fs.Entry {
	e := fs.Entry{
		Name: strings.Clone(n.Name), Mode: nodeTypes[n.Type] | n.Mode, UID: n.UID, GID: n.GID,
		Size: n.Size, Nlink: uint32(n.Links), Rdev: n.Rdev,
		Atime: n.Atime, Mtime: n.Mtime, Ctime: n.Ctime, Target: strings.Clone(n.LinkTarget),
	}
	for _, x := range n.Xattrs {
		e.Xattrs = append(e.Xattrs, fs.Xattr{Name: strings.Clone(x.Name), Value: x.Value})
	}
	switch n.Type {
	case snapshot.TypeDir:
		e.Ref = n.Subtree
	case snapshot.TypeSymlink:
		e.Size = uint64(len(e.Target)) // what lstat reports, whatever was stored
	case snapshot.TypeFile:
		e.Ref = fileRef{tree: tree, name: e.Name}
		e.Blocks = dataBlocks(n.Content)
		if n.Links > 1 {
			e.Link = linkID(n.DeviceID, n.Inode)
		}
	}
	return e
}

// dataBlocks is st_blocks as a filesystem with 4 KiB blocks would report
// it: holes take no space.
func dataBlocks(content []snapshot.Chunk) uint64 {
	var data uint64
	for _, c := range content {
		if !c.IsHole() {
			data += c.Size
		}
	}
	return (data + 4095) / 4096 * 8
}

// linkID identifies a hardlinked file by the device and inode it had on
// the backed-up system.
func linkID(dev, ino uint64) uint64 {
	h := fnv.New64a()
	h.Write([]byte(strconv.FormatUint(dev, 16) + ":" + strconv.FormatUint(ino, 16)))
	return h.Sum64() | 1
}
