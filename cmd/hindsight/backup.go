package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/snapshot"
)

// maxListed caps the incomplete and skipped paths a summary prints; the
// snapshot record keeps more, and `hindsight snapshots --json` shows them.
const maxListed = 20

type backupFlags struct {
	tags          []string
	host          string
	parent        string
	excludes      []string
	excludeFiles  []string
	oneFileSystem bool
	excludeCaches bool
	json          bool
}

func (a *app) backupCommand() *cobra.Command {
	var fl backupFlags
	cmd := &cobra.Command{
		Use:   "backup PATH",
		Short: "Back up a directory tree",
		Long: `Back up the directory tree at PATH and record it as a new snapshot.

Only what changed since the parent snapshot is read: by default the newest
snapshot of the same host and path; --parent chooses another. Files whose
size, mtime, ctime and inode are unchanged reuse their stored content.

Exclude patterns (--exclude, or one per line in --exclude-file, where blank
lines and lines starting with # are ignored) use shell glob syntax. A
pattern without a slash matches a name at any depth ("*.tmp"); one with a
slash matches the path relative to PATH ("var/cache/*"), or the absolute
path when it starts with one ("/home/*/.cache").

If some files change while being read or cannot be read, the snapshot is
still written, lists them, and hindsight exits with code 3. Interrupting
(SIGINT, SIGTERM) records nothing and releases the repository lock.`,
		Example: `  hindsight backup /home
  hindsight backup /mnt/snap/root --host web1 --tag nightly --one-file-system
  hindsight backup /srv --exclude '*.tmp' --exclude-file /etc/hindsight/excludes --json`,
		Args: cobra.ExactArgs(1),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			return a.runBackup(cmd, args[0], fl)
		}),
	}
	f := cmd.Flags()
	f.StringArrayVar(&fl.tags, "tag", nil, "add `TAG` to the snapshot (repeatable)")
	f.StringVar(&fl.host, "host", "", "record `HOST` as the host name (default: this host's name)")
	f.StringVar(&fl.parent, "parent", "", "compare with snapshot `SNAP` instead of the newest of this host and path")
	f.StringArrayVarP(&fl.excludes, "exclude", "e", nil, "leave out entries matching `PATTERN` (repeatable)")
	f.StringArrayVar(&fl.excludeFiles, "exclude-file", nil, "read exclude patterns from `FILE` (repeatable)")
	f.BoolVarP(&fl.oneFileSystem, "one-file-system", "x", false, "do not cross filesystem boundaries")
	f.BoolVar(&fl.excludeCaches, "exclude-caches", false, "leave out directories holding a CACHEDIR.TAG file")
	f.BoolVar(&fl.json, "json", false, "print the summary as one JSON object on stdout")
	return cmd
}

func (a *app) runBackup(cmd *cobra.Command, path string, fl backupFlags) error {
	if _, err := os.Lstat(path); err != nil {
		return err
	}
	excludes := fl.excludes
	for _, f := range fl.excludeFiles {
		p, err := readExcludeFile(f)
		if err != nil {
			return err
		}
		excludes = append(excludes, p...)
	}
	if _, err := snapshot.NewExcluder(excludes); err != nil {
		return usageError{err}
	}
	host := fl.host
	if host == "" {
		var err error
		if host, err = os.Hostname(); err != nil {
			return fmt.Errorf("host name: %w (give --host)", err)
		}
	}

	s, err := a.openRepo(cmd.Context(), openOptions{lock: sharedLock, purpose: "backup", removeTemp: true})
	if err != nil {
		return err
	}
	defer s.close()
	opts := snapshot.BackupOptions{
		Host: host, Tags: fl.tags, Excludes: excludes,
		OneFileSystem: fl.oneFileSystem, ExcludeCaches: fl.excludeCaches,
		Program: "hindsight " + buildVersion(), User: currentUser(),
	}
	if fl.parent != "" {
		p, err := snapshot.Resolve(s.ctx, s.repo, fl.parent, snapshot.Filter{})
		if err != nil {
			return fmt.Errorf("--parent: %w", err)
		}
		opts.Parent = &p.ID
	}

	prog := &snapshot.Progress{}
	total := a.estimateBackup(s, host, path, opts.Parent)
	stop := a.startProgress(func(elapsed time.Duration) progressLine {
		// Unchanged files count in Bytes without being read, so the rate
		// is of what was actually read.
		read := prog.ReadBytes.Load()
		counts := fmt.Sprintf("%d files, %d dirs, %s, read %s at %s", prog.Files.Load(), prog.Dirs.Load(),
			formatBytes(prog.Bytes.Load()), formatBytes(read), formatRate(read, elapsed))
		if n := prog.Errors.Load(); n > 0 {
			counts += fmt.Sprintf(", %d errors", n)
		}
		cur := ""
		if p := prog.Current.Load(); p != nil {
			cur = *p
		}
		done := prog.Bytes.Load()
		if done > total {
			total = 0 // bigger than its parent: the estimate says nothing
		}
		return progressLine{counts: counts, current: cur, done: done, total: total}
	})
	a.log.Debug("backup starting", "path", path, "host", host, "excludes", len(excludes))
	res, err := snapshot.Backup(s.ctx, s.repo, path, opts, prog)
	stop()
	if err != nil && (res == nil || !errors.Is(err, snapshot.ErrIncomplete)) {
		return s.err(err)
	}
	if fl.json {
		if jerr := writeJSON(a.stdout, backupSummaryJSON(res, err == nil)); jerr != nil {
			return jerr
		}
	} else if !a.quiet {
		a.printBackupSummary(res)
	}
	return err
}

