package remote_test

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hindsight-backup/hindsight/remote"
	"github.com/hindsight-backup/hindsight/remote/local"
	"github.com/hindsight-backup/hindsight/remote/remotetest"
)

// Every wrapper, and all of them composed, must keep the contract of the
// backend it wraps.
func TestWrappersConform(t *testing.T) {
	wrappers := map[string]remote.WrapOptions{
		"rate limit":  {UploadRate: 64 << 20, DownloadRate: 64 << 20},
		"concurrency": {Connections: 2},
		"all":         {Retry: &remote.RetryOptions{MaxAttempts: 2}, UploadRate: 64 << 20, Connections: 4},
	}
	for name, o := range wrappers {
		t.Run(name, func(t *testing.T) {
			remotetest.Run(t, func(t *testing.T) remote.Backend { return remote.Wrap(memBackend(t), o) })
		})
	}
	// Every name is cacheable here: the suite never changes an object's
	// content under one name, which is what the cache relies on.
	t.Run("cache", func(t *testing.T) {
		remotetest.Run(t, func(t *testing.T) remote.Backend {
			b, err := remote.WithCache(memBackend(t), remote.CacheOptions{Dir: t.TempDir(), Cacheable: func(string) bool { return true }})
			if err != nil {
				t.Fatal(err)
			}
			return b
		})
	})
}

func memBackend(t *testing.T) remote.Backend {
	b, err := local.Create(vfs.NewMem(), "/repo")
	if err != nil {
		t.Fatal(err)
	}
	return b
}
