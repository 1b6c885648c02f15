package chunkstore

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/remote"
)

// Problem is one piece of damage found by a check. Pack and Blob are zero
// when they do not apply.
type Problem struct {
	Pack    blob.ID
	Blob    blob.ID
	Type    blob.Type
	Message string
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
	}
	return p.Message
}

// heldBy names the remotes a push recorded the pack on, and how to heal
// from one: a local repository that lost packs is repaired from there.
func (r *Repository) heldBy(remotes map[string]string, id blob.ID) string {
	var names []string
	for name := range remotes {
		if ok, err := r.idx.OnRemote(name, id); err == nil && ok {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return fmt.Sprintf("; remote %s holds it: hindsight repair --from %s", strings.Join(names, ", "), names[0])
}

// CheckPacks compares every indexed pack with the backend: it exists, has
// the indexed size, and its trailer lists exactly the indexed blobs. With
// readData it also reads every blob, decrypts it and checks its hash. It
// calls report for each problem and returns only errors that stop it.
func (r *Repository) CheckPacks(ctx context.Context, readData bool, progress func(done, total int), report func(Problem)) error {
	stored := make(map[blob.ID]int64)
	err := r.be.List(ctx, packsPrefix, func(fi remote.FileInfo) error {
		if id, err := idFromName(fi.Name); err == nil {
			stored[id] = fi.Size
		} else {
			report(Problem{Message: fmt.Sprintf("unexpected object %s", fi.Name)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	var packs []index.PackInfo
	if err := r.idx.Packs(func(p index.PackInfo) error { packs = append(packs, p); return nil }); err != nil {
		return err
	}
	remotes, err := r.Remotes(ctx)
	if err != nil {
		return err
	}
	for i, p := range packs {
		if err := ctx.Err(); err != nil {
			return err
		}
		size, ok := stored[p.ID]
		delete(stored, p.ID)
		switch {
		case !ok:
			report(Problem{Pack: p.ID, Message: "missing from the repository" + r.heldBy(remotes, p.ID)})
		case size != p.Size:
			report(Problem{Pack: p.ID, Message: fmt.Sprintf("size %d, index says %d", size, p.Size)})
		default:
			if err := r.checkPack(ctx, p, readData, report); err != nil {
				return err
			}
		}
		if progress != nil {
			progress(i+1, len(packs))
		}
	}
	for id := range stored {
		report(Problem{Pack: id, Harmless: true, Message: "not in the index (left by an interrupted backup; prune removes it, index rebuild adds it)"})
	}
	return nil
}

func (r *Repository) checkPack(ctx context.Context, p index.PackInfo, readData bool, report func(Problem)) error {
	entries, _, err := r.PackEntries(ctx, p.ID)
	if err != nil {
		report(Problem{Pack: p.ID, Message: fmt.Sprintf("unreadable trailer: %v", err)})
		return nil
	}
	if len(entries) != int(p.Count) {
		report(Problem{Pack: p.ID, Message: fmt.Sprintf("trailer lists %d blobs, index says %d", len(entries), p.Count)})
	}
	var buf []byte
	for _, e := range entries {
		loc, ok, err := r.idx.Lookup(e.Type, e.ID)
		if err != nil {
			return err
		}
		want := index.Location{Pack: p.ID, Offset: e.Offset, Length: e.Length, RawLength: e.RawLength, Compression: uint8(e.Compression)}
		switch {
		case !ok:
			report(Problem{Pack: p.ID, Blob: e.ID, Type: e.Type, Message: "in the trailer but not in the index"})
		case loc.Pack == p.ID && loc != want:
			report(Problem{Pack: p.ID, Blob: e.ID, Type: e.Type, Message: "trailer and index disagree on its place"})
		}
		if !readData {
			continue
		}
		if buf, err = r.loadAt(ctx, e.Type, e.ID, want, buf); err != nil {
			report(Problem{Pack: p.ID, Blob: e.ID, Type: e.Type, Message: err.Error()})
		}
	}
	return nil
}
