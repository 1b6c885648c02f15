package swift_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/remote/swift/swifttest"
)

// Keystone's v2.0 API was removed in Queens (Keystone 13, 2018): no
// supported Keystone serves it, Debian's 22 included, so no real server
// can test the backend's v2 login. What is tested instead is the
// recorded protocol: startV2Keystone answers POST /v2.0/tokens as the
// v2.0 API reference documents it, after checking the request for
// that shape. The token it hands out is real, though: it logs in to the
// real Keystone through v3 as the same user and project, so the real
// Swift validates every request as before, and only the v2 exchange
// itself is not a real server's.
func startV2Keystone(t *testing.T, srv *swifttest.Server, project string) *httptest.Server {
	v2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Auth struct {
				PasswordCredentials *struct{ Username, Password string } `json:"passwordCredentials"`
				TenantName          string                               `json:"tenantName"`
			} `json:"auth"`
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v2.0/tokens" {
			http.NotFound(w, r)
			return
		}
		// ncw/swift tries Rackspace's apiKeyCredentials after a 401;
		// that request has no passwordCredentials and fails here too.
		json.NewDecoder(r.Body).Decode(&req)
		pc := req.Auth.PasswordCredentials
		if pc == nil || req.Auth.TenantName == "" {
			http.Error(w, `{"error": {"code": 400, "title": "Bad Request"}}`, http.StatusBadRequest)
			return
		}
		token, err := srv.Keystone.Token(pc.Username, pc.Password, req.Auth.TenantName)
		if err != nil {
			http.Error(w, `{"error": {"code": 401, "title": "Unauthorized"}}`, http.StatusUnauthorized)
			return
		}
		var endpoints []map[string]string
		for _, region := range []string{"RegionOne", "RegionTwo"} {
			e := map[string]string{"region": region, "id": region}
			for _, iface := range []string{"public", "internal", "admin"} {
				e[iface+"URL"] = strings.ReplaceAll(endpointURL(srv, region, iface), "$(project_id)s", project)
			}
			endpoints = append(endpoints, e)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access": map[string]any{
			"token": map[string]any{"id": token, "expires": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
				"tenant": map[string]string{"id": project, "name": req.Auth.TenantName}},
			"serviceCatalog": []any{map[string]any{"type": "object-store", "name": "swift", "endpoints": endpoints}},
			"user":           map[string]any{"name": pc.Username}}})
	}))
	t.Cleanup(v2.Close)
	return v2
}

// testKeystoneV2 logs in through v2 with the variables of a v2 rc file.
func testKeystoneV2(t *testing.T, srv *swifttest.Server, project string) {
	v2 := startV2Keystone(t, srv, project)
	env := map[string]string{"OS_AUTH_URL": v2.URL + "/v2.0", "OS_USERNAME": aliceUser, "OS_PASSWORD": alicePassword,
		"OS_TENANT_NAME": aliceProject, "OS_REGION_NAME": "RegionTwo", "OS_ENDPOINT_TYPE": "internalURL"}
	t.Run("login", func(t *testing.T) {
		b, err := openEnv(t, env, "swift:keystone/v2")
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer b.Close()
		if err := b.Save(t.Context(), "x", bytes.NewReader([]byte("via keystone v2")), 15); err != nil {
			t.Fatal(err)
		}
		if fi, err := b.Stat(t.Context(), "x"); err != nil || fi.Size != 15 {
			t.Errorf("Stat = %+v, %v", fi, err)
		}
	})
	t.Run("bare URL with OS_IDENTITY_API_VERSION", func(t *testing.T) {
		b, err := openEnv(t, with(env, "OS_AUTH_URL", v2.URL, "OS_IDENTITY_API_VERSION", "2.0"), "swift:keystone/v2bare")
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		b.Close()
	})
	t.Run("public endpoint", func(t *testing.T) {
		b, err := openEnv(t, with(env, "OS_ENDPOINT_TYPE", ""), "swift:keystone/v2")
		checkOpenError(t, b, err, "/RegionTwo/public/", false)
	})
	t.Run("other region", func(t *testing.T) {
		b, err := openEnv(t, with(env, "OS_REGION_NAME", "RegionOne"), "swift:keystone/v2")
		checkOpenError(t, b, err, "/RegionOne/internal/", false)
	})
	t.Run("wrong password", func(t *testing.T) {
		b, err := openEnv(t, with(env, "OS_PASSWORD", "wrong-secret"), "swift:keystone/v2")
		checkOpenError(t, b, err, "", true)
	})
}
