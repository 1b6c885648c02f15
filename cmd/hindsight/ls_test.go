package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hindsight-backup/hindsight/snapshot"
)

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain.txt", "plain.txt"},
		{"with space", "with space"},
		{"grüße", "grüße"},
		{"new\nline", `"new\nline"`},
		{"esc\x1b[31m", `"esc\x1b[31m"`},
		{"\xff\xfe", `"\xff\xfe"`},
		{`"quoted"`, `"\"quoted\""`},
		{"", `""`},
	}
	for _, tt := range tests {
		if got := quote(tt.in); got != tt.want {
			t.Errorf("quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestModeString(t *testing.T) {
	tests := []struct {
		typ  snapshot.NodeType
		mode uint32
		want string
	}{
		{snapshot.TypeFile, 0o644, "-rw-r--r--"},
		{snapshot.TypeDir, 0o755, "drwxr-xr-x"},
		{snapshot.TypeSymlink, 0o777, "lrwxrwxrwx"},
		{snapshot.TypeFile, 0o4755, "-rwsr-xr-x"},
		{snapshot.TypeFile, 0o2644, "-rw-r-Sr--"},
		{snapshot.TypeDir, 0o1777, "drwxrwxrwt"},
		{snapshot.TypeDir, 0o1770, "drwxrwx--T"},
		{snapshot.TypeFIFO, 0o600, "prw-------"},
		{snapshot.TypeCharDev, 0o666, "crw-rw-rw-"},
		{snapshot.TypeBlockDev, 0o660, "brw-rw----"},
	}
	for _, tt := range tests {
		if got := modeString(&snapshot.Node{Type: tt.typ, Mode: tt.mode}); got != tt.want {
			t.Errorf("modeString(%d, %o) = %s, want %s", tt.typ, tt.mode, got, tt.want)
		}
	}
}

func TestLsLine(t *testing.T) {
	var out strings.Builder
	l := &lister{w: &out}
	n := &snapshot.Node{Name: "evil\nname", Type: snapshot.TypeSymlink, Mode: 0o777, UID: 1000, GID: 50,
		User: "alice", LinkTarget: "x\ny"}
	if err := l.print("evil\nname", n); err != nil {
		t.Fatal(err)
	}
	line := out.String()
	if strings.Count(line, "\n") != 1 {
		t.Fatalf("one entry printed as several lines: %q", line)
	}
	for _, want := range []string{"alice", " 50 ", `"evil\nname" -> "x\ny"`} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	out.Reset()
	l.fl.numeric = true
	if err := l.print("evil\nname", n); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), " 1000 ") {
		t.Errorf("numeric ids: %q", out.String())
	}
}

func TestRawStringJSON(t *testing.T) {
	b, err := json.Marshal([]rawString{"ok", "\xff"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `["ok",{"base64":"/w=="}]`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestHelpers(t *testing.T) {
	if got := string(firstLine([]byte("pw\r\nrest"))); got != "pw" {
		t.Errorf("firstLine: %q", got)
	}
	for loc, want := range map[string]string{
		"/srv/backup": "", "relative": "", "./a:b": "", "/mnt/a:b": "",
		"s3:host/bucket": "s3", "swift:container": "swift", "local:/x": "local", "C:dir": "",
	} {
		if got := scheme(loc); got != want {
			t.Errorf("scheme(%q) = %q, want %q", loc, got, want)
		}
	}
	if got := shortenLeft("/very/long/path/name", 10); got != "…path/name" {
		t.Errorf("shortenLeft: %q", got)
	}
	for _, tt := range []struct {
		src, p, rel string
		ok          bool
	}{
		{"/home", "/home/alice/x", "alice/x", true},
		{"/home", "/home", "", true},
		{"/home", "/homes/x", "", false},
		{"/", "/etc/fstab", "etc/fstab", true},
	} {
		rel, ok := under(tt.src, tt.p)
		if rel != tt.rel || ok != tt.ok {
			t.Errorf("under(%q, %q) = %q, %v", tt.src, tt.p, rel, ok)
		}
	}
	if got := formatBytes(1536); got != "1.5 KiB" {
		t.Errorf("formatBytes: %q", got)
	}
}
