package fsmeta

import (
	"fmt"
	"sync"
	"testing"
)

func TestIDNamesCaches(t *testing.T) {
	names := NewIDNames(3)
	calls := map[string]int{}
	var mu sync.Mutex
	count := func(key string) {
		mu.Lock()
		calls[key]++
		mu.Unlock()
	}
	names.lookupUser = func(uid uint32) (string, bool) {
		count(fmt.Sprint("u", uid))
		if uid == 0 {
			return "root", true
		}
		return "", false
	}
	names.lookupUID = func(name string) (uint32, bool) {
		count("n" + name)
		return 42, name == "alice"
	}
	tests := []struct {
		name  string
		do    func() string
		want  string
		calls map[string]int // lookups made so far
	}{
		{"first lookup", func() string { return names.User(0) }, "root", map[string]int{"u0": 1}},
		{"cached", func() string { return names.User(0) }, "root", map[string]int{"u0": 1}},
		{"unknown", func() string { return names.User(7) }, "", map[string]int{"u0": 1, "u7": 1}},
		{"unknown is cached too", func() string { return names.User(7) }, "", map[string]int{"u0": 1, "u7": 1}},
		{"reverse", func() string { id, ok := names.UID("alice"); return fmt.Sprint(id, ok) }, "42 true",
			map[string]int{"u0": 1, "u7": 1, "nalice": 1}},
		{"reverse cached", func() string { id, ok := names.UID("alice"); return fmt.Sprint(id, ok) }, "42 true",
			map[string]int{"u0": 1, "u7": 1, "nalice": 1}},
		{"reverse unknown", func() string { _, ok := names.UID("bob"); return fmt.Sprint(ok) }, "false",
			map[string]int{"u0": 1, "u7": 1, "nalice": 1, "nbob": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.do(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if fmt.Sprint(calls) != fmt.Sprint(tt.calls) {
				t.Errorf("lookups %v, want %v", calls, tt.calls)
			}
		})
	}
}

func TestIDNamesBounded(t *testing.T) {
	names := NewIDNames(10)
	names.lookupGroup = func(gid uint32) (string, bool) { return fmt.Sprint("g", gid), true }
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for gid := range uint32(1000) {
				if got, want := names.Group(gid+uint32(w)), fmt.Sprint("g", gid+uint32(w)); got != want {
					t.Errorf("Group(%d) = %q", gid, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := names.groups.len(); n > 10 {
		t.Errorf("cache holds %d entries, bound is 10", n)
	}
}

func TestIDNamesSystem(t *testing.T) {
	names := NewIDNames(0)
	if got := names.User(0); got != "root" {
		t.Errorf("User(0) = %q, want root", got)
	}
	if id, ok := names.GID("root"); !ok || id != 0 {
		t.Errorf("GID(root) = %d, %v", id, ok)
	}
	if _, ok := names.UID("no-such-user-hindsight"); ok {
		t.Error("unknown user resolved")
	}
}
