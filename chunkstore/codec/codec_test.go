package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/crypto"
)

func testCodec(t testing.TB, sealer string, compress bool) *Codec {
	t.Helper()
	k := &crypto.Key{}
	k.Encrypt[0] = 1
	s, err := crypto.NewSealer(sealer, k)
	if err != nil {
		t.Fatal(err)
	}
	return New(s, compress)
}

// text returns n bytes of deterministic, text-like, compressible data.
func text(n int, seed uint64) []byte {
	words := strings.Fields("the quick brown fox jumps over lazy dog backup restore " +
		"snapshot volume chunk pack index tree blob mount history 0 1 2 42 1024 /usr/lib")
	r := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(" \n"[r.IntN(2)])
	}
	return b.Bytes()[:n]
}

// random returns n incompressible bytes.
func random(n int, seed uint64) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed)})
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}

var testID = blob.ID{1, 2, 3}

// zstdEncode compresses data with one of c's encoders, as a whole.
func zstdEncode(c *Codec, data, dst []byte) []byte {
	e := <-c.encoders
	defer func() { c.encoders <- e }()
	return e.zstd.EncodeAll(data, dst)
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	mixed := append(random(512<<10, 3), text(512<<10, 3)...)
	tests := []struct {
		name string
		data []byte
		want Compression // with compression enabled
	}{
		{"empty", nil, None},
		{"one byte", []byte{7}, None},
		{"below min size", text(minCompressSize-1, 1), None},
		{"100 zeros", make([]byte, 100), Zstd},
		{"small text", text(1000, 1), Zstd},
		{"1 MiB text", text(1<<20, 2), Zstd},
		{"1 MiB random", random(1<<20, 2), None},
		{"random just below sampling", random(sampleAbove, 4), None},
		{"zeros", make([]byte, 3<<20), Zstd},
		{"8 MiB text", text(8<<20, 5), Zstd},
		{"random then text", mixed, Zstd},
	}
	for _, sealer := range crypto.SealerNames() {
		for _, compress := range []bool{true, false} {
			c := testCodec(t, sealer, compress)
			for _, tt := range tests {
				t.Run(fmt.Sprintf("%s/compress=%v/%s", sealer, compress, tt.name), func(t *testing.T) {
					prefix := []byte("pre")
					stored, comp := c.Encode(bytes.Clone(prefix), blob.Data, testID, tt.data)
					want := tt.want
					if !compress {
						want = None
					}
					if comp != want {
						t.Fatalf("compression = %v, want %v", comp, want)
					}
					if !bytes.HasPrefix(stored, prefix) {
						t.Fatal("Encode did not append to dst")
					}
					stored = stored[len(prefix):]
					if comp == None && len(stored) != len(tt.data)+c.Overhead() {
						t.Fatalf("uncompressed stored form is %d bytes, want %d", len(stored), len(tt.data)+c.Overhead())
					}
					if comp == Zstd && len(stored) >= len(tt.data)+c.Overhead() {
						t.Fatalf("compressed stored form is %d bytes, not smaller than %d", len(stored), len(tt.data))
					}
					got, err := c.Decode(bytes.Clone(prefix), blob.Data, testID, comp, len(tt.data), stored)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, append(bytes.Clone(prefix), tt.data...)) {
						t.Fatal("Decode did not append the plaintext to dst")
					}
				})
			}
		}
	}
}

