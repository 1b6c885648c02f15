// Package chunkstore is the repository: configuration and keys, content-
// defined chunking parameters, blob IDs, compression and encryption, pack
// files, the Pebble index and index segments, over any remote.Backend.
//
// Durability order (every crash test checks it): a pack is durable in the
// backend, then its index batch is committed, then an index segment listing
// it is durable, and only then may a snapshot record that references its
// blobs be written. A crash at any point leaves at most unreferenced packs.
package chunkstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/restic/chunker"
	"github.com/zeebo/blake3"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/codec"
	"github.com/hindsight-backup/hindsight/chunkstore/crypto"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/chunkstore/lock"
	"github.com/hindsight-backup/hindsight/remote"
)

// Object names in the backend.
const (
	configName      = "config"
	keysPrefix      = "keys/"
	packsPrefix     = "packs/"
	snapshotsPrefix = "snapshots/"
	segmentsPrefix  = "index-segments/"
)

func packName(id blob.ID) string {
	s := id.String()
	return packsPrefix + s[:2] + "/" + s
}

// InitOptions choose a new repository's parameters.
type InitOptions struct {
	Encryption  string // crypto sealer name; "" = default
	Compression string // "zstd" (default) or "none"
	PackSize    int64  // 0 = DefaultPackSize
	KDF         *crypto.KDFParams
	Host, User  string
}

