package swift_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ncw "github.com/ncw/swift/v2"

	"github.com/hindsight-backup/hindsight/remote"
	"github.com/hindsight-backup/hindsight/remote/remotetest"
	"github.com/hindsight-backup/hindsight/remote/swift"
	"github.com/hindsight-backup/hindsight/remote/swift/swifttest"
)

// Alice is the Keystone user the backend logs in as: a member of project
// backups, whose Swift account is AUTH_<its ID>.
const (
	aliceUser     = "alice"
	alicePassword = "alice-secret"
	aliceProject  = "backups"
)

// endpointURL is what the catalog lists for Swift in region through
// iface. Only RegionTwo's internal endpoint leads to the cluster; the
// others lead to a port where nothing listens, under paths that name
// them, so the backend reaches the cluster only if it chose the region
// and interface it was told, and a failure shows which it chose.
func endpointURL(srv *swifttest.Server, region, iface string) string {
	if region == "RegionTwo" && iface == "internal" {
		return "http://" + srv.Endpoint + "/v1/AUTH_$(project_id)s"
	}
	return fmt.Sprintf("http://127.0.0.1:1/%s/%s/v1/AUTH_$(project_id)s", region, iface)
}

// keystoneEnv is what an OpenStack rc file for alice sets.
func keystoneEnv(ks *swifttest.Keystone) map[string]string {
	return map[string]string{"OS_AUTH_URL": ks.URL + "/v3", "OS_USERNAME": aliceUser, "OS_PASSWORD": alicePassword,
		"OS_PROJECT_NAME": aliceProject, "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
		"OS_REGION_NAME": "RegionTwo", "OS_INTERFACE": "internal"}
}

