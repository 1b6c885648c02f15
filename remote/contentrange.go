package remote

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WholeRange is the Range header of a request for a whole object. Object
// stores answer it with a Content-Range, which HTTP's Content-Length
// cannot vouch for on its own: a body that ends early where a proxy or a
// server misstated its length reads as a whole, shorter object.
const WholeRange = "bytes=0-"

// CheckContentRange returns rc, which ends with io.ErrUnexpectedEOF
// instead of io.EOF if it delivers fewer bytes than contentRange
// ("bytes FIRST-LAST/SIZE", as a 206 answer carries it) announces. The
// error is one a retry can cure; a silently short body would be taken
// for data, and a short key file for a wrong password. Without a
// Content-Range (a 200 answer) rc is returned as it is.
func CheckContentRange(rc io.ReadCloser, contentRange string) (io.ReadCloser, error) {
	if contentRange == "" {
		return rc, nil
	}
	span, _, ok := strings.Cut(strings.TrimPrefix(contentRange, "bytes "), "/")
	first, last, ok2 := strings.Cut(span, "-")
	f, err1 := strconv.ParseInt(first, 10, 64)
	l, err2 := strconv.ParseInt(last, 10, 64)
	if !ok || !ok2 || err1 != nil || err2 != nil || l < f {
		rc.Close()
		return nil, fmt.Errorf("unreadable Content-Range %q", contentRange)
	}
	return &announcedReader{ReadCloser: rc, left: l - f + 1}, nil
}

type announcedReader struct {
	io.ReadCloser
	left int64
}

func (a *announcedReader) Read(p []byte) (int, error) {
	n, err := a.ReadCloser.Read(p)
	a.left -= int64(n)
	if err == io.EOF && a.left > 0 {
		return n, fmt.Errorf("response body ended %d bytes short of its Content-Range: %w", a.left, io.ErrUnexpectedEOF)
	}
	return n, err
}
