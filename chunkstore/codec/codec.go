package codec

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"unsafe"

	"github.com/klauspost/compress/zstd"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/crypto"
)

// Compression says how a payload was compressed. The values are stored in
// pack trailers, index segments and sealed objects, and never change.
type Compression uint8

const (
	None Compression = 0
	Zstd Compression = 1
)

func (c Compression) String() string {
	switch c {
	case None:
		return "none"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

// Valid reports whether c is a known compression.
func (c Compression) Valid() bool { return c == None || c == Zstd }

// MaxRawLength bounds the plaintext of any blob or object; see the package
// documentation.
const MaxRawLength = 64 << 20

// Associated data of the sealed objects that are not blobs.
const (
	ADPackTrailer  = "hindsight pack trailer v1"
	ADIndexSegment = "hindsight index segment v1"
	ADSnapshot     = "hindsight snapshot v1"
	ADConfig       = "hindsight config v1"
)

// ErrCorrupt is wrapped by errors about payloads that are malformed:
// lengths that disagree with the metadata, unknown compression, broken zstd.
var ErrCorrupt = errors.New("corrupt")

// ErrTooLarge is returned by Seal for a plaintext over MaxRawLength, which
// could never be opened again.
var ErrTooLarge = fmt.Errorf("plaintext larger than %d bytes", MaxRawLength)

// Error reports a blob or object that cannot be decoded. Err wraps
// crypto.ErrAuth when the stored bytes do not authenticate (damaged, or not
// the object asked for), and ErrCorrupt otherwise.
type Error struct {
	Object string // "data blob <id>", or the associated data of an object
	Err    error
}

func (e *Error) Error() string { return "codec: " + e.Object + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// Codec encodes and decodes stored forms. It is safe for concurrent use.
type Codec struct {
	sealer crypto.Sealer

	// encoders and decoders hold one single-threaded coder per CPU, rather
	// than one coder of that concurrency, so that each can be flushed after
	// use: zstd keeps pointers into the last buffers it wrote until its next
	// use, which would pin one caller buffer (up to 8 MiB) per coder after
	// the caller dropped it. encoders is nil when compression is off.
	encoders chan *encoder
	decoders chan *zstd.Decoder

	// scratch holds buffers for compressed payloads between opening and
	// decompressing them; see getScratch.
	scratch sync.Pool
}

// Tuning of compression; none of it affects the format.
const (
	// Below this size zstd's frame overhead eats most of any saving.
	minCompressSize = 64
	// Blobs above sampleAbove get a trial compression of samples first.
	sampleAbove = 64 << 10
	sampleSize  = 8 << 10
	samples     = 2
	// A sample set that saves less than this percentage marks the blob as
	// incompressible. Full compression usually does a bit better than
	// independent 8 KiB samples, so this errs towards trying.
	minSampleSavingPct = 3
	// One window per concurrent encoder is the codec's main memory cost:
	// 1 MiB keeps an encoder near 3 MB and, with blobs averaging 1 MiB,
	// compresses within 1% of the default 4 MiB window on source trees
	// and binaries.
	windowSize = 1 << 20
	// Larger scratch buffers go back to the GC rather than the pool, so the
	// pool holds at most one maximum-size chunk per worker.
	maxPooledScratch = 8<<20 + 64<<10
)

// New returns a codec sealing with s, compressing with zstd when compress is
// set. It decodes compressed payloads either way.
func New(s crypto.Sealer, compress bool) *Codec {
	procs := runtime.GOMAXPROCS(0)
	c := &Codec{sealer: s, decoders: make(chan *zstd.Decoder, procs)}
	if compress {
		c.encoders = make(chan *encoder, procs)
		for range procs {
			c.encoders <- newEncoder()
		}
	}
	for range procs {
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(MaxRawLength),
			zstd.WithDecoderMaxWindow(MaxRawLength),
			// Makes DecodeAll stop at the capacity of the buffer it is
			// given, which is the raw length: the decompression-bomb guard.
			zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			// The options are constants; failing is a programming error.
			panic(fmt.Errorf("codec: zstd decoder options: %w", err))
		}
		c.decoders <- d
	}
	return c
}

type encoder struct {
	zstd  *zstd.Encoder
	flush []byte // receives flushInput
}

// flushInput is compressible, and short enough for zstd's single-block
// path, which is where the encoder keeps pointers to its output.
var flushInput = bytes.Repeat([]byte("hindsight "), 26)

func newEncoder() *encoder {
	z, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithWindowSize(windowSize),
		// The AEAD already authenticates every payload.
		zstd.WithEncoderCRC(false),
		// Single-segment frames always carry their content size, which
		// the decoder needs; others omit it below 256 bytes.
		zstd.WithSingleSegment(true),
		zstd.WithEncoderConcurrency(1))
	if err != nil {
		panic(fmt.Errorf("codec: zstd encoder options: %w", err))
	}
	return &encoder{zstd: z, flush: make([]byte, 0, 2*len(flushInput))}
}

// emptyFrame is a zstd frame of no content.
var emptyFrame = [...]byte{0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x00, 0x01, 0x00, 0x00}

// decodeAll decompresses payload into out's spare capacity, then decodes an
// empty frame so the decoder lets go of out.
func (c *Codec) decodeAll(payload, out []byte) ([]byte, error) {
	d := <-c.decoders
	defer func() { c.decoders <- d }()
	out, err := d.DecodeAll(payload, out)
	var none [0]byte
	_, _ = d.DecodeAll(emptyFrame[:], none[:])
	return out, err
}

// Overhead is how many bytes a stored form adds to its payload.
func (c *Codec) Overhead() int { return c.sealer.Overhead() }

// PayloadOffset is where a stored form's payload starts: Decode of an
// uncompressed blob into stored[PayloadOffset():PayloadOffset()] decodes
// it in place.
func (c *Codec) PayloadOffset() int { return c.sealer.PayloadOffset() }

// blobAD is a blob's associated data. The compression is part of it so that
// metadata claiming the wrong one fails authentication, rather than handing
// out compressed bytes as plaintext (or the reverse) of the right length.
func blobAD(t blob.Type, id blob.ID, comp Compression) [blobADSize]byte {
	var ad [blobADSize]byte
	ad[0] = byte(t)
	copy(ad[1:], id[:])
	ad[1+blob.IDSize] = byte(comp)
	return ad
}

const blobADSize = 1 + blob.IDSize + 1

func blobName(t blob.Type, id blob.ID) string { return t.String() + " blob " + id.String() }

// Encode appends the stored form of a blob to dst and returns it with the
// compression used. The plaintext must not overlap dst's spare capacity and
// must not exceed MaxRawLength, or Decode will refuse it. Encode grows dst to
// hold the uncompressed stored form even when the result is smaller, so
// reuse one dst across calls rather than keeping many results.
func (c *Codec) Encode(dst []byte, t blob.Type, id blob.ID, plain []byte) (stored []byte, comp Compression) {
	n, ov := len(dst), c.sealer.Overhead()
	// Reserve the room of an uncompressed stored form and compress into
	// it, past the sealer's overhead: the sealer then encrypts in place,
	// and no scratch buffer as large as the blob is needed.
	dst = slices.Grow(dst, ov+len(plain))
	payload, comp := c.compress(dst[n+ov:n+ov:n+ov+len(plain)], plain)
	ad := blobAD(t, id, comp)
	return c.sealer.Seal(dst, payload, ad[:]), comp
}

// compress returns plain compressed into buf if that shrinks it, or plain.
func (c *Codec) compress(buf, plain []byte) ([]byte, Compression) {
	if c.encoders == nil || len(plain) < minCompressSize {
		return plain, None
	}
	e := <-c.encoders
	defer func() {
		e.zstd.EncodeAll(flushInput, e.flush[:0])
		c.encoders <- e
	}()
	if len(plain) > sampleAbove && !e.worthCompressing(buf, plain) {
		return plain, None
	}
	out := e.zstd.EncodeAll(plain, buf[:0])
	if len(out) >= len(plain) {
		return plain, None
	}
	return out, Zstd
}

// worthCompressing compresses a few samples spread over plain, so that
// incompressible data (media, archives, encrypted files) costs two small
// trials instead of a full compression. buf has room for all of plain.
func (e *encoder) worthCompressing(buf, plain []byte) bool {
	total := 0
	for i := range samples {
		start := (2*i+1)*len(plain)/(2*samples) - sampleSize/2
		total += len(e.zstd.EncodeAll(plain[start:start+sampleSize], buf[:0]))
	}
	return total*100 <= samples*sampleSize*(100-minSampleSavingPct)
}

// Decode appends a blob's plaintext to dst, given its stored form and the
// compression and raw length recorded for it. On error it returns dst and an
// *Error. Callers check rawLength against MaxRawLength before reading the
// stored bytes; Decode rejects it too.
func (c *Codec) Decode(dst []byte, t blob.Type, id blob.ID, comp Compression, rawLength int, stored []byte) ([]byte, error) {
	out, err := c.decode(dst, t, id, comp, rawLength, stored)
	if err != nil {
		return dst, &Error{Object: blobName(t, id), Err: err}
	}
	return out, nil
}

func (c *Codec) decode(dst []byte, t blob.Type, id blob.ID, comp Compression, rawLength int, stored []byte) ([]byte, error) {
	if rawLength < 0 || rawLength > MaxRawLength {
		return nil, corrupt("raw length %d outside 0..%d", rawLength, MaxRawLength)
	}
	ad := blobAD(t, id, comp)
	payloadLen := len(stored) - c.sealer.Overhead()
	// Cheap checks on the metadata first: they spare a decryption and
	// catch a stored form cut short before the sealer's generic complaint.
	switch comp {
	case None:
		if payloadLen != rawLength {
			return nil, corrupt("stored length %d does not fit raw length %d uncompressed", len(stored), rawLength)
		}
		return c.sealer.Open(dst, stored, ad[:])
	case Zstd:
		if payloadLen < 0 || payloadLen >= rawLength {
			return nil, corrupt("stored length %d does not fit raw length %d compressed", len(stored), rawLength)
		}
		buf := c.getScratch(payloadLen)
		defer c.putScratch(buf)
		payload, err := c.sealer.Open((*buf)[:0], stored, ad[:])
		if err != nil {
			return nil, err
		}
		return c.decompress(dst, payload, rawLength)
	}
	return nil, corrupt("unknown %v", comp)
}

// decompress appends the content of the zstd frame in payload to dst. The
// frame must declare its content size, which must equal rawLength unless
// rawLength is negative (objects, whose length only the frame knows).
func (c *Codec) decompress(dst, payload []byte, rawLength int) ([]byte, error) {
	var h zstd.Header
	if err := h.Decode(payload); err != nil {
		return nil, corrupt("zstd header: %v", err)
	}
	switch {
	case h.Skippable || !h.HasFCS:
		return nil, corrupt("zstd frame does not declare its content size")
	case h.FrameContentSize > MaxRawLength:
		return nil, corrupt("zstd content size %d over the limit of %d", h.FrameContentSize, MaxRawLength)
	case rawLength < 0:
		rawLength = int(h.FrameContentSize)
	case h.FrameContentSize != uint64(rawLength):
		return nil, corrupt("zstd content size %d, want raw length %d", h.FrameContentSize, rawLength)
	}
	n := len(dst)
	dst = slices.Grow(dst, rawLength)
	// The capacity limit stops zstd at rawLength (within one block) even if
	// the frame holds more than it declares, or further frames follow.
	out, err := c.decodeAll(payload, dst[n:n:n+rawLength])
	if err != nil {
		return nil, corrupt("zstd: %v", err)
	}
	if len(out) != rawLength {
		return nil, corrupt("decompressed %d bytes, want %d", len(out), rawLength)
	}
	if rawLength > 0 && unsafe.SliceData(out) != unsafe.SliceData(dst[n:]) {
		copy(dst[n:n+rawLength], out)
	}
	return dst[:n+rawLength], nil
}

// Seal appends the stored form of an object (anything but a blob) to dst,
// compressing it when worthwhile. ad is one of the AD* constants. The
// plaintext must not overlap dst's spare capacity.
func (c *Codec) Seal(dst, plain []byte, ad string) ([]byte, error) {
	if len(plain) > MaxRawLength {
		return dst, &Error{Object: ad, Err: ErrTooLarge}
	}
	n, ov := len(dst), c.sealer.Overhead()
	dst = slices.Grow(dst, ov+1+len(plain))
	// Build header and body in place after the overhead, as Encode does.
	payload := dst[n+ov : n+ov+1 : n+ov+1+len(plain)]
	body, comp := c.compress(payload[1:1], plain)
	payload[0] = byte(comp)
	if comp == None || unsafe.SliceData(body) != unsafe.SliceData(payload[1:2]) {
		payload = append(payload, body...)
	} else {
		payload = payload[:1+len(body)]
	}
	return c.sealer.Seal(dst[:n], payload, []byte(ad)), nil
}

// Open appends the plaintext of an object sealed with Seal and the same ad to
// dst. On error it returns dst and an *Error.
func (c *Codec) Open(dst, sealed []byte, ad string) ([]byte, error) {
	out, err := c.open(dst, sealed, ad)
	if err != nil {
		return dst, &Error{Object: ad, Err: err}
	}
	return out, nil
}

func (c *Codec) open(dst, sealed []byte, ad string) ([]byte, error) {
	if len(sealed)-c.sealer.Overhead() > 1+MaxRawLength {
		return nil, corrupt("%d stored bytes exceed the object size limit", len(sealed))
	}
	buf := c.getScratch(len(sealed))
	defer c.putScratch(buf)
	payload, err := c.sealer.Open((*buf)[:0], sealed, []byte(ad))
	if err != nil {
		return nil, err
	}
	if len(payload) == 0 {
		return nil, corrupt("no compression header")
	}
	body := payload[1:]
	switch comp := Compression(payload[0]); comp {
	case None:
		return append(dst, body...), nil
	case Zstd:
		return c.decompress(dst, body, -1)
	default:
		return nil, corrupt("unknown %v", comp)
	}
}

// getScratch returns a pooled buffer with room for n bytes.
func (c *Codec) getScratch(n int) *[]byte {
	if b, _ := c.scratch.Get().(*[]byte); b != nil && cap(*b) >= n {
		return b
	}
	b := make([]byte, 0, n)
	return &b
}

func (c *Codec) putScratch(b *[]byte) {
	if cap(*b) <= maxPooledScratch {
		c.scratch.Put(b)
	}
}
