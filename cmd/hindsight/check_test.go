package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repoWithBackup returns an environment whose repository holds one backup
// of a small tree.
func repoWithBackup(t *testing.T) (env, string) {
	t.Helper()
	e := testEnv(t)
	initRepo(t, e)
	src := sourceTree(t)
	must(t, e, noConfig(t, "backup", src)...)
	return e, src
}

func packFiles(t *testing.T, repo string) []string {
	t.Helper()
	var packs []string
	err := filepath.WalkDir(filepath.Join(repo, "packs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			packs = append(packs, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return packs
}

func TestCheck(t *testing.T) {
	e, _ := repoWithBackup(t)
	r := must(t, e, noConfig(t, "check", "--read-data")...)
	if !strings.Contains(r.stdout, "0 problems") {
		t.Errorf("check of a sound repository:\n%s", r.stdout)
	}
	for _, p := range packFiles(t, e["HINDSIGHT_REPOSITORY"]) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	r = wantExit(t, exitDamage, e, noConfig(t, "check")...)
	if !strings.Contains(r.stdout, "missing") {
		t.Errorf("check does not report the missing packs:\n%s", r.stdout)
	}
	problems := jsonLines[map[string]any](t, wantExit(t, exitDamage, e, noConfig(t, "check", "--json")...).stdout)
	if len(problems) == 0 {
		t.Fatal("check --json printed no problems")
	}
	for _, p := range problems {
		if p["level"] != "damage" || p["message"] == "" {
			t.Errorf("check --json problem: %v", p)
		}
	}
}

func TestStats(t *testing.T) {
	e, _ := repoWithBackup(t)
	st := jsonLines[repoStatsJSON](t, must(t, e, noConfig(t, "stats", "--json")...).stdout)
	if len(st) != 1 || st[0].Snapshots != 1 || st[0].Packs == 0 || st[0].DataBlobs == 0 || st[0].TreeBlobs == 0 {
		t.Errorf("stats --json: %+v", st)
	}
	r := must(t, e, noConfig(t, "stats", "latest")...)
	if !strings.Contains(r.stdout, "files:") || !strings.Contains(r.stdout, "3") {
		t.Errorf("stats latest:\n%s", r.stdout)
	}
	must(t, e, noConfig(t, "stats")...)
}

func TestIndexRebuild(t *testing.T) {
	e, src := repoWithBackup(t)
	// The index is a cache: without it, a rebuild gives the same answers.
	if err := os.RemoveAll(filepath.Join(e["HINDSIGHT_REPOSITORY"], "index")); err != nil {
		t.Fatal(err)
	}
	r := must(t, e, noConfig(t, "index", "rebuild")...)
	if !strings.Contains(r.stdout, "index rebuilt") {
		t.Errorf("index rebuild:\n%s", r.stdout)
	}
	must(t, e, noConfig(t, "check")...)
	h := jsonLines[historyJSON](t, must(t, e, noConfig(t, "history", filepath.Join(src, "hello.txt"), "--json")...).stdout)
	if len(h) != 1 || h[0].Kind != "file" {
		t.Errorf("history after rebuild: %+v", h)
	}
}

func TestHistory(t *testing.T) {
	e, src := repoWithBackup(t)
	writeFile(t, filepath.Join(src, "hello.txt"), "changed\n")
	must(t, e, noConfig(t, "backup", src)...)
	if err := os.Remove(filepath.Join(src, "hello.txt")); err != nil {
		t.Fatal(err)
	}
	must(t, e, noConfig(t, "backup", src)...)

	h := jsonLines[historyJSON](t, must(t, e, noConfig(t, "history", filepath.Join(src, "hello.txt"), "--json")...).stdout)
	var kinds []string
	for _, v := range h {
		kinds = append(kinds, v.Kind)
	}
	if strings.Join(kinds, ",") != "file,file,deleted" {
		t.Errorf("history kinds %v, want file,file,deleted", kinds)
	}
	r := must(t, e, noConfig(t, "history", "--source", src, "hello.txt")...)
	if strings.Count(r.stdout, "\n") != 4 || !strings.Contains(r.stdout, "deleted") {
		t.Errorf("history table:\n%s", r.stdout)
	}
	wantExit(t, exitFailure, e, noConfig(t, "history", "/nowhere/at/all")...)
}
