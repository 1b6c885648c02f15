package s3test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fault is what a Proxy does to one request.
type Fault int

const (
	Pass     Fault = iota // forward unchanged
	Busy                  // answer 503 SlowDown without forwarding
	Reset                 // read part of the request, then drop the connection
	Truncate              // forward, then cut the response body short
	Slow                  // forward after a delay
)

func (f Fault) String() string {
	return [...]string{"pass", "503", "reset", "truncate", "slow"}[f]
}

// Proxy sits between a client and a Server on 127.0.0.1, injecting the
// faults its chooser picks and counting the request body bytes it
// receives per object, so tests can measure what uploads cost. The client
// signs for the proxy's host; the Host header is forwarded unchanged, so
// the server checks the same signature.
type Proxy struct {
	Endpoint string // 127.0.0.1:port

	mu       sync.Mutex
	choose   func(*http.Request) Fault
	received map[string]int64 // URL path → PUT body bytes received
	sent     map[string]int64 // URL path → GET body bytes sent
	injected map[Fault]int
	rp       *httputil.ReverseProxy
}

// SlowDelay is how long a Slow fault holds a request.
const SlowDelay = 300 * time.Millisecond

// StartProxy runs a proxy to s for the rest of t. choose may be nil (no
// faults) and may be changed with SetFaults.
func (s *Server) StartProxy(t testing.TB, choose func(*http.Request) Fault) *Proxy {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: s.Endpoint}
	p := &Proxy{choose: choose, received: map[string]int64{}, sent: map[string]int64{}, injected: map[Fault]int{}}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // keep the signed host
		},
		// Injected truncations make the proxy log an abort each time.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	p.Endpoint = l.Addr().String()
	return p
}

// SetFaults replaces the fault chooser.
func (p *Proxy) SetFaults(choose func(*http.Request) Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.choose = choose
}

// Received returns the request body bytes received for each object path
// ("/bucket/key"), aborted uploads included.
func (p *Proxy) Received() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.received)
}

// Sent returns the response body bytes sent for each object path: what
// downloads cost.
func (p *Proxy) Sent() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.sent)
}

// Injected returns how many times each fault was injected.
func (p *Proxy) Injected() map[Fault]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.injected)
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	f := Pass
	if p.choose != nil {
		f = p.choose(r)
	}
	p.injected[f]++
	p.mu.Unlock()
	if r.Method == http.MethodPut {
		r.Body = &countingBody{ReadCloser: r.Body, p: p, path: r.URL.Path}
	}
	if r.Method == http.MethodGet {
		w = &countingWriter{ResponseWriter: w, p: p, path: r.URL.Path}
	}
	switch f {
	case Busy:
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>injected</Message></Error>`)
		return
	case Reset:
		io.CopyN(io.Discard, r.Body, 64<<10)
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return
	case Slow:
		time.Sleep(SlowDelay)
	}
	rp := p.rp
	if f == Truncate {
		cut := *p.rp
		cut.ModifyResponse = func(resp *http.Response) error {
			if resp.ContentLength > 1 {
				resp.Body = &truncatedBody{ReadCloser: resp.Body, left: resp.ContentLength / 2}
			}
			return nil
		}
		rp = &cut
	}
	rp.ServeHTTP(w, r)
}

func (p *Proxy) count(m map[string]int64, path string, n int) {
	p.mu.Lock()
	m[path] += int64(n)
	p.mu.Unlock()
}

type countingBody struct {
	io.ReadCloser
	p    *Proxy
	path string
}

func (c *countingBody) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	c.p.count(c.p.received, c.path, n)
	return n, err
}

type countingWriter struct {
	http.ResponseWriter
	p    *Proxy
	path string
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.p.count(c.p.sent, c.path, n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flushes,
// hijacking) through the counter.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// truncatedBody ends in an error after left bytes, which makes the reverse
// proxy abort the response: the client sees a body shorter than its
// Content-Length.
type truncatedBody struct {
	io.ReadCloser
	left int64
}

var errTruncated = errors.New("s3test: response truncated on purpose")

func (t *truncatedBody) Read(b []byte) (int, error) {
	if t.left <= 0 {
		return 0, errTruncated
	}
	if int64(len(b)) > t.left {
		b = b[:t.left]
	}
	n, err := t.ReadCloser.Read(b)
	t.left -= int64(n)
	return n, err
}

// IsObjectRequest reports whether r is about an object rather than the
// bucket (listing, location), for choosers that fault only data requests.
func IsObjectRequest(r *http.Request) bool {
	return strings.Count(strings.Trim(r.URL.Path, "/"), "/") >= 1
}
