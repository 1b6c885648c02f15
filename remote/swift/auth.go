package swift

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ncw/swift/v2"
)

// ErrNoCredentials says that no authentication URL was found.
var ErrNoCredentials = errors.New("no Swift credentials: set OS_AUTH_URL, OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME (Keystone), or ST_AUTH, ST_USER and ST_KEY (v1 auth, Rackspace)")

// Auth is how to log in: the standard OpenStack variables for Keystone v2
// and v3, or swift's ST_* for v1 (tempauth, swauth, Rackspace Cloud
// Files). String never shows Key, ApplicationCredentialSecret or Token.
type Auth struct {
	URL     string // OS_AUTH_URL, ST_AUTH
	Version int    // 1, 2 or 3; 0 = from the URL ("/v3" …)

	User, UserID, Key        string // OS_USERNAME/ST_USER, OS_USER_ID, OS_PASSWORD/ST_KEY
	UserDomain, UserDomainID string // OS_USER_DOMAIN_NAME, OS_USER_DOMAIN_ID
	Project, ProjectID       string // OS_PROJECT_NAME/OS_TENANT_NAME, OS_PROJECT_ID/OS_TENANT_ID
	ProjectDomain            string // OS_PROJECT_DOMAIN_NAME
	ProjectDomainID          string // OS_PROJECT_DOMAIN_ID
	ApplicationCredentialID, ApplicationCredentialName,
	ApplicationCredentialSecret string // OS_APPLICATION_CREDENTIAL_*
	TrustID string // OS_TRUST_ID

	Region       string             // OS_REGION_NAME; "" = the catalog's first
	EndpointType swift.EndpointType // OS_INTERFACE, OS_ENDPOINT_TYPE; "" = public

	// StorageURL and Token skip authentication (OS_STORAGE_URL,
	// OS_AUTH_TOKEN): a token made elsewhere, used until it expires.
	StorageURL, Token string
}

// AuthFromEnv reads the variables the swift and openstack tools read,
// through getenv. Where both name a setting, OS_* wins over ST_*, as in
// those tools.
func AuthFromEnv(getenv func(string) string) (Auth, error) {
	first := func(names ...string) string {
		for _, n := range names {
			if v := getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	a := Auth{
		URL:                         first("OS_AUTH_URL", "ST_AUTH"),
		User:                        first("OS_USERNAME", "ST_USER"),
		UserID:                      getenv("OS_USER_ID"),
		Key:                         first("OS_PASSWORD", "ST_KEY"),
		UserDomain:                  getenv("OS_USER_DOMAIN_NAME"),
		UserDomainID:                getenv("OS_USER_DOMAIN_ID"),
		Project:                     first("OS_PROJECT_NAME", "OS_TENANT_NAME"),
		ProjectID:                   first("OS_PROJECT_ID", "OS_TENANT_ID"),
		ProjectDomain:               getenv("OS_PROJECT_DOMAIN_NAME"),
		ProjectDomainID:             getenv("OS_PROJECT_DOMAIN_ID"),
		ApplicationCredentialID:     getenv("OS_APPLICATION_CREDENTIAL_ID"),
		ApplicationCredentialName:   getenv("OS_APPLICATION_CREDENTIAL_NAME"),
		ApplicationCredentialSecret: getenv("OS_APPLICATION_CREDENTIAL_SECRET"),
		TrustID:                     getenv("OS_TRUST_ID"),
		Region:                      getenv("OS_REGION_NAME"),
		StorageURL:                  getenv("OS_STORAGE_URL"),
		Token:                       getenv("OS_AUTH_TOKEN"),
	}
	if v := first("ST_AUTH_VERSION", "OS_IDENTITY_API_VERSION", "OS_AUTH_VERSION"); v != "" {
		// "3", "3.0", "2.0"
		n, err := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
		if err != nil || n < 1 || n > 3 {
			return Auth{}, fmt.Errorf("auth version %q: want 1, 2 or 3", v)
		}
		a.Version = n
	}
	if v := first("OS_INTERFACE", "OS_ENDPOINT_TYPE"); v != "" {
		t, err := endpointType(v)
		if err != nil {
			return Auth{}, err
		}
		a.EndpointType = t
	}
	if a.URL != "" && !strings.Contains(a.URL, "/v") {
		// ncw/swift guesses the version from "v1", "v2" or "v3" in the
		// URL, and posts to Keystone's versioned path, as rc files give
		// it. A bare Keystone address is v3 today, a bare ST_AUTH v1.
		if a.Version == 0 {
			a.Version = 3
			if getenv("OS_AUTH_URL") == "" {
				a.Version = 1
			}
		}
		switch a.Version {
		case 2:
			a.URL = strings.TrimSuffix(a.URL, "/") + "/v2.0"
		case 3:
			a.URL = strings.TrimSuffix(a.URL, "/") + "/v3"
		}
	}
	return a, nil
}

// String shows where and who, never a secret, so an Auth printed by
// mistake (%v, a log attribute) leaks nothing.
func (a Auth) String() string {
	if a.URL == "" && a.StorageURL == "" {
		return "auth(none)"
	}
	who := a.User
	if who == "" {
		who = a.UserID + a.ApplicationCredentialID
	}
	return fmt.Sprintf("auth(v%d %s %s, secret hidden)", a.Version, a.URL, who)
}

// GoString keeps %#v as safe as %v.
func (a Auth) GoString() string { return a.String() }

// connection fills a client connection; region and endpoint type are the
// Config's when it names them.
func (c Config) connection() *swift.Connection {
	a := c.Auth
	region, endpoint := a.Region, a.EndpointType
	if c.Region != "" {
		region = c.Region
	}
	if c.EndpointType != "" {
		endpoint = c.EndpointType
	}
	return &swift.Connection{
		AuthUrl:                     a.URL,
		AuthVersion:                 a.Version,
		UserName:                    a.User,
		UserId:                      a.UserID,
		ApiKey:                      a.Key,
		Domain:                      a.UserDomain,
		DomainId:                    a.UserDomainID,
		Tenant:                      a.Project,
		TenantId:                    a.ProjectID,
		TenantDomain:                a.ProjectDomain,
		TenantDomainId:              a.ProjectDomainID,
		ApplicationCredentialId:     a.ApplicationCredentialID,
		ApplicationCredentialName:   a.ApplicationCredentialName,
		ApplicationCredentialSecret: a.ApplicationCredentialSecret,
		TrustId:                     a.TrustID,
		Region:                      region,
		EndpointType:                endpoint,
		StorageUrl:                  a.StorageURL,
		AuthToken:                   a.Token,
	}
}

// fixedToken reports whether a holds a token and no way to get another.
func (a Auth) fixedToken() bool { return a.URL == "" && a.Token != "" }

// hasCredentials reports whether a says how to log in, or holds a token.
func (a Auth) hasCredentials() bool {
	return a.URL != "" || (a.StorageURL != "" && a.Token != "")
}
