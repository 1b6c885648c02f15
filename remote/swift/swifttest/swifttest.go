// Package swifttest starts a real one-node OpenStack Swift for tests:
// memcached and the account, container, object and proxy servers from
// Debian's packages, on 127.0.0.1 at ports of their own, with tempauth and
// s3api, everything under a temporary directory, stopped when the test
// ends. The packages come from integration/scripts/install-test-deps.sh;
// without them the test is skipped, except under CI=true, where it fails.
package swifttest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/ncw/swift/v2"
)

// The tempauth account every server has: account AUTH_test, user
// test:tester, key testing. s3api takes the same pair as access key and
// secret.
const (
	User = "test:tester"
	Key  = "testing"
)

// python is Debian's interpreter, the one its swift modules are built
// for; the python3 first on PATH may be another without them.
const python = "/usr/bin/python3"

// required are the files the packages install that Start needs.
var required = []string{python, "/usr/bin/swift-proxy-server", "/usr/bin/swift-account-server",
	"/usr/bin/swift-container-server", "/usr/bin/swift-object-server"}

// Options change the cluster's configuration.
type Options struct {
	// MaxFileSize is the largest object a single PUT may store; 0 keeps
	// Swift's default of 5 GiB + 2. Lower it to put large-object code
	// paths under test with small objects.
	MaxFileSize int64
}

// Server is a running Swift.
type Server struct {
	Endpoint string // 127.0.0.1:port of the proxy: native API and s3api
	Dir      string
	procs    []*proc
}

// AuthURL is tempauth's v1 authentication URL.
func (s *Server) AuthURL() string { return "http://" + s.Endpoint + "/auth/v1.0" }

// Env returns the variables a Swift user sets for v1 authentication.
func (s *Server) Env() []string {
	return []string{"ST_AUTH=" + s.AuthURL(), "ST_USER=" + User, "ST_KEY=" + Key}
}

type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start runs a Swift with default settings for the rest of t.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith runs a Swift configured by o for the rest of t. Missing
// packages skip t, or fail it under CI=true so that CI cannot pass by
// testing nothing.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	for _, f := range required {
		if _, err := os.Stat(f); err != nil {
			skipOrFail(t, f)
		}
	}
	if _, err := exec.LookPath("memcached"); err != nil {
		skipOrFail(t, "memcached")
	}
	if o.MaxFileSize == 0 {
		o.MaxFileSize = 5<<30 + 2
	}
	// A port can be taken between finding it free and a server binding
	// it; Swift then retries for 30 s. A fresh set of ports is quicker.
	var err error
	for range 3 {
		var s *Server
		start := time.Now()
		if s, err = start1(t, o); err == nil {
			t.Logf("swift ready in %v at %s", time.Since(start).Round(time.Millisecond), s.Endpoint)
			return s
		}
	}
	t.Fatalf("starting Swift: %v", err)
	return nil
}

