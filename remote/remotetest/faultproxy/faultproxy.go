// Package faultproxy puts a fault-injecting HTTP proxy between a client
// and a real object store on 127.0.0.1 (MinIO through remote/s3/s3test,
// Swift through remote/swift/swifttest): it drops connections, answers
// 500 and 503, delays, cuts response bodies short, lies about their
// length, and expires credentials, as a chooser function decides request
// by request. It counts the faults it injected and the body bytes that
// crossed it, so tests can say what they proved and what uploads cost.
package faultproxy

import (
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Fault is what a Proxy does to one request.
type Fault int

const (
	Pass     Fault = iota // forward unchanged
	Busy                  // answer 503 without forwarding
	Internal              // answer 500 without forwarding
	Reset                 // read part of the request body, then drop the connection
	Truncate              // forward, then cut the response body at half and drop the connection
	Slow                  // forward after SlowDelay
	// ShortBody forwards with a Content-Length larger than the body
	// sent: the client receives every byte, then the connection closes
	// before the length it was promised.
	ShortBody
	// LongBody forwards with a Content-Length of half the body: to the
	// client, a complete response of half the bytes asked for.
	LongBody
	// Expire makes the credentials the request carries expire; what that
	// means is the server's Dialect.
	Expire
	numFaults
)

// All lists every fault but Pass, for tests that go through them all.
func All() []Fault {
	all := make([]Fault, 0, numFaults-1)
	for f := Pass + 1; f < numFaults; f++ {
		all = append(all, f)
	}
	return all
}

func (f Fault) String() string {
	return [...]string{"pass", "503", "500", "reset", "truncate", "slow", "short-body", "long-body", "expire"}[f]
}

// SlowDelay is how long a Slow fault holds a request.
const SlowDelay = 300 * time.Millisecond

// Dialect is how the server behind the proxy speaks its failures.
type Dialect struct {
	// Error writes the error answer the server would give with status.
	Error func(w http.ResponseWriter, status int)
	// Expire makes r's credentials expire. It either answers r itself as
	// the server would an expired credential and returns true, or makes
	// the server itself refuse them (a token dropped from the server's
	// store) and returns false, and r is forwarded to meet the refusal.
	Expire func(w http.ResponseWriter, r *http.Request) (answered bool)
}

// Proxy forwards to one server, keeping the Host header, so that request
// signatures made for the proxy's address (S3) and URLs the server builds
// from it (Swift's storage URL) stay right.
type Proxy struct {
	Endpoint string // 127.0.0.1:port

	dialect  Dialect
	mu       sync.Mutex
	choose   func(*http.Request) Fault
	received map[string]int64 // URL path → PUT body bytes received
	sent     map[string]int64 // URL path → GET body bytes sent
	requests map[string]int   // URL path → requests
	injected map[Fault]int
	rp       *httputil.ReverseProxy
}

// Start runs a proxy to the server at endpoint (host:port, plain http)
// for the rest of t. choose may be nil (no faults); SetFaults changes it.
// A fault that does not apply to a request (a body fault on a response
// without a body) lets the request pass, and is not counted.
func Start(t testing.TB, endpoint string, d Dialect, choose func(*http.Request) Fault) *Proxy {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: endpoint}
	p := &Proxy{dialect: d, choose: choose, received: map[string]int64{}, sent: map[string]int64{},
		requests: map[string]int{}, injected: map[Fault]int{}}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
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

// Received returns the request body bytes received for each URL path,
// aborted uploads included.
func (p *Proxy) Received() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.received)
}

// Sent returns the response body bytes sent for each URL path: what
// downloads cost.
func (p *Proxy) Sent() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.sent)
}

// Requests returns how many requests were made of path.
func (p *Proxy) Requests(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[path]
}

// Injected returns how many times each fault was injected.
func (p *Proxy) Injected() map[Fault]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.injected)
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.requests[r.URL.Path]++
	f := Pass
	if p.choose != nil {
		f = p.choose(r)
	}
	p.mu.Unlock()
	if r.Method == http.MethodPut {
		r.Body = &countingBody{ReadCloser: r.Body, p: p, path: r.URL.Path}
	}
	if r.Method == http.MethodGet {
		w = &countingWriter{ResponseWriter: w, p: p, path: r.URL.Path}
	}
	switch f {
	case Busy, Internal:
		p.record(f)
		io.Copy(io.Discard, r.Body)
		status := http.StatusServiceUnavailable
		if f == Internal {
			status = http.StatusInternalServerError
		}
		p.dialect.Error(w, status)
		return
	case Reset:
		p.record(f)
		io.CopyN(io.Discard, r.Body, 64<<10)
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return
	case Slow:
		p.record(f)
		time.Sleep(SlowDelay)
	case Expire:
		p.record(f)
		if p.dialect.Expire(w, r) {
			return
		}
	case Truncate, ShortBody, LongBody:
		rp := *p.rp
		// Each write flushed, so that the half before the cut reaches
		// the client even when it would fit the server's buffer.
		rp.FlushInterval = -1
		rp.ModifyResponse = func(resp *http.Response) error {
			if resp.ContentLength > 1 && r.Method == http.MethodGet {
				p.record(f)
				misstate(resp, f)
			}
			return nil
		}
		rp.ServeHTTP(w, r)
		return
	}
	p.rp.ServeHTTP(w, r)
}

// misstate makes resp's body break as f says.
func misstate(resp *http.Response, f Fault) {
	n := resp.ContentLength
	switch f {
	case Truncate:
		resp.Body = &truncatedBody{ReadCloser: resp.Body, left: n / 2}
	case ShortBody:
		resp.Header.Set("Content-Length", strconv.FormatInt(n+n/2+1, 10))
	case LongBody:
		// What follows the announced length would be read as the start
		// of the next response; the proxy sends only the first half,
		// which is what a client that believes the header takes in.
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, n/2), resp.Body}
		resp.ContentLength = n / 2
		resp.Header.Set("Content-Length", strconv.FormatInt(n/2, 10))
	}
}

func (p *Proxy) record(f Fault) {
	p.mu.Lock()
	p.injected[f]++
	p.mu.Unlock()
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
// Content-Length, and a dropped connection.
type truncatedBody struct {
	io.ReadCloser
	left int64
}

func (t *truncatedBody) Read(b []byte) (int, error) {
	if t.left <= 0 {
		return 0, fmt.Errorf("faultproxy: response truncated on purpose")
	}
	if int64(len(b)) > t.left {
		b = b[:t.left]
	}
	n, err := t.ReadCloser.Read(b)
	t.left -= int64(n)
	return n, err
}

// Total is the number of faults in counts.
func Total(counts map[Fault]int) int {
	n := 0
	for f, c := range counts {
		if f != Pass {
			n += c
		}
	}
	return n
}