// estimateBackup guesses a backup's size from its parent's, for the
// progress bar's ETA; 0 (no bar) when there is no parent or no one to show
// progress to, since finding the parent reads every snapshot record.
func (a *app) estimateBackup(s *session, host, path string, parent *blob.ID) uint64 {
	if a.quiet || !a.jsonProgress && a.terminalStderr() == nil {
		return 0
	}
	ref, filter := "latest", snapshot.Filter{Host: host}
	if parent != nil {
		ref = parent.String()
	} else if abs, err := filepath.Abs(path); err == nil {
		filter.Source = abs
	}
	p, err := snapshot.Resolve(s.ctx, s.repo, ref, filter)
	if err != nil {
		return 0
	}
	return p.Record.Stats.Bytes
}

func readExcludeFile(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("exclude file: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("exclude file %s: %w", name, err)
	}
	return out, nil
}

func (a *app) printBackupSummary(res *snapshot.Result) {
	r := res.Record
	st := r.Stats
	w := a.stdout
	fmt.Fprintf(w, "snapshot %s saved\n", res.ID.Short())
	fmt.Fprintf(w, "  files: %d, dirs: %d, others: %d\n", st.Files, st.Dirs, st.Others)
	fmt.Fprintf(w, "  processed %s, new %s (%s stored) in %s\n",
		formatBytes(st.Bytes), formatBytes(st.NewBytes), formatBytes(st.StoredBytes), formatDuration(st.Duration))
	printCapped(w, "incomplete (changed while read or unreadable)", r.Incomplete, r.IncompleteMore, maxListed)
	printCapped(w, "skipped", r.Skipped, r.SkippedMore, maxListed)
}

type backupJSON struct {
	Snapshot       string      `json:"snapshot_id"`
	Parent         string      `json:"parent,omitempty"`
	Time           time.Time   `json:"time"`
	Host           rawString   `json:"host"`
	Source         rawString   `json:"source"`
	Tags           []rawString `json:"tags"`
	Complete       bool        `json:"complete"`
	Files          uint64      `json:"files"`
	Dirs           uint64      `json:"dirs"`
	Others         uint64      `json:"others"`
	Bytes          uint64      `json:"bytes"`
	NewBytes       uint64      `json:"new_bytes"`
	StoredBytes    uint64      `json:"stored_bytes"`
	NewBlobs       uint64      `json:"new_blobs"`
	DurationSec    float64     `json:"duration_seconds"`
	Incomplete     []rawString `json:"incomplete"`
	IncompleteMore uint64      `json:"incomplete_more"`
	Skipped        []rawString `json:"skipped"`
	SkippedMore    uint64      `json:"skipped_more"`
}

func backupSummaryJSON(res *snapshot.Result, complete bool) backupJSON {
	r := res.Record
	return backupJSON{
		Snapshot: res.ID.String(), Parent: idOrEmpty(r.Parent), Time: r.Time,
		Host: rawString(r.Host), Source: rawString(r.Source), Tags: rawStrings(r.Tags), Complete: complete,
		Files: r.Stats.Files, Dirs: r.Stats.Dirs, Others: r.Stats.Others,
		Bytes: r.Stats.Bytes, NewBytes: r.Stats.NewBytes, StoredBytes: r.Stats.StoredBytes,
		NewBlobs: r.Stats.NewBlobs, DurationSec: r.Stats.Duration.Seconds(),
		Incomplete: rawStrings(r.Incomplete), IncompleteMore: r.IncompleteMore,
		Skipped: rawStrings(r.Skipped), SkippedMore: r.SkippedMore,
	}
}

func idOrEmpty(id blob.ID) string {
	if id.IsZero() {
		return ""
	}
	return id.String()
}
