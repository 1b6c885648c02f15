package swifttest

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
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
