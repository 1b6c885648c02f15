package s3_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/hindsight-backup/hindsight/remote"
	"github.com/hindsight-backup/hindsight/remote/remotetest"
	"github.com/hindsight-backup/hindsight/remote/s3"
	"github.com/hindsight-backup/hindsight/remote/swift/swifttest"
)

// TestSwiftS3API runs the conformance suite against OpenStack Swift's
// s3api middleware over plain http, single PUTs and multipart alike:
// Swift 2.30 refuses the aws-chunked uploads minio-go signs by default
// there, and the backend must not need the user to know.
func TestSwiftS3API(t *testing.T) {
	srv := swifttest.Start(t)
	srv.CreateContainer(t, "s3api")
	var n atomic.Int64
	for _, partSize := range []uint64{0, 5 << 20} {
		t.Run(fmt.Sprintf("conformance/part size %d", partSize), func(t *testing.T) {
			remotetest.Run(t, func(t *testing.T) remote.Backend {
				b, err := s3.Open(t.Context(), s3.Config{Endpoint: srv.Endpoint, Bucket: "s3api",
					Prefix: fmt.Sprintf("repo/%d", n.Add(1)), Region: "us-east-1", Lookup: s3.LookupPath, PartSize: partSize,
					Credentials: s3.Credentials{AccessKeyID: swifttest.User, SecretAccessKey: swifttest.Key}})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				return b
			})
		})
	}
}
