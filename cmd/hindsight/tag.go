package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/snapshot"
)

type tagFlags struct {
	add, remove, set []string
	json             bool
}

func (a *app) tagCommand() *cobra.Command {
	var fl tagFlags
	cmd := &cobra.Command{
		Use:   "tag SNAP... (--add TAG | --remove TAG | --set TAG)...",
		Short: "Add, remove or set the tags of snapshots",
		Long: `Change the tags of the snapshots named: --add and --remove (each
repeatable, together if need be) add and remove single tags; --set replaces
all of a snapshot's tags with those given ('--set ""' removes them all).

Snapshot records are never changed where they lie: a snapshot whose tags
change is saved again under a new ID, and the record under its old ID is
removed. The new ID is printed; the old one no longer names anything.
Every copy of the repository thus holds only ever the same bytes under a
name, so 'hindsight push' brings the new record to a remote, where (until
push learns to remove records) the old one stays beside it. Snapshots
whose parent was the old ID keep naming it. File history is unchanged.

Runs beside commands that only read, and not beside those that write,
as forget does.`,
		Example: `  hindsight tag latest --add keep
  hindsight tag 3fa8c1d2 77e0b4a9 --remove test --add release
  hindsight tag 3fa8c1d2 --set monthly --set offsite`,
		Args: cobra.MinimumNArgs(1),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			if len(fl.add)+len(fl.remove) == 0 && !cmd.Flags().Changed("set") {
				return usagef("no change given: use --add, --remove or --set")
			}
			if cmd.Flags().Changed("set") && len(fl.add)+len(fl.remove) > 0 {
				return usagef("--set replaces every tag; it does not go with --add or --remove")
			}
			return a.runTag(cmd.Context(), args, fl)
		}),
	}
	f := cmd.Flags()
	f.StringArrayVar(&fl.add, "add", nil, "add `TAG` (repeatable)")
	f.StringArrayVar(&fl.remove, "remove", nil, "remove `TAG` (repeatable)")
	f.StringArrayVar(&fl.set, "set", nil, "replace every tag with `TAG` (repeatable; \"\" for none)")
	f.BoolVar(&fl.json, "json", false, "print one JSON object per snapshot and line")
	return cmd
}

// tags returns a snapshot's tags after the change, each once, in the
// order they were first given.
func (fl *tagFlags) tags(old []string) []string {
	list := slices.Concat(old, fl.add)
	if fl.set != nil {
		list = fl.set
	}
	var out []string
	for _, t := range list {
		if t != "" && !slices.Contains(fl.remove, t) && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

type tagJSON struct {
	OldID   string      `json:"old_id"`
	ID      string      `json:"id"`
	Tags    []rawString `json:"tags"`
	Changed bool        `json:"changed"`
}

func (a *app) runTag(ctx context.Context, refs []string, fl tagFlags) error {
	s, err := a.openRepo(ctx, openOptions{lock: recordsLock, purpose: "tag"})
	if err != nil {
		return err
	}
	defer s.close()
	var edits []snapshot.TagEdit
	var all []tagJSON
	seen := make(map[string]bool)
	for _, ref := range refs {
		sn, err := s.resolve(ref)
		if err != nil {
			return err
		}
		if seen[sn.ID.String()] {
			continue
		}
		seen[sn.ID.String()] = true
		tags := fl.tags(sn.Record.Tags)
		j := tagJSON{OldID: sn.ID.String(), ID: sn.ID.String(), Tags: rawStrings(tags)}
		if !slices.Equal(tags, sn.Record.Tags) {
			j.Changed = true
			edits = append(edits, snapshot.TagEdit{Snapshot: sn, Tags: tags})
		}
		all = append(all, j)
	}
	ids, err := snapshot.SetTags(s.ctx, s.repo, edits)
	if err != nil {
		return s.err(err)
	}
	for i, j := 0, 0; i < len(all); i++ {
		if all[i].Changed {
			all[i].ID = ids[j].String()
			j++
		}
	}
	return a.printTags(all, fl.json)
}

func (a *app) printTags(all []tagJSON, jsonOut bool) error {
	for _, j := range all {
		if jsonOut {
			if err := writeJSON(a.stdout, j); err != nil {
				return err
			}
			continue
		}
		if a.quiet {
			continue
		}
		tags := make([]string, len(j.Tags))
		for i, t := range j.Tags {
			tags[i] = quote(string(t))
		}
		if j.Changed {
			fmt.Fprintf(a.stdout, "snapshot %s is now %s, tags: %s\n", j.OldID[:8], j.ID[:8], strings.Join(tags, ","))
		} else {
			fmt.Fprintf(a.stdout, "snapshot %s unchanged, tags: %s\n", j.OldID[:8], strings.Join(tags, ","))
		}
	}
	return nil
}
