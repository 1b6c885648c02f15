package lvm

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
)

// A thin snapshot backed up as an image may be kept afterwards as the base
// of the volume's next backup, under BasePrefix+LV. The pool's metadata
// then says which blocks of the next snapshot are still shared with it,
// hence unchanged (thin_delta), so that backup reads only the others. The
// base costs pool space only for the blocks the volume overwrites since.
// Cleanup leaves bases alone unless asked: a missing one costs the next
// backup a full read, not a failure.
const BasePrefix = "hindsight-base-"

// BaseName is the name of the base kept for the volume lv.
func BaseName(lv string) string {
	return BasePrefix + lv[:min(len(lv), maxNameLen-len(BasePrefix))]
}

// maxNameLen is lvm2's limit on a logical volume's name.
const maxNameLen = 127

// KeepAsBase replaces the base of the snapshot's origin with the
// snapshot, which stays in place of being removed. It is for a thin
// snapshot whose backup was recorded. A failure may leave the volume
// without a base, never with two.
func (s *Snapshot) KeepAsBase(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	base := &LV{VG: s.VG, Name: BaseName(s.Origin.Name)}
	if gone, err := s.m.gone(ctx, base); err != nil {
		return err
	} else if !gone {
		if _, err := s.m.run.Run(ctx, "lvremove", "-y", base.FullName()); err != nil {
			return volErr(s.Origin.FullName(), "remove the old base", err)
		}
	}
	if _, err := s.m.run.Run(ctx, "lvrename", s.VG, s.Name, base.Name); err != nil {
		return volErr(s.Origin.FullName(), "keep snapshot "+s.Name+" as "+base.Name, err)
	}
	// Renamed, it is no longer this run's snapshot: Remove leaves it.
	s.kept = true
	s.unlock()
	// Inactive, nothing can write to it, and its device (a copy of a
	// guest's disk, with the guest's filesystem UUIDs) is gone; the pool's
	// metadata is all thin_delta reads. -ky keeps it so after a reboot.
	if _, err := s.m.run.Run(ctx, "lvchange", "-an", "-ky", base.FullName()); err != nil {
		return volErr(s.Origin.FullName(), "deactivate base "+base.Name, err)
	}
	return nil
}

// Base returns the base kept for the thin volume lv, or nil if there is
// none.
func (m *Manager) Base(ctx context.Context, lv *LV) (*LV, error) {
	base := &LV{VG: lv.VG, Name: BaseName(lv.Name)}
	if gone, err := m.gone(ctx, base); gone || err != nil {
		return nil, err
	}
	return m.LV(ctx, base.FullName())
}

// Range is a span of bytes of a volume.
type Range struct{ Off, Len int64 }

// ThinUnchanged returns the ranges of the thin volume cur that map the
// same pool blocks as base, or are unmapped in both: those hold the same
// bytes. It reads the pool's metadata through a metadata snapshot, which
// is released again however it ends.
func (m *Manager) ThinUnchanged(ctx context.Context, base, cur *LV) (_ []Range, err error) {
	name := cur.FullName()
	if !base.Thin() || !cur.Thin() || base.Pool != cur.Pool || base.VG != cur.VG || base.ThinID == "" || cur.ThinID == "" {
		return nil, volErr(name, "compare with "+base.FullName(),
			fmt.Errorf("not two thin volumes of one pool (pools %q and %q, thin IDs %q and %q)", base.Pool, cur.Pool, base.ThinID, cur.ThinID))
	}
	pool := dmName(cur.VG, cur.Pool)
	ctx = context.WithoutCancel(ctx)
	if _, err := m.run.Run(ctx, "dmsetup", "message", pool+"-tpool", "0", "reserve_metadata_snap"); err != nil {
		return nil, volErr(name, "reserve a metadata snapshot of pool "+cur.Pool, err)
	}
	defer func() {
		if _, rerr := m.run.Run(ctx, "dmsetup", "message", pool+"-tpool", "0", "release_metadata_snap"); rerr != nil {
			err = errors.Join(err, volErr(name, "release the metadata snapshot of pool "+cur.Pool, rerr))
		}
	}()
	out, err := m.run.Run(ctx, "thin_delta", "-m", "--thin1", base.ThinID, "--thin2", cur.ThinID, "/dev/mapper/"+pool+"_tmeta")
	if err != nil {
		return nil, volErr(name, "compare with "+base.FullName(), err)
	}
	r, err := parseThinDelta(out, int64(cur.Size))
	return r, volErr(name, "thin_delta", err)
}

// dmName is device-mapper's name of VG/LV: dashes within each doubled.
func dmName(vg, lv string) string {
	return strings.ReplaceAll(vg, "-", "--") + "-" + strings.ReplaceAll(lv, "-", "--")
}

// thinDelta is thin_delta's XML: ranges of virtual blocks of
// data_block_size sectors.
type thinDelta struct {
	BlockSize int64 `xml:"data_block_size,attr"`
	Diff      struct {
		Ranges []struct {
			XMLName xml.Name
			Begin   int64 `xml:"begin,attr"`
			Length  int64 `xml:"length,attr"`
		} `xml:",any"`
	} `xml:"diff"`
}

// parseThinDelta returns the unchanged byte ranges below size: all but
// the blocks thin_delta lists as different or mapped on one side only.
// Blocks it does not list are unmapped in both and read as zeros.
func parseThinDelta(out []byte, size int64) ([]Range, error) {
	var d thinDelta
	if err := xml.Unmarshal(out, &d); err != nil {
		return nil, fmt.Errorf("unreadable output: %w", err)
	}
	if d.BlockSize <= 0 {
		return nil, fmt.Errorf("data_block_size %d", d.BlockSize)
	}
	block := d.BlockSize * 512
	var res []Range
	var pos int64
	for _, r := range d.Diff.Ranges {
		off, end := r.Begin*block, (r.Begin+r.Length)*block
		switch r.XMLName.Local {
		case "same":
			continue
		case "different", "left_only", "right_only":
		default:
			return nil, fmt.Errorf("unknown element <%s>", r.XMLName.Local)
		}
		if off < pos || r.Length <= 0 {
			return nil, fmt.Errorf("ranges out of order at block %d", r.Begin)
		}
		if off > pos && pos < size {
			res = append(res, Range{pos, min(off, size) - pos})
		}
		pos = end
	}
	if pos < size {
		res = append(res, Range{pos, size - pos})
	}
	return res, nil
}
