package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/snapshot"
)

type historyFlags struct {
	source string
	host   string
	json   bool
}

func (a *app) historyCommand() *cobra.Command {
	var fl historyFlags
	cmd := &cobra.Command{
		Use:   "history PATH",
		Short: "Show the versions of a file across snapshots",
		Long: `List every distinct version of PATH, oldest first: the time of the
snapshot in which it first appeared, that snapshot's ID, the kind (file,
dir, symlink, other, or deleted when it stopped existing), size and
modification time. Snapshots in which the file did not change add no
line. Restore a version with 'hindsight restore ID:PATH'.

PATH is an absolute path on the backed-up host; the source is the backed-up
directory that holds it (the longest match among this host's snapshots).
With --source, PATH may also be relative to that source.`,
		Example: `  hindsight history /etc/fstab
  hindsight history --host web1 /var/www/index.html
  hindsight history --source /home alice/notes.txt --json`,
		Args: cobra.ExactArgs(1),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			return a.runHistory(cmd.Context(), args[0], fl)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&fl.source, "source", "", "the backed-up `SOURCE` directory PATH belongs to")
	f.StringVar(&fl.host, "host", "", "the backed-up `HOST` (default: this host's name)")
	f.BoolVar(&fl.json, "json", false, "print one JSON object per version and line")
	return cmd
}

func (a *app) runHistory(ctx context.Context, p string, fl historyFlags) error {
	host := fl.host
	if host == "" {
		var err error
		if host, err = os.Hostname(); err != nil {
			return fmt.Errorf("host name: %w (give --host)", err)
		}
	}
	s, err := a.openRepo(ctx, openOptions{lock: sharedLock, purpose: "history", readOnly: true})
	if err != nil {
		return err
	}
	defer s.close()
	source, rel, err := a.historySource(s, host, p, fl.source)
	if err != nil {
		return err
	}
	versions, err := snapshot.History(s.ctx, s.repo, snapshot.HistorySource(host, source), rel)
	if err != nil {
		return s.err(err)
	}
	if len(versions) == 0 {
		return fmt.Errorf("%s: no versions in the snapshots of %s:%s", quote(p), quote(host), quote(source))
	}
	if fl.json {
		for _, v := range versions {
			if err := writeJSON(a.stdout, versionJSON(v)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Time\tSnapshot\tKind\tSize\tModified")
	for _, v := range versions {
		size, mtime := strconv.FormatUint(v.Size, 10), v.Mtime.Local().Format(timeLayout)
		if v.Kind == index.KindDeleted {
			size, mtime = "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Time.Local().Format(timeLayout), v.Snapshot.Short(), kindName(v.Kind), size, mtime)
	}
	return tw.Flush()
}

// historySource finds the source a path belongs to and the path relative
// to it. Without --source, the longest recorded source of host that holds
// the absolute path wins: /home/alice/x belongs to /home/alice, not to /.
func (a *app) historySource(s *session, host, p, source string) (string, string, error) {
	if source != "" {
		if rel, ok := under(source, p); ok {
			return source, rel, nil
		}
		if filepath.IsAbs(p) {
			return "", "", usagef("%s is not below --source %s", quote(p), quote(source))
		}
		return source, filepath.ToSlash(filepath.Clean(p)), nil
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", "", err
	}
	snaps, err := snapshot.List(s.ctx, s.repo)
	if err != nil && snaps == nil {
		return "", "", s.err(err)
	}
	best, bestRel := "", ""
	for _, sn := range snaps {
		r := sn.Record
		if r.Host != host || r.Kind != snapshot.KindFiles {
			continue
		}
		if rel, ok := under(r.Source, abs); ok && len(r.Source) > len(best) {
			best, bestRel = r.Source, rel
		}
	}
	if best == "" {
		return "", "", fmt.Errorf("no snapshot of host %s holds %s (give --host or --source)", quote(host), quote(abs))
	}
	return best, bestRel, nil
}

// under reports whether p is source or below it, and p relative to it.
func under(source, p string) (string, bool) {
	source, p = filepath.Clean(source), filepath.Clean(p)
	if p == source {
		return "", true
	}
	prefix := strings.TrimSuffix(source, "/") + "/"
	if !strings.HasPrefix(p, prefix) {
		return "", false
	}
	return filepath.ToSlash(p[len(prefix):]), true
}

func kindName(k index.Kind) string {
	switch k {
	case index.KindDeleted:
		return "deleted"
	case index.KindFile:
		return "file"
	case index.KindDir:
		return "dir"
	case index.KindSymlink:
		return "symlink"
	}
	return "other"
}

type historyJSON struct {
	Time     time.Time  `json:"time"`
	Snapshot string     `json:"snapshot_id"`
	Kind     string     `json:"kind"`
	Size     uint64     `json:"size"`
	Mtime    *time.Time `json:"mtime,omitempty"`
	Content  string     `json:"content"`
}

func versionJSON(v snapshot.Version) historyJSON {
	j := historyJSON{Time: v.Time, Snapshot: v.Snapshot.String(), Kind: kindName(v.Kind), Size: v.Size, Content: v.Content.String()}
	if v.Kind != index.KindDeleted {
		j.Mtime = &v.Mtime
	}
	return j
}
