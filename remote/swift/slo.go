package swift

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/ncw/swift/v2"

	"github.com/hindsight-backup/hindsight/remote"
)

// maxSegments is Swift's default max_manifest_segments.
const maxSegments = 1000

// segment is one entry of a static large object manifest.
type segment struct {
	Path string `json:"path"` // /container/object
	ETag string `json:"etag"`
	Size int64  `json:"size_bytes"`

	object string // the object within the segment container
}

// segmentContainer holds the segments of the container's large objects,
// named as the swift tool and rclone name it, so their users recognise it.
func (b *Backend) segmentContainer() string { return b.cfg.Container + "_segments" }

// saveLarge stores an object larger than one PUT may be as a static large
// object: segments first, each checked by its MD5, then the manifest,
// which Swift accepts only once it has verified every segment. Until
// then nothing is visible under name, and an old object there stays
// intact. Segment names carry an upload ID, so that two uploads of one
// name never share segments. On failure the segments sent are removed.
func (b *Backend) saveLarge(ctx context.Context, name string, rd io.ReaderAt, size int64) (err error) {
	if size > maxSegments*b.maxObject {
		return remote.Permanent(fmt.Errorf("swift: save %s: %d bytes exceed %d segments of %d bytes", name, size, maxSegments, b.maxObject))
	}
	if err := b.ensureContainer(ctx, b.segmentContainer()); err != nil {
		return err
	}
	id := make([]byte, 8)
	rand.Read(id)
	prefix := fmt.Sprintf("%s/slo/%s-%s/", b.key(name), time.Now().UTC().Format("20060102T150405"), hex.EncodeToString(id))
	var segs []segment
	defer func() {
		if err != nil {
			b.removeSegments(ctx, segs)
		}
	}()
	for off, i := int64(0), 0; off < size; off, i = off+b.maxObject, i+1 {
		part := io.NewSectionReader(rd, off, min(b.maxObject, size-off))
		object := fmt.Sprintf("%s%08d", prefix, i)
		sum, err := b.put(ctx, b.segmentContainer(), object, part, name)
		if err != nil {
			return err
		}
		segs = append(segs, segment{Path: "/" + b.segmentContainer() + "/" + object, ETag: sum, Size: part.Size(), object: object})
	}
	return b.putManifest(ctx, name, segs)
}

// putManifest sends the manifest with ?multipart-manifest=put, which
// ncw/swift's ObjectPut cannot add.
func (b *Backend) putManifest(ctx context.Context, name string, segs []segment) error {
	manifest, err := json.Marshal(segs)
	if err != nil {
		return err
	}
	storage, err := b.conn.GetStorageUrl(ctx)
	if err != nil {
		return b.fail(ctx, "save", name, err)
	}
	_, _, err = b.conn.Call(ctx, storage, swift.RequestOpts{
		Container:  b.cfg.Container,
		ObjectName: b.key(name),
		Operation:  "PUT",
		Parameters: url.Values{"multipart-manifest": {"put"}},
		Headers: swift.Headers{"Content-Length": strconv.Itoa(len(manifest)),
			"Content-Type": "application/octet-stream"},
		Body:       bytes.NewReader(manifest),
		NoResponse: true,
		// Called with the connection's lock held after a re-login.
		OnReAuth: func() (string, error) { return b.conn.StorageUrl, nil },
	})
	if err != nil {
		return b.fail(ctx, "save", name, err)
	}
	return nil
}

// removeSegments deletes what a failed large upload left, even when ctx
// was cancelled; what it cannot delete is unreferenced and invisible to
// the repository.
func (b *Backend) removeSegments(ctx context.Context, segs []segment) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for _, s := range segs {
		b.conn.ObjectDelete(ctx, b.segmentContainer(), s.object)
	}
}
