package lvm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHooks runs the UrBackup-style pair: create prints SNAPSHOT=DIR with
// the snapshot mounted there, cleanup without --hooks leaves it alone,
// remove takes it away.
func TestHooks(t *testing.T) {
	e := newEnv(t, 512*mib)
	origin := e.MountAt(e.NewVolume("web", 64*mib, "ext4"))
	if err := os.WriteFile(filepath.Join(origin, "index.html"), []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.MustHS("lvm", "snapshot-create", "3f2a9c", origin, "ignored-name")
	dir, ok := strings.CutPrefix(strings.TrimSpace(r.Stdout), "SNAPSHOT=")
	if !ok {
		t.Fatalf("no SNAPSHOT= line: %s", r)
	}
	if err := os.WriteFile(filepath.Join(origin, "index.html"), []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "index.html")); err != nil || string(b) != "v1" {
		t.Errorf("snapshot shows %q (%v), want the content at snapshot time", b, err)
	}
	e.MustHS("lvm", "cleanup")
	if _, ok := e.LVs()["hindsight-hook-3f2a9c"]; !ok {
		t.Error("cleanup without --hooks removed a hook snapshot")
	}
	e.MustHS("lvm", "snapshot-remove", "3f2a9c", origin, "ignored-name")
	if left := e.Leftovers(); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	if r := e.HS("lvm", "snapshot-remove", "3f2a9c"); r.Code != 1 || !strings.Contains(r.Stderr, "hindsight-hook-3f2a9c") {
		t.Errorf("removing it again: %s", r)
	}
	if r := e.HS("lvm", "snapshot-create", "../etc", origin); r.Code != 1 || !strings.Contains(r.Stderr, "snapshot id") {
		t.Errorf("a bad id: %s", r)
	}
}

// TestBackupAll backs up every volume of a group but the excluded; one
// without a filesystem fails alone.
func TestBackupAll(t *testing.T) {
	e := newEnv(t, 1<<30)
	fillTree(t, e.MountAt(e.NewVolume("web", 64*mib, "ext4")), 5)
	fillTree(t, e.MountAt(e.NewVolume("db", 320*mib, "xfs")), 6)
	e.NewVolume("swap", 16*mib, "")

	r := e.MustHS("lvm", "backup", "--all", "vg0", "--exclude", "sw*")
	sources := map[string]bool{}
	for _, s := range e.Snapshots() {
		sources[s.Source] = true
	}
	if len(sources) != 2 || !sources["lvm:vg0/web"] || !sources["lvm:vg0/db"] {
		t.Errorf("sources %v, want lvm:vg0/web and lvm:vg0/db\n%s", sources, r)
	}
	r = e.HS("lvm", "backup", "--all", "vg0")
	if r.Code != 1 || !strings.Contains(r.Stderr, "1 of 3 volumes failed") || !strings.Contains(r.Stderr, "vg0/swap: ") || !strings.Contains(r.Stderr, "--image") {
		t.Errorf("want one failure that suggests --image: %s", r)
	}
	if n := len(e.Snapshots()); n != 4 {
		t.Errorf("%d snapshots, want 4: the failure must not stop the others", n)
	}
	if left := e.Leftovers(); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}
