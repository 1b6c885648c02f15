package swifttest

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStartStop: a started Swift serves its configured object size limit
// in /info, and once stopped it listens no more.
func TestStartStop(t *testing.T) {
	var s *Server
	t.Run("start", func(t *testing.T) {
		s = StartWith(t, Options{MaxFileSize: 1234567})
		resp, err := http.Get("http://" + s.Endpoint + "/info")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), `"max_file_size": 1234567`) {
			t.Errorf("/info does not show the configured max_file_size: %s", body)
		}
	})
	if s == nil {
		t.FailNow()
	}
	if c, err := net.Dial("tcp", s.Endpoint); err == nil {
		c.Close()
		t.Errorf("proxy at %s still accepts connections after the test that started it ended", s.Endpoint)
	}
}

// TestKeystone: a Swift started with Keystone takes that Keystone's
// tokens for the token's project account, and refuses one once it is
// revoked and its time in the proxy's cache is over; once stopped, Keystone listens no more.
func TestKeystone(t *testing.T) {
	var k *Keystone
	t.Run("start", func(t *testing.T) {
		s := StartWith(t, Options{Keystone: true})
		k = s.Keystone
		project := k.AddUser(t, "alice", "alice-secret", "backups", "member")
		token, err := k.Token("alice", "alice-secret", "backups")
		if err != nil {
			t.Fatal(err)
		}
		account := "http://" + s.Endpoint + "/v1/AUTH_" + project
		if err := headAccount(http.DefaultClient, account, token); err != nil {
			t.Fatal(err)
		}
		k.RevokeToken(t, token)
		time.Sleep(TokenCacheTime)
		if err := headAccount(http.DefaultClient, account, token); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("HEAD with a revoked token: %v; want 401", err)
		}
	})
	if k == nil {
		t.FailNow()
	}
	if c, err := net.Dial("tcp", strings.TrimPrefix(k.URL, "http://")); err == nil {
		c.Close()
		t.Errorf("Keystone at %s still accepts connections after the test that started it ended", k.URL)
	}
}
