package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/chunkstore/lock"
	"github.com/hindsight-backup/hindsight/remote"
	"github.com/hindsight-backup/hindsight/remote/local"
	"github.com/hindsight-backup/hindsight/snapshot"
)

const locationHelp = "give --repo, set $HINDSIGHT_REPOSITORY, or set \"repository\" in the config file"

// location resolves the repository location: flag, environment, config.
func (a *app) location(cfg *fileConfig) (string, error) {
	loc := a.repo
	if loc == "" {
		loc = a.getenv("HINDSIGHT_REPOSITORY")
	}
	if loc == "" {
		loc = cfg.Repository
	}
	if loc == "" {
		return "", usagef("no repository given: %s", locationHelp)
	}
	return loc, nil
}

// scheme returns the URL scheme of a location ("s3" of "s3:host/bucket"),
// or "" for a plain path. A path may contain colons, so only a leading run
// of lower-case letters and digits counts, and never for a path starting
// with "/" or ".".
func scheme(loc string) string {
	i := strings.IndexByte(loc, ':')
	if i <= 0 || strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, ".") {
		return ""
	}
	for _, c := range loc[:i] {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return ""
		}
	}
	return loc[:i]
}

// openBackend turns a local location into storage. With create, the
// directory is made if missing (for init); otherwise a missing one is
// errNoRepository. Remote repositories are opened by openRepo through
// remoteBackend, with the retry and cache wrappers.
func openBackend(location string, create bool) (remote.Backend, error) {
	switch scheme(location) {
	case "", "local":
		dir, err := filepath.Abs(strings.TrimPrefix(location, "local:"))
		if err != nil {
			return nil, err
		}
		if create {
			return local.Create(vfs.Default, dir)
		}
		be, err := local.OpenDir(dir)
		if remote.IsNotExist(err) {
			return nil, fmt.Errorf("%w: %s (create it with 'hindsight init')", errNoRepository, dir)
		}
		if errors.Is(err, syscall.ENOTDIR) {
			return nil, fmt.Errorf("%w: %s is a file, not a repository directory", chunkstore.ErrNotRepository, dir)
		}
		return be, err
	case "s3", "swift":
		// Reading one is openRepo's business; a new one is made by pushing.
		return nil, usagef("repository %s: a remote repository is made by 'hindsight push' of a local one (see 'hindsight remote add --help')", location)
	}
	return nil, usagef("repository %s: unknown location scheme %q (expected a local path)", location, scheme(location))
}

// repoDirs says where the index and the scratch files of a repository go.
// For a local repository both live inside it: the index then travels with
// the repository, and finished packs are renamed into place, not copied.
// Other repositories, and local ones this process cannot write, get a
// cache directory named by the repository ID, so that a repository that
// moves keeps its cache.
func (a *app) repoDirs(be remote.Backend, id, cacheName string, readOnly bool) (indexDir, scratchDir string, err error) {
	if lb, ok := be.(*local.Backend); ok && !readOnly {
		return filepath.Join(lb.Location(), "index"), filepath.Join(lb.Location(), "tmp"), nil
	}
	cache := a.getenv("XDG_CACHE_HOME")
	if cache == "" {
		home := a.getenv("HOME")
		if home == "" {
			return "", "", errors.New("neither $XDG_CACHE_HOME nor $HOME is set: no place for the repository's local index")
		}
		cache = filepath.Join(home, ".cache")
	}
	dir := filepath.Join(cache, "hindsight", id, cacheName)
	return filepath.Join(dir, "index"), filepath.Join(dir, "tmp"), nil
}

type lockMode int

const (
	noLock lockMode = iota
	sharedLock
	exclusiveLock
	// recordsLock is exclusive but admits the commands that only read
	// (unguardedReader): forget and tag remove or replace snapshot
	// records, which a reader takes as a snapshot gone (a mount drops it
	// from its listing at its next refresh), while the data stays until a
	// prune. Writers, backups and prune included, wait as for exclusiveLock.
	recordsLock
)

