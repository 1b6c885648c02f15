package chunkstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/codec"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/chunkstore/pack"
	"github.com/hindsight-backup/hindsight/remote"
)

// Problem is one finding of a check. Pack, Blob and Segment are zero when
// they do not apply; a problem with none of them is about the index as a
// whole.
type Problem struct {
	Pack    blob.ID
	Blob    blob.ID
	Segment blob.ID
	Type    blob.Type
	Message string
	// Remotes are the remotes a push recorded the pack on: where a repair
	// of a pack problem may fetch it from.
	Remotes []string
	// IndexOnly marks a disagreement between the index and a pack's
	// trailer: the bytes are sound, and 'repair index' rebuilds the index.
	IndexOnly bool
	// Harmless marks findings that lose nothing, such as a pack left by an
	// interrupted backup that no snapshot references.
	Harmless bool
}

func (p Problem) String() string {
	switch {
	case !p.Blob.IsZero():
		return fmt.Sprintf("pack %s: %s blob %s: %s", p.Pack, p.Type, p.Blob, p.Message)
	case !p.Pack.IsZero():
		return fmt.Sprintf("pack %s: %s", p.Pack, p.Message)
	case !p.Segment.IsZero():
		return fmt.Sprintf("index segment %s: %s", p.Segment, p.Message)
	}
	return p.Message
}

// CheckOptions say how much CheckPacks reads.
type CheckOptions struct {
	// ReadData chooses the packs that are read whole: each blob decrypted
	// and hashed, and all the pack's bytes hashed against its name. The
	// zero Subset reads only trailers.
	ReadData Subset
	// Jobs is how many packs are checked at once. Default 2: enough to
	// keep a remote busy while a blob is decrypted.
	Jobs int
	// Progress, if set, is called after each pack, from one goroutine at
	// a time.
	Progress func(CheckProgress)
}

// CheckProgress counts the packs checked and the bytes of the packs read
// whole, which is where a check with data spends its time.
type CheckProgress struct {
	Packs, PacksTotal int
	PacksRead         int // of Packs, those read whole
	Read, ReadTotal   int64
}

// CheckPacks compares every indexed pack with the backend: it exists, has
// the indexed size, and its trailer lists exactly the indexed blobs. The
// packs o.ReadData chooses are also read whole. It calls report for each
// problem, from one goroutine at a time, and returns only errors that
// stop it.
func (r *Repository) CheckPacks(ctx context.Context, o CheckOptions, report func(Problem)) error {
	c := &packChecker{r: r, o: o, report: report}
	var err error
	if c.stored, err = r.storedPacks(ctx, c.problem); err != nil {
		return err
	}
	var packs []index.PackInfo
	if err := r.idx.Packs(func(p index.PackInfo) error { packs = append(packs, p); return nil }); err != nil {
		return err
	}
	ids := make([]blob.ID, len(packs))
	for i, p := range packs {
		ids[i] = p.ID
	}
	c.read = o.ReadData.pick(ids)
	c.prog.PacksTotal = len(packs)
	for _, p := range packs {
		if c.read[p.ID] {
			c.prog.ReadTotal += p.Size
		}
	}
	if c.remotes, err = r.Remotes(ctx); err != nil {
		return err
	}
	if o.Jobs <= 0 {
		o.Jobs = 2
	}
	if err := parallel(ctx, o.Jobs, packs, c.check); err != nil {
		return err
	}
	indexed := make(map[blob.ID]bool, len(ids))
	for _, id := range ids {
		indexed[id] = true
	}
	for id := range c.stored {
		if !indexed[id] {
			c.problem(Problem{Pack: id, Harmless: true, Message: "not in the index (left by an interrupted backup; prune removes it, index rebuild adds it)"})
		}
	}
	return nil
}

// storedPacks lists the packs in the backend with their sizes.
func (r *Repository) storedPacks(ctx context.Context, report func(Problem)) (map[blob.ID]int64, error) {
	stored := make(map[blob.ID]int64)
	err := r.be.List(ctx, packsPrefix, func(fi remote.FileInfo) error {
		if id, err := idFromName(fi.Name); err == nil {
			stored[id] = fi.Size
		} else {
			report(Problem{Harmless: true, Message: fmt.Sprintf("unexpected object %s", fi.Name)})
		}
		return nil
	})
	return stored, err
}

type packChecker struct {
	r       *Repository
	o       CheckOptions
	stored  map[blob.ID]int64
	read    map[blob.ID]bool
	remotes map[string]string

	mu     sync.Mutex
	report func(Problem)
	prog   CheckProgress
}