// Init writes a new repository into an empty backend and returns its config.
func Init(ctx context.Context, be remote.Backend, password []byte, o InitOptions) (*Config, error) {
	if _, err := be.Stat(ctx, configName); err == nil {
		return nil, fmt.Errorf("%s already holds a repository", be.Location())
	} else if !remote.IsNotExist(err) {
		return nil, err
	}
	pol, err := chunker.RandomPolynomial()
	if err != nil {
		return nil, err
	}
	var rid [32]byte
	if _, err := rand.Read(rid[:]); err != nil {
		return nil, err
	}
	cfg := &Config{
		Version: FormatVersion, ID: hex.EncodeToString(rid[:]), Created: time.Now().UTC(),
		Polynomial: pol, MinChunk: DefaultMinChunk, AvgChunkLog: DefaultAvgChunkLog, MaxChunk: DefaultMaxChunk,
		PackSize: o.PackSize, Compression: o.Compression, Encryption: o.Encryption,
	}
	if cfg.PackSize == 0 {
		cfg.PackSize = DefaultPackSize
	}
	if cfg.Compression == "" {
		cfg.Compression = "zstd"
	}
	if cfg.Encryption == "" {
		cfg.Encryption = crypto.DefaultSealer
	}
	key, err := crypto.NewRandomKey()
	if err != nil {
		return nil, err
	}
	if cfg.Encryption == crypto.NoEncryption {
		cfg.IDKey = key.ID[:]
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Encryption != crypto.NoEncryption {
		if len(password) == 0 {
			return nil, errors.New("an empty password is not allowed")
		}
		if _, err := writeKey(ctx, be, key, password, o.KDF, o.Host, o.User); err != nil {
			return nil, err
		}
	}
	// The config is written last: a crash before it leaves no repository,
	// just a stray key file that the next init ignores.
	if err := saveConfig(ctx, be, cfg, key); err != nil {
		return nil, err
	}
	return cfg, nil
}

func saveConfig(ctx context.Context, be remote.Backend, cfg *Config, key *crypto.Key) error {
	plain, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	c, err := newCodec(cfg, key)
	if err != nil {
		return err
	}
	sealed, err := c.Seal(nil, plain, codec.ADConfig)
	if err != nil {
		return err
	}
	b, err := encodeEnvelope(&envelope{Version: cfg.Version, ID: cfg.ID, Encryption: cfg.Encryption}, sealed)
	if err != nil {
		return err
	}
	return be.Save(ctx, configName, bytes.NewReader(b), int64(len(b)))
}

func newCodec(cfg *Config, key *crypto.Key) (*codec.Codec, error) {
	s, err := crypto.NewSealer(cfg.Encryption, key)
	if err != nil {
		return nil, err
	}
	return codec.New(s, cfg.Compression == "zstd"), nil
}

func writeKey(ctx context.Context, be remote.Backend, key *crypto.Key, password []byte, p *crypto.KDFParams, host, user string) (string, error) {
	if p == nil {
		d, err := crypto.DefaultKDFParams()
		if err != nil {
			return "", err
		}
		p = &d
	}
	kf, err := crypto.WrapKey(key, password, *p, host, user, time.Now().UTC())
	if err != nil {
		return "", err
	}
	b, err := crypto.EncodeKeyFile(kf)
	if err != nil {
		return "", err
	}
	id := blob.ID(blake3.Sum256(b)).String()
	return id, be.Save(ctx, keysPrefix+id, bytes.NewReader(b), int64(len(b)))
}

// Options say how to open a repository.
type Options struct {
	Password []byte // ignored for unencrypted repositories
	// FS holds the index and scratch files; nil means the OS.
	FS vfs.FS
	// IndexDir is the Pebble index directory. Callers put it inside a local
	// repository, or in a per-repository cache directory for remote ones.
	IndexDir string
	// ScratchDir receives packs while they are written. On the same
	// filesystem as a local backend, finished packs are renamed into place.
	ScratchDir string
	Index      index.Options
	// NoIndex opens only config and keys (for key management).
	NoIndex bool
}

// Repository is an open repository. Its methods are safe for concurrent use.
type Repository struct {
	be      remote.Backend
	cfg     Config
	key     *crypto.Key
	keyName string // the key file that opened the repository
	codec   *codec.Codec
	idx     index.Store
	fs      vfs.FS
	scratch string
	opts    Options

	w       *writer // nil until the first SaveBlob
	wmu     sync.Mutex
	written WriteCounters
}

// ConfigInfo is what a repository's config shows without the password.
type ConfigInfo struct {
	ID         string
	Version    int
	Encryption string // a crypto sealer name; "none" needs no password
}

// Encrypted reports whether opening the repository needs a password.
func (c ConfigInfo) Encrypted() bool { return c.Encryption != crypto.NoEncryption }

// LoadConfigInfo reads the public part of a repository's config, so that
// a caller can find the repository's cache directory, or learn that no
// password is needed, before opening it.
func LoadConfigInfo(ctx context.Context, be remote.Backend) (ConfigInfo, error) {
	b, err := loadAll(ctx, be, configName)
	if remote.IsNotExist(err) {
		return ConfigInfo{}, fmt.Errorf("%w at %s (no config file)", ErrNotRepository, be.Location())
	}
	if err != nil {
		return ConfigInfo{}, err
	}
	e, _, err := decodeEnvelope(b)
	if err != nil {
		return ConfigInfo{}, err
	}
	return ConfigInfo{ID: e.ID, Version: e.Version, Encryption: e.Encryption}, nil
}

// Open opens the repository in be.
func Open(ctx context.Context, be remote.Backend, o Options) (*Repository, error) {
	b, err := loadAll(ctx, be, configName)
	if remote.IsNotExist(err) {
		return nil, fmt.Errorf("%w at %s (no config file)", ErrNotRepository, be.Location())
	}
	if err != nil {
		return nil, err
	}
	env, sealed, err := decodeEnvelope(b)
	if err != nil {
		return nil, err
	}
	r := &Repository{be: be, fs: o.FS, scratch: o.ScratchDir, opts: o}
	if r.fs == nil {
		r.fs = vfs.Default
	}
	openConfig := func(key *crypto.Key) ([]byte, error) {
		s, err := crypto.NewSealer(env.Encryption, key)
		if err != nil {
			return nil, err
		}
		return codec.New(s, false).Open(nil, sealed, codec.ADConfig)
	}
	var plain []byte
	if env.Encryption == crypto.NoEncryption {
		r.key = &crypto.Key{}
		if plain, err = openConfig(r.key); err != nil {
			return nil, fmt.Errorf("config of %s fails authentication: %w", be.Location(), err)
		}
	} else if r.key, r.keyName, plain, err = openKey(ctx, be, o.Password, openConfig); err != nil {
		return nil, err
	}
	if r.cfg, err = decodeConfig(plain); err != nil {
		return nil, err
	}
	if r.cfg.ID != env.ID || r.cfg.Encryption != env.Encryption {
		return nil, errors.New("config envelope does not match its sealed contents")
	}
	if r.cfg.Encryption == crypto.NoEncryption {
		copy(r.key.ID[:], r.cfg.IDKey)
	}
	if r.codec, err = newCodec(&r.cfg, r.key); err != nil {
		return nil, err
	}
	if o.NoIndex {
		return r, nil
	}
	if err := r.OpenIndex(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// OpenIndex opens the index of a repository opened with NoIndex, applies
// the condemnation records (condemned.go), and merges the index segments
// it lacks. Callers that lock the repository open it in
// two steps: the password is checked before anything is written (even a
// lock), and the index is touched only under the lock.
func (r *Repository) OpenIndex(ctx context.Context) error {
	if r.idx != nil {
		return nil
	}
	idx, err := openIndex(r.fs, r.opts.IndexDir, r.opts.Index)
	if err != nil {
		if errors.Is(err, index.ErrLocked) {
			return err
		}
		return fmt.Errorf("%w (the index is a cache of the repository: 'hindsight index rebuild' replaces it)", err)
	}
	r.idx = idx
	// Records first: segments merged next must find condemned packs known.
	err = r.applyRecords(ctx, r.idx)
	if err == nil {
		err = r.mergeSegments(ctx)
	}
	if err != nil {
		r.idx.Close()
		r.idx = nil
		return err
	}
	return nil
}

// openIndex opens the index shared with the repository's other processes
// (the first to open it serves the rest over a unix socket), or privately
// when it lives on an in-memory filesystem (tests), which no other process
// can reach.
func openIndex(fs vfs.FS, dir string, o index.Options) (index.Store, error) {
	if fs != vfs.Default {
		return index.Open(fs, dir, o)
	}
	return index.OpenShared(fs, dir, o)
}

// openKey finds the key file that opens with password and whose master
// key opens the config (openConfig returns the config's plaintext). A key
// file can open with the password and still be the wrong one: another
// repository's, copied in by mistake or planted, with a password reused
// across repositories. Such a key is passed over, so that it cannot hide
// the repository's own.
func openKey(ctx context.Context, be remote.Backend, password []byte, openConfig func(*crypto.Key) ([]byte, error)) (*crypto.Key, string, []byte, error) {
	var names []string
	err := be.List(ctx, keysPrefix, func(fi remote.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return nil, "", nil, err
	}
	if len(names) == 0 {
		return nil, "", nil, fmt.Errorf("%s has no key files", be.Location())
	}
	var mismatch error
	for _, name := range names {
		b, err := loadAll(ctx, be, name)
		if err != nil {
			return nil, "", nil, err
		}
		kf, err := crypto.DecodeKeyFile(b)
		if err != nil {
			slog.Warn("skipping unreadable key file", "key", name, "err", err)
			continue
		}
		key, err := kf.Unwrap(password)
		if errors.Is(err, crypto.ErrWrongPassword) {
			continue
		}
		if err != nil {
			return nil, "", nil, err
		}
		plain, err := openConfig(key)
		if errors.Is(err, crypto.ErrAuth) {
			if mismatch == nil {
				mismatch = fmt.Errorf("config of %s fails authentication with %s, which opens with this password "+
					"(a key file of another repository, or a damaged config): %w", be.Location(), name, err)
			}
			continue
		}
		if err != nil {
			return nil, "", nil, err
		}
		return key, name, plain, nil
	}
	if mismatch != nil {
		return nil, "", nil, mismatch
	}
	return nil, "", nil, ErrWrongPassword
}

func loadAll(ctx context.Context, be remote.Backend, name string) ([]byte, error) {
	return loadSized(ctx, be, name, 0)
}

// loadSized reads an object whose size a listing gave into one buffer of
// that size, where reading into a growing one would allocate about twice
// as much: an index segment is several MiB.
func loadSized(ctx context.Context, be remote.Backend, name string, size int64) ([]byte, error) {
	rd, err := be.Load(ctx, name, 0, 0)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	// ReadFrom grows the buffer whenever less than MinRead bytes are free.
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	_, err = buf.ReadFrom(rd)
	return buf.Bytes(), err
}

// RemoveStaleTemp removes what killed processes left unfinished, and
// reports how many files it removed: the scratch packs of dead writers
// (scratch.go), and, where the backend writes objects through temporary
// files (a local directory), those of Saves that never finished. The
// caller holds l, and a Save's file is removed only when its last write is
// older than l's stale age: a Save in progress writes its file
// continuously, and a writer silent for that long is one the lock protocol
// counts as gone.
func (r *Repository) RemoveStaleTemp(ctx context.Context, l *lock.Lock) (int, error) {
	packs, err := r.removeDeadScratch()
	if err != nil {
		return packs, fmt.Errorf("scratch packs in %s: %w", r.scratch, err)
	}
	n, err := remote.RemoveTemp(ctx, r.be, time.Now().Add(-l.StaleAfter()))
	return packs + n, err
}

// Config returns the repository's parameters.
func (r *Repository) Config() Config { return r.cfg }

// Backend returns the storage the repository lives in.
func (r *Repository) Backend() remote.Backend { return r.be }

// IndexCreated reports whether Open found no usable index and started an
// empty one, refilled from the index segments. History rows are not in
// segments: the caller rebuilds them (snapshot.RebuildHistory).
func (r *Repository) IndexCreated() bool {
	switch idx := r.idx.(type) {
	case *index.DB:
		return idx.Created
	case *index.Shared:
		return idx.Created
	}
	return false
}

// Index returns the repository's local index.
func (r *Repository) Index() index.Store { return r.idx }

// BlobID returns the keyed BLAKE3 ID of plaintext data.
func (r *Repository) BlobID(data []byte) blob.ID { return r.key.BlobID(data) }

// NewChunker returns a content-defined chunker over rd with the
// repository's polynomial and size bounds.
func (r *Repository) NewChunker(rd io.Reader) *chunker.Chunker {
	c := chunker.NewWithBoundaries(rd, r.cfg.Polynomial, r.cfg.MinChunk, r.cfg.MaxChunk)
	c.SetAverageBits(r.cfg.AvgChunkLog)
	return c
}

// ResetChunker points c, made by NewChunker, at a new reader, keeping its
// buffer: one chunker per worker instead of a 512 KiB buffer per file.
func (r *Repository) ResetChunker(c *chunker.Chunker, rd io.Reader) {
	c.ResetWithBoundaries(rd, r.cfg.Polynomial, r.cfg.MinChunk, r.cfg.MaxChunk)
	c.SetAverageBits(r.cfg.AvgChunkLog)
}

// Close flushes nothing: callers Flush before Close to make written blobs
// durable. Blobs written since the last Flush are lost (their packs, if
// any were finished, become unreferenced).
func (r *Repository) Close() error {
	var err error
	if r.w != nil {
		r.w.abort()
	}
	if r.idx != nil {
		err = r.idx.Close()
	}
	return err
}
