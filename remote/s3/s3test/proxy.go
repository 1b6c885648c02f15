package s3test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hindsight-backup/hindsight/remote/remotetest/faultproxy"
)

// StartProxy runs a fault-injecting proxy to s for the rest of t. The
// client signs for the proxy's host; the Host header is forwarded
// unchanged, so the server checks the same signature. choose may be nil
// (no faults).
func (s *Server) StartProxy(t testing.TB, choose func(*http.Request) faultproxy.Fault) *faultproxy.Proxy {
	t.Helper()
	return faultproxy.Start(t, s.Endpoint, dialect(), choose)
}

// dialect speaks S3's errors. MinIO's static keys never expire, so an
// expired credential is the answer AWS gives a request signed with a
// session token past its end.
func dialect() faultproxy.Dialect {
	return faultproxy.Dialect{
		Error: func(w http.ResponseWriter, status int) {
			code := "SlowDown"
			if status == http.StatusInternalServerError {
				code = "InternalError"
			}
			writeError(w, status, code)
		},
		Expire: func(w http.ResponseWriter, r *http.Request) bool {
			writeError(w, http.StatusForbidden, "ExpiredToken")
			return true
		},
	}
}

func writeError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected</Message><RequestId>faultproxy</RequestId></Error>`, code)
}

// IsObjectRequest reports whether r is about an object rather than the
// bucket (listing, location), for choosers that fault only data requests.
func IsObjectRequest(r *http.Request) bool {
	return strings.Count(strings.Trim(r.URL.Path, "/"), "/") >= 1
}
