package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/snapshot"
)

func (a *app) snapshotsCommand() *cobra.Command {
	var host, source string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "snapshots",
		Short: "List snapshots",
		Long: `List the repository's snapshots, oldest first: ID, time (local), host,
source, tags, number of files and total size.

--json prints one JSON object per snapshot and line, with the full ID, the
time in RFC 3339, and the record's statistics. Names that are not valid
UTF-8 appear as {"base64": "..."}.`,
		Example: `  hindsight snapshots
  hindsight snapshots --host web1 --source /home
  hindsight snapshots --json | jq -r .id`,
		Args: cobra.NoArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			s, err := a.openRepo(cmd.Context(), openOptions{lock: sharedLock, purpose: "snapshots", readOnly: true})
			if err != nil {
				return err
			}
			defer s.close()
			snaps, listErr := snapshot.List(s.ctx, s.repo)
			if listErr != nil && snaps == nil {
				return s.err(listErr)
			}
			var out []snapshot.Snapshot
			for _, sn := range snaps {
				if (host == "" || host == sn.Record.Host) && (source == "" || source == sn.Record.Source) {
					out = append(out, sn)
				}
			}
			if jsonOut {
				err = a.printSnapshotsJSON(out)
			} else {
				err = a.printSnapshotsTable(out)
			}
			if err != nil {
				return err
			}
			// Unreadable records are reported after the readable ones are
			// listed: one bad record must not hide every other snapshot.
			return listErr
		}),
	}
	f := cmd.Flags()
	f.StringVar(&host, "host", "", "only snapshots of `HOST`")
	f.StringVar(&source, "source", "", "only snapshots of `SOURCE` (a path, as recorded)")
	f.BoolVar(&jsonOut, "json", false, "print one JSON object per line")
	return cmd
}

func (a *app) printSnapshotsTable(snaps []snapshot.Snapshot) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTime\tHost\tSource\tTags\tFiles\tSize")
	for _, s := range snaps {
		r := s.Record
		tags := make([]string, len(r.Tags))
		for i, t := range r.Tags {
			tags[i] = quote(t)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.ID.Short(), r.Time.Local().Format(timeLayout),
			quote(r.Host), quote(r.Source), strings.Join(tags, ","), r.Stats.Files, formatBytes(r.Stats.Bytes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !a.quiet {
		noun := "snapshots"
		if len(snaps) == 1 {
			noun = "snapshot"
		}
		fmt.Fprintf(a.stdout, "%d %s\n", len(snaps), noun)
	}
	return nil
}

type snapshotJSON struct {
	ID             string      `json:"id"`
	Time           time.Time   `json:"time"`
	Host           rawString   `json:"host"`
	Source         rawString   `json:"source"`
	Paths          []rawString `json:"paths"`
	Kind           string      `json:"kind"`
	Tags           []rawString `json:"tags"`
	Parent         string      `json:"parent,omitempty"`
	Tree           string      `json:"tree"`
	User           rawString   `json:"user"`
	Program        rawString   `json:"program"`
	Excludes       []rawString `json:"excludes"`
	Stats          statsJSON   `json:"stats"`
	Incomplete     []rawString `json:"incomplete"`
	IncompleteMore uint64      `json:"incomplete_more"`
	Skipped        []rawString `json:"skipped"`
	SkippedMore    uint64      `json:"skipped_more"`
}

type statsJSON struct {
	Files       uint64  `json:"files"`
	Dirs        uint64  `json:"dirs"`
	Others      uint64  `json:"others"`
	Bytes       uint64  `json:"bytes"`
	NewBytes    uint64  `json:"new_bytes"`
	StoredBytes uint64  `json:"stored_bytes"`
	NewBlobs    uint64  `json:"new_blobs"`
	DurationSec float64 `json:"duration_seconds"`
}

func toStatsJSON(st snapshot.Stats) statsJSON {
	return statsJSON{Files: st.Files, Dirs: st.Dirs, Others: st.Others, Bytes: st.Bytes,
		NewBytes: st.NewBytes, StoredBytes: st.StoredBytes, NewBlobs: st.NewBlobs, DurationSec: st.Duration.Seconds()}
}

func toSnapshotJSON(s snapshot.Snapshot) snapshotJSON {
	r := s.Record
	return snapshotJSON{
		ID: s.ID.String(), Time: r.Time, Host: rawString(r.Host), Source: rawString(r.Source),
		Paths: rawStrings(r.Paths), Kind: r.Kind, Tags: rawStrings(r.Tags), Parent: idOrEmpty(r.Parent),
		Tree: r.Tree.String(), User: rawString(r.User), Program: rawString(r.Program),
		Excludes: rawStrings(r.Excludes), Stats: toStatsJSON(r.Stats),
		Incomplete: rawStrings(r.Incomplete), IncompleteMore: r.IncompleteMore,
		Skipped: rawStrings(r.Skipped), SkippedMore: r.SkippedMore,
	}
}

func (a *app) printSnapshotsJSON(snaps []snapshot.Snapshot) error {
	for _, s := range snaps {
		if err := writeJSON(a.stdout, toSnapshotJSON(s)); err != nil {
			return err
		}
	}
	return nil
}

// splitSnapshotPath splits "SNAP:PATH". Snapshot references ("latest", hex
// IDs) never hold a colon, so the first one separates.
func splitSnapshotPath(arg string) (ref, path string) {
	ref, path, _ = strings.Cut(arg, ":")
	return ref, path
}

// resolve finds the snapshot a user named, wrapping the error with the
// name so that "no such snapshot" says which.
func (s *session) resolve(ref string) (snapshot.Snapshot, error) {
	sn, err := snapshot.Resolve(s.ctx, s.repo, ref, snapshot.Filter{})
	if err != nil {
		return sn, s.err(err)
	}
	return sn, nil
}
