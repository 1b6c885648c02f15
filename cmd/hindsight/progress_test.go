package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestProgressText(t *testing.T) {
	p := progressLine{counts: "3 files, 50.0 MiB", done: 50, total: 200}
	tests := []struct {
		p     progressLine
		width int
		want  string
	}{
		{p, 120, "[=====>              ]  25% 3 files, 50.0 MiB  ETA 30s"},
		{p, 40, "25% 3 files, 50.0 MiB  ETA 30s"}, // no room for the bar
		{progressLine{counts: "3 files", current: "/srv/a/b"}, 80, "3 files  /srv/a/b"},
		{progressLine{counts: "3 files", current: "/srv/a/b"}, 14, "3 files  …a/b"},
		{progressLine{counts: "more", done: 300, total: 200}, 80, "[====================] 100% more"},
	}
	for _, tt := range tests {
		if got := tt.p.text(10*time.Second, tt.width); got != tt.want {
			t.Errorf("text(%+v, %d) = %q, want %q", tt.p, tt.width, got, tt.want)
		}
	}
}

// TestProgressJSON: under --json, progress is JSON lines on stderr, with
// an ETA once there is a rate.
func TestProgressJSON(t *testing.T) {
	var out strings.Builder
	s := &status{w: &out, fd: -1, start: time.Now().Add(-10 * time.Second),
		render: func(time.Duration) progressLine { return progressLine{counts: "c", done: 1, total: 4} }}
	s.writeJSON()
	var line struct {
		Type  string  `json:"type"`
		Done  uint64  `json:"done"`
		Total uint64  `json:"total"`
		ETA   float64 `json:"eta_seconds"`
	}
	if err := json.Unmarshal([]byte(out.String()), &line); err != nil {
		t.Fatalf("%v: %q", err, out.String())
	}
	if line.Type != "progress" || line.Done != 1 || line.Total != 4 || line.ETA != 30 {
		t.Errorf("progress line %+v from %q", line, out.String())
	}
}
