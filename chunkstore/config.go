package chunkstore

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/restic/chunker"

	"github.com/hindsight-backup/hindsight/chunkstore/crypto"
)

// FormatVersion is the repository format this build writes and the newest
// it reads.
const FormatVersion = 1

// Chunk size bounds of new repositories (issue: min 512 KiB, avg 1 MiB, max 8 MiB).
const (
	DefaultMinChunk    = 512 << 10
	DefaultAvgChunkLog = 20
	DefaultMaxChunk    = 8 << 20
	DefaultPackSize    = 32 << 20 // packs close between this and 2x it (16–64 MiB bound)
)

// Config is the repository's fixed parameters. It is stored sealed with the
// master key, inside an envelope that shows only what must be known before
// the password is: the format version, the repository ID and the cipher.
type Config struct {
	Version     int         `json:"version"`
	ID          string      `json:"id"`
	Created     time.Time   `json:"created"`
	Polynomial  chunker.Pol `json:"chunker_polynomial"`
	MinChunk    uint        `json:"min_chunk"`
	AvgChunkLog int         `json:"avg_chunk_log2"`
	MaxChunk    uint        `json:"max_chunk"`
	PackSize    int64       `json:"pack_size"`
	Compression string      `json:"compression"` // "zstd" or "none"
	Encryption  string      `json:"encryption"`  // a crypto sealer name

	// IDKey is the blob-ID hashing key of an unencrypted repository, which
	// has no key files to hold it. Empty when encrypted.
	IDKey []byte `json:"id_key,omitempty"`
}

func (c *Config) validate() error {
	switch {
	case c.Version < 1 || c.Version > FormatVersion:
		return fmt.Errorf("config: format version %d", c.Version)
	case !c.Polynomial.Irreducible():
		return errors.New("config: chunker polynomial is not irreducible")
	case c.MinChunk < 64<<10 || c.MaxChunk > 64<<20 || c.MinChunk >= c.MaxChunk:
		return fmt.Errorf("config: chunk bounds %d..%d out of range", c.MinChunk, c.MaxChunk)
	case c.AvgChunkLog < 12 || c.AvgChunkLog > 26:
		return fmt.Errorf("config: average chunk 2^%d out of range", c.AvgChunkLog)
	case c.PackSize < 1<<20 || c.PackSize > 1<<30:
		return fmt.Errorf("config: pack size %d out of range", c.PackSize)
	case c.Compression != "zstd" && c.Compression != "none":
		return fmt.Errorf("config: unknown compression %q", c.Compression)
	case c.Encryption == crypto.NoEncryption && len(c.IDKey) != crypto.KeySize:
		// A short key would leave the rest of the blob-ID key zero.
		return fmt.Errorf("config: blob-ID key of %d bytes, want %d", len(c.IDKey), crypto.KeySize)
	case c.Encryption != crypto.NoEncryption && len(c.IDKey) != 0:
		return errors.New("config: an encrypted repository keeps its blob-ID key in its key files, not here")
	}
	return nil
}

// decodeConfig reads the config's opened (authenticated) JSON.
func decodeConfig(plain []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(plain, &c); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, c.validate()
}

// envelope is the config file's outer, unencrypted form.
type envelope struct {
	Magic      string `json:"hindsight"` // always "repository"
	Version    int    `json:"version"`
	ID         string `json:"id"`
	Encryption string `json:"encryption"`
	Data       string `json:"data"` // base64 of the sealed Config JSON
}

const envelopeMagic = "repository"

// ErrNotRepository says the location holds no hindsight repository.
var ErrNotRepository = errors.New("not a hindsight repository")

// NewerFormatError says the repository was written by a newer hindsight.
type NewerFormatError struct{ Have, Supported int }

func (e *NewerFormatError) Error() string {
	return fmt.Sprintf("repository format version %d is newer than this hindsight supports (%d): upgrade hindsight", e.Have, e.Supported)
}

func encodeEnvelope(e *envelope, sealed []byte) ([]byte, error) {
	e.Magic = envelopeMagic
	e.Data = base64.StdEncoding.EncodeToString(sealed)
	return json.MarshalIndent(e, "", "  ")
}

func decodeEnvelope(b []byte) (*envelope, []byte, error) {
	var e envelope
	if err := json.Unmarshal(b, &e); err != nil || e.Magic != envelopeMagic {
		return nil, nil, fmt.Errorf("%w: config file is not a hindsight config", ErrNotRepository)
	}
	if e.Version > FormatVersion {
		return nil, nil, &NewerFormatError{Have: e.Version, Supported: FormatVersion}
	}
	sealed, err := base64.StdEncoding.DecodeString(e.Data)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	return &e, sealed, nil
}
