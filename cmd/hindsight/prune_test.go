package main

import (
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore/lock"
)

// Condemned packs wait for every process that could write a snapshot
// record naming their blobs, and for check, and for purposes this version
// does not know.
func TestReadsOnly(t *testing.T) {
	for purpose, want := range map[string]bool{
		"forget": true, "mount": true, "restore": true, "prune --remote": true,
		"backup": false, "push": false, "tag": false, "check": false, "repair snapshots": false,
		"some future command": false,
	} {
		if got := readsOnly(lock.Info{Purpose: purpose}); got != want {
			t.Errorf("readsOnly(%q) = %v, want %v", purpose, got, want)
		}
	}
}