func TestWorthCompressing(t *testing.T) {
	c := testCodec(t, crypto.DefaultSealer, true)
	tests := []struct {
		name string
		data []byte
		want bool
	}{
		{"text", text(1<<20, 1), true},
		{"random", random(1<<20, 1), false},
		{"zeros", make([]byte, 100<<10), true},
		// Samples come from the middle of each half: a compressible header
		// in front of a video does not trigger a full attempt.
		{"text head, random body", append(text(64<<10, 1), random(1<<20, 1)...), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := make([]byte, 0, len(tt.data))
			e := <-c.encoders
			defer func() { c.encoders <- e }()
			if got := e.worthCompressing(buf, tt.data); got != tt.want {
				t.Fatalf("worthCompressing = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestEncodeSkipsIncompressible checks the point of sampling: a random blob
// costs a fraction of a full compression attempt.
func TestEncodeSkipsIncompressible(t *testing.T) {
	c := testCodec(t, crypto.NoEncryption, true)
	data := random(4<<20, 9)
	dst := make([]byte, 0, len(data)+64)
	fastest := func(f func()) time.Duration {
		best := time.Hour
		for range 5 {
			start := time.Now()
			f()
			best = min(best, time.Since(start))
		}
		return best
	}
	sampled := fastest(func() {
		if _, comp := c.compress(dst, data); comp != None {
			t.Error("random data compressed")
		}
	})
	full := fastest(func() { zstdEncode(c, data, dst) })
	// Measured: sampling is >10x cheaper than zstd's own (fast) pass.
	if sampled*3 > full {
		t.Fatalf("encoding random data takes %v, a full compression %v: sampling does not skip it", sampled, full)
	}
}

func TestDecodeRejects(t *testing.T) {
	c := testCodec(t, crypto.DefaultSealer, true)
	plain := text(100<<10, 1)
	stored, comp := c.Encode(nil, blob.Data, testID, plain)
	if comp != Zstd {
		t.Fatal("test data did not compress")
	}
	raw, rawComp := c.Encode(nil, blob.Tree, testID, random(1000, 1))
	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 1
		return b
	}
	tests := []struct {
		name      string
		typ       blob.Type
		id        blob.ID
		comp      Compression
		rawLength int
		stored    []byte
		want      error
	}{
		{"bit flip", blob.Data, testID, comp, len(plain), flip(stored, 100), crypto.ErrAuth},
		{"wrong id", blob.Data, blob.ID{9}, comp, len(plain), stored, crypto.ErrAuth},
		{"wrong type", blob.Tree, testID, comp, len(plain), stored, crypto.ErrAuth},
		{"truncated", blob.Data, testID, comp, len(plain), stored[:len(stored)-1], crypto.ErrAuth},
		{"shorter than overhead", blob.Data, testID, comp, len(plain), stored[:5], ErrCorrupt},
		{"empty", blob.Data, testID, comp, len(plain), nil, ErrCorrupt},
		{"raw length too small", blob.Data, testID, comp, len(stored) - c.Overhead(), stored, ErrCorrupt},
		{"raw length too large", blob.Data, testID, comp, len(plain) + 1, stored, ErrCorrupt},
		{"raw length negative", blob.Data, testID, comp, -1, stored, ErrCorrupt},
		{"raw length over limit", blob.Data, testID, comp, MaxRawLength + 1, stored, ErrCorrupt},
		{"claimed uncompressed", blob.Data, testID, None, len(plain), stored, ErrCorrupt},
		{"claimed uncompressed, fitting length", blob.Data, testID, None, len(stored) - c.Overhead(), stored, crypto.ErrAuth},
		{"unknown compression", blob.Data, testID, 2, len(plain), stored, ErrCorrupt},
		{"uncompressed bit flip", blob.Tree, testID, rawComp, 1000, flip(raw, 50), crypto.ErrAuth},
		{"uncompressed, wrong length", blob.Tree, testID, rawComp, 999, raw, ErrCorrupt},
		{"claimed compressed", blob.Tree, testID, Zstd, 1000, raw, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := c.Decode(dst, tt.typ, tt.id, tt.comp, tt.rawLength, tt.stored)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Decode error = %v, want *Error", err)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode error = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.id.String()) {
				t.Fatalf("error %q does not name the blob", err)
			}
			if string(got) != "keep" {
				t.Fatalf("Decode returned %q on error, want dst unchanged", got)
			}
		})
	}
}

// TestDecodeBomb seals, with the right key, zstd frames that expand far past
// the raw length claimed: Decode must stop without allocating the expansion.
func TestDecodeBomb(t *testing.T) {
	const rawLength = 64 << 10
	c := testCodec(t, crypto.DefaultSealer, true)
	honest := zstdEncode(c, make([]byte, 32<<20), nil)
	// Frame header: magic, descriptor (single segment), 4-byte content size.
	if honest[4]>>6 != 2 || honest[4]&0x20 == 0 {
		t.Fatalf("unexpected frame header descriptor %#x", honest[4])
	}
	lying := bytes.Clone(honest)
	binary.LittleEndian.PutUint32(lying[5:], rawLength)
	tests := []struct {
		name string
		bomb []byte
	}{
		{"declares its true size", honest},
		{"declares the raw length", lying},
	}
	ad := blobAD(blob.Data, testID, Zstd)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.bomb) >= rawLength {
				t.Fatalf("bomb of %d bytes is not below the claimed raw length", len(tt.bomb))
			}
			stored := c.sealer.Seal(nil, tt.bomb, ad[:])
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := c.Decode(nil, blob.Data, testID, Zstd, rawLength, stored)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode of a bomb: %v, want ErrCorrupt", err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2<<20 {
				t.Fatalf("Decode of a bomb allocated %d bytes", alloc)
			}
		})
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		comp Compression
	}{
		{"empty", nil, None},
		{"one byte", []byte{1}, None},
		{"100 zeros", make([]byte, 100), Zstd},
		{"text", text(10000, 1), Zstd},
		{"random", random(200<<10, 1), None},
		{"2 MiB text", text(2<<20, 1), Zstd},
	}
	for _, sealer := range crypto.SealerNames() {
		for _, compress := range []bool{true, false} {
			c := testCodec(t, sealer, compress)
			for _, tt := range tests {
				t.Run(fmt.Sprintf("%s/compress=%v/%s", sealer, compress, tt.name), func(t *testing.T) {
					sealed, err := c.Seal([]byte("pre"), tt.data, ADSnapshot)
					if err != nil {
						t.Fatal(err)
					}
					want := tt.comp
					if !compress {
						want = None
					}
					payloadLen := len(sealed) - 3 - c.Overhead() - 1
					if (want == None) != (payloadLen == len(tt.data)) {
						t.Fatalf("sealed body of %d bytes for %d bytes, want compression %v", payloadLen, len(tt.data), want)
					}
					got, err := c.Open([]byte("x"), sealed[3:], ADSnapshot)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, append([]byte("x"), tt.data...)) {
						t.Fatal("Open did not append the plaintext to dst")
					}
				})
			}
		}
	}
}

