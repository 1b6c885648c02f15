package chunkstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/remote"
)

// PushOptions tune Push.
type PushOptions struct {
	// Remote names the destination in the index, which records the packs
	// it is known to hold ("r" keys). Required.
	Remote string
	// Jobs is how many objects are checked or uploaded at once. Default 4.
	Jobs int
	// Progress, if set, is called about every ProgressInterval (default
	// 1s) and once when each phase ends, from one goroutine at a time.
	Progress         func(PushProgress)
	ProgressInterval time.Duration
	// Logger receives a warning for each pack the index said the remote
	// held that it no longer does. Default slog.Default().
	Logger *slog.Logger
}

// PushPhase is the step Push is at; they run in this order.
type PushPhase int

const (
	PushChecking  PushPhase = iota // find which packs the remote holds
	PushPacks                      // upload the missing packs
	PushSegments                   // then the index segments that list them
	PushSnapshots                  // then, last, the snapshot records
	PushDone
)

func (p PushPhase) String() string {
	return [...]string{"checking", "packs", "index segments", "snapshots", "done"}[p]
}

// PushProgress is a snapshot of a running Push.
type PushProgress struct {
	Phase        PushPhase
	PacksChecked int   // packs whose presence on the remote is known
	PacksPresent int   // of those, already there
	Packs        int   // packs the index knows
	PacksToSend  int   // missing packs found so far
	PacksSent    int   // of those, uploaded
	BytesToSend  int64 // size of the missing packs
	BytesSent    int64 // bytes of them read for upload so far
	Elapsed      time.Duration
	// SendElapsed is the time spent in the upload phases: the base of a
	// transfer rate, and so of an ETA.
	SendElapsed time.Duration
}

// ETA estimates the time left for the pack uploads from the rate so far;
// ok is false until there is a rate to go by.
func (p PushProgress) ETA() (eta time.Duration, ok bool) {
	if p.BytesSent <= 0 || p.SendElapsed <= 0 || p.Phase > PushPacks {
		return 0, false
	}
	rate := float64(p.BytesSent) / p.SendElapsed.Seconds()
	return time.Duration(float64(p.BytesToSend-p.BytesSent) / rate * float64(time.Second)), true
}

// PushStats say what one Push did.
type PushStats struct {
	Packs, PacksPresent, PacksSent int
	BytesSent                      int64
	SegmentsSent, SnapshotsSent    int
	// Lost counts packs the index recorded as on the remote that the
	// remote no longer had; they were sent again.
	Lost int
}

// RemoteMismatchError says the destination already holds a different
// repository: pushing into it would mix two repositories' objects.
type RemoteMismatchError struct {
	Location string
	ID       string // the remote's repository ID, "" if its config is unreadable
}

func (e *RemoteMismatchError) Error() string {
	if e.ID == "" {
		return fmt.Sprintf("%s holds a config file that is not this repository's", e.Location)
	}
	return fmt.Sprintf("%s holds another repository (ID %s)", e.Location, e.ID)
}

// Push copies to dst what it lacks of this repository, in the durability
// order, so that dst is a consistent repository at every moment: config
// and keys (a repository with no snapshots), then packs, then the index
// segments listing them, then the snapshot records, last.
//
// It may run while backups write to the repository. Snapshots are listed
// before segments, and segments before the index's packs: a snapshot
// exists only once its segments do, and a segment only once its packs are
// in the index, so everything a listed snapshot needs is in the lists
// made after it. What a backup adds later waits for the next push.
//
// Push resumes: every pack is checked against a listing of dst (a Stat of
// all objects at once), present ones are recorded in the index and never
// sent again, and the index's record of what dst holds is trusted only
// once the listing confirms it. It never deletes.
func (r *Repository) Push(ctx context.Context, dst remote.Backend, o PushOptions) (PushStats, error) {
	if o.Remote == "" {
		return PushStats{}, errors.New("push: no remote name")
	}
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	p := &pusher{r: r, dst: dst, o: o, start: time.Now()}
	stop := p.reportProgress()
	defer stop()
	err := p.run(ctx)
	return p.stats(), err
}

type pusher struct {
	r     *Repository
	dst   remote.Backend
	o     PushOptions
	start time.Time

	emitMu sync.Mutex
	have   map[string]int64 // the remote's objects and sizes when the push began

	phase                                   atomic.Int32
	sendStart                               atomic.Int64 // UnixNano when PushPacks began
	packs, checked, present                 atomic.Int64
	toSend, sent, lost, segments, snapshots atomic.Int64
	bytesToSend, bytesSent                  atomic.Int64
	vanished                                atomic.Int64 // objects listed, then removed
}

