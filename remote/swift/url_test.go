package swift

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ncw/swift/v2"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in   string
		want Config
		err  bool
	}{
		{"swift:backups", Config{Container: "backups"}, false},
		{"swift:backups/host1", Config{Container: "backups", Prefix: "host1"}, false},
		{"swift:backups/a/b/", Config{Container: "backups", Prefix: "a/b"}, false},
		{"swift://backups/host1", Config{Container: "backups", Prefix: "host1"}, false},
		{"swift:backups/host1?region=DFW&endpoint=internalURL",
			Config{Container: "backups", Prefix: "host1", Region: "DFW", EndpointType: swift.EndpointTypeInternal}, false},
		{"swift:", Config{}, true},
		{"swift:/", Config{}, true},
		{"swift:b/a//c", Config{}, true},
		{"swift:b?endpoint=private", Config{}, true},
		{"swift:b?bucket=x", Config{}, true},
		{"swift:b?region=a&region=b", Config{}, true},
		{"s3:http://h/b", Config{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseURL(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("ParseURL = %+v, %v; want error %v", got, err, tt.err)
			}
			if err != nil && !errors.Is(err, ErrBadURL) {
				t.Errorf("error %v is not ErrBadURL", err)
			}
			if got != tt.want {
				t.Errorf("ParseURL = %+v; want %+v", got, tt.want)
			}
		})
	}
	if s := (Config{Container: "c", Prefix: "p/q"}).String(); s != "swift:c/p/q" {
		t.Errorf("String = %q", s)
	}
}

func TestAuthFromEnv(t *testing.T) {
	v1 := map[string]string{"ST_AUTH": "https://auth.example.com/auth", "ST_USER": "acct:me", "ST_KEY": "k-secret"}
	keystone := map[string]string{"OS_AUTH_URL": "https://keystone.example.com:5000", "OS_USERNAME": "me",
		"OS_PASSWORD": "p-secret", "OS_PROJECT_NAME": "proj", "OS_USER_DOMAIN_NAME": "Default", "OS_REGION_NAME": "RegionTwo"}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name string
		env  map[string]string
		want Auth
		err  bool
	}{
		{"v1", v1, Auth{URL: v1["ST_AUTH"], Version: 1, User: "acct:me", Key: "k-secret"}, false},
		{"v1 URL names its version", with(v1, "ST_AUTH", "http://127.0.0.1:8080/auth/v1.0"),
			Auth{URL: "http://127.0.0.1:8080/auth/v1.0", User: "acct:me", Key: "k-secret"}, false},
		{"keystone bare URL is v3", keystone, Auth{URL: keystone["OS_AUTH_URL"] + "/v3", Version: 3, User: "me", Key: "p-secret",
			Project: "proj", UserDomain: "Default", Region: "RegionTwo"}, false},
		{"keystone v2 by variable", with(keystone, "OS_IDENTITY_API_VERSION", "2.0", "OS_TENANT_ID", "t1",
			"OS_ENDPOINT_TYPE", "internalURL"),
			Auth{URL: keystone["OS_AUTH_URL"] + "/v2.0", Version: 2, User: "me", Key: "p-secret", Project: "proj", ProjectID: "t1",
				UserDomain: "Default", Region: "RegionTwo", EndpointType: swift.EndpointTypeInternal}, false},
		{"OS wins over ST", with(keystone, "ST_AUTH", "https://other/v1.0", "ST_USER", "x", "ST_KEY", "y", "OS_INTERFACE", "admin"),
			Auth{URL: keystone["OS_AUTH_URL"] + "/v3", Version: 3, User: "me", Key: "p-secret", Project: "proj",
				UserDomain: "Default", Region: "RegionTwo", EndpointType: swift.EndpointTypeAdmin}, false},
		{"token", map[string]string{"OS_STORAGE_URL": "https://s/v1/AUTH_x", "OS_AUTH_TOKEN": "tok"},
			Auth{StorageURL: "https://s/v1/AUTH_x", Token: "tok"}, false},
		{"bad version", with(keystone, "OS_IDENTITY_API_VERSION", "4"), Auth{}, true},
		{"bad interface", with(keystone, "OS_INTERFACE", "private"), Auth{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AuthFromEnv(func(k string) string { return tt.env[k] })
			if (err != nil) != tt.err || got != tt.want {
				t.Fatalf("AuthFromEnv = %#v, %v;\nwant %#v, error %v", got, err, tt.want, tt.err)
			}
			printed := fmt.Sprintf("%v %#v %v", got, got, Config{Auth: got})
			for _, secret := range []string{got.Key, got.Token} {
				if secret != "" && strings.Contains(printed, secret) {
					t.Errorf("%q shows the secret %q", printed, secret)
				}
			}
		})
	}
}
