package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestFaults sends a GET of a 1000-byte object through each fault and
// checks what the client sees: the proxy must do what each fault claims,
// or the tests that use it prove less than they say.
func TestFaults(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	}))
	defer srv.Close()
	d := Dialect{
		Error: func(w http.ResponseWriter, status int) { w.WriteHeader(status) },
		Expire: func(w http.ResponseWriter, r *http.Request) bool {
			w.WriteHeader(http.StatusUnauthorized)
			return true
		},
	}
	tests := []struct {
		fault  Fault
		status int   // 0: the request fails
		n      int   // bytes read
		err    error // of reading the body
	}{
		{Pass, 200, 1000, nil},
		{Busy, 503, 0, nil},
		{Internal, 500, 0, nil},
		{Reset, 0, 0, nil},
		{Truncate, 200, 500, io.ErrUnexpectedEOF},
		{Slow, 200, 1000, nil},
		{ShortBody, 200, 1000, io.ErrUnexpectedEOF},
		{LongBody, 200, 500, nil},
		{Expire, 401, 0, nil},
	}
	p := Start(t, strings.TrimPrefix(srv.URL, "http://"), d, nil)
	// A new connection each time: net/http sends a request again by
	// itself when a reused connection drops it, which would count twice.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for _, tt := range tests {
		t.Run(tt.fault.String(), func(t *testing.T) {
			p.SetFaults(func(*http.Request) Fault { return tt.fault })
			resp, err := client.Get("http://" + p.Endpoint + "/bucket/object")
			if tt.status == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("got %s; want the connection dropped", resp.Status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || len(got) != tt.n || !errors.Is(err, tt.err) {
				t.Errorf("status %d, %d bytes, error %v; want %d, %d, %v", resp.StatusCode, len(got), err, tt.status, tt.n, tt.err)
			}
			if !bytes.Equal(got, body[:len(got)]) {
				t.Error("the bytes that arrived are not the object's")
			}
		})
	}
	counts := p.Injected()
	for _, f := range All() {
		if counts[f] != 1 {
			t.Errorf("%s counted %d times; want 1", f, counts[f])
		}
	}
	if Total(counts) != len(All()) {
		t.Errorf("Total = %d; want %d", Total(counts), len(All()))
	}
}
