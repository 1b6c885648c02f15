package s3

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hindsight-backup/hindsight/integration/hsrun"
	"github.com/hindsight-backup/hindsight/integration/treecmp"
	"github.com/hindsight-backup/hindsight/remote/remotetest/faultproxy"
	"github.com/hindsight-backup/hindsight/remote/s3/s3test"
	"github.com/hindsight-backup/hindsight/remote/swift/swifttest"
)

// faultTarget is one real server behind a fault proxy, as the tests of
// every fault kind need it.
type faultTarget struct {
	proxy *faultproxy.Proxy
	// url is the remote prefix through the proxy, direct straight to
	// the server.
	url, direct    func(prefix string) string
	env, directEnv []string // credentials for a client of the proxy, of the server
	isObject       func(*http.Request) bool
	// mustFail is the fault this server's client cannot ride out, and
	// what its message must say.
	mustFail faultproxy.Fault
	failMsg  []string
}

// injector applies one fault to the first of every three object requests
// it applies to, at most faultsPerCommand times per command, so that each command meets the
// fault several times and retries get through.
type injector struct {
	mu       sync.Mutex
	kind     faultproxy.Fault
	isObject func(*http.Request) bool
	seen     int
	left     int
}

const faultsPerCommand = 3

func (in *injector) choose(r *http.Request) faultproxy.Fault {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.kind == faultproxy.Pass || !in.isObject(r) {
		return faultproxy.Pass
	}
	switch in.kind {
	case faultproxy.Truncate, faultproxy.ShortBody, faultproxy.LongBody:
		if r.Method != http.MethodGet {
			return faultproxy.Pass
		}
	}
	in.seen++
	if in.seen%3 != 1 || in.left == 0 {
		return faultproxy.Pass
	}
	in.left--
	return in.kind
}

func (in *injector) set(kind faultproxy.Fault) {
	in.mu.Lock()
	in.kind, in.seen, in.left = kind, 0, faultsPerCommand
	in.mu.Unlock()
}