// copyReplacements sends the segments written since the listing segs
// whose packs dst now holds all: prune replaces a segment that lists a
// pack it deletes by one listing the rest, and the snapshots about to be
// sent may need those. A segment listing a pack dst lacks (one a backup
// wrote during this push) waits for the next push.
func (p *pusher) copyReplacements(ctx context.Context, segs []remote.FileInfo, sent []index.PackInfo) error {
	listed := make(map[string]bool, len(segs))
	for _, fi := range segs {
		listed[fi.Name] = true
	}
	onDst := make(map[blob.ID]bool, len(sent))
	for _, pi := range sent {
		onDst[pi.ID] = true
	}
	now, err := listObjects(ctx, p.r.be, segmentsPrefix)
	if err != nil {
		return err
	}
	for _, fi := range now {
		id, err := idFromName(fi.Name)
		if err != nil || listed[fi.Name] || p.holds(fi.Name, fi.Size) {
			continue
		}
		packs, err := p.r.LoadSegment(ctx, id)
		if err != nil {
			return err
		}
		whole := true
		for _, sp := range packs {
			whole = whole && (onDst[sp.ID] || p.holds(packName(sp.ID), sp.Size))
		}
		if whole {
			if err := p.copyCounted(&p.segments)(ctx, fi); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *pusher) run(ctx context.Context) error {
	// One listing stands for a Stat of every object: a request per
	// thousand objects instead of one per object, which is what makes
	// resuming a large push cheap. The remote only gains objects while we
	// run: the caller holds a shared lock there, which keeps prune out.
	listed, err := listObjects(ctx, p.dst, "")
	if err != nil {
		return err
	}
	p.have = make(map[string]int64, len(listed))
	for _, fi := range listed {
		p.have[fi.Name] = fi.Size
	}
	if err := p.claim(ctx); err != nil {
		return err
	}
	snaps, err := listObjects(ctx, p.r.be, snapshotsPrefix)
	if err != nil {
		return err
	}
	segs, err := listObjects(ctx, p.r.be, segmentsPrefix)
	if err != nil {
		return err
	}
	var packs []index.PackInfo
	if err := p.r.idx.Packs(func(pi index.PackInfo) error {
		packs = append(packs, pi)
		return nil
	}); err != nil {
		return err
	}
	p.packs.Store(int64(len(packs)))
	missing, err := p.check(packs)
	if err != nil {
		return err
	}
	p.setPhase(PushPacks)
	p.sendStart.Store(time.Now().UnixNano())
	if err := parallel(ctx, p.o.Jobs, missing, p.sendPack); err != nil {
		return err
	}
	p.setPhase(PushSegments)
	if err := parallel(ctx, p.o.Jobs, segs, p.copyCounted(&p.segments)); err != nil {
		return err
	}
	if p.vanished.Load() > 0 {
		if err := p.copyReplacements(ctx, segs, missing); err != nil {
			return err
		}
	}
	p.setPhase(PushSnapshots)
	if err := parallel(ctx, p.o.Jobs, snaps, p.copyCounted(&p.snapshots)); err != nil {
		return err
	}
	p.setPhase(PushDone)
	return nil
}

// claim makes dst this repository's: it refuses a destination holding
// another repository, and copies the key files, then the config, so that
// a config on dst always comes with the keys that open it.
func (p *pusher) claim(ctx context.Context) error {
	mine, err := loadAll(ctx, p.r.be, configName)
	if err != nil {
		return err
	}
	theirs, err := loadAll(ctx, p.dst, configName)
	switch {
	case remote.IsNotExist(err):
		theirs = nil
	case err != nil:
		return err
	case !bytes.Equal(mine, theirs):
		mismatch := &RemoteMismatchError{Location: p.dst.Location()}
		if env, _, derr := decodeEnvelope(theirs); derr == nil {
			mismatch.ID = env.ID
		}
		return mismatch
	}
	keys, err := listObjects(ctx, p.r.be, keysPrefix)
	if err != nil {
		return err
	}
	var discard atomic.Int64
	if err := parallel(ctx, p.o.Jobs, keys, p.copyCounted(&discard)); err != nil {
		return err
	}
	if theirs != nil {
		return nil
	}
	return saveBytes(ctx, p.dst, configName, mine)
}

// check Stats every pack on dst and returns those it lacks. Packs found
// there are recorded in the index; a pack the index recorded but dst lost
// is logged and sent again.
func (p *pusher) check(packs []index.PackInfo) ([]index.PackInfo, error) {
	var missing []index.PackInfo
	for _, pi := range packs {
		have := p.holds(packName(pi.ID), pi.Size)
		recorded, err := p.r.idx.OnRemote(p.o.Remote, pi.ID)
		if err != nil {
			return nil, err
		}
		switch {
		case have && !recorded:
			// Uploaded by a push that was killed before recording it.
			if err := p.r.idx.SetRemote(p.o.Remote, pi.ID); err != nil {
				return nil, err
			}
		case !have && recorded:
			p.lost.Add(1)
			p.o.Logger.Warn("the remote lost a pack it held; sending it again", "remote", p.o.Remote, "pack", pi.ID.String())
		}
		if have {
			p.present.Add(1)
		} else {
			missing = append(missing, pi)
			p.toSend.Add(1)
			p.bytesToSend.Add(pi.Size)
		}
		p.checked.Add(1)
	}
	return missing, nil
}

// holds reports whether the listing of dst shows name whole, with the
// given size. An object of another size is not ours (a foreign file, or a
// store that kept a torn upload), and is replaced.
func (p *pusher) holds(name string, size int64) bool {
	got, ok := p.have[name]
	return ok && got == size
}

func (p *pusher) sendPack(ctx context.Context, pi index.PackInfo) error {
	name := packName(pi.ID)
	var read atomic.Int64
	src := remote.CountFirstReads(backendReaderAt{ctx, p.r.be, name}, func(n int64) error {
		read.Add(n)
		p.bytesSent.Add(n)
		return nil
	})
	if err := p.dst.Save(ctx, name, src, pi.Size); err != nil {
		// A pack prune deleted since the listing: it is out of the index
		// before it is out of the repository, and no snapshot needs it.
		if known, ierr := p.r.idx.HasPack(pi.ID); ierr == nil && !known {
			p.o.Logger.Debug("push: pack deleted by prune meanwhile", "pack", pi.ID.String())
			return nil
		}
		return fmt.Errorf("push %s: %w", name, err)
	}
	// Count what the upload did not read (an empty pack, a source read
	// short of the end), so that BytesSent ends at BytesToSend.
	p.bytesSent.Add(pi.Size - read.Load())
	p.sent.Add(1)
	// NoSync: a record lost in a crash is rebuilt by the next check.
	return p.r.idx.SetRemote(p.o.Remote, pi.ID)
}

// copyCounted returns a function that copies a small object to dst unless
// dst already has it, counting the copies in n.
func (p *pusher) copyCounted(n *atomic.Int64) func(context.Context, remote.FileInfo) error {
	return func(ctx context.Context, fi remote.FileInfo) error {
		if p.holds(fi.Name, fi.Size) {
			return nil
		}
		b, err := loadAll(ctx, p.r.be, fi.Name)
		if remote.IsNotExist(err) && !strings.HasPrefix(fi.Name, keysPrefix) {
			// A segment prune replaced (copyReplacements sends its
			// successor), or a snapshot forgotten since the listing.
			p.vanished.Add(1)
			return nil
		}
		if err != nil {
			return err
		}
		if err := saveBytes(ctx, p.dst, fi.Name, b); err != nil {
			return fmt.Errorf("push %s: %w", fi.Name, err)
		}
		n.Add(1)
		return nil
	}
}

func listObjects(ctx context.Context, be remote.Backend, prefix string) ([]remote.FileInfo, error) {
	var out []remote.FileInfo
	err := be.List(ctx, prefix, func(fi remote.FileInfo) error {
		out = append(out, fi)
		return nil
	})
	return out, err
}

// parallel runs fn on every item, at most jobs at once, and returns the
// first error, after which the rest are not started.
func parallel[T any](ctx context.Context, jobs int, items []T, fn func(context.Context, T) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, it := range items {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, it) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

func (p *pusher) setPhase(ph PushPhase) {
	p.phase.Store(int32(ph))
	p.o.Logger.Debug("push", "phase", ph.String())
	p.emit()
}

func (p *pusher) progress() PushProgress {
	pr := PushProgress{
		Phase:        PushPhase(p.phase.Load()),
		Packs:        int(p.packs.Load()),
		PacksChecked: int(p.checked.Load()),
		PacksPresent: int(p.present.Load()),
		PacksToSend:  int(p.toSend.Load()),
		PacksSent:    int(p.sent.Load()),
		BytesToSend:  p.bytesToSend.Load(),
		BytesSent:    p.bytesSent.Load(),
		Elapsed:      time.Since(p.start),
	}
	if s := p.sendStart.Load(); s != 0 {
		pr.SendElapsed = time.Since(time.Unix(0, s))
	}
	return pr
}

// emit calls Progress; the ticker and phase changes both emit, and the
// caller was promised one call at a time.
func (p *pusher) emit() {
	if p.o.Progress == nil {
		return
	}
	p.emitMu.Lock()
	defer p.emitMu.Unlock()
	p.o.Progress(p.progress())
}

// reportProgress calls Progress every interval until the returned stop
// function runs.
func (p *pusher) reportProgress() (stop func()) {
	if p.o.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(p.o.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p.emit()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

func (p *pusher) stats() PushStats {
	return PushStats{
		Packs:         int(p.packs.Load()),
		PacksPresent:  int(p.present.Load()),
		PacksSent:     int(p.sent.Load()),
		BytesSent:     p.bytesSent.Load(),
		SegmentsSent:  int(p.segments.Load()),
		SnapshotsSent: int(p.snapshots.Load()),
		Lost:          int(p.lost.Load()),
	}
}
