package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/snapshot"
)

func (a *app) diffCommand() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "diff SNAP1 SNAP2",
		Short: "Show what changed between two snapshots",
		Long: `List the paths that differ between two snapshots, one per line, depth
first in name order, with a mark:

  +  added in SNAP2            -  removed in SNAP2
  M  content changed           T  type changed (a file became a directory...)
  U  metadata only: mode, owner, group, extended attributes or ACLs, or
     for anything but a directory its modification time

Directories end in "/". Below a directory that was added or removed, every
entry is listed. A directory's own times follow its entries and are not
reported. Paths are relative to the backed-up directory. Subtrees whose
contents are identical in both snapshots are skipped without being read,
so a diff costs what changed, not what the snapshots hold.

The last line sums up: how many paths of each kind, and the bytes of the
files added or modified in SNAP2 and of those removed or replaced.

--json prints one object per change and line ({"type": "change", ...}),
then one {"type": "summary", ...}.`,
		Example: `  hindsight diff 3fa8c1d2 latest
  hindsight diff 3fa8c1d2 77e0b4a9 --json | jq -r 'select(.change == "added") | .path'`,
		Args: cobra.ExactArgs(2),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			return a.runDiff(cmd.Context(), args[0], args[1], jsonOut)
		}),
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print one JSON object per change and line, then a summary")
	return cmd
}

var changeMarks = map[snapshot.ChangeKind]string{
	snapshot.Added: "+", snapshot.Removed: "-", snapshot.Modified: "M",
	snapshot.TypeChanged: "T", snapshot.MetadataChanged: "U",
}

type changeJSON struct {
	Type   string    `json:"type"`
	Change string    `json:"change"`
	Path   rawString `json:"path"`
	Kind   string    `json:"kind"` // of the entry in SNAP2, or in SNAP1 if removed
}

type diffSummary struct {
	Type         string `json:"type"`
	Added        int    `json:"added"`
	Removed      int    `json:"removed"`
	Modified     int    `json:"modified"`
	TypeChanged  int    `json:"type_changed"`
	Metadata     int    `json:"metadata"`
	AddedBytes   uint64 `json:"added_bytes"`
	RemovedBytes uint64 `json:"removed_bytes"`
}

func (sum *diffSummary) add(c *snapshot.Change) {
	switch c.Kind {
	case snapshot.Added:
		sum.Added++
	case snapshot.Removed:
		sum.Removed++
	case snapshot.Modified:
		sum.Modified++
	case snapshot.TypeChanged:
		sum.TypeChanged++
	case snapshot.MetadataChanged:
		sum.Metadata++
		return
	}
	if c.New != nil && c.New.Type == snapshot.TypeFile {
		sum.AddedBytes += c.New.Size
	}
	if c.Old != nil && c.Old.Type == snapshot.TypeFile {
		sum.RemovedBytes += c.Old.Size
	}
}

func (a *app) runDiff(ctx context.Context, ref1, ref2 string, jsonOut bool) error {
	s, err := a.openRepo(ctx, openOptions{lock: sharedLock, purpose: "diff", readOnly: true})
	if err != nil {
		return err
	}
	defer s.close()
	s1, err := s.resolve(ref1)
	if err != nil {
		return err
	}
	s2, err := s.resolve(ref2)
	if err != nil {
		return err
	}
	sum := diffSummary{Type: "summary"}
	err = snapshot.Diff(s.ctx, s.repo, s1.Record, s2.Record, func(c *snapshot.Change) error {
		sum.add(c)
		n := c.New
		if n == nil {
			n = c.Old
		}
		p := "/" + c.Path
		if jsonOut {
			return writeJSON(a.stdout, changeJSON{Type: "change", Change: c.Kind.String(), Path: rawString(p), Kind: typeName(n.Type)})
		}
		if n.Type == snapshot.TypeDir && c.Path != "" {
			p += "/"
		}
		_, err := fmt.Fprintf(a.stdout, "%s  %s\n", changeMarks[c.Kind], quote(p))
		return err
	})
	if err != nil {
		return s.err(err)
	}
	if jsonOut {
		return writeJSON(a.stdout, sum)
	}
	if !a.quiet {
		fmt.Fprintf(a.stdout, "%d added, %d removed, %d modified, %d type changed, %d metadata only; %s added, %s removed\n",
			sum.Added, sum.Removed, sum.Modified, sum.TypeChanged, sum.Metadata,
			formatBytes(sum.AddedBytes), formatBytes(sum.RemovedBytes))
	}
	return nil
}