func skipOrFail(t testing.TB, missing string) {
	t.Helper()
	msg := fmt.Sprintf("Swift not installed (%s missing): run integration/scripts/install-test-deps.sh", missing)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// settings fill the configuration templates.
type settings struct {
	Dir, User, Name, Kind string
	Port, MemcachedPort   int
	MaxFileSize           int64
}

func start1(t testing.TB, o Options) (*Server, error) {
	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	s := &Server{Endpoint: fmt.Sprintf("127.0.0.1:%d", ports[0]), Dir: dir}
	set := settings{Dir: dir, User: u.Username, MemcachedPort: ports[4], MaxFileSize: o.MaxFileSize}
	servers := []struct {
		name, tmpl string
		port       int
	}{
		{"proxy-server", proxyConf, ports[0]},
		{"account-server", storageConf, ports[1]},
		{"container-server", storageConf, ports[2]},
		{"object-server", storageConf, ports[3]},
	}
	files := map[string]string{"bin/launcher.py": launcher, "bin/rings.py": rings, "etc/swift.conf": swiftConf}
	for _, srv := range servers {
		files["etc/"+srv.name+".conf"] = srv.tmpl
	}
	for _, d := range []string{"bin", "etc", "log", "cache", "data/d1"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	for name, tmpl := range files {
		set.Name = strings.TrimSuffix(filepath.Base(name), ".conf")
		set.Kind = strings.TrimSuffix(set.Name, "-server")
		for _, srv := range servers {
			if srv.name == set.Name {
				set.Port = srv.port
			}
		}
		if err := render(filepath.Join(dir, name), tmpl, set); err != nil {
			return nil, err
		}
	}
	ringArgs := []string{filepath.Join(dir, "bin/rings.py"), filepath.Join(dir, "etc"),
		fmt.Sprintf("account:%d", ports[1]), fmt.Sprintf("container:%d", ports[2]), fmt.Sprintf("object:%d", ports[3])}
	if out, err := exec.Command(python, ringArgs...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building rings: %v\n%s", err, out)
	}

	t.Cleanup(s.stop)
	memcached := []string{"-l", "127.0.0.1", "-p", fmt.Sprint(ports[4]), "-U", "0", "-m", "64"}
	if os.Geteuid() == 0 {
		memcached = append(memcached, "-u", "root") // it refuses to run as root otherwise
	}
	if err := s.spawn("memcached", "memcached", memcached...); err != nil {
		return nil, err
	}
	for _, srv := range servers {
		if err := s.spawn(srv.name, python, filepath.Join(dir, "bin/launcher.py"), filepath.Join(dir, "etc"),
			srv.name, filepath.Join(dir, "etc", srv.name+".conf"), "-v"); err != nil {
			return nil, err
		}
	}
	if err := s.waitReady(ports[:4]); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func render(path, tmpl string, set settings) error {
	var buf bytes.Buffer
	if err := template.Must(template.New(path).Parse(tmpl)).Execute(&buf, set); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// spawn starts a daemon logging to log/NAME.log. Pdeathsig takes it down
// with a test binary that dies without running its cleanups (a timeout,
// a crash): the servers call setsid, so nothing else would.
func (s *Server) spawn(name, bin string, args ...string) error {
	logf, err := os.Create(filepath.Join(s.Dir, "log", name+".log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	s.procs = append(s.procs, p)
	return nil
}

// waitReady returns once every server answers its health check,
// tempauth hands out a token and the account accepts it, which proves
// that memcached works too: without it every token is refused.
func (s *Server) waitReady(ports []int) error {
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		for _, p := range s.procs {
			select {
			case <-p.exited:
				return fmt.Errorf("%s exited at start: %s", p.name, s.logTail(p.name))
			default:
			}
		}
		err := s.probe(client, ports)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after 60s: %v; proxy log: %s", err, s.logTail("proxy-server"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *Server) probe(client *http.Client, ports []int) error {
	for _, port := range ports {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/healthcheck", port))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthcheck of port %d: %s", port, resp.Status)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, s.AuthURL(), nil)
	req.Header.Set("X-Auth-User", User)
	req.Header.Set("X-Auth-Key", Key)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	token, storage := resp.Header.Get("X-Auth-Token"), resp.Header.Get("X-Storage-Url")
	if token == "" || storage == "" {
		return fmt.Errorf("auth: %s, no token", resp.Status)
	}
	req, _ = http.NewRequest(http.MethodHead, storage, nil)
	req.Header.Set("X-Auth-Token", token)
	if resp, err = client.Do(req); err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HEAD of the account with a fresh token: %s", resp.Status)
	}
	return nil
}

func (s *Server) logTail(name string) string {
	p, err := os.ReadFile(filepath.Join(s.Dir, "log", name+".log"))
	if err != nil {
		return err.Error()
	}
	return string(p[max(0, len(p)-2000):])
}

// stop sends SIGTERM to every daemon at once, and SIGKILL to those
// still running after 5 s.
func (s *Server) stop() {
	for _, p := range s.procs {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range s.procs {
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
	}
	s.procs = nil
}

// freePorts returns n distinct ports free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var errs []error
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, errors.Join(errs...)
}

// CreateContainer makes container (an S3 bucket to s3api) unless it
// exists.
func (s *Server) CreateContainer(t testing.TB, container string) {
	t.Helper()
	c := &swift.Connection{AuthUrl: s.AuthURL(), UserName: User, ApiKey: Key}
	if err := c.ContainerCreate(t.Context(), container, nil); err != nil {
		t.Fatalf("creating container %s: %v", container, err)
	}
}
