package chunkstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/chunkstore/lock"
	"github.com/hindsight-backup/hindsight/remote"
)

// A condemnation record lists packs that prune will delete once it is safe
// (see prune.go for why and when). It lives in the repository, not only in
// the index, so that it survives an index rebuild and reaches the index of
// every host that uses the repository:
//
//	condemned/<id>        sealed: version(1) time(8) count(uvarint) packID(32)...
//	condemned/<id>.locks  sealed JSON: the processes that held locks once
//	                      the record was in force, which must all end first
//
// <id> is 16 random bytes in hex. A record is written once and removed
// once every pack in it is deleted or pardoned; the locks object is
// written after it, so a record without one was interrupted before its
// holders were known, and gets them from the next prune.
const condemnedPrefix = "condemned/"

const (
	recordVersion  = 1
	locksSuffix    = ".locks"
	maxRecordPacks = 1 << 16 // ~2 MiB a record, whatever the repository's size
	adRecord       = "hindsight condemned v1 "
	adLocks        = "hindsight condemned locks v1 "
)

type record struct {
	ID    index.RecordID
	Time  time.Time
	Packs []blob.ID
}

func recordName(id index.RecordID) string { return condemnedPrefix + hex.EncodeToString(id[:]) }

func newRecordID() (index.RecordID, error) {
	var id index.RecordID
	_, err := rand.Read(id[:])
	return id, err
}

func (r *Repository) saveRecord(ctx context.Context, rec *record) error {
	b := []byte{recordVersion}
	b = binary.BigEndian.AppendUint64(b, uint64(rec.Time.UnixNano()))
	b = binary.AppendUvarint(b, uint64(len(rec.Packs)))
	for _, p := range rec.Packs {
		b = append(b, p[:]...)
	}
	return r.saveSealed(ctx, recordName(rec.ID), adRecord, rec.ID, b)
}

func (r *Repository) saveSealed(ctx context.Context, name, ad string, id index.RecordID, plain []byte) error {
	sealed, err := r.codec.Seal(nil, plain, ad+hex.EncodeToString(id[:]))
	if err != nil {
		return err
	}
	if err := saveBytes(ctx, r.be, name, sealed); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func (r *Repository) loadSealed(ctx context.Context, name, ad string, id index.RecordID) ([]byte, error) {
	b, err := loadAll(ctx, r.be, name)
	if err != nil {
		return nil, err
	}
	plain, err := r.codec.Open(nil, b, ad+hex.EncodeToString(id[:]))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrCorrupt, err)
	}
	return plain, nil
}

func (r *Repository) loadRecord(ctx context.Context, id index.RecordID) (*record, error) {
	name := recordName(id)
	b, err := r.loadSealed(ctx, name, adRecord, id)
	if err != nil {
		return nil, err
	}
	if len(b) < 9 || b[0] != recordVersion {
		return nil, fmt.Errorf("%s: %w: unknown version", name, ErrCorrupt)
	}
	rec := &record{ID: id, Time: time.Unix(0, int64(binary.BigEndian.Uint64(b[1:])))}
	n, k := binary.Uvarint(b[9:])
	rest := b[9:]
	if k <= 0 || uint64(len(rest)-k) != n*blob.IDSize {
		return nil, fmt.Errorf("%s: %w: truncated", name, ErrCorrupt)
	}
	rest = rest[k:]
	rec.Packs = make([]blob.ID, n)
	for i := range rec.Packs {
		copy(rec.Packs[i][:], rest[i*blob.IDSize:])
	}
	return rec, nil
}

// holder is a process whose lock existed once a record was in force. Lock
// objects get a new name at each heartbeat, so a holder is known by what
// stays: host, PID and creation time; a damaged lock, by its object.
type holder struct {
	Host    string    `json:"host,omitempty"`
	PID     int       `json:"pid,omitempty"`
	Created time.Time `json:"created"`
	Purpose string    `json:"purpose,omitempty"`
	Object  string    `json:"object,omitempty"` // damaged locks only
}

func holderOf(l lock.Info) holder {
	if l.Damaged != "" {
		return holder{Object: l.ID}
	}
	return holder{Host: l.Host, PID: l.PID, Created: l.Created, Purpose: l.Purpose}
}

func (h holder) is(l lock.Info) bool {
	if h.Object != "" || l.Damaged != "" {
		return h.Object == l.ID
	}
	return h.Host == l.Host && h.PID == l.PID && h.Created.Equal(l.Created)
}

func (r *Repository) saveHolders(ctx context.Context, id index.RecordID, hs []holder) error {
	b, err := json.Marshal(hs)
	if err != nil {
		return err
	}
	return r.saveSealed(ctx, recordName(id)+locksSuffix, adLocks, id, b)
}

