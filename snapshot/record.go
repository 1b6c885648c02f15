package snapshot

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// RecordFormatVersion is the "version" EncodeRecord writes. Version 1 may
// gain optional fields, which older readers ignore; anything that changes
// the meaning of an existing field bumps it.
const RecordFormatVersion = 1

// MaxListedPaths caps Record.Incomplete and Record.Skipped. A backup of a
// busy mail spool can hit millions of changed files; the record must stay
// small enough to list snapshots quickly, so the rest are only counted.
const MaxListedPaths = 1000

// Record kinds.
const (
	KindFiles = "files" // a directory tree
	KindImage = "image" // a raw block volume
)

// ErrInvalidRecord is wrapped by every error about a malformed record.
var ErrInvalidRecord = errors.New("invalid snapshot record")

// Record describes one backup. It is stored, encrypted, under
// snapshots/<id> and written last, after everything it points at.
type Record struct {
	Time     time.Time // when the backup started
	Host     string
	Source   string   // an absolute path, "lvm:VG/LV", or "image:/dev/x"
	Paths    []string // what was backed up
	Kind     string   // KindFiles or KindImage
	Tags     []string
	Parent   blob.ID // snapshot ID of the parent, zero if none
	Tree     blob.ID // root tree blob
	User     string
	Program  string // e.g. "hindsight 0.1.0"
	Excludes []string
	Stats    Stats
	Volume   *Volume // the block volume backed up or mounted; nil for a plain tree

	Incomplete     []string // paths that changed while read or could not be read
	IncompleteMore uint64   // how many more there were beyond MaxListedPaths
	Skipped        []string // sockets and other entries not backed up
	SkippedMore    uint64
}

// Volume describes a backed-up block volume, so that a bare-metal
// restore can recreate it: its size and the filesystem it held.
type Volume struct {
	Size    uint64
	FSType  string // as blkid names it: "ext4", "xfs", ...
	FSUUID  string
	FSLabel string
	// Clone identifies the point-in-time copy of an image file that was
	// read (a reflink clone kept as the next backup's base), so that the
	// next backup trusts a ChangeOracle only if it compares with that copy.
	Clone string
}

// Stats are the counters of one backup.
type Stats struct {
	Files, Dirs, Others uint64
	Bytes               uint64 // content bytes of all files
	NewBytes            uint64 // content bytes in blobs the repository lacked
	StoredBytes         uint64 // what those new blobs occupy after compression
	NewBlobs            uint64
	Duration            time.Duration
}

// AddIncomplete lists path, or only counts it once the list is full.
func (r *Record) AddIncomplete(path string) {
	addCapped(&r.Incomplete, &r.IncompleteMore, path)
}

// AddSkipped lists path, or only counts it once the list is full.
func (r *Record) AddSkipped(path string) {
	addCapped(&r.Skipped, &r.SkippedMore, path)
}

func addCapped(list *[]string, more *uint64, path string) {
	if len(*list) < MaxListedPaths {
		*list = append(*list, path)
	} else {
		*more++
	}
}

// recordJSON is the stored form. Field names are part of the format.
type recordJSON struct {
	Version        int         `json:"version"`
	Time           time.Time   `json:"time"`
	Host           rawString   `json:"host,omitempty"`
	Source         rawString   `json:"source,omitempty"`
	Paths          []rawString `json:"paths,omitempty"`
	Kind           string      `json:"kind"`
	Tags           []rawString `json:"tags,omitempty"`
	Parent         string      `json:"parent,omitempty"`
	Tree           string      `json:"tree"`
	User           rawString   `json:"user,omitempty"`
	Program        rawString   `json:"program,omitempty"`
	Excludes       []rawString `json:"excludes,omitempty"`
	Stats          statsJSON   `json:"stats"`
	Incomplete     []rawString `json:"incomplete,omitempty"`
	IncompleteMore uint64      `json:"incomplete_more,omitempty"`
	Skipped        []rawString `json:"skipped,omitempty"`
	SkippedMore    uint64      `json:"skipped_more,omitempty"`
	Volume         *volumeJSON `json:"volume,omitempty"`
}

