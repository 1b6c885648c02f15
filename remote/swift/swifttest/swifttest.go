// Package swifttest starts real OpenStack services for tests, from
// Debian's packages, on 127.0.0.1 at ports of their own, everything under
// a temporary directory, stopped when the test ends: a one-node Swift
// (memcached and the account, container, object and proxy servers) with
// tempauth and s3api, or with Keystone's authtoken and keystoneauth, and
// a Keystone to go with it. The packages come from
// integration/scripts/install-test-deps.sh; without them the test is
// skipped, except under CI=true, where it fails.
package swifttest

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ncw/swift/v2"
)

// The tempauth account every server without Keystone has: account
// AUTH_test, user test:tester, key testing. s3api takes the same pair as
// access key and secret.
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
	// Keystone starts a Keystone too, Server.Keystone, which checks
	// every token: the proxy runs authtoken and keystoneauth in
	// tempauth's place, so accounts are AUTH_<project ID>, and AuthURL,
	// Env and CreateContainer do not apply. s3api goes too: with
	// Keystone it would need s3token and EC2 credentials, which no test
	// uses.
	Keystone bool
}

// Server is a running Swift.
type Server struct {
	Endpoint  string    // 127.0.0.1:port of the proxy: native API, and s3api without Keystone
	Keystone  *Keystone // with Options.Keystone
	memcached string    // host:port of the memcached holding tempauth's tokens
	daemons
}

// AuthURL is tempauth's v1 authentication URL.
func (s *Server) AuthURL() string { return "http://" + s.Endpoint + "/auth/v1.0" }

// Env returns the variables a Swift user sets for v1 authentication.
func (s *Server) Env() []string {
	return []string{"ST_AUTH=" + s.AuthURL(), "ST_USER=" + User, "ST_KEY=" + Key}
}

// Start runs a Swift with default settings for the rest of t.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith runs a Swift configured by o for the rest of t. Missing
// packages skip t, or fail it under CI=true.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	requireFiles(t, "Swift", required...)
	if _, err := exec.LookPath("memcached"); err != nil {
		skipOrFail(t, "Swift", "memcached")
	}
	var k *Keystone
	if o.Keystone {
		requireFiles(t, "Keystone", keystoneRequired...)
		k = launchKeystone(t)
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
		if s, err = start1(t, o, k); err == nil {
			t.Logf("swift ready in %v at %s", time.Since(start).Round(time.Millisecond), s.Endpoint)
			if k != nil {
				s.useKeystone(t, k)
			}
			return s
		}
	}
	t.Fatalf("starting Swift: %v", err)
	return nil
}

// settings fill the configuration templates.
type settings struct {
	Dir, User, Name, Kind string
	Port, MemcachedPort   int
	MaxFileSize           int64
	Authtoken             *authtoken
}

// authtoken is where and as whom the proxy validates Keystone tokens.
type authtoken struct {
	URL, Project, User, Password string
	CacheSeconds                 int
}

// TokenCacheTime is how long the proxy goes on accepting a token that
// Keystone has revoked. Short, so that tests can wait for a revocation
// to take effect; not nothing, because every validation costs Keystone
// tenths of a second on a busy machine.
const TokenCacheTime = 2 * time.Second

// start1 starts a Swift and waits for it; with k, for everything but
// the authentication, which needs k ready too.
func start1(t testing.TB, o Options, k *Keystone) (*Server, error) {
	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	s := &Server{Endpoint: fmt.Sprintf("127.0.0.1:%d", ports[0]), daemons: daemons{Dir: dir},
		memcached: fmt.Sprintf("127.0.0.1:%d", ports[4])}
	set := settings{Dir: dir, User: u.Username, MemcachedPort: ports[4], MaxFileSize: o.MaxFileSize}
	if k != nil {
		set.Authtoken = &authtoken{URL: k.URL, Project: serviceProject, User: serviceUser, Password: servicePassword,
			CacheSeconds: int(TokenCacheTime / time.Second)}
	}
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
	if _, err := s.spawn("memcached", exec.Command("memcached", memcached...)); err != nil {
		return nil, err
	}
	for _, srv := range servers {
		if _, err := s.spawn(srv.name, exec.Command(python, filepath.Join(dir, "bin/launcher.py"), filepath.Join(dir, "etc"),
			srv.name, filepath.Join(dir, "etc", srv.name+".conf"), "-v")); err != nil {
			return nil, err
		}
	}
	if err := s.waitReady(ports[:4], k == nil); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// waitReady returns once every server answers its health check and,
// with tempauth, the proxy's authentication works.
func (s *Server) waitReady(ports []int, tempauth bool) error {
	return s.poll(60*time.Second, func(client *http.Client) error {
		if err := s.probe(client, ports); err != nil || !tempauth {
			return err
		}
		return s.probeTempauth(client)
	})
}

// poll calls probe until it succeeds, a daemon exits, or limit passes.
func (s *Server) poll(limit time.Duration, probe func(*http.Client) error) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		if err := s.exitedEarly(); err != nil {
			return err
		}
		err := probe(client)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %v; proxy log: %s", limit, err, s.logTail("proxy-server"))
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
	return nil
}

// probeTempauth gets a token from tempauth and has the account accept
// it, which proves that memcached works too: without it every token is
// refused.
func (s *Server) probeTempauth(client *http.Client) error {
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
	return headAccount(client, storage, token)
}

// useKeystone waits for k, then until the proxy accepts a token of k's
// service user for its project's account, which proves authtoken
// validates tokens with Keystone and keystoneauth maps them to
// accounts.
func (s *Server) useKeystone(t testing.TB, k *Keystone) {
	t.Helper()
	k.wait(t)
	err := s.poll(60*time.Second, func(client *http.Client) error {
		l, err := k.login(client, serviceUser, servicePassword, serviceProject)
		if err != nil {
			return err
		}
		return headAccount(client, fmt.Sprintf("http://%s/v1/AUTH_%s", s.Endpoint, l.projectID), l.token)
	})
	if err != nil {
		t.Fatalf("Swift with Keystone: %v", err)
	}
	s.Keystone = k
}

func headAccount(client *http.Client, storage, token string) error {
	req, _ := http.NewRequest(http.MethodHead, storage, nil)
	req.Header.Set("X-Auth-Token", token)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HEAD of the account with a fresh token: %s", resp.Status)
	}
	return nil
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