// unguardedReader reports whether a command, named by the purpose of its
// lock, only reads and copes with what it reads going away: forget may
// remove the snapshot records it lists and prune the packs it would read,
// without waiting for it (it then reports a snapshot or pack gone). Not
// openOptions.readOnly: check and clone only read too, but check would
// call a pack removed under it lost, and clone would copy a half.
func unguardedReader(purpose string) bool {
	switch purpose {
	case "mount", "restore", "restore-volume", "lvm restore", "ls", "snapshots", "stats",
		"history", "find", "diff", "key list", "remote status", "prune --remote":
		return true
	}
	return false
}

// openOptions say how a command needs the repository.
type openOptions struct {
	lock    lockMode
	purpose string // written into the lock ("backup", "check", ...)
	noIndex bool   // config and keys only (key management)
	// password, when set, is used instead of asking: a command that opens
	// a replica after its repository asks once.
	password *password
	// readOnly says the command never writes to the repository, so that
	// it can read one it may not write (readonly.go); without it such a
	// repository is refused before anything is tried.
	readOnly bool
	// cacheName puts the index of a remote repository in its own
	// directory of the repository's cache: one per remote for
	// 'prune --remote', since several remotes share the repository's ID.
	cacheName string
	// index bounds the index's memory when this process opens it; zero
	// values take the index's defaults.
	index index.Options
	// removeTemp, for commands that write the repository, removes under
	// the lock what Saves killed before they finished left behind.
	removeTemp bool
}

// session is an open, possibly locked repository. ctx is cancelled when
// the command's context is, or when the lock is lost: work that relies on
// the lock must stop then.
type session struct {
	repo   *chunkstore.Repository
	ctx    context.Context
	cancel context.CancelCauseFunc
	lock   *lock.Lock
	app    *app
	pw     password
	// readOnly: a local repository this process cannot write, opened
	// without a lock, its index in the cache (readonly.go).
	readOnly bool
}

// removeStaleTemp is best effort: a leftover temporary file costs only
// space, and the next writer tries again.
func (s *session) removeStaleTemp() {
	n, err := s.repo.RemoveStaleTemp(s.ctx, s.lock)
	if err != nil {
		s.app.log.Warn("could not remove temporary files that interrupted writes left", "err", err)
	} else if n > 0 {
		s.app.log.Info("removed temporary files that interrupted writes left", "files", n)
	}
}

// openRepo locates, unlocks and locks the repository. The password is
// asked for only once the location is known to hold a repository, so a
// typo in --repo is reported at once rather than after a prompt.
func (a *app) openRepo(ctx context.Context, o openOptions) (*session, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	loc, err := a.location(cfg)
	if err != nil {
		return nil, err
	}
	var be remote.Backend
	if s := scheme(loc); s == "s3" || s == "swift" {
		be, err = a.remoteBackend(ctx, loc, remote.WrapOptions{Connections: 8})
	} else {
		be, err = openBackend(loc, false)
	}
	if err != nil {
		return nil, err
	}
	s, err := a.openSession(ctx, cfg, be, o)
	if err != nil {
		be.Close()
	}
	return s, err
}

