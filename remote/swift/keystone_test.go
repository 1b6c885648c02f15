package swift_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/remote/swift"
	"github.com/hindsight-backup/hindsight/remote/swift/swifttest"
)

// keystone is a fake Keystone v2 and v3 on 127.0.0.1 that hands out a
// token the real Swift accepts, with a catalog in which only RegionTwo's
// internal endpoint leads to it: the backend reaches the cluster only if
// it chose the region and endpoint type it was told to.
type keystone struct {
	*httptest.Server
	mu       sync.Mutex
	requests []string // bodies of the token requests
}

func startKeystone(t *testing.T, srv *swifttest.Server) *keystone {
	real := client(t, srv)
	const nowhere = "http://127.0.0.1:1/v1/AUTH_test" // refuses connections
	url := func(region, iface string) string {
		if region == "RegionTwo" && iface == "internal" {
			return real.StorageUrl
		}
		return nowhere
	}
	expires := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	k := &keystone{}
	k.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		k.mu.Lock()
		k.requests = append(k.requests, string(body))
		k.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v3/auth/tokens":
			var eps []map[string]string
			for _, region := range []string{"RegionOne", "RegionTwo"} {
				for _, iface := range []string{"public", "internal", "admin"} {
					eps = append(eps, map[string]string{"region": region, "region_id": region, "interface": iface, "url": url(region, iface)})
				}
			}
			w.Header().Set("X-Subject-Token", real.AuthToken)
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(map[string]any{"token": map[string]any{"expires_at": expires,
				"catalog": []any{map[string]any{"type": "object-store", "endpoints": eps}}}})
		case "/v2.0/tokens":
			var eps []map[string]string
			for _, region := range []string{"RegionOne", "RegionTwo"} {
				eps = append(eps, map[string]string{"region": region, "publicURL": url(region, "public"),
					"internalURL": url(region, "internal"), "adminURL": url(region, "admin")})
			}
			json.NewEncoder(w).Encode(map[string]any{"access": map[string]any{
				"token":          map[string]any{"id": real.AuthToken, "expires": expires},
				"serviceCatalog": []any{map[string]any{"type": "object-store", "endpoints": eps}}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(k.Close)
	return k
}

// testKeystone logs in through Keystone v2 and v3 with the variables an
// OpenStack rc file sets, and checks that region and endpoint type pick
// the endpoint, from the environment or from the URL.
func testKeystone(t *testing.T, srv *swifttest.Server) {
	k := startKeystone(t, srv)
	tests := []struct {
		name  string
		env   map[string]string
		url   string
		works bool
	}{
		{"v3", map[string]string{"OS_AUTH_URL": k.URL + "/v3", "OS_REGION_NAME": "RegionTwo", "OS_INTERFACE": "internal"},
			"swift:keystone/v3", true},
		{"v3 bare URL", map[string]string{"OS_AUTH_URL": k.URL, "OS_REGION_NAME": "RegionTwo", "OS_INTERFACE": "internal"},
			"swift:keystone/v3bare", true},
		{"v2", map[string]string{"OS_AUTH_URL": k.URL + "/v2.0", "OS_REGION_NAME": "RegionTwo", "OS_ENDPOINT_TYPE": "internalURL"},
			"swift:keystone/v2", true},
		{"region and endpoint from the URL", map[string]string{"OS_AUTH_URL": k.URL + "/v3"},
			"swift:keystone/url?region=RegionTwo&endpoint=internal", true},
		{"other region", map[string]string{"OS_AUTH_URL": k.URL + "/v3", "OS_REGION_NAME": "RegionOne", "OS_INTERFACE": "internal"},
			"swift:keystone/r1", false},
		{"public endpoint", map[string]string{"OS_AUTH_URL": k.URL + "/v2.0", "OS_REGION_NAME": "RegionTwo"},
			"swift:keystone/public", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"OS_USERNAME": "alice", "OS_PASSWORD": "alice-secret", "OS_PROJECT_NAME": "backups",
				"OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default"}
			for k, v := range tt.env {
				env[k] = v
			}
			auth, err := swift.AuthFromEnv(func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := swift.ParseURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Auth = auth
			b, err := swift.Open(t.Context(), cfg)
			if !tt.works {
				if err == nil {
					b.Close()
					t.Fatal("Open reached the cluster through an endpoint it should not have chosen")
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer b.Close()
			if err := b.Save(t.Context(), "x", bytes.NewReader([]byte("via keystone")), 12); err != nil {
				t.Fatal(err)
			}
			if fi, err := b.Stat(t.Context(), "x"); err != nil || fi.Size != 12 {
				t.Errorf("Stat = %+v, %v", fi, err)
			}
		})
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, want := range []string{`"alice"`, `"alice-secret"`, `"backups"`} {
		for _, body := range k.requests {
			if !strings.Contains(body, want) {
				t.Errorf("a token request lacks %s: %s", want, body)
			}
		}
	}
	if len(k.requests) < 6 {
		t.Errorf("Keystone saw %d token requests; want one per login", len(k.requests))
	}
}
