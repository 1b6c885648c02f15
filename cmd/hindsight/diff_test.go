package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	e, src, snaps := threeBackups(t)
	if err := os.RemoveAll(filepath.Join(src, "sub")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "new.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, e, noConfig(t, "backup", src)...)
	r := must(t, e, noConfig(t, "diff", snaps[0].ID[:8], "latest")...)
	want := `M  /hello.txt
+  /new.txt
-  /sub/
-  /sub/data.bin
-  "/sub/two\nlines"
1 added, 3 removed, 1 modified, 0 type changed, 0 metadata only; 19 B added, 625.0 KiB removed
`
	if r.stdout != want {
		t.Errorf("diff:\n%s\nwant:\n%s", r.stdout, want)
	}
	r = must(t, e, noConfig(t, "diff", snaps[2].ID[:8], "latest", "--json")...)
	type line struct {
		Type, Change, Path, Kind string
		Metadata                 int
	}
	got := jsonLines[line](t, r.stdout)
	if len(got) != 5 || got[0] != (line{Type: "change", Change: "metadata", Path: "/new.txt", Kind: "file"}) ||
		got[4].Type != "summary" || got[4].Metadata != 1 {
		t.Errorf("diff --json:\n%s", r.stdout)
	}
	if r := must(t, e, noConfig(t, "diff", "latest", "latest")...); !strings.HasPrefix(r.stdout, "0 added, 0 removed") {
		t.Errorf("diff of a snapshot with itself:\n%s", r.stdout)
	}
}
