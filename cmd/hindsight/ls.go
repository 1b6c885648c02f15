package main

import (
	"context"
	"fmt"
	"io"
	"path"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/snapshot"
)

type lsFlags struct {
	short     bool
	recursive bool
	numeric   bool
	json      bool
}

func (a *app) lsCommand() *cobra.Command {
	var fl lsFlags
	cmd := &cobra.Command{
		Use:   "ls SNAP[:PATH] [PATH]",
		Short: "List files in a snapshot",
		Long: `List a directory of a snapshot, by default in the long format of ls -l:
mode, owner and group (their names on the backed-up host when known, else
the numeric ids), size, modification time and name; symbolic links show
"-> target". PATH is relative to the backed-up directory; without it the
backed-up directory itself is listed.

A name holding a newline, control characters or bytes that are not UTF-8 is
printed Go-quoted ("a\nb"), so that no name can pass for another line.
--json prints one object per entry and line with the raw fields instead.`,
		Example: `  hindsight ls latest
  hindsight ls latest etc/ssh
  hindsight ls 3fa8c1d2:home/alice -R --short
  hindsight ls latest --json | jq -r 'select(.type == "file") | .path'`,
		Args: cobra.RangeArgs(1, 2),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			ref, p := splitSnapshotPath(args[0])
			if len(args) == 2 {
				if p != "" {
					return usagef("give the path either as SNAP:PATH or as a second argument, not both")
				}
				p = args[1]
			}
			return a.runLs(cmd.Context(), ref, p, fl)
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&fl.short, "short", false, "print names only")
	f.BoolVarP(&fl.recursive, "recursive", "R", false, "list subdirectories too, with paths")
	f.BoolVarP(&fl.numeric, "numeric-uid-gid", "n", false, "show numeric user and group ids")
	f.BoolVar(&fl.json, "json", false, "print one JSON object per entry and line")
	f.BoolP("long", "l", true, "long format, the default")
	return cmd
}

func (a *app) runLs(ctx context.Context, ref, p string, fl lsFlags) error {
	s, err := a.openRepo(ctx, openOptions{lock: sharedLock, purpose: "ls", readOnly: true})
	if err != nil {
		return err
	}
	defer s.close()
	sn, err := s.resolve(ref)
	if err != nil {
		return err
	}
	n, err := snapshot.Lookup(s.ctx, s.repo, sn.Record, p)
	if err != nil {
		return s.err(fmt.Errorf("snapshot %s: %w", sn.ID.Short(), err))
	}
	l := &lister{w: a.stdout, fl: fl, repo: s.repo}
	if n.Type != snapshot.TypeDir {
		return l.print(cleanPath(p), n)
	}
	return s.err(l.dir(s.ctx, cleanPath(p), n))
}

// cleanPath makes a user's path relative to the snapshot root, "" for the
// root itself.
func cleanPath(p string) string {
	p = path.Clean("/" + p)
	return p[1:]
}

type lister struct {
	w    io.Writer
	fl   lsFlags
	repo snapshot.Repo
}

// dir lists a directory's entries, and with -R everything below, depth
// first in name order, streaming: a tree of millions of files is never
// held in memory at once.
func (l *lister) dir(ctx context.Context, rel string, n *snapshot.Node) error {
	t, err := snapshot.LoadTree(ctx, l.repo, n.Subtree)
	if err != nil {
		return fmt.Errorf("%s: %w", displayPath(rel), err)
	}
	for i := range t.Nodes {
		c := &t.Nodes[i]
		p := path.Join(rel, c.Name)
		if err := l.print(p, c); err != nil {
			return err
		}
		if l.fl.recursive && c.Type == snapshot.TypeDir {
			if err := l.dir(ctx, p, c); err != nil {
				return err
			}
		}
	}
	return nil
}

func displayPath(rel string) string { return "/" + rel }