func (r *Repository) loadHolders(ctx context.Context, id index.RecordID) ([]holder, error) {
	name := recordName(id) + locksSuffix
	b, err := r.loadSealed(ctx, name, adLocks, id)
	if err != nil {
		return nil, err
	}
	var hs []holder
	if err := json.Unmarshal(b, &hs); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrCorrupt, err)
	}
	return hs, nil
}

// recordState is one record as the listing shows it.
type recordState struct {
	ID       index.RecordID
	HasLocks bool
	// Orphan marks a locks object whose record is gone: an interrupted
	// removeRecord left it, and the next prune removes it.
	Orphan bool
}

// listRecords lists the condemnation records in the repository.
func (r *Repository) listRecords(ctx context.Context) ([]recordState, error) {
	seen := map[index.RecordID]*recordState{}
	var ids []index.RecordID
	err := r.be.List(ctx, condemnedPrefix, func(fi remote.FileInfo) error {
		name, locks := strings.CutSuffix(strings.TrimPrefix(fi.Name, condemnedPrefix), locksSuffix)
		var id index.RecordID
		if b, err := hex.DecodeString(name); err != nil || len(b) != len(id) {
			return nil // not ours; check reports it
		} else {
			copy(id[:], b)
		}
		s := seen[id]
		if s == nil {
			s = &recordState{ID: id, Orphan: true}
			seen[id] = s
			ids = append(ids, id)
		}
		if locks {
			s.HasLocks = true
		} else {
			s.Orphan = false
		}
		return nil
	})
	out := make([]recordState, len(ids))
	for i, id := range ids {
		out[i] = *seen[id]
	}
	return out, err
}

// removeRecord deletes a record, its locks object last: a record without
// locks would be given fresh holders, while locks without a record are
// only garbage.
func (r *Repository) removeRecord(ctx context.Context, id index.RecordID) error {
	for _, name := range []string{recordName(id), recordName(id) + locksSuffix} {
		if err := r.be.Remove(ctx, name); err != nil && !remote.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// applyRecords brings idx into line with the records in the repository:
// every pack a record lists is condemned in the index, and a condemnation
// whose record is gone is lifted (the pack was pardoned) or turned into a
// tombstone (the pack was deleted, by another host if this index is a
// cache of a shared remote). Every process runs it when it opens the
// index, after taking its lock: from then on, it never deduplicates
// against a pack a record existing at that moment condemns.
func (r *Repository) applyRecords(ctx context.Context, idx index.Store) error {
	// The index first, the records second: a record is durable before any
	// index condemns a pack in its name, so every condemnation read here
	// either has its record in the listing or was settled since, and a
	// fresh condemnation is never taken for a stale one.
	inIndex := map[blob.ID]index.Condemnation{}
	if err := idx.Condemned(func(c index.Condemnation) error { inIndex[c.Pack] = c; return nil }); err != nil {
		return err
	}
	recs, err := r.listRecords(ctx)
	if err != nil {
		return err
	}
	if len(recs) == 0 && len(inIndex) == 0 {
		return nil
	}
	present := map[index.RecordID]bool{}
	for _, s := range recs {
		present[s.ID] = !s.Orphan
	}
	for _, s := range recs {
		if s.Orphan {
			continue
		}
		rec, err := r.loadRecord(ctx, s.ID)
		if remote.IsNotExist(err) {
			continue // removed since the listing
		}
		if err != nil {
			return err
		}
		var todo []blob.ID
		for _, p := range rec.Packs {
			if c, ok := inIndex[p]; !ok || (!c.Gone && !present[c.Record]) {
				todo = append(todo, p)
				inIndex[p] = index.Condemnation{Pack: p, Record: rec.ID}
			}
		}
		if len(todo) > 0 {
			if err := idx.Condemn(rec.ID, todo); err != nil {
				return err
			}
		}
	}
	for _, c := range inIndex {
		if c.Gone || present[c.Record] {
			continue
		}
		if err := r.settle(ctx, idx, c); err != nil {
			return err
		}
	}
	return nil
}

// settle lifts or buries a condemnation whose record is gone.
func (r *Repository) settle(ctx context.Context, idx index.Store, c index.Condemnation) error {
	_, err := r.be.Stat(ctx, packName(c.Pack))
	switch {
	case err == nil:
		return idx.Uncondemn(c.Record, c.Pack)
	case remote.IsNotExist(err):
		return idx.Bury(c.Record, c.Pack)
	}
	return err
}

// errStop ends a scan early; it never escapes the function that uses it.
var errStop = errors.New("stop")

// Condemning reports whether the index holds a condemned pack that still
// exists. Backups ask before they reuse a parent snapshot's content lists
// without looking each blob up: while it is true, they must look them up
// (see snapshot.Backup and prune.go).
func (r *Repository) Condemning() (bool, error) {
	found := false
	err := r.idx.Condemned(func(c index.Condemnation) error {
		if c.Gone {
			return nil
		}
		found = true
		return errStop
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return found, err
}
