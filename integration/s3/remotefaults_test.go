package s3

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hindsight-backup/hindsight/integration/hsrun"
	"github.com/hindsight-backup/hindsight/integration/treecmp"
	"github.com/hindsight-backup/hindsight/remote"
	"github.com/hindsight-backup/hindsight/remote/remotetest/faultproxy"
	"github.com/hindsight-backup/hindsight/remote/s3"
	"github.com/hindsight-backup/hindsight/remote/s3/s3test"
	"github.com/hindsight-backup/hindsight/remote/swift"
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
	// open is a Backend straight to the server, to compare with the
	// local repository.
	open func(t *testing.T, prefix string) remote.Backend
	// login is the path clients log in at through the proxy, if any.
	login string
	// tokenEnv, if not nil, logs in and returns the environment of a
	// client that has a token made elsewhere and no way to renew it.
	tokenEnv func(t *testing.T) []string
	isObject func(*http.Request) bool
	// mustFail is the fault this server's client cannot ride out, and
	// what its message must say.
	mustFail faultproxy.Fault
	failMsg  []string
}

// injector applies one fault to the first of every three object requests
// it applies to, at most faultsPerCommand times per command, so that each
// command meets the fault several times and retries get through.
type injector struct {
	mu       sync.Mutex
	kind     faultproxy.Fault
	isObject func(*http.Request) bool
	only     func(*http.Request) bool // nil: any object request
	seen     int
	left     int
}

const faultsPerCommand = 3

func (in *injector) choose(r *http.Request) faultproxy.Fault {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.kind == faultproxy.Pass || !in.isObject(r) || (in.only != nil && !in.only(r)) {
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

func (in *injector) set(kind faultproxy.Fault) { in.setOnly(kind, nil) }

func (in *injector) setOnly(kind faultproxy.Fault, only func(*http.Request) bool) {
	in.mu.Lock()
	in.kind, in.only, in.seen, in.left = kind, only, 0, faultsPerCommand
	in.mu.Unlock()
}

// snapshotUpload is the upload of a snapshot record, the last thing a
// push sends: a fault there fails a push that has sent everything else.
func snapshotUpload(r *http.Request) bool {
	return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/snapshots/")
}

// TestRemoteFaults pushes a repository of three snapshots to the real
// MinIO and the real Swift through every fault the proxy knows, then
// restores from the remote alone (restore --repo URL) through the same
// fault. Each command must succeed after its retries, the restore
// bit-exact, or fail with a clear message; either way a check of the
// remote, straight from the server, must be clean, and hold nothing that
// is not whole.
func TestRemoteFaults(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	repo := filepath.Join(dir, "repo")
	hs := hsrun.New(t, hsBin, "HINDSIGHT_PASSWORD=faults", "HINDSIGHT_REPOSITORY="+repo)
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
					n, c := faultRound(t, hs.With(ft.env...), ft, in, kind, src, repo)
					total += n
					commands += c
				})
			}
			if ft.tokenEnv != nil {
				t.Run("expire token made elsewhere", func(t *testing.T) {
					total += expireFixedToken(t, hs.With(ft.tokenEnv(t)...), ft, in)
					commands++
				})
			}
		})
	}
	t.Logf("MEASURE remote faults: %d kinds x 2 backends, %d commands, %d faults injected, all restores bit-exact, 0 bytes lost",
		len(faultproxy.All()), commands, total)
}