func (l *lister) print(rel string, n *snapshot.Node) error {
	if l.fl.json {
		return writeJSON(l.w, nodeJSON(rel, n))
	}
	name := n.Name
	if l.fl.recursive {
		name = rel
	}
	if l.fl.short {
		_, err := fmt.Fprintln(l.w, quote(name))
		return err
	}
	user, group := n.User, n.Group
	if l.fl.numeric || user == "" {
		user = strconv.FormatUint(uint64(n.UID), 10)
	}
	if l.fl.numeric || group == "" {
		group = strconv.FormatUint(uint64(n.GID), 10)
	}
	line := fmt.Sprintf("%s %-8s %-8s %10s %s %s", modeString(n), quote(user), quote(group), sizeString(n),
		time.Unix(0, n.Mtime).Format(timeLayout), quote(name))
	if n.Type == snapshot.TypeSymlink {
		line += " -> " + quote(n.LinkTarget)
	}
	_, err := fmt.Fprintln(l.w, line)
	return err
}

func sizeString(n *snapshot.Node) string {
	if n.Type == snapshot.TypeCharDev || n.Type == snapshot.TypeBlockDev {
		return fmt.Sprintf("%d, %d", unix.Major(n.Rdev), unix.Minor(n.Rdev))
	}
	return strconv.FormatUint(n.Size, 10)
}

// modeString renders type and permissions as ls -l does, setuid, setgid
// and sticky bits included (s/S, t/T).
func modeString(n *snapshot.Node) string {
	b := []byte("----------")
	b[0] = typeChar(n.Type)
	const rwx = "rwx"
	for i := range 9 {
		if n.Mode&(1<<(8-i)) != 0 {
			b[1+i] = rwx[i%3]
		}
	}
	special := func(bit uint32, pos int, set, unset byte) {
		if n.Mode&bit == 0 {
			return
		}
		if b[pos] == 'x' {
			b[pos] = set
		} else {
			b[pos] = unset
		}
	}
	special(0o4000, 3, 's', 'S')
	special(0o2000, 6, 's', 'S')
	special(0o1000, 9, 't', 'T')
	return string(b)
}

func typeChar(t snapshot.NodeType) byte {
	switch t {
	case snapshot.TypeDir:
		return 'd'
	case snapshot.TypeSymlink:
		return 'l'
	case snapshot.TypeFIFO:
		return 'p'
	case snapshot.TypeCharDev:
		return 'c'
	case snapshot.TypeBlockDev:
		return 'b'
	}
	return '-'
}

func typeName(t snapshot.NodeType) string {
	switch t {
	case snapshot.TypeFile:
		return "file"
	case snapshot.TypeDir:
		return "dir"
	case snapshot.TypeSymlink:
		return "symlink"
	case snapshot.TypeFIFO:
		return "fifo"
	case snapshot.TypeCharDev:
		return "chardev"
	case snapshot.TypeBlockDev:
		return "blockdev"
	}
	return "unknown"
}

type lsJSON struct {
	Path       rawString `json:"path"`
	Name       rawString `json:"name"`
	Type       string    `json:"type"`
	Mode       uint32    `json:"mode"` // permission bits with setuid, setgid, sticky
	UID        uint32    `json:"uid"`
	GID        uint32    `json:"gid"`
	User       rawString `json:"user,omitempty"`
	Group      rawString `json:"group,omitempty"`
	Size       uint64    `json:"size"`
	Mtime      time.Time `json:"mtime"`
	Atime      time.Time `json:"atime"`
	Ctime      time.Time `json:"ctime"`
	Inode      uint64    `json:"inode"`
	Links      uint64    `json:"links"`
	Rdev       uint64    `json:"rdev,omitempty"`
	LinkTarget rawString `json:"link_target,omitempty"`
}

func nodeJSON(rel string, n *snapshot.Node) lsJSON {
	return lsJSON{
		Path: rawString(rel), Name: rawString(n.Name), Type: typeName(n.Type), Mode: n.Mode,
		UID: n.UID, GID: n.GID, User: rawString(n.User), Group: rawString(n.Group), Size: n.Size,
		Mtime: time.Unix(0, n.Mtime), Atime: time.Unix(0, n.Atime), Ctime: time.Unix(0, n.Ctime),
		Inode: n.Inode, Links: n.Links, Rdev: n.Rdev, LinkTarget: rawString(n.LinkTarget),
	}
}