type volumeJSON struct {
	Size    uint64    `json:"size"`
	FSType  string    `json:"fs_type,omitempty"`
	FSUUID  string    `json:"fs_uuid,omitempty"`
	FSLabel rawString `json:"fs_label,omitempty"`
	Clone   string    `json:"clone,omitempty"`
}

type statsJSON struct {
	Files       uint64 `json:"files"`
	Dirs        uint64 `json:"dirs"`
	Others      uint64 `json:"others"`
	Bytes       uint64 `json:"bytes"`
	NewBytes    uint64 `json:"new_bytes"`
	StoredBytes uint64 `json:"stored_bytes"`
	NewBlobs    uint64 `json:"new_blobs"`
	DurationNS  int64  `json:"duration_ns"`
}

// EncodeRecord returns the JSON form of r. Incomplete and Skipped entries
// beyond MaxListedPaths are moved into the counts rather than failing: a
// backup that ran for hours must not be lost over a long list.
func EncodeRecord(r *Record) ([]byte, error) {
	if err := validateRecord(r); err != nil {
		return nil, err
	}
	incomplete, incompleteMore := capList(r.Incomplete, r.IncompleteMore)
	skipped, skippedMore := capList(r.Skipped, r.SkippedMore)
	j := recordJSON{
		Version:  RecordFormatVersion,
		Time:     r.Time,
		Host:     rawString(r.Host),
		Source:   rawString(r.Source),
		Paths:    toRaw(r.Paths),
		Kind:     r.Kind,
		Tags:     toRaw(r.Tags),
		Tree:     r.Tree.String(),
		User:     rawString(r.User),
		Program:  rawString(r.Program),
		Excludes: toRaw(r.Excludes),
		Stats: statsJSON{
			Files: r.Stats.Files, Dirs: r.Stats.Dirs, Others: r.Stats.Others,
			Bytes: r.Stats.Bytes, NewBytes: r.Stats.NewBytes, StoredBytes: r.Stats.StoredBytes,
			NewBlobs: r.Stats.NewBlobs, DurationNS: int64(r.Stats.Duration),
		},
		Incomplete:     toRaw(incomplete),
		IncompleteMore: incompleteMore,
		Skipped:        toRaw(skipped),
		SkippedMore:    skippedMore,
	}
	if !r.Parent.IsZero() {
		j.Parent = r.Parent.String()
	}
	if v := r.Volume; v != nil {
		j.Volume = &volumeJSON{Size: v.Size, FSType: v.FSType, FSUUID: v.FSUUID, FSLabel: rawString(v.FSLabel), Clone: v.Clone}
	}
	b, err := json.Marshal(&j)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	return b, nil
}

func capList(list []string, more uint64) ([]string, uint64) {
	if len(list) <= MaxListedPaths {
		return list, more
	}
	return list[:MaxListedPaths], more + uint64(len(list)-MaxListedPaths)
}

func validateRecord(r *Record) error {
	switch {
	case r.Time.IsZero():
		return fmt.Errorf("%w: no time", ErrInvalidRecord)
	case r.Time.Year() < 0 || r.Time.Year() > 9999:
		return fmt.Errorf("%w: time %v outside years 0-9999", ErrInvalidRecord, r.Time)
	case r.Kind != KindFiles && r.Kind != KindImage:
		return fmt.Errorf("%w: kind %q is neither %q nor %q", ErrInvalidRecord, r.Kind, KindFiles, KindImage)
	case r.Tree.IsZero():
		return fmt.Errorf("%w: no root tree", ErrInvalidRecord)
	case r.Stats.Duration < 0:
		return fmt.Errorf("%w: negative duration %v", ErrInvalidRecord, r.Stats.Duration)
	}
	return nil
}

