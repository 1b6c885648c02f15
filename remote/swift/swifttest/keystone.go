package swifttest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"testing"
	"time"
)

// Keystone 22's files that a Swift with Keystone needs: python3-keystone's
// WSGI entry point, uWSGI with its Python plugin, and keystonemiddleware
// for the proxy.
var keystoneRequired = []string{python, "/usr/bin/keystone-wsgi-public", "/usr/bin/uwsgi-core",
	"/usr/lib/uwsgi/plugins/python3_plugin.so", "/usr/lib/python3/dist-packages/keystonemiddleware/auth_token/__init__.py"}

// The users every Keystone has, in the Default domain: the admin that
// keystone-manage bootstrap creates, and the service user the proxy's
// authtoken validates tokens as, with the admin role in its project as
// installation guides give it.
const (
	adminUser       = "admin"
	adminPassword   = "admin-secret"
	adminProject    = "admin"
	serviceUser     = "swift"
	servicePassword = "swift-secret"
	serviceProject  = "service"
)

// Keystone is a running OpenStack Keystone 22 (identity API v3 only, as
// every Keystone since Queens) with its identity endpoint in RegionOne.
type Keystone struct {
	URL string // http://127.0.0.1:port, without version
	daemons
	client     *http.Client
	adminToken string
	ids        map[string]string // "project:name" → ID, of what the harness made

	done chan struct{} // closed when boot has returned
	err  error         // boot's, once done is closed
	took time.Duration
}

// launchKeystone takes a port and boots a Keystone on it in the
// background, so that Swift can start meanwhile: on a busy machine each
// takes tens of seconds. The Keystone runs for the rest of t.
func launchKeystone(t testing.TB) *Keystone {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	k := &Keystone{URL: "http://" + ln.Addr().String(), daemons: daemons{Dir: t.TempDir()},
		client: &http.Client{Timeout: 30 * time.Second}, done: make(chan struct{}),
		ids: map[string]string{"region:RegionOne": "RegionOne"}}
	t.Cleanup(func() {
		cancel()
		<-k.done
		k.stop()
		if t.Failed() {
			t.Logf("keystone's log: %s", k.logTail("keystone"))
		}
	})
	go func() {
		defer close(k.done)
		start := time.Now()
		k.err = k.boot(ctx, ln.(*net.TCPListener))
		k.took = time.Since(start)
	}()
	return k
}

// wait returns once Keystone is ready, or fails t.
func (k *Keystone) wait(t testing.TB) {
	t.Helper()
	<-k.done
	if k.err != nil {
		t.Fatalf("starting Keystone: %v", k.err)
	}
	t.Logf("keystone ready in %v at %s", k.took.Round(time.Millisecond), k.URL)
}

// boot sets Keystone up, serves it on ln, and adds what the proxy needs.
func (k *Keystone) boot(ctx context.Context, ln *net.TCPListener) error {
	defer ln.Close()
	conf, err := k.setup(ctx)
	if err != nil {
		return fmt.Errorf("setting up: %w", err)
	}
	if err := k.serve(ctx, conf, ln); err != nil {
		return err
	}
	if err := k.populate(); err != nil {
		return fmt.Errorf("populating: %w", err)
	}
	return nil
}

// setup writes the configuration and runs keystoneSetup; it returns the
// configuration file.
func (k *Keystone) setup(ctx context.Context) (string, error) {
	for _, d := range []string{"bin", "etc", "log"} {
		if err := os.MkdirAll(filepath.Join(k.Dir, d), 0o755); err != nil {
			return "", err
		}
	}
	conf, script := filepath.Join(k.Dir, "etc/keystone.conf"), filepath.Join(k.Dir, "bin/setup.py")
	if err := render(conf, keystoneConf, k); err != nil {
		return "", err
	}
	if err := os.WriteFile(script, []byte(keystoneSetup), 0o644); err != nil {
		return "", err
	}
	u, err := user.Current()
	if err != nil {
		return "", err
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return "", err
	}
	logf, err := os.Create(filepath.Join(k.Dir, "log/keystone-setup.log"))
	if err != nil {
		return "", err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, python, script, conf, filepath.Join(k.Dir, "keystone.db"), u.Username, g.Name)
	cmd.Env = append(os.Environ(), "OS_BOOTSTRAP_PASSWORD="+adminPassword)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%v: %s", err, k.logTail("keystone-setup"))
	}
	return conf, nil
}

// serve runs keystone-wsgi-public under uWSGI, which inherits ln as
// its socket (fd 3), and waits until Keystone answers.
//
// Four single-threaded processes serve, so that authtoken's validations
// and the tests' logins do not queue behind each other; Keystone's sqlite
// connections must not be shared by threads ("SQLite objects created in
// a thread can only be used in that same thread"). --no-orphans takes
// the workers down with the master, which Pdeathsig kills with the test
// binary. uWSGI's HTTP socket closes the connection after each response
// without saying so, and clients that send the next request on it meet
// a reset or an EOF: "Connection: close" tells them.
func (k *Keystone) serve(ctx context.Context, conf string, ln *net.TCPListener) error {
	f, err := ln.File()
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command("/usr/bin/uwsgi-core", "--plugin", "python3", "--http-socket", "fd://3",
		"--add-header", "Connection: close", "--wsgi-file", "/usr/bin/keystone-wsgi-public",
		"--need-app", "--die-on-term", "--master", "--no-orphans", "--processes", "4", "--buffer-size", "65535")
	cmd.Env = append(os.Environ(), "OS_KEYSTONE_CONFIG_FILES="+conf)
	cmd.ExtraFiles = []*os.File{f}
	p, err := k.spawn("keystone", cmd)
	if err != nil {
		return err
	}
	probe := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(120 * time.Second)
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("uWSGI exited at start: %s", k.logTail("keystone"))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := probe.Get(k.URL + "/v3")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /v3: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after 120s: %v; log: %s", err, k.logTail("keystone"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