// faultRound pushes to a fresh prefix and restores from it through kind,
// and returns the faults injected and the commands run.
func faultRound(t *testing.T, hs hsrun.Runner, ft faultTarget, in *injector, kind faultproxy.Fault, src, repo string) (int, int) {
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

	logins := ft.proxy.Requests(ft.login)
	in.set(kind)
	if kind == ft.mustFail {
		in.setOnly(kind, snapshotUpload)
	}
	push := run(hs, "push", name)
	if kind == ft.mustFail {
		wantClearFailure(t, push, ft.failMsg)
		// Packs and index segments went up, and then the push failed
		// at a snapshot record (others, sent alongside, may have gone
		// up): nothing on the remote may look complete that is not.
		// The record refused is not there, what is there is whole,
		// and it checks clean: each snapshot listed has all its data.
		direct := fresh(t, hs.With(ft.directEnv...), ft.direct(prefix))
		if r := direct.Run(t, "snapshots", "--json"); r.Code != 0 || strings.Count(r.Stdout, "\n") >= 3 {
			t.Errorf("want fewer than the 3 snapshots on the remote after a failed push: %s", r)
		}
		remoteMatchesLocal(t, ft.open(t, prefix), repo, false)
		if r := run(direct, "check", "--read-data"); r.Code != 0 || !strings.Contains(r.Stdout, "0 problems") {
			t.Errorf("check of the remote a failed push left: %s", r)
		}
		in.set(faultproxy.Pass)
		hs.Must(t, "push", name)
	} else if push.Code != 0 {
		t.Fatalf("push through %s faults: %s", kind, push)
	}
	pushed := faultproxy.Total(ft.proxy.Injected()) - before
	lost := remoteMatchesLocal(t, ft.open(t, prefix), repo, true)

	in.set(kind)
	target := filepath.Join(t.TempDir(), "restored")
	restore := run(fresh(t, hs, ft.url(prefix)), "restore", "latest", "--target", target)
	restored := faultproxy.Total(ft.proxy.Injected()) - before - pushed
	if ft.login != "" && kind == faultproxy.Expire {
		// One login per command, and one more after each expiry.
		if n := ft.proxy.Requests(ft.login) - logins; n < 2+pushed+restored {
			t.Errorf("%d logins for 2 commands and %d expired tokens: the client did not log in again", n, pushed+restored)
		}
	}
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
	t.Logf("%s: %d faults in push, %d in restore, %d bytes lost", kind, pushed, restored, lost)
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
	t.Logf("failed as it must: %s", last)
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

// expireFixedToken pushes with a token the client cannot renew, and
// expires it: the push must stop at once with a message that says so.
func expireFixedToken(t *testing.T, hs hsrun.Runner, ft faultTarget, in *injector) int {
	before := faultproxy.Total(ft.proxy.Injected())
	in.set(faultproxy.Pass)
	hs.Must(t, "remote", "add", "fixed-token", ft.url("fixed-token"))
	in.set(faultproxy.Expire)
	wantClearFailure(t, hs.Run(t, "push", "fixed-token"), []string{"OS_AUTH_TOKEN", "expired"})
	in.set(faultproxy.Pass)
	return faultproxy.Total(ft.proxy.Injected()) - before
}

// remoteMatchesLocal demands that every object on be, locks aside, be
// byte for byte the object of that name in the local repository at repo:
// an object cut short by a fault must never be stored whole-looking.
// With complete (after a push that succeeded) it also demands every pack,
// index segment and snapshot of repo on be, and returns the bytes of
// those that are not: the bytes lost.
func remoteMatchesLocal(t *testing.T, be remote.Backend, repo string, complete bool) (lost int64) {
	t.Helper()
	defer be.Close()
	onRemote := map[string]bool{}
	err := be.List(t.Context(), "", func(fi remote.FileInfo) error {
		if strings.HasPrefix(fi.Name, "locks/") {
			return nil
		}
		onRemote[fi.Name] = true
		want, err := os.ReadFile(filepath.Join(repo, filepath.FromSlash(fi.Name)))
		if err != nil {
			t.Errorf("the remote holds %s (%d bytes), which the repository does not: %v", fi.Name, fi.Size, err)
			return nil
		}
		rc, err := be.Load(t.Context(), fi.Name, 0, 0)
		if err != nil {
			return err
		}
		defer rc.Close()
		got, err := io.ReadAll(rc)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			t.Errorf("the remote's %s (%d bytes) is not the repository's (%d bytes)", fi.Name, len(got), len(want))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listing the remote: %v", err)
	}
	if !complete {
		return 0
	}
	for _, dir := range []string{"packs", "index-segments", "snapshots"} {
		filepath.WalkDir(filepath.Join(repo, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(repo, p)
			if !onRemote[filepath.ToSlash(rel)] {
				fi, _ := d.Info()
				lost += fi.Size()
				t.Errorf("the remote lacks %s after a push that succeeded", rel)
			}
			return nil
		})
	}
	return lost
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
		open: func(t *testing.T, prefix string) remote.Backend {
			be, err := s3.New(srv.Config(t, "faults", prefix))
			if err != nil {
				t.Fatal(err)
			}
			return be
		},
		isObject: s3test.IsObjectRequest,
		mustFail: faultproxy.Expire,
		failMsg:  []string{p.Endpoint + "/faults/", "expired", "AWS_SESSION_TOKEN"},
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
		login:     "/auth/v1.0",
		tokenEnv: func(t *testing.T) []string {
			req, _ := http.NewRequest(http.MethodGet, "http://"+p.Endpoint+"/auth/v1.0", nil)
			req.Header.Set("X-Auth-User", swifttest.User)
			req.Header.Set("X-Auth-Key", swifttest.Key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return []string{"ST_AUTH=", "ST_USER=", "ST_KEY=",
				"OS_STORAGE_URL=" + resp.Header.Get("X-Storage-Url"), "OS_AUTH_TOKEN=" + resp.Header.Get("X-Auth-Token")}
		},
		open: func(t *testing.T, prefix string) remote.Backend {
			be, err := swift.New(swift.Config{Container: "faults", Prefix: prefix,
				Auth: swift.Auth{URL: srv.AuthURL(), User: swifttest.User, Key: swifttest.Key}})
			if err != nil {
				t.Fatal(err)
			}
			return be
		},
		isObject: swifttest.IsObjectRequest,
		mustFail: -1,
	}
}