// with returns env changed by the pairs in kv; an empty value unsets.
func with(env map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range env {
		m[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// openEnv opens the repository url with the credentials in env.
func openEnv(t *testing.T, env map[string]string, url string) (*swift.Backend, error) {
	auth, err := swift.AuthFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := swift.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth = auth
	return swift.Open(t.Context(), cfg)
}

// TestSwiftKeystone runs the backend against a real Keystone 22 and a
// Swift whose proxy validates Keystone's tokens (authtoken) and maps
// them to project accounts (keystoneauth).
func TestSwiftKeystone(t *testing.T) {
	srv := swifttest.StartWith(t, swifttest.Options{MaxFileSize: clusterMax, Keystone: true})
	ks := srv.Keystone
	project := ks.AddUser(t, aliceUser, alicePassword, aliceProject, "member")
	for _, region := range []string{"RegionOne", "RegionTwo"} {
		for _, iface := range []string{"public", "internal", "admin"} {
			ks.AddEndpoint(t, "object-store", region, iface, endpointURL(srv, region, iface))
		}
	}
	env := keystoneEnv(ks)
	t.Run("Login", func(t *testing.T) { testKeystoneLogin(t, srv, project) })
	t.Run("v2 recorded protocol", func(t *testing.T) { testKeystoneV2(t, srv, project) })
	t.Run("ReAuthentication", func(t *testing.T) {
		b, err := openEnv(t, env, "swift:keystone/reauth")
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		testReAuth(t, b, func() string {
			token := swift.Token(b)
			ks.RevokeToken(t, token)
			time.Sleep(swifttest.TokenCacheTime)
			return token
		})
	})
	var n atomic.Int64
	t.Run("conformance", func(t *testing.T) {
		remotetest.Run(t, func(t *testing.T) remote.Backend {
			b, err := openEnv(t, env, fmt.Sprintf("swift:conformance/repo/%d", n.Add(1)))
			if err != nil {
				t.Fatal(err)
			}
			return b
		})
	})
}

// testKeystoneLogin logs in with the variables of OpenStack rc files,
// and checks that region and endpoint type choose the endpoint, from the
// environment or from the URL. What the logins stored must be in
// alice's project account, seen behind the backend's back.
func testKeystoneLogin(t *testing.T, srv *swifttest.Server, project string) {
	ks := srv.Keystone
	appID := ks.AddApplicationCredential(t, aliceUser, alicePassword, aliceProject, "hindsight", "app-secret")
	env := keystoneEnv(ks)
	tests := []struct {
		name     string
		env      map[string]string
		url      string
		endpoint string // the wrong endpoint that the error names
		denied   bool
	}{
		{"rc file", env, "", "", false},
		{"bare OS_AUTH_URL", with(env, "OS_AUTH_URL", ks.URL), "", "", false},
		{"OS_ENDPOINT_TYPE", with(env, "OS_INTERFACE", "", "OS_ENDPOINT_TYPE", "internalURL"), "", "", false},
		{"IDs", with(env, "OS_USER_DOMAIN_NAME", "", "OS_USER_DOMAIN_ID", "default", "OS_PROJECT_DOMAIN_NAME", "",
			"OS_PROJECT_NAME", "", "OS_PROJECT_ID", project), "", "", false},
		{"OS_TENANT_NAME", with(env, "OS_PROJECT_NAME", "", "OS_TENANT_NAME", aliceProject), "", "", false},
		{"application credential", with(env, "OS_USERNAME", "", "OS_PASSWORD", "", "OS_PROJECT_NAME", "",
			"OS_USER_DOMAIN_NAME", "", "OS_PROJECT_DOMAIN_NAME", "",
			"OS_APPLICATION_CREDENTIAL_ID", appID, "OS_APPLICATION_CREDENTIAL_SECRET", "app-secret"), "", "", false},
		{"region and endpoint from the URL", with(env, "OS_REGION_NAME", "RegionOne", "OS_INTERFACE", "public"),
			"?region=RegionTwo&endpoint=internal", "", false},
		{"other region", with(env, "OS_REGION_NAME", "RegionOne"), "", "/RegionOne/internal/", false},
		{"public endpoint", with(env, "OS_INTERFACE", ""), "", "/RegionTwo/public/", false},
		{"admin endpoint", with(env, "OS_INTERFACE", "admin"), "", "/RegionTwo/admin/", false},
		{"wrong password", with(env, "OS_PASSWORD", "wrong-secret"), "", "", true},
		{"no user domain", with(env, "OS_USER_DOMAIN_NAME", ""), "", "", true},
		{"not the user's project", with(env, "OS_PROJECT_NAME", "admin"), "", "", true},
	}
	stored := 0
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := openEnv(t, tt.env, fmt.Sprintf("swift:keystone/login/%d%s", i, tt.url))
			if tt.endpoint != "" || tt.denied {
				checkOpenError(t, b, err, tt.endpoint, tt.denied)
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer b.Close()
			if err := b.Save(t.Context(), "x", bytes.NewReader([]byte("via keystone")), 12); err != nil {
				t.Fatal(err)
			}
			stored++
		})
	}
	token, err := ks.Token(aliceUser, alicePassword, aliceProject)
	if err != nil {
		t.Fatal(err)
	}
	c := &ncw.Connection{StorageUrl: "http://" + srv.Endpoint + "/v1/AUTH_" + project, AuthToken: token}
	names, err := c.ObjectNamesAll(t.Context(), "keystone", &ncw.ObjectsOpts{Prefix: "login/"})
	if err != nil || len(names) != stored {
		t.Errorf("alice's account holds %q, %v; want %d objects", names, err, stored)
	}
}

// checkOpenError checks that Open failed at the wrong endpoint named,
// or for want of access, permanently, and without showing a secret.
func checkOpenError(t *testing.T, b *swift.Backend, err error, endpoint string, denied bool) {
	t.Helper()
	if err == nil {
		b.Close()
		t.Fatal("Open succeeded")
	}
	if endpoint != "" && !strings.Contains(err.Error(), endpoint) {
		t.Errorf("Open = %v; want a failure at the endpoint %s", err, endpoint)
	}
	if denied && (!errors.Is(err, swift.ErrAccessDenied) || !remote.IsPermanent(err)) {
		t.Errorf("Open = %v; want a permanent ErrAccessDenied", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error %q shows a secret", err)
	}
}
