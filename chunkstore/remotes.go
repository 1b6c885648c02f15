package chunkstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/remote"
)

// remotesName is the object listing a repository's push destinations. It
// lives in the repository rather than in a per-user config file, so that
// the list moves with the repository and matches the index's "r" records,
// which are keyed by the same names. It is plain JSON, not sealed: it
// holds URLs only (credentials come from the environment), and it is
// never pushed, since a remote has no remotes of its own.
const remotesName = "remotes.json"

// ErrNoRemote is returned (wrapped) for a remote name that is not
// configured.
var ErrNoRemote = errors.New("no such remote")

var remoteNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)

type remotesFile struct {
	Version int               `json:"version"`
	Remotes map[string]string `json:"remotes"` // name → URL
}

// Remotes returns the configured remotes, name → URL.
func (r *Repository) Remotes(ctx context.Context) (map[string]string, error) {
	b, err := loadAll(ctx, r.be, remotesName)
	if remote.IsNotExist(err) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeRemotes(b)
}

func decodeRemotes(b []byte) (map[string]string, error) {
	var f remotesFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", remotesName, err)
	}
	if f.Remotes == nil {
		f.Remotes = map[string]string{}
	}
	return f.Remotes, nil
}

func encodeRemotes(all map[string]string) ([]byte, error) {
	b, err := json.MarshalIndent(remotesFile{Version: 1, Remotes: all}, "", "  ")
	return append(b, '\n'), err
}

// Remote returns the URL of the named remote.
func (r *Repository) Remote(ctx context.Context, name string) (string, error) {
	all, err := r.Remotes(ctx)
	if err != nil {
		return "", err
	}
	url, ok := all[name]
	if !ok {
		known := slices.Sorted(maps.Keys(all))
		return "", fmt.Errorf("%w %q (configured: %v; add one with 'hindsight remote add')", ErrNoRemote, name, known)
	}
	return url, nil
}

// SaveRemote adds the named remote or changes its URL. Two processes
// changing remotes at once may lose one change; remotes are edited by hand.
func (r *Repository) SaveRemote(ctx context.Context, name, url string) error {
	if !remoteNameRE.MatchString(name) {
		return fmt.Errorf("remote name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", name)
	}
	all, err := r.Remotes(ctx)
	if err != nil {
		return err
	}
	all[name] = url
	b, err := encodeRemotes(all)
	if err != nil {
		return err
	}
	return saveBytes(ctx, r.be, remotesName, b)
}

// RemoteStatus compares the repository with one remote.
type RemoteStatus struct {
	Packs, PacksOnRemote int   // from the index's records of past pushes
	Bytes, BytesOnRemote int64 // their sizes
	Snapshots            int   // in this repository
	// SnapshotsPending are snapshots the remote lacks. Nil when the
	// remote was not asked (offline status).
	SnapshotsPending []blob.ID
}

// RemoteStatus reports what of the repository the named remote holds.
// Packs are counted from the index alone (what pushes recorded, which the
// next push confirms); with dst non-nil the snapshot records are compared
// by listing both sides.
func (r *Repository) RemoteStatus(ctx context.Context, name string, dst remote.Backend) (RemoteStatus, error) {
	var st RemoteStatus
	err := r.idx.Packs(func(p index.PackInfo) error {
		st.Packs++
		st.Bytes += p.Size
		on, err := r.idx.OnRemote(name, p.ID)
		if on {
			st.PacksOnRemote++
			st.BytesOnRemote += p.Size
		}
		return err
	})
	if err != nil {
		return st, err
	}
	local, err := listObjects(ctx, r.be, snapshotsPrefix)
	if err != nil {
		return st, err
	}
	st.Snapshots = len(local)
	if dst == nil {
		return st, nil
	}
	theirs, err := listObjects(ctx, dst, snapshotsPrefix)
	if err != nil {
		return st, err
	}
	have := make(map[string]bool, len(theirs))
	for _, fi := range theirs {
		have[fi.Name] = true
	}
	st.SnapshotsPending = []blob.ID{}
	for _, fi := range local {
		if id, err := idFromName(fi.Name); err == nil && !have[fi.Name] {
			st.SnapshotsPending = append(st.SnapshotsPending, id)
		}
	}
	return st, nil
}

// Immutable reports whether the object name always holds the same bytes:
// packs and index segments are named by the hash of their content, so a
// cache of them (remote.WithCache) never needs invalidating. Snapshot
// records are left out: forget removes them, and a cache would keep
// serving them.
func Immutable(name string) bool {
	return strings.HasPrefix(name, packsPrefix) || strings.HasPrefix(name, segmentsPrefix)
}