func (c *packChecker) problem(p Problem) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.report(p)
}

// damaged reports damage to a pack's bytes, which a replica's copy heals:
// it names the remotes that hold the pack, and how to fetch it.
func (c *packChecker) damaged(p Problem) {
	p.Remotes = c.r.heldBy(c.remotes, p.Pack)
	if len(p.Remotes) > 0 {
		p.Message += fmt.Sprintf("; remote %s holds it: hindsight repair packs --from %s", strings.Join(p.Remotes, ", "), p.Remotes[0])
	}
	c.problem(p)
}

func (c *packChecker) check(ctx context.Context, p index.PackInfo) error {
	size, ok := c.stored[p.ID]
	whole := false
	switch {
	case !ok:
		c.damaged(Problem{Pack: p.ID, Message: "missing from the repository"})
	case size != p.Size:
		c.damaged(Problem{Pack: p.ID, Message: fmt.Sprintf("size %d, index says %d", size, p.Size)})
	default:
		var err error
		if whole, err = c.checkPack(ctx, p); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prog.Packs++
	if whole {
		c.prog.PacksRead++
	}
	if c.read[p.ID] {
		c.prog.Read += p.Size
	}
	if c.o.Progress != nil {
		c.o.Progress(c.prog)
	}
	return nil
}

// checkPack compares the trailer with the index and, if chosen, reads the
// pack whole; read says whether it did.
func (c *packChecker) checkPack(ctx context.Context, p index.PackInfo) (read bool, err error) {
	entries, _, err := c.r.PackEntries(ctx, p.ID)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		c.damaged(Problem{Pack: p.ID, Message: fmt.Sprintf("unreadable trailer: %v", unwrapCorrupt(err))})
		return false, nil
	}
	if len(entries) != int(p.Count) {
		c.problem(Problem{Pack: p.ID, IndexOnly: true, Message: fmt.Sprintf("trailer lists %d blobs, index says %d", len(entries), p.Count)})
	}
	for _, e := range entries {
		loc, ok, err := c.r.idx.Lookup(e.Type, e.ID)
		if err != nil {
			return false, err
		}
		want := index.Location{Pack: p.ID, Offset: e.Offset, Length: e.Length, RawLength: e.RawLength, Compression: uint8(e.Compression)}
		switch {
		case !ok:
			c.problem(Problem{Pack: p.ID, Blob: e.ID, Type: e.Type, IndexOnly: true, Message: "in the trailer but not in the index"})
		case loc.Pack == p.ID && loc != want:
			c.problem(Problem{Pack: p.ID, Blob: e.ID, Type: e.Type, IndexOnly: true, Message: "trailer and index disagree on its place"})
		}
	}
	if !c.read[p.ID] {
		return false, nil
	}
	return true, c.readData(ctx, p.ID, entries)
}

// readData reads a pack whole. A damaged blob is reported as itself, so
// that only the files that use it are named; a pack whose blobs are all
// sound but whose bytes still do not hash to its name is damaged
// elsewhere, and reported as a whole.
func (c *packChecker) readData(ctx context.Context, id blob.ID, entries []pack.Entry) error {
	var buf []byte
	bad := 0
	_, intact, err := readPack(ctx, c.r.be, id, entries, func(e pack.Entry, stored []byte) {
		plain, err := c.r.decodeStored(id, e.Type, e.ID, e.Compression, int(e.RawLength), stored, buf, true)
		if err != nil {
			bad++
			c.damaged(Problem{Pack: id, Blob: e.ID, Type: e.Type, Message: unwrapCorrupt(err).Error()})
			return
		}
		buf = plain
	})
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		c.damaged(Problem{Pack: id, Message: fmt.Sprintf("unreadable: %v", unwrapCorrupt(err))})
	case !intact && bad == 0:
		c.damaged(Problem{Pack: id, Message: "its bytes do not hash to its name, though every blob reads back"})
	}
	return nil
}

// unwrapCorrupt drops the "pack X is corrupt" and "blob Y" wrappings of
// err, for a message that names pack and blob already.
func unwrapCorrupt(err error) error {
	if ce, ok := errors.AsType[*CorruptPackError](err); ok {
		err = ce.Err
	}
	if ce, ok := errors.AsType[*codec.Error](err); ok {
		err = ce.Err
	}
	return err
}

// heldBy names the remotes a push recorded pack id on.
func (r *Repository) heldBy(remotes map[string]string, id blob.ID) []string {
	var names []string
	for name := range remotes {
		if ok, err := r.idx.OnRemote(name, id); err == nil && ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}
