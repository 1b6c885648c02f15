package lock

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzDecodeInfo feeds lock objects that anyone with write access to the
// remote may have left: decoding must not panic, every lock must be
// describable and judged, and a lock that decoded must survive the trip
// through write's encoding unchanged.
func FuzzDecodeInfo(f *testing.F) {
	at := time.Date(2026, 3, 1, 2, 3, 4, 0, time.UTC)
	good, err := json.Marshal(Info{Exclusive: true, Host: "h", PID: 7, User: "u", Created: at, Heartbeat: at, Purpose: "prune"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"created":"0001-01-01T00:00:00Z","heartbeat":"9999-12-31T23:59:59+23:59","pid":-1}`))
	f.Add([]byte(`{"created":"2026-01-01T00:00:00Z","heartbeat":"2026-01-01T00:00:00Z","host":"\xff"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{not json`))
	opts := Options{Host: "h", PID: 1, User: "u", Now: func() time.Time { return at }, ProcessExists: func(int) bool { return false }}
	f.Fuzz(func(t *testing.T, p []byte) {
		info := decodeInfo("id", p)
		if info.ID != "id" {
			t.Fatalf("decoded lock has ID %q", info.ID)
		}
		_ = info.describe(at)
		stale, _ := IsStale(info, opts)
		if info.Damaged != "" {
			if !info.Exclusive || stale {
				t.Fatalf("damaged lock %+v is not exclusive, or is stale", info)
			}
			return
		}
		if info.Created.IsZero() || info.Heartbeat.IsZero() {
			t.Fatalf("lock without times accepted: %+v", info)
		}
		b, err := json.Marshal(info)
		if err != nil {
			// Times json cannot write (years past 9999) come only from
			// foreign objects, which are never written back.
			return
		}
		again := decodeInfo("id", b)
		if !sameInfo(again, info) {
			t.Fatalf("round trip changed the lock:\n%+v\n%+v", info, again)
		}
	})
}

func sameInfo(a, b Info) bool {
	return a.ID == b.ID && a.Exclusive == b.Exclusive && a.Host == b.Host && a.PID == b.PID &&
		a.User == b.User && a.Purpose == b.Purpose && a.Damaged == b.Damaged &&
		a.Created.Equal(b.Created) && a.Heartbeat.Equal(b.Heartbeat)
}
