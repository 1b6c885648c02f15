// Package remotetest is the conformance suite every remote.Backend must
// pass: the local directory on disk and in memory, and S3 and Swift against
// real servers. It pins down the contract that remote.Backend's comments
// state in words, including the corners object stores tend to differ on:
// ranges past the end, failed uploads, and listing by partial prefix.
package remotetest

import (
	"testing"

	"github.com/hindsight-backup/hindsight/remote"
)

// Run runs every conformance test as a subtest. newBackend must return a
// fresh, empty backend each time it is called; Run closes it when the
// subtest ends.
func Run(t *testing.T, newBackend func(t *testing.T) remote.Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b remote.Backend)
	}{
		{"SaveLoad", testSaveLoad},
		{"RangedLoad", testRangedLoad},
		{"LoadOffsetBeyondEnd", testLoadOffsetBeyondEnd},
		{"List", testList},
		{"ListEmpty", testListEmpty},
		{"ListStopsOnError", testListStopsOnError},
		{"Remove", testRemove},
		{"Missing", testMissing},
		{"Overwrite", testOverwrite},
		{"FailedOverwriteKeepsOld", testFailedOverwriteKeepsOld},
		{"ConcurrentSaves", testConcurrentSaves},
		{"ReaderFailsMidway", testReaderFailsMidway},
		{"ShortReader", testShortReader},
		{"ContextCancel", testContextCancel},
		{"DeepNames", testDeepNames},
		{"InvalidNames", testInvalidNames},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t)
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.fn(t, b)
		})
	}
}