// TestRemoteFaults pushes a repository of three snapshots to the real
// MinIO and the real Swift through every fault the proxy knows, then
// restores from the remote alone (restore --repo URL) through the same
// fault. Each command must succeed after its retries, the restore
// bit-exact, or fail with a clear message; either way a check of the
// remote, straight from the server, must be clean, and a failed push may
// leave no snapshot on it.
func TestRemoteFaults(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	hs := hsrun.New(t, hsBin, "HINDSIGHT_PASSWORD=faults", "HINDSIGHT_REPOSITORY="+filepath.Join(dir, "repo"))
	hs.Must(t, "init")
	// Three backups: three packs, three index segments, three snapshots.
	for i := range 3 {
		sub := filepath.Join(src, fmt.Sprint(i))
		os.Mkdir(sub, 0o755)
		randomTree(t, sub, 2, 1<<20+i*300<<10, uint8(i+1))
		if err := os.WriteFile(filepath.Join(sub, "small"), []byte(strings.Repeat("x", i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
		hs.Must(t, "backup", src)
	}
	var total, commands int
	in := &injector{}
	for _, backend := range []struct {
		name  string
		start func(t *testing.T) faultTarget
	}{
		{"minio", func(t *testing.T) faultTarget { return minioTarget(t, in) }},
		{"swift", func(t *testing.T) faultTarget { return swiftTarget(t, in) }},
	} {
		t.Run(backend.name, func(t *testing.T) {
			ft := backend.start(t)
			in.isObject = ft.isObject
			for _, kind := range faultproxy.All() {
				t.Run(kind.String(), func(t *testing.T) {
					n, c := faultRound(t, hs.With(ft.env...), ft, in, kind, src)
					total += n
					commands += c
				})
			}
		})
	}
	t.Logf("MEASURE remote faults: %d kinds x 2 backends, %d commands, %d faults injected, 0 bytes lost",
		len(faultproxy.All()), commands, total)
}

// faultRound pushes to a fresh prefix and restores from it through kind,
// and returns the faults injected and the commands run.
func faultRound(t *testing.T, hs hsrun.Runner, ft faultTarget, in *injector, kind faultproxy.Fault, src string) (int, int) {
	prefix := "f-" + kind.String()
	before := faultproxy.Total(ft.proxy.Injected())
	commands := 0
	run := func(hs hsrun.Runner, args ...string) hsrun.Result {
		commands++
		return hs.Run(t, args...)
	}
	in.set(faultproxy.Pass)
	name := "r-" + kind.String()
	hs.Must(t, "remote", "add", name, ft.url(prefix))

	in.set(kind)
	push := run(hs, "push", name)
	if kind == ft.mustFail {
		wantClearFailure(t, push, ft.failMsg)
		// Nothing on the remote may look complete: no snapshot, and
		// what is there checks clean.
		direct := fresh(t, hs.With(ft.directEnv...), ft.direct(prefix))
		if r := direct.Run(t, "snapshots", "--json"); r.Code == 0 && strings.TrimSpace(r.Stdout) != "" {
			t.Errorf("a failed push left snapshots on the remote: %s", r)
		}
		in.set(faultproxy.Pass)
		hs.Must(t, "push", name)
	} else if push.Code != 0 {
		t.Fatalf("push through %s faults: %s", kind, push)
	}
	pushed := faultproxy.Total(ft.proxy.Injected()) - before

	in.set(kind)
	target := filepath.Join(t.TempDir(), "restored")
	restore := run(fresh(t, hs, ft.url(prefix)), "restore", "latest", "--target", target)
	restored := faultproxy.Total(ft.proxy.Injected()) - before - pushed
	in.set(faultproxy.Pass)
	if kind == ft.mustFail {
		wantClearFailure(t, restore, ft.failMsg)
		restore = run(fresh(t, hs, ft.url(prefix)), "restore", "latest", "--target", target)
	}
	if restore.Code != 0 {
		t.Fatalf("restore through %s faults: %s", kind, restore)
	}
	sameTree(t, src, target)
	if r := run(fresh(t, hs.With(ft.directEnv...), ft.direct(prefix)), "check", "--read-data"); r.Code != 0 {
		t.Errorf("check of the remote after faults: %s", r)
	}
	t.Logf("%s: %d faults in push, %d in restore", kind, pushed, restored)
	if kind != faultproxy.Truncate && kind != faultproxy.ShortBody && kind != faultproxy.LongBody && pushed == 0 {
		t.Errorf("push met no %s fault: the test proved less than it claims", kind)
	}
	if restored == 0 {
		t.Errorf("restore met no %s fault: the test proved less than it claims", kind)
	}
	return pushed + restored, commands
}

// fresh is hs for the repository at url with an empty cache, so that
// the index and every blob come from the remote.
func fresh(t *testing.T, hs hsrun.Runner, url string) hsrun.Runner {
	return hs.With("HINDSIGHT_REPOSITORY="+url, "XDG_CACHE_HOME="+t.TempDir())
}

func wantClearFailure(t *testing.T, r hsrun.Result, words []string) {
	t.Helper()
	if r.Code != 1 {
		t.Errorf("want exit 1: %s", r)
	}
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	last := lines[len(lines)-1]
	for _, w := range words {
		if !strings.Contains(last, w) {
			t.Errorf("the error %q does not say %q", last, w)
		}
	}
	if n := strings.Count(r.Stderr, "retrying"); n > 0 {
		t.Errorf("retried %d times a failure no retry can cure:\n%s", n, r.Stderr)
	}
}

func sameTree(t *testing.T, want, got string) {
	t.Helper()
	diffs, err := treecmp.Compare(want, got, treecmp.Options{SkipRootMeta: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs[:min(len(diffs), 10)] {
		t.Errorf("restored tree differs: %s", d)
	}
}

func minioTarget(t *testing.T, in *injector) faultTarget {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "faults")
	p := srv.StartProxy(t, in.choose)
	return faultTarget{
		proxy:     p,
		url:       func(prefix string) string { return "s3:http://" + p.Endpoint + "/faults/" + prefix },
		direct:    func(prefix string) string { return srv.URL("faults", prefix) },
		env:       srv.Env(),
		directEnv: srv.Env(),
		isObject:  s3test.IsObjectRequest,
		mustFail:  faultproxy.Expire,
		failMsg:   []string{p.Endpoint + "/faults/", "expired", "AWS_SESSION_TOKEN"},
	}
}

func swiftTarget(t *testing.T, in *injector) faultTarget {
	srv := swifttest.Start(t)
	p := srv.StartProxy(t, in.choose)
	return faultTarget{
		proxy:     p,
		url:       func(prefix string) string { return "swift:faults/" + prefix },
		direct:    func(prefix string) string { return "swift:faults/" + prefix },
		env:       srv.ProxyEnv(p),
		directEnv: srv.Env(),
		isObject:  swifttest.IsObjectRequest,
		mustFail:  -1,
	}
}
