package chunkstore

import (
	"context"
	"fmt"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore/lock"
)

// liveLocks lists the locks that condemned packs must wait for: not stale,
// not this prune's, not of processes that write no snapshots. It fails
// with ErrPruneRunning when another live lock has this prune's purpose.
func (p *pruner) liveLocks(ctx context.Context) ([]lock.Info, error) {
	all, err := lock.List(ctx, p.r.be)
	if err != nil {
		return nil, err
	}
	me := holderOf(p.o.Lock.Info())
	var live []lock.Info
	for _, l := range all {
		if stale, _ := lock.IsStale(l, p.o.LockOptions); stale || me.is(l) {
			continue
		}
		if l.Purpose == me.Purpose && l.Damaged == "" {
			return nil, fmt.Errorf("%w: %s@%s (pid %d), since %s", ErrPruneRunning, l.User, l.Host, l.PID, l.Created.Format(time.RFC3339))
		}
		if p.o.Ignore != nil && p.o.Ignore(l) {
			continue
		}
		live = append(live, l)
	}
	return live, nil
}

// ripeRecords returns the records whose packs may be settled now: every
// holder has ended. A record without holders (its prune was interrupted)
// gets the processes running now, which include every process that was
// running when it came into force and still is.
func (p *pruner) ripeRecords(ctx context.Context) ([]*record, error) {
	recs, err := p.r.listRecords(ctx)
	if err != nil {
		return nil, err
	}
	live, err := p.liveLocks(ctx)
	if err != nil {
		return nil, err
	}
	var ripe []*record
	waiting := map[holder]bool{}
	for _, s := range recs {
		if s.Orphan {
			if !p.o.DryRun {
				if err := p.r.removeRecord(ctx, s.ID); err != nil {
					return nil, err
				}
			}
			continue
		}
		var hs []holder
		if s.HasLocks {
			if hs, err = p.r.loadHolders(ctx, s.ID); err != nil {
				return nil, err
			}
		} else {
			if p.o.DryRun {
				continue
			}
			hs = holders(live)
			if err := p.r.saveHolders(ctx, s.ID, hs); err != nil {
				return nil, err
			}
		}
		rec, err := p.r.loadRecord(ctx, s.ID)
		if err != nil {
			return nil, err
		}
		running := runningHolders(hs, live)
		if len(running) == 0 {
			ripe = append(ripe, rec)
			continue
		}
		p.st.Waiting += len(rec.Packs)
		for _, h := range running {
			waiting[h] = true
		}
	}
	for h := range waiting {
		p.st.WaitingFor = append(p.st.WaitingFor, h.String())
	}
	return ripe, nil
}

func holders(live []lock.Info) []holder {
	hs := make([]holder, len(live))
	for i, l := range live {
		hs[i] = holderOf(l)
	}
	return hs
}

// runningHolders returns the holders that still hold a live lock.
func runningHolders(hs []holder, live []lock.Info) []holder {
	var out []holder
	for _, h := range hs {
		for _, l := range live {
			if h.is(l) {
				out = append(out, h)
				break
			}
		}
	}
	return out
}

func (h holder) String() string {
	if h.Object != "" {
		return "the process of unreadable lock " + h.Object
	}
	return fmt.Sprintf("%s on %s (pid %d), running since %s", h.Purpose, h.Host, h.PID, h.Created.Format(time.RFC3339))
}
