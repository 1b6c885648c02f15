package main

import "testing"

// TestInitEncryption makes a repository with the default encryption and
// with the one kept for CPUs without AES instructions, and backs up into
// it: init records the sealer asked for, and both work end to end.
func TestInitEncryption(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"default", nil, "xaes-256-gcm"},
		{"xchacha", []string{"--encryption", "xchacha20-poly1305"}, "xchacha20-poly1305"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := testEnv(t)
			r := must(t, e, noConfig(t, append([]string{"init", "--json"}, tt.args...)...)...)
			got := jsonLines[struct {
				Encryption string `json:"encryption"`
			}](t, r.stdout)
			if len(got) != 1 || got[0].Encryption != tt.want {
				t.Fatalf("init --json = %q, want encryption %q", r.stdout, tt.want)
			}
			must(t, e, noConfig(t, "backup", sourceTree(t))...)
			must(t, e, noConfig(t, "ls", "latest")...)
		})
	}
}
