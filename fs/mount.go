package fs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// Options configure a mount.
type Options struct {
	// AllowOther lets users other than the one who mounted use the mount;
	// the original owners and modes still decide what each may read.
	AllowOther bool
	// Refresh is how often the snapshot list is read again, so that new
	// backups appear without a remount; default 3s.
	Refresh time.Duration
	Logger  *slog.Logger // default slog.Default()
	Debug   bool         // log every FUSE request
}

// Timeouts for the kernel's caches of names and attributes. Snapshots
// never change, so their entries may be cached for long; what lists
// snapshots changes with every backup and is cached briefly.
const (
	immutableTimeout = time.Hour
	changingTimeout  = time.Second
)

// Server is a mounted repository.
type Server struct {
	dir  string
	srv  *fuse.Server
	stop context.CancelFunc
}

// Mount mounts repo on dir and serves it until Unmount, or until someone
// unmounts dir (fusermount3 -u); Wait returns then.
func Mount(ctx context.Context, dir string, repo Repository, o Options) (*Server, error) {
	if o.Refresh == 0 {
		o.Refresh = 3 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	m := &mount{repo: repo, log: o.Logger}
	if err := m.refresh(ctx); err != nil {
		return nil, err
	}
	mo := fuse.MountOptions{
		AllowOther: o.AllowOther,
		// ro makes the kernel refuse every writing call with EROFS
		// before it reaches us; default_permissions makes it check
		// the original owners and modes, as the source system did.
		Options: []string{"ro", "default_permissions"},
		// The kernel then also reads system.posix_acl_access through
		// getxattr and checks it: a user named in an ACL gets what the
		// ACL grants, as on the source system, not what the group bits
		// (the ACL's mask) suggest.
		EnableAcl: true,
		FsName:    "hindsight",
		Name:      "hindsight",
		// Reads of up to 1 MiB (a typical chunk) per request: fewer
		// round trips for sequential reads.
		MaxWrite:     1 << 20,
		MaxReadAhead: readAheadKB << 10,
		// Content never changes: keep it in the page cache even when
		// attributes are refreshed, and cache symlink targets
		// ("latest" gets a new inode when it moves).
		ExplicitDataCacheControl: true,
		EnableSymlinkCaching:     true,
		// As root, mount(2) directly; otherwise through fusermount3.
		DirectMount: true,
		// See rawFS.OpenDir.
		ExtraCapabilities: fuse.CAP_NO_OPENDIR_SUPPORT,
		Debug:             o.Debug,
	}
	r := newRawFS(m)
	m.changed = r.catalogChanged
	srv, err := fuse.NewServer(r, dir, &mo)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	if err := raiseReadAhead(dir); err != nil {
		o.Logger.Debug("kernel read-ahead left at its default", "err", err)
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	go m.refreshLoop(rctx, o.Refresh)
	return &Server{dir: dir, srv: srv, stop: stop}, nil
}

// Wait blocks until the filesystem is unmounted.
func (s *Server) Wait() {
	s.srv.Wait()
	s.stop()
}

// Unmount unmounts the filesystem. While files are open the kernel refuses
// a plain unmount; the mount is then detached (lazily unmounted): it
// disappears at once, and readers still holding files get ENOTCONN once
// this process exits.
func (s *Server) Unmount() error {
	defer s.stop()
	err := s.srv.Unmount()
	if err == nil {
		return nil
	}
	if derr := syscall.Unmount(s.dir, syscall.MNT_DETACH); derr == nil {
		return nil
	}
	if out, ferr := exec.Command("fusermount3", "-u", "-z", s.dir).CombinedOutput(); ferr != nil {
		return errors.Join(err, fmt.Errorf("fusermount3 -u -z %s: %w: %s", s.dir, ferr, out))
	}
	return nil
}

// mount is the state every node shares.
type mount struct {
	repo Repository
	log  *slog.Logger
	cat  atomic.Pointer[catalog]
	// changed is called when a refresh finds snapshots made or forgotten.
	changed func()
	// lists recycles the listings of closed directories (*[]Entry).
	lists sync.Pool
}

func (m *mount) refreshLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.refresh(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("listing snapshots failed; the mount shows the last list", "err", err)
		}
	}
}

func (m *mount) refresh(ctx context.Context) error {
	snaps, err := m.repo.Snapshots(ctx)
	if err != nil {
		return err
	}
	c := newCatalog(snaps)
	if old := m.cat.Swap(c); old != nil && !slices.Equal(old.ids, c.ids) && m.changed != nil {
		m.changed()
	}
	return nil
}

// errno maps a Repository error to what the kernel is told. Anything but
// a missing name is logged with what was being done, since the reader only
// sees EIO.
func (m *mount) errno(err error, op, path string) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	}
	m.log.Error(op+" failed", "path", path, "err", err)
	return syscall.EIO
}
