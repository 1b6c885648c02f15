package index

// The protocol between the process that holds the index (the holder) and
// the other processes of the repository (its clients), over a unix socket.
//
// Every message is a frame: a big-endian uint32 length, then that many
// bytes. A connection carries one request at a time, so that a slow scan
// never stalls a Lookup of another goroutine (that one takes another
// connection from the client's pool). A request is an op byte and its
// arguments; its reply is one frame that starts with stOK or stErr. A scan's
// reply is any number of stItem frames, each one item, then one stOK or
// stErr frame: items are written as the holder's iterator produces them, so
// neither side holds a whole scan. The first request on a connection is
// opHello, which checks the magic and the protocol version.
//
// Integers are big-endian and fixed width, IDs are 32 raw bytes, strings and
// byte slices are a uint32 length then the bytes. Locations, pack summaries
// and history values use their Pebble value encodings. Changing any of this,
// op numbers included, means bumping protocolVersion.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

const (
	protocolMagic   = "hsindex\x00"
	protocolVersion = 4
)

const (
	opHello           = 1
	opLookup          = 2
	opAddPack         = 3
	opAddSegment      = 4
	opMarkListed      = 5
	opHasSegment      = 6
	opHasPack         = 7
	opPack            = 8
	opPacks           = 9
	opUnlistedPacks   = 10
	opSegments        = 11
	opBlobs           = 12
	opSetRemote       = 13
	opOnRemote        = 14
	opPutSnapshot     = 15
	opDeleteSnapshot  = 16
	opSnapshots       = 17
	opPutHistory      = 18
	opHistory         = 19
	opHistoryChildren = 20
	opHistorySources  = 21
	opDeleteHistory   = 22
	opHistoryRows     = 23
	opDeleteRows      = 24
	opLookupLive      = 25
	opCondemn         = 26
	opUncondemn       = 27
	opBury            = 28
	opDropPack        = 29
	opCondemned       = 30
	opLookupMany      = 31
)

const (
	stOK   = 0
	stErr  = 1
	stItem = 2
)

const (
	// maxFrame bounds a frame's length before it is allocated. The largest
	// frames are AddSegment requests, about 80 bytes per blob.
	maxFrame = 1 << 30
	// keepBuffer is the largest buffer a connection keeps between frames, so
	// that one big AddSegment does not pin its memory for the process's life.
	keepBuffer = 1 << 20
)

// wire is one end of a connection.
type wire struct {
	c   net.Conn
	r   *bufio.Reader
	w   *bufio.Writer
	in  []byte
	out encoder
}

func newWire(c net.Conn) *wire {
	return &wire{c: c, r: bufio.NewReaderSize(c, 32<<10), w: bufio.NewWriterSize(c, 32<<10)}
}

// start resets the outgoing frame to begin with b (an op or a status).
func (w *wire) start(b byte) *encoder {
	if cap(w.out.b) > keepBuffer {
		w.out.b = nil
	}
	w.out.b = append(w.out.b[:0], b)
	return &w.out
}

// send writes the frame built since start, flushing it if flush is set.
func (w *wire) send(flush bool) error {
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(w.out.b)))
	if _, err := w.w.Write(h[:]); err != nil {
		return err
	}
	if _, err := w.w.Write(w.out.b); err != nil {
		return err
	}
	if !flush {
		return nil
	}
	return w.w.Flush()
}

// recv reads one frame. The frame is valid until the next recv.
func (w *wire) recv() ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(w.r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n == 0 || n > maxFrame {
		return nil, fmt.Errorf("index protocol: frame of %d bytes", n)
	}
	if cap(w.in) < int(n) {
		w.in = make([]byte, n)
	}
	p := w.in[:n]
	if n > keepBuffer {
		w.in = nil
	}
	if _, err := io.ReadFull(w.r, p); err != nil {
		return nil, err
	}
	return p, nil
}

type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)          { e.b = append(e.b, v) }
func (e *encoder) u32(v uint32)        { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64)        { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *encoder) id(v blob.ID)        { e.b = append(e.b, v[:]...) }
func (e *encoder) str(s string)        { e.u32(uint32(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bytes(p []byte)      { e.u32(uint32(len(p))); e.b = append(e.b, p...) }
func (e *encoder) location(l Location) { e.b = append(e.b, l.encode()...) }

func (e *encoder) bool(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

func (e *encoder) packInfo(p PackInfo) {
	e.id(p.ID)
	e.u64(uint64(p.Size))
	e.u32(p.Count)
}

func (e *encoder) blobEntry(b BlobEntry) {
	e.u8(uint8(b.Type))
	e.id(b.ID)
	e.location(b.Location)
}

func (e *encoder) blobEntries(bs []BlobEntry) {
	e.u32(uint32(len(bs)))
	for _, b := range bs {
		e.blobEntry(b)
	}
}

func (e *encoder) historyRow(r *HistoryRow) {
	e.str(r.Source)
	e.str(r.Path)
	e.u64(uint64(r.Time))
	e.id(r.Snapshot)
	e.b = r.appendValue(e.b)
}

var errShort = errors.New("index protocol: truncated message")

// decoder reads what an encoder wrote. The first error sticks, and reads
// after it return zero values, so a message is checked once, at end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = errShort
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u8() uint8 {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (d *decoder) id() (v blob.ID) {
	copy(v[:], d.take(blob.IDSize))
	return v
}

func (d *decoder) bool() bool { return d.u8() != 0 }

// bytes returns a slice of the frame: valid only until the next recv.
func (d *decoder) bytes() []byte { return d.take(int(d.u32())) }

func (d *decoder) str() string { return string(d.bytes()) }

// count reads a number of items of at least min bytes each; bounding it by
// the bytes left keeps a corrupt count from allocating gigabytes.
func (d *decoder) count(min int) int {
	n := int(d.u32())
	if d.err == nil && n > len(d.b)/min {
		d.err = errShort
		return 0
	}
	return n
}

func (d *decoder) fail(err error) {
	if d.err == nil && err != nil {
		d.err = err
	}
}

func (d *decoder) location() Location {
	l, err := decodeLocation(d.take(locationSize))
	d.fail(err)
	return l
}

func (d *decoder) packInfo() PackInfo {
	id := d.id()
	p := PackInfo{ID: id, Size: int64(d.u64()), Count: d.u32()}
	return p
}

func (d *decoder) blobEntry() BlobEntry {
	t := blob.Type(d.u8())
	id := d.id()
	return BlobEntry{Type: t, ID: id, Location: d.location()}
}

func (d *decoder) blobEntries() []BlobEntry {
	n := d.count(1 + blob.IDSize + locationSize)
	bs := make([]BlobEntry, n)
	for i := range bs {
		bs[i] = d.blobEntry()
	}
	return bs
}

func (d *decoder) historyRow() *HistoryRow {
	r := &HistoryRow{Source: d.str(), Path: d.str()}
	r.Time = int64(d.u64())
	r.Snapshot = d.id()
	d.fail(r.decodeValue(d.take(historyValueSize)))
	return r
}

// end reports a decoding error, or bytes nobody read: either means the
// two sides disagree about the message.
func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("index protocol: %d unexpected bytes", len(d.b))
	}
	return d.err
}
