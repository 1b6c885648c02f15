package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFind(t *testing.T) {
	e, src, snaps := threeBackups(t)
	type found struct {
		Path      string `json:"path"`
		Kind      string `json:"kind"`
		Size      uint64 `json:"size"`
		Snapshots []struct {
			ID   string    `json:"id"`
			Time time.Time `json:"time"`
		} `json:"snapshots"`
	}
	ms := jsonLines[found](t, must(t, e, noConfig(t, "find", "*.txt", "--json")...).stdout)
	var got []string
	for _, m := range ms {
		line := m.Path + " " + m.Kind
		for _, s := range m.Snapshots {
			line += " " + s.ID[:8]
		}
		got = append(got, line)
	}
	hello, nw := filepath.Join(src, "hello.txt"), filepath.Join(src, "new.txt")
	want := []string{
		hello + " file " + snaps[0].ID[:8],
		hello + " file " + snaps[1].ID[:8] + " " + snaps[2].ID[:8],
		nw + " file " + snaps[2].ID[:8],
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("find *.txt:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if ms[1].Size != uint64(len("second version\n")) {
		t.Errorf("size of the second version: %d", ms[1].Size)
	}
	r := must(t, e, noConfig(t, "find", filepath.Join(src, "sub", "*"))...)
	if !strings.Contains(r.stdout, "data.bin") || !strings.Contains(r.stdout, `two\nlines`) || !strings.Contains(r.stdout, "2 versions") {
		t.Errorf("find with a path:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "two\nlines") {
		t.Errorf("a raw newline from a name:\n%s", r.stdout)
	}
	r = must(t, e, noConfig(t, "find", "hello.txt", "--source", "/elsewhere")...)
	if !strings.Contains(r.stdout, "0 versions") {
		t.Errorf("find in another source:\n%s", r.stdout)
	}
}
