package chunkstore

import (
	"context"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// condemn writes the records for packs and condemns them in the index,
// then lists the processes they must outlive. Records whose packs need
// wait for nobody are settled at once, after marking the snapshots
// written since the mark.
func (p *pruner) condemn(ctx context.Context, packs []blob.ID) error {
	var ripe []*record
	for len(packs) > 0 {
		n := min(len(packs), maxRecordPacks)
		rec, wait, err := p.condemnRecord(ctx, packs[:n])
		if err != nil {
			return err
		}
		if !wait {
			ripe = append(ripe, rec)
		}
		packs = packs[n:]
	}
	if len(ripe) == 0 {
		return nil
	}
	p.step("remark")
	if err := p.markSnapshots(ctx); err != nil {
		return err
	}
	return p.settle(ctx, ripe)
}

// condemnRecord makes one record durable, condemns its packs in this
// process's index (step 1 of the argument in prune.go), and only then
// lists the locks (step 2).
func (p *pruner) condemnRecord(ctx context.Context, packs []blob.ID) (rec *record, wait bool, err error) {
	id, err := newRecordID()
	if err != nil {
		return nil, false, err
	}
	rec = &record{ID: id, Time: time.Now(), Packs: packs}
	p.step("record")
	if err := p.r.saveRecord(ctx, rec); err != nil {
		return nil, false, err
	}
	p.step("condemn")
	if err := p.r.idx.Condemn(id, packs); err != nil {
		return nil, false, err
	}
	p.st.Condemned += len(packs)
	live, err := p.liveLocks(ctx)
	if err != nil {
		return nil, false, err
	}
	p.step("holders")
	if err := p.r.saveHolders(ctx, id, holders(live)); err != nil {
		return nil, false, err
	}
	if len(live) == 0 {
		return rec, false, nil
	}
	p.st.Waiting += len(packs)
	seen := map[string]bool{}
	for _, w := range p.st.WaitingFor {
		seen[w] = true
	}
	for _, h := range holders(live) {
		if s := h.String(); !seen[s] {
			seen[s] = true
			p.st.WaitingFor = append(p.st.WaitingFor, s)
		}
	}
	return rec, true, nil
}
