package chunkstore

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/remote/local"
)

// scratchWriterEnv makes TestScratchOfDeadWriter a writer process: it
// saves a blob into the repository the variable names and waits to be
// killed with its pack unfinished.
const scratchWriterEnv = "HINDSIGHT_TEST_SCRATCH_WRITER"

func saveOneBlob(t *testing.T, r *Repository, content string) {
	t.Helper()
	if _, err := r.SaveBlob(context.Background(), blob.Data, blob.ID{byte(len(content)), content[0]}, []byte(content)); err != nil {
		t.Fatal(err)
	}
}

func scratchFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		out = append(out, n.Name())
	}
	return out
}

// age makes the owner files of dir look older than ownerGrace.
func age(t *testing.T, dir string) {
	t.Helper()
	old := time.Now().Add(-2 * ownerGrace)
	for _, n := range scratchFiles(t, dir) {
		if strings.HasPrefix(n, ownerPrefix) {
			if err := os.Chtimes(filepath.Join(dir, "tmp", n), old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestScratchOfDeadWriter: the scratch packs of a writer that was killed
// are removed, those of a live one (another process, or this one) are
// not, whatever their age.
func TestScratchOfDeadWriter(t *testing.T) {
	if dir := os.Getenv(scratchWriterEnv); dir != "" {
		be, err := local.Open(vfs.Default, dir)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Open(context.Background(), be, LocalOptions(dir, []byte(TestPassword)))
		if err != nil {
			t.Fatal(err)
		}
		saveOneBlob(t, r, "the killed writer's blob")
		os.Stdout.WriteString("ready\n")
		select {}
	}
	r, dir := TestRepository(t, InitOptions{})
	child := exec.Command(os.Args[0], "-test.run=^TestScratchOfDeadWriter$")
	child.Env = append(os.Environ(), scratchWriterEnv+"="+dir)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("writer process: %q, %v", line, err)
	}
	saveOneBlob(t, r, "this process's blob")
	before := scratchFiles(t, dir)
	if len(before) != 4 {
		t.Fatalf("scratch holds %v, want two owners and two packs", before)
	}

	age(t, dir)
	if n, err := r.removeDeadScratch(); n != 0 || err != nil || !slices.Equal(scratchFiles(t, dir), before) {
		t.Fatalf("with both writers alive: removed %d (%v), left %v of %v", n, err, scratchFiles(t, dir), before)
	}
	child.Process.Kill()
	child.Wait()
	// Just made (as far as its age tells): not judged.
	now := time.Now()
	for _, n := range before {
		os.Chtimes(filepath.Join(dir, "tmp", n), now, now)
	}
	if n, err := r.removeDeadScratch(); n != 0 || err != nil {
		t.Fatalf("a young owner file of a dead writer: removed %d (%v)", n, err)
	}
	age(t, dir)
	if n, err := r.removeDeadScratch(); n != 1 || err != nil {
		t.Fatalf("dead writer: removed %d packs (%v), want 1", n, err)
	}
	mine := r.w.scratch.tag
	for _, n := range scratchFiles(t, dir) {
		if !strings.Contains(n, mine) {
			t.Errorf("%s left; only this process's owner file and pack should be", n)
		}
	}
	if got := len(scratchFiles(t, dir)); got != 2 {
		t.Errorf("%d scratch files left, want this process's 2", got)
	}
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if left := scratchFiles(t, dir); len(left) != 0 {
		t.Errorf("with its packs stored, the writer left %v", left)
	}
	saveOneBlob(t, r, "another blob of this process")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if left := scratchFiles(t, dir); len(left) != 0 {
		t.Errorf("Close left %v", left)
	}
}