func (a *app) openSession(ctx context.Context, cfg *fileConfig, be remote.Backend, o openOptions) (*session, error) {
	info, err := chunkstore.LoadConfigInfo(ctx, be)
	if err != nil {
		return nil, err
	}
	id := info.ID
	// Why a local repository cannot be written; then no lock is taken
	// and the index goes to the cache (readonly.go).
	var unwritable error
	if dir, ok := localDir(be); ok {
		if unwritable = notWritable(dir); unwritable != nil && !o.readOnly {
			return nil, &readOnlyError{path: dir, err: unwritable}
		}
	}
	var pw password
	switch {
	case o.password != nil:
		pw = *o.password
	case info.Encrypted():
		if pw, err = a.password(ctx, cfg); err != nil {
			return nil, err
		}
	}
	opts := chunkstore.Options{Password: pw.value, NoIndex: true, Index: o.index}
	if opts.IndexDir, opts.ScratchDir, err = a.repoDirs(be, id, o.cacheName, unwritable != nil); err != nil {
		return nil, err
	}
	if _, isLocal := be.(*local.Backend); !isLocal {
		// Reads from a remote fetch single blobs with ranged GETs; the
		// cache keeps what a mount reads again, bounded in size.
		be, err = remote.WithCache(be, remote.CacheOptions{
			Dir: filepath.Join(filepath.Dir(opts.IndexDir), "blobs"), Cacheable: chunkstore.Immutable})
		if err != nil {
			return nil, err
		}
	}
	s := &session{app: a, pw: pw, readOnly: unwritable != nil}
	s.ctx, s.cancel = context.WithCancelCause(ctx)
	a.log.Debug("opening repository", "location", be.Location(), "id", id, "index", opts.IndexDir)
	s.repo, err = chunkstore.Open(s.ctx, be, opts)
	if err != nil {
		s.close()
		if errors.Is(err, chunkstore.ErrWrongPassword) && pw.source != "" {
			err = fmt.Errorf("%w (password from %s)", err, pw.source)
		}
		return nil, err
	}
	if info.Encrypted() {
		// The key derivation's memory is garbage now: returned before the
		// command's own work starts, it does not add to that work's peak.
		debug.FreeOSMemory()
	}
	// Locking after the password is checked: a wrong password writes
	// nothing, not even a lock object.
	if unwritable != nil {
		fmt.Fprintf(a.stderr, "hindsight: notice: repository %s is read-only (%v): reading it without a lock, its index in %s\n",
			be.Location(), unwritable, filepath.Dir(opts.IndexDir))
	} else if o.lock != noLock {
		exclusive := o.lock == exclusiveLock || o.lock == recordsLock
		a.log.Debug("locking repository", "exclusive", exclusive, "purpose", o.purpose)
		s.lock, err = lock.Acquire(ctx, be, exclusive, o.purpose, lock.Options{Logger: a.log,
			ReadOnly: unguardedReader(o.purpose), AdmitsReaders: o.lock == recordsLock})
		if err != nil {
			s.close()
			return nil, err
		}
		go s.watchLock()
		if o.removeTemp {
			s.removeStaleTemp()
		}
	}
	if o.noIndex {
		return s, nil
	}
	if err := s.repo.OpenIndex(s.ctx); err != nil {
		s.close()
		return nil, err
	}
	if s.repo.IndexCreated() {
		// A new index was filled from the index segments, which hold no
		// history rows; without them the history view would be empty.
		a.log.Info("index was missing or outdated; rebuilding file history from the snapshots")
		if err := snapshot.RebuildHistory(s.ctx, s.repo); err != nil {
			s.close()
			return nil, fmt.Errorf("rebuild history: %w", err)
		}
	}
	return s, nil
}

func (s *session) watchLock() {
	select {
	case <-s.lock.Lost():
		s.cancel(fmt.Errorf("%w: another process removed it as stale; stopping", lock.ErrLost))
	case <-s.ctx.Done():
	}
}

// close releases the repository and its lock. Blobs not flushed are
// dropped: commands that write flush themselves, before their record.
func (s *session) close() {
	if s.repo != nil {
		if err := s.repo.Close(); err != nil {
			s.app.log.Warn("closing repository", "err", err)
		}
	}
	if s.lock != nil {
		if err := s.lock.Release(); err != nil {
			fmt.Fprintf(s.app.stderr, "hindsight: warning: could not remove repository lock: %v\n", err)
		}
	}
	s.cancel(nil)
}

// err returns why the session's context ended, preferring a lost lock's
// cause over a bare "context canceled".
func (s *session) err(err error) error {
	if cause := context.Cause(s.ctx); cause != nil && errors.Is(err, context.Canceled) && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}
