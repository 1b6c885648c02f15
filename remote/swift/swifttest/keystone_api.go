package swifttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
)

// call sends in as JSON with token, and decodes the answer into out
// (unless nil); a status other than 2xx is an error.
func (k *Keystone) call(client *http.Client, method, path, token string, in, out any) (http.Header, error) {
	var body io.Reader
	if in != nil {
		p, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(p)
	}
	req, err := http.NewRequest(method, k.URL+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return nil, err
	case resp.StatusCode/100 != 2:
		return nil, fmt.Errorf("keystone: %s %s: %s: %s", method, path, resp.Status, p)
	case out != nil:
		return resp.Header, json.Unmarshal(p, out)
	}
	return resp.Header, nil
}

// login is what logging in gives.
type login struct{ token, projectID, userID string }

// login logs user in to project, both in the Default domain.
func (k *Keystone) login(client *http.Client, user, password, project string) (login, error) {
	dflt := map[string]string{"id": "default"}
	in := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"},
			"password": map[string]any{"user": map[string]any{"name": user, "domain": dflt, "password": password}}},
		"scope": map[string]any{"project": map[string]any{"name": project, "domain": dflt}}}}
	var out struct {
		Token struct {
			Project, User struct{ ID string }
		}
	}
	h, err := k.call(client, http.MethodPost, "/v3/auth/tokens", "", in, &out)
	if err != nil {
		return login{}, err
	}
	return login{h.Get("X-Subject-Token"), out.Token.Project.ID, out.Token.User.ID}, nil
}

// populate logs the admin in and adds the identity endpoint and the
// service user.
func (k *Keystone) populate() error {
	admin, err := k.login(k.client, adminUser, adminPassword, adminProject)
	if err != nil {
		return err
	}
	k.adminToken = admin.token
	if err := k.addEndpoint("identity", "RegionOne", "public", k.URL+"/v3"); err != nil {
		return err
	}
	_, err = k.addUser(serviceUser, servicePassword, serviceProject, "admin")
	return err
}

// ensure returns the ID of the key ("project") named name, and creates
// it from entity first unless this harness did before: nothing else
// changes this Keystone.
func (k *Keystone) ensure(key, name string, entity map[string]string) (string, error) {
	if id, ok := k.ids[key+":"+name]; ok {
		return id, nil
	}
	var out map[string]struct{ ID string }
	if _, err := k.call(k.client, http.MethodPost, "/v3/"+key+"s", k.adminToken, map[string]any{key: entity}, &out); err != nil {
		return "", err
	}
	k.ids[key+":"+name] = out[key].ID
	return out[key].ID, nil
}

// roleID looks up a role that keystone-manage bootstrap made.
func (k *Keystone) roleID(name string) (string, error) {
	if id, ok := k.ids["role:"+name]; ok {
		return id, nil
	}
	var out struct{ Roles []struct{ ID string } }
	if _, err := k.call(k.client, http.MethodGet, "/v3/roles?name="+url.QueryEscape(name), k.adminToken, nil, &out); err != nil {
		return "", err
	}
	if len(out.Roles) != 1 {
		return "", fmt.Errorf("keystone: %d roles named %q", len(out.Roles), name)
	}
	k.ids["role:"+name] = out.Roles[0].ID
	return out.Roles[0].ID, nil
}

func (k *Keystone) addUser(name, password, project, role string) (projectID string, err error) {
	projectID, err = k.ensure("project", project, map[string]string{"name": project, "domain_id": "default"})
	if err != nil {
		return "", err
	}
	userID, err := k.ensure("user", name,
		map[string]string{"name": name, "password": password, "domain_id": "default", "default_project_id": projectID})
	if err != nil {
		return "", err
	}
	roleID, err := k.roleID(role)
	if err != nil {
		return "", err
	}
	_, err = k.call(k.client, http.MethodPut, fmt.Sprintf("/v3/projects/%s/users/%s/roles/%s", projectID, userID, roleID),
		k.adminToken, nil, nil)
	return projectID, err
}

func (k *Keystone) addEndpoint(serviceType, region, iface, endpoint string) error {
	if _, err := k.ensure("region", region, map[string]string{"id": region}); err != nil {
		return err
	}
	serviceID, err := k.ensure("service", serviceType, map[string]string{"type": serviceType, "name": serviceType})
	if err != nil {
		return err
	}
	_, err = k.call(k.client, http.MethodPost, "/v3/endpoints", k.adminToken, map[string]any{"endpoint": map[string]string{
		"service_id": serviceID, "region_id": region, "interface": iface, "url": endpoint}}, nil)
	return err
}

// AddUser gives user, made unless it exists, role in project, made
// unless it exists, all in the Default domain; it returns the project's
// ID, which names its Swift account: AUTH_<ID>. Like AddEndpoint, it is
// not safe for concurrent use.
func (k *Keystone) AddUser(t testing.TB, user, password, project, role string) (projectID string) {
	t.Helper()
	projectID, err := k.addUser(user, password, project, role)
	if err != nil {
		t.Fatal(err)
	}
	return projectID
}

// AddEndpoint lists url in the catalog as the iface ("public",
// "internal" or "admin") endpoint in region of the service of
// serviceType ("object-store"), making region and service as needed. In
// url, $(project_id)s stands for the token's project.
func (k *Keystone) AddEndpoint(t testing.TB, serviceType, region, iface, url string) {
	t.Helper()
	if err := k.addEndpoint(serviceType, region, iface, url); err != nil {
		t.Fatal(err)
	}
}

// Token logs user in to project, as a client would. It takes no t, so
// that a fake server's handler can call it.
func (k *Keystone) Token(user, password, project string) (string, error) {
	l, err := k.login(k.client, user, password, project)
	return l.token, err
}

// AddApplicationCredential has user, logged in to project, create an
// application credential with secret for that project; it returns the
// credential's ID.
func (k *Keystone) AddApplicationCredential(t testing.TB, user, password, project, name, secret string) string {
	t.Helper()
	l, err := k.login(k.client, user, password, project)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		ApplicationCredential struct{ ID string } `json:"application_credential"`
	}
	if _, err := k.call(k.client, http.MethodPost, "/v3/users/"+l.userID+"/application_credentials", l.token,
		map[string]any{"application_credential": map[string]string{"name": name, "secret": secret}}, &out); err != nil {
		t.Fatal(err)
	}
	return out.ApplicationCredential.ID
}

// RevokeToken revokes token, as a user logging out or an administrator
// would; Keystone refuses it from then on.
func (k *Keystone) RevokeToken(t testing.TB, token string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, k.URL+"/v3/auth/tokens", nil)
	req.Header.Set("X-Auth-Token", k.adminToken)
	req.Header.Set("X-Subject-Token", token)
	resp, err := k.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoking a token: %s", resp.Status)
	}
}
