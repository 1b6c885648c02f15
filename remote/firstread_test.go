package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

func TestCountFirstReads(t *testing.T) {
	type read struct{ off, n int64 }
	tests := []struct {
		name  string
		reads []read
		fresh []int64
	}{
		{"sequential", []read{{0, 10}, {10, 10}, {20, 5}}, []int64{10, 10, 5}},
		{"twice over", []read{{0, 50}, {0, 50}}, []int64{50, 0}},
		{"parts out of order", []read{{40, 20}, {0, 20}, {20, 20}, {0, 60}}, []int64{20, 20, 20, 0}},
		{"overlaps", []read{{10, 10}, {5, 10}, {15, 10}, {0, 30}}, []int64{10, 5, 5, 10}},
		{"bridging several", []read{{0, 5}, {10, 5}, {20, 5}, {3, 20}}, []int64{5, 5, 5, 10}},
		{"adjacent", []read{{10, 10}, {0, 10}, {20, 10}, {0, 30}}, []int64{10, 10, 10, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int64
			r := CountFirstReads(bytes.NewReader(make([]byte, 100)), func(n int64) error {
				got = append(got, n)
				return nil
			})
			for _, rd := range tt.reads {
				if _, err := r.ReadAt(make([]byte, rd.n), rd.off); err != nil {
					t.Fatal(err)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.fresh) {
				t.Errorf("fresh bytes per read = %v; want %v", got, tt.fresh)
			}
		})
	}
}

func TestCountFirstReadsError(t *testing.T) {
	stop := errors.New("stop")
	r := CountFirstReads(bytes.NewReader(make([]byte, 10)), func(int64) error { return stop })
	if n, err := r.ReadAt(make([]byte, 5), 0); n != 0 || !errors.Is(err, stop) {
		t.Errorf("ReadAt = %d, %v; want 0 and the callback's error", n, err)
	}
}

// doubleReader reads its source twice per Save, as minio-go's single PUT
// does (a checksum pass, then the send).
type doubleReader struct{ *fakeBackend }

func (d doubleReader) Save(ctx context.Context, name string, rd io.ReaderAt, size int64) error {
	if _, err := rd.ReadAt(make([]byte, size), 0); err != nil {
		return err
	}
	return d.fakeBackend.Save(ctx, name, rd, size)
}

// The limit counts bytes sent, not bytes read: a source read twice for
// one upload is charged once.
func TestRateLimitChargesFirstReadsOnly(t *testing.T) {
	const rate, size = 1 << 20, 640 << 10 // 0.56 s for the bytes after the burst
	b := WithRateLimit(doubleReader{newFake()}, rate, 0)
	start := time.Now()
	if err := b.Save(t.Context(), "x", bytes.NewReader(make([]byte, size)), size); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 400*time.Millisecond || took > time.Second {
		t.Errorf("Save of %d bytes read twice at %d B/s took %v; want about 0.56s", size, rate, took)
	}
}
