package main

import (
	"path/filepath"
	"strings"
	"testing"
)

type keyJSON struct {
	ID      string `json:"id"`
	Current bool   `json:"current"`
}

func TestKeyAddListRemove(t *testing.T) {
	e := testEnv(t)
	initRepo(t, e)
	oldPw := e["HINDSIGHT_PASSWORD"]
	newFile := filepath.Join(t.TempDir(), "new")
	writeFile(t, newFile, "second password\n")

	r := must(t, e, noConfig(t, "key", "add", "--new-password-file", newFile)...)
	if !strings.Contains(r.stdout, "added key") {
		t.Errorf("key add: %q", r.stdout)
	}
	keys := jsonLines[keyJSON](t, must(t, e, noConfig(t, "key", "list", "--json")...).stdout)
	if len(keys) != 2 {
		t.Fatalf("key list: %+v", keys)
	}
	var oldID string
	for _, k := range keys {
		if k.Current {
			oldID = k.ID
		}
	}
	// The key that opened the repository may not remove itself.
	wantExit(t, exitFailure, e, noConfig(t, "key", "remove", oldID[:8])...)

	e["HINDSIGHT_PASSWORD"] = "second password"
	must(t, e, noConfig(t, "key", "remove", oldID[:8])...)
	e["HINDSIGHT_PASSWORD"] = oldPw
	wantExit(t, exitPassword, e, noConfig(t, "key", "list")...)
}

func TestKeyPasswd(t *testing.T) {
	e := testEnv(t)
	initRepo(t, e)
	newFile := filepath.Join(t.TempDir(), "new")
	writeFile(t, newFile, "changed password\n")
	must(t, e, noConfig(t, "key", "passwd", "--new-password-file", newFile)...)
	wantExit(t, exitPassword, e, noConfig(t, "key", "list")...)
	e["HINDSIGHT_PASSWORD"] = "changed password"
	keys := jsonLines[keyJSON](t, must(t, e, noConfig(t, "key", "list", "--json")...).stdout)
	if len(keys) != 1 || !keys[0].Current {
		t.Errorf("keys after passwd: %+v", keys)
	}
	// Without a terminal the new password cannot be asked for.
	wantExit(t, exitFailure, e, noConfig(t, "key", "add")...)
}