func TestSealTooLarge(t *testing.T) {
	c := testCodec(t, crypto.DefaultSealer, false)
	_, err := c.Seal(nil, make([]byte, MaxRawLength+1), ADIndexSegment)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Seal of an oversized object: %v, want ErrTooLarge", err)
	}
}

func TestOpenRejects(t *testing.T) {
	c := testCodec(t, crypto.DefaultSealer, true)
	sealed, err := c.Seal(nil, text(5000, 1), ADPackTrailer)
	if err != nil {
		t.Fatal(err)
	}
	asBlob, _ := c.Encode(nil, blob.Data, testID, text(5000, 1))
	// Payloads sealed directly, to reach the checks behind authentication.
	seal := func(payload []byte) []byte { return c.sealer.Seal(nil, payload, []byte(ADConfig)) }
	frame := zstdEncode(c, text(5000, 1), nil)
	// Magic, descriptor without content size, 1 KiB window, last raw block "abc".
	noFCS := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00, 0x19, 0x00, 0x00, 'a', 'b', 'c'}
	var hugeFCS bytes.Buffer
	hugeFCS.Write([]byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0}) // magic, 8-byte content size, single segment
	hugeFCS.Write([]byte{0, 0, 0, 0x10, 0, 0, 0, 0})    // 256 MiB
	tests := []struct {
		name   string
		sealed []byte
		ad     string
		want   error
	}{
		{"wrong ad", sealed, ADSnapshot, crypto.ErrAuth},
		{"bit flip", func() []byte { b := bytes.Clone(sealed); b[30] ^= 4; return b }(), ADPackTrailer, crypto.ErrAuth},
		{"truncated", sealed[:len(sealed)-1], ADPackTrailer, crypto.ErrAuth},
		{"a blob's stored form", asBlob, ADPackTrailer, crypto.ErrAuth},
		{"no header", seal(nil), ADConfig, ErrCorrupt},
		{"unknown compression", seal([]byte{7, 1, 2}), ADConfig, ErrCorrupt},
		{"zstd garbage", seal([]byte{1, 1, 2, 3}), ADConfig, ErrCorrupt},
		{"zstd without content size", seal(append([]byte{1}, noFCS...)), ADConfig, ErrCorrupt},
		{"zstd content size over limit", seal(append([]byte{1}, hugeFCS.Bytes()...)), ADConfig, ErrCorrupt},
		{"zstd truncated", seal(append([]byte{1}, frame[:len(frame)-3]...)), ADConfig, ErrCorrupt},
		{"zstd with trailing frame", seal(append(append([]byte{1}, frame...), frame...)), ADConfig, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Open([]byte("keep"), tt.sealed, tt.ad)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open error = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.ad) {
				t.Fatalf("error %q does not name the object", err)
			}
			if string(got) != "keep" {
				t.Fatalf("Open returned %q on error, want dst unchanged", got)
			}
		})
	}
}