// DecodeRecord parses a record written by EncodeRecord. A record from a
// newer format version fails with ErrFormatVersion so that the user is told
// to upgrade instead of seeing a half-understood snapshot.
func DecodeRecord(b []byte) (*Record, error) {
	var probe struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	if probe.Version == nil {
		return nil, fmt.Errorf("%w: no version", ErrInvalidRecord)
	}
	if *probe.Version != RecordFormatVersion {
		return nil, fmt.Errorf("snapshot record format version %d, this hindsight reads %d: %w",
			*probe.Version, RecordFormatVersion, ErrFormatVersion)
	}
	var j recordJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	r := &Record{
		Time:     j.Time,
		Host:     string(j.Host),
		Source:   string(j.Source),
		Paths:    fromRaw(j.Paths),
		Kind:     j.Kind,
		Tags:     fromRaw(j.Tags),
		User:     string(j.User),
		Program:  string(j.Program),
		Excludes: fromRaw(j.Excludes),
		Stats: Stats{
			Files: j.Stats.Files, Dirs: j.Stats.Dirs, Others: j.Stats.Others,
			Bytes: j.Stats.Bytes, NewBytes: j.Stats.NewBytes, StoredBytes: j.Stats.StoredBytes,
			NewBlobs: j.Stats.NewBlobs, Duration: time.Duration(j.Stats.DurationNS),
		},
		Incomplete:     fromRaw(j.Incomplete),
		IncompleteMore: j.IncompleteMore,
		Skipped:        fromRaw(j.Skipped),
		SkippedMore:    j.SkippedMore,
	}
	if v := j.Volume; v != nil {
		r.Volume = &Volume{Size: v.Size, FSType: v.FSType, FSUUID: v.FSUUID, FSLabel: string(v.FSLabel), Clone: v.Clone}
	}
	var err error
	if r.Tree, err = blob.ParseID(j.Tree); err != nil {
		return nil, fmt.Errorf("%w: tree: %w", ErrInvalidRecord, err)
	}
	if j.Parent != "" {
		if r.Parent, err = blob.ParseID(j.Parent); err != nil {
			return nil, fmt.Errorf("%w: parent: %w", ErrInvalidRecord, err)
		}
		if r.Parent.IsZero() {
			return nil, fmt.Errorf("%w: zero parent written out", ErrInvalidRecord)
		}
	}
	if len(r.Incomplete) > MaxListedPaths || len(r.Skipped) > MaxListedPaths {
		return nil, fmt.Errorf("%w: more than %d listed paths", ErrInvalidRecord, MaxListedPaths)
	}
	if err := validateRecord(r); err != nil {
		return nil, err
	}
	return r, nil
}

// rawString carries a string that may not be UTF-8: paths and names on
// Linux are bytes, and encoding/json would silently replace invalid bytes
// with U+FFFD. Valid UTF-8 stays a readable JSON string; anything else
// becomes {"base64": "..."}.
type rawString string

type rawStringJSON struct {
	Base64 *string `json:"base64"`
}

func (s rawString) MarshalJSON() ([]byte, error) {
	if utf8.ValidString(string(s)) {
		return json.Marshal(string(s))
	}
	enc := base64.StdEncoding.EncodeToString([]byte(s))
	return json.Marshal(rawStringJSON{Base64: &enc})
}

func (s *rawString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) > 0 && b[0] == '{' {
		var j rawStringJSON
		if err := json.Unmarshal(b, &j); err != nil {
			return err
		}
		if j.Base64 == nil {
			return errors.New(`object without "base64" where a string was expected`)
		}
		raw, err := base64.StdEncoding.DecodeString(*j.Base64)
		if err != nil {
			return err
		}
		*s = rawString(raw)
		return nil
	}
	var plain string
	if err := json.Unmarshal(b, &plain); err != nil {
		return err
	}
	*s = rawString(plain)
	return nil
}

func toRaw(list []string) []rawString {
	if len(list) == 0 {
		return nil
	}
	out := make([]rawString, len(list))
	for i, s := range list {
		out[i] = rawString(s)
	}
	return out
}

func fromRaw(list []rawString) []string {
	if len(list) == 0 {
		return nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = string(s)
	}
	return out
}
