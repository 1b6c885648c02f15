package swifttest

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/remote/remotetest/faultproxy"
)

// StartProxy runs a fault-injecting proxy to s for the rest of t; choose
// may be nil (no faults). Clients log in through it too (ProxyEnv), so
// the storage URL tempauth hands out names the proxy. An Expire fault
// drops every token tempauth has issued, so that Swift itself refuses the
// request and the client must log in again; with Keystone, tokens live in
// Keystone and the fault cannot be injected, so t fails.
func (s *Server) StartProxy(t testing.TB, choose func(*http.Request) faultproxy.Fault) *faultproxy.Proxy {
	t.Helper()
	d := faultproxy.Dialect{
		Error: swiftError,
		Expire: func(w http.ResponseWriter, r *http.Request) bool {
			if s.Keystone != nil {
				t.Errorf("swifttest: an expired token is injected with tempauth only")
				swiftError(w, http.StatusInternalServerError)
				return true
			}
			if err := s.dropTokens(); err != nil {
				t.Errorf("swifttest: expiring tokens: %v", err)
			}
			return false
		},
	}
	return faultproxy.Start(t, s.Endpoint, d, choose)
}

// ProxyEnv is Env for a client that goes through p.
func (s *Server) ProxyEnv(p *faultproxy.Proxy) []string {
	return []string{"ST_AUTH=http://" + p.Endpoint + "/auth/v1.0", "ST_USER=" + User, "ST_KEY=" + Key}
}

// swiftError answers as Swift's proxy server does when its backends fail.
func swiftError(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<html><h1>%s</h1><p>injected</p></html>", http.StatusText(status))
}

// dropTokens empties the memcached where tempauth keeps its tokens: every
// token issued so far is then unknown to Swift, as an expired one is, and
// the next login issues a new one.
func (s *Server) dropTokens() error {
	conn, err := net.DialTimeout("tcp", s.memcached, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprint(conn, "flush_all\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "OK" {
		return fmt.Errorf("memcached answered flush_all with %q", line)
	}
	return nil
}

// IsObjectRequest reports whether r is about an object (PUT, GET, HEAD,
// DELETE of /v1/ACCOUNT/CONTAINER/OBJECT) rather than a login, account or
// container, for choosers that fault only data requests.
func IsObjectRequest(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/v1/") && strings.Count(strings.Trim(r.URL.Path, "/"), "/") >= 3
}