func TestObjectNotABlob(t *testing.T) {
	c := testCodec(t, crypto.DefaultSealer, true)
	for _, ad := range []string{ADPackTrailer, ADIndexSegment, ADSnapshot, ADConfig} {
		if !strings.HasPrefix(ad, "hindsight ") || blob.Type(ad[0]).Valid() {
			t.Fatalf("AD %q could collide with a blob's associated data", ad)
		}
		sealed, err := c.Seal(nil, text(100, 1), ad)
		if err != nil {
			t.Fatal(err)
		}
		var id blob.ID
		copy(id[:], ad[1:])
		if _, err := c.Decode(nil, blob.Type(ad[0]), id, None, len(sealed)-c.Overhead(), sealed); err == nil {
			t.Fatalf("object sealed with %q decodes as a blob", ad)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	c := testCodec(t, crypto.DefaultSealer, true)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			var stored, plain []byte
			for i := range 20 {
				data := text(100<<10+i*1000, uint64(w*100+i))
				var comp Compression
				stored, comp = c.Encode(stored[:0], blob.Data, testID, data)
				var err error
				plain, err = c.Decode(plain[:0], blob.Data, testID, comp, len(data), stored)
				if err != nil || !bytes.Equal(plain, data) {
					errs <- fmt.Errorf("worker %d blob %d: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCompressionString(t *testing.T) {
	for c, want := range map[Compression]string{None: "none", Zstd: "zstd", 9: "compression(9)"} {
		if c.String() != want || c.Valid() != (c <= Zstd) {
			t.Errorf("Compression(%d): String %q Valid %v", c, c.String(), c.Valid())
		}
	}
}

// TestNoPinnedBuffers checks that the codec lets go of the caller's buffers:
// zstd decoders otherwise keep the last output alive (8 MiB each, for
// nothing), which the memory budget cannot afford.
func TestNoPinnedBuffers(t *testing.T) {
	c := testCodec(t, crypto.DefaultSealer, true)
	data := text(1<<20, 1)
	stored, comp := c.Encode(nil, blob.Data, testID, data)
	var freed atomic.Int32
	const rounds = 6
	for range rounds {
		out, err := c.Decode(nil, blob.Data, testID, comp, len(data), stored)
		if err != nil {
			t.Fatal(err)
		}
		runtime.AddCleanup(&out[:1][0], func(n *atomic.Int32) { n.Add(1) }, &freed)
		plain := bytes.Clone(data)
		enc, _ := c.Encode(nil, blob.Data, testID, plain)
		runtime.AddCleanup(&plain[0], func(n *atomic.Int32) { n.Add(1) }, &freed)
		runtime.AddCleanup(&enc[0], func(n *atomic.Int32) { n.Add(1) }, &freed)
	}
	for range 3 {
		runtime.GC()
	}
	// Cleanups run on their own goroutine after the GC that frees the object.
	deadline := time.Now().Add(5 * time.Second)
	for freed.Load() < 3*rounds && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := freed.Load(); n != 3*rounds {
		t.Fatalf("%d of %d dropped buffers were freed", n, 3*rounds)
	}
	runtime.KeepAlive(c)
}

func TestEmptyFrame(t *testing.T) {
	c := testCodec(t, crypto.NoEncryption, false)
	out, err := c.decodeAll(emptyFrame[:], nil)
	if err != nil || len(out) != 0 {
		t.Fatalf("empty frame decodes to %d bytes, %v", len(out), err)
	}
}
