package main

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/snapshot"
)

type findFlags struct {
	host, source string
	json         bool
}

func (a *app) findCommand() *cobra.Command {
	var fl findFlags
	cmd := &cobra.Command{
		Use:   "find PATTERN",
		Short: "Find which snapshots hold files matching a pattern",
		Long: `List every version of every file, directory or link whose name matches
PATTERN, with the snapshots that hold it. A PATTERN without a slash is
matched against names, as find -name does ('*.odt', 'report-202?.pdf'); one
with a slash against the whole path on the backed-up host
('/home/*/.bashrc'), where * and ? never match a slash. Quote PATTERN so
that the shell leaves it alone.

Each line is one version: its path, kind, size and modification time, and
the snapshots that hold it, oldest first (the first, the last and how
many). A version is a content the path kept through consecutive snapshots;
its size and time are those it had when first backed up. Versions of the
same path are listed oldest first.

find reads the file history index, not every snapshot's tree: it is one
index scan per source. Volume images are not searched.

--json prints one object per version and line, with every snapshot's ID
and time.`,
		Example: `  hindsight find '*.odt'
  hindsight find '/etc/ssh/*' --host web1
  hindsight find 'report*' --source /home --json | jq -r .path`,
		Args: cobra.ExactArgs(1),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			p, err := snapshot.NewPattern(args[0])
			if err != nil {
				return usageError{err}
			}
			return a.runFind(cmd.Context(), p, fl)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&fl.host, "host", "", "only snapshots of `HOST`")
	f.StringVar(&fl.source, "source", "", "only snapshots of `SOURCE` (a path, as recorded)")
	f.BoolVar(&fl.json, "json", false, "print one JSON object per version and line")
	return cmd
}

type findSnapshotJSON struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
}

type findJSON struct {
	Host      rawString          `json:"host"`
	Source    rawString          `json:"source"`
	Path      rawString          `json:"path"`
	Kind      string             `json:"kind"`
	Size      uint64             `json:"size"`
	Mtime     time.Time          `json:"mtime"`
	Snapshots []findSnapshotJSON `json:"snapshots"`
}

func (a *app) runFind(ctx context.Context, p snapshot.Pattern, fl findFlags) error {
	s, err := a.openRepo(ctx, openOptions{lock: sharedLock, purpose: "find", readOnly: true})
	if err != nil {
		return err
	}
	defer s.close()
	all, listErr := snapshot.List(s.ctx, s.repo)
	if listErr != nil && all == nil {
		return s.err(listErr)
	}
	var snaps []snapshot.Snapshot
	for _, sn := range all {
		if (fl.host == "" || fl.host == sn.Record.Host) && (fl.source == "" || fl.source == sn.Record.Source) {
			snaps = append(snaps, sn)
		}
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	if !fl.json {
		fmt.Fprintln(tw, "Path\tKind\tSize\tModified\tSnapshots")
	}
	n := 0
	err = snapshot.Search(s.ctx, s.repo, snaps, p, func(m *snapshot.Match) error {
		n++
		if fl.json {
			return writeJSON(a.stdout, matchJSON(m))
		}
		first, last := m.Snapshots[0], m.Snapshots[len(m.Snapshots)-1]
		in := first.ID.Short() + " " + first.Record.Time.Local().Format(timeLayout)
		if len(m.Snapshots) > 1 {
			in += fmt.Sprintf(" .. %s %s (%d)", last.ID.Short(), last.Record.Time.Local().Format(timeLayout), len(m.Snapshots))
		}
		size, mtime := strconv.FormatUint(m.Size, 10), m.Mtime.Local().Format(timeLayout)
		if m.Kind == index.KindDir {
			size = "-"
		}
		_, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", quote(snapshot.HostPath(m.Source, m.Path)), kindName(m.Kind), size, mtime, in)
		return err
	})
	if err != nil {
		return s.err(err)
	}
	if !fl.json {
		if err := tw.Flush(); err != nil {
			return err
		}
		if !a.quiet {
			fmt.Fprintf(a.stdout, "%d %s\n", n, plural(n, "version"))
		}
	}
	// Unreadable records are reported after what the others hold.
	return listErr
}

func matchJSON(m *snapshot.Match) findJSON {
	j := findJSON{Host: rawString(m.Host), Source: rawString(m.Source), Path: rawString(snapshot.HostPath(m.Source, m.Path)),
		Kind: kindName(m.Kind), Size: m.Size, Mtime: m.Mtime}
	for _, sn := range m.Snapshots {
		j.Snapshots = append(j.Snapshots, findSnapshotJSON{ID: sn.ID.String(), Time: sn.Record.Time})
	}
	return j
}
