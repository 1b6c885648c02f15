package main

import (
	"testing"

	"github.com/hindsight-backup/hindsight/remote/swift/swifttest"
)

// swiftRemote is one way to reach a Swift: a remote URL and the
// variables that hold its credentials.
type swiftRemote struct {
	name, url string
	env       []string
}

// swiftRemotes are the two ways to reach one Swift: the native API with
// the ST_* variables, and s3api with the same pair as S3 keys.
func swiftRemotes(t *testing.T) []swiftRemote {
	srv := swifttest.Start(t)
	srv.CreateContainer(t, "s3api")
	return []swiftRemote{
		{"native", "swift:backups/host1", srv.Env()},
		{"s3api", "s3:http://" + srv.Endpoint + "/s3api/host1",
			[]string{"AWS_ACCESS_KEY_ID=" + swifttest.User, "AWS_SECRET_ACCESS_KEY=" + swifttest.Key, "AWS_REGION=us-east-1"}},
	}
}

// TestPushToSwift is TestPushToMinIO against Swift, through either API;
// the native one creates its container on the first push.
func TestPushToSwift(t *testing.T) {
	for _, r := range swiftRemotes(t) {
		t.Run(r.name, func(t *testing.T) {
			e, _ := repoWithRemote(t, r.env, r.url)
			testPushAndRestore(t, e, r.url)
		})
	}
}

func TestRepairFromSwift(t *testing.T) {
	for _, r := range swiftRemotes(t) {
		t.Run(r.name, func(t *testing.T) {
			e, src := repoWithRemote(t, r.env, r.url)
			testRepairFromRemote(t, e, src)
		})
	}
}
