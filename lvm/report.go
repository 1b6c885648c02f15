package lvm

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// LV is one logical volume as lvs reports it.
type LV struct {
	VG, Name string
	Path     string // the device node; lvs knows it, so it is never guessed
	Size     uint64
	Attr     string // lv_attr, e.g. "swi-a-s---"
	Origin   string // set for snapshots
	Pool     string // set for thin volumes
	// DataPercent is the snapshot's used copy-on-write space (or a thin
	// volume's share of its pool); negative when lvs reports none.
	DataPercent float64
	UUID        string // lv_uuid: tells apart volumes that bore the same name
	ThinID      string // thin_id, the pool's number for a thin volume
}

// FullName is "VG/LV", the way lvm2 commands and hindsight's messages name it.
func (lv *LV) FullName() string { return lv.VG + "/" + lv.Name }

// Thin says the volume lives in a thin pool: its snapshots are thin too.
func (lv *LV) Thin() bool { return attr(lv.Attr, 0) == 'V' }

// Snapshot says the volume is a snapshot, classic or thin.
func (lv *LV) Snapshot() bool { return lv.Origin != "" }

// Invalid says the snapshot overflowed or its pool ran out of space: its
// content is no longer the origin's at snapshot time.
func (lv *LV) Invalid() bool {
	// lv_attr state (5th): I = invalid snapshot, S = invalid suspended
	// snapshot; health (9th): D = thin pool out of data space, F = failed.
	switch {
	case attr(lv.Attr, 4) == 'I', attr(lv.Attr, 4) == 'S':
		return true
	case attr(lv.Attr, 8) == 'D', attr(lv.Attr, 8) == 'F':
		return true
	}
	return !lv.Thin() && lv.DataPercent >= 100
}

func attr(a string, i int) byte {
	if i < len(a) {
		return a[i]
	}
	return 0
}

// VG is one volume group as vgs reports it.
type VG struct {
	Name       string
	Size, Free uint64
	ExtentSize uint64
	FreeCount  uint64 // free extents
}

const lvFields = "lv_name,vg_name,lv_path,lv_size,lv_attr,origin,pool_lv,data_percent,lv_uuid,thin_id"

// report runs an lvm2 reporting command with JSON output in bytes and
// returns the rows of its one report section.
func (m *Manager) report(ctx context.Context, section string, args ...string) ([]map[string]string, error) {
	cmd := args[0]
	args = append([]string{"--reportformat", "json", "--units", "b", "--nosuffix"}, args[1:]...)
	out, err := m.run.Run(ctx, cmd, args...)
	if err != nil {
		return nil, err
	}
	var r struct {
		Report []map[string][]map[string]string `json:"report"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("%s: unreadable JSON report: %w", cmd, err)
	}
	var rows []map[string]string
	for _, rep := range r.Report {
		rows = append(rows, rep[section]...)
	}
	return rows, nil
}

// LVs lists the logical volumes named by sel: "VG/LV", "VG", or nothing
// for all.
func (m *Manager) LVs(ctx context.Context, sel ...string) ([]LV, error) {
	rows, err := m.report(ctx, "lv", append([]string{"lvs", "-o", lvFields}, sel...)...)
	if err != nil {
		return nil, err
	}
	out := make([]LV, 0, len(rows))
	for _, r := range rows {
		lv := LV{VG: r["vg_name"], Name: r["lv_name"], Path: r["lv_path"], Attr: r["lv_attr"],
			Origin: r["origin"], Pool: r["pool_lv"], DataPercent: -1, UUID: r["lv_uuid"], ThinID: r["thin_id"]}
		if lv.Size, err = parseBytes(r["lv_size"]); err != nil {
			return nil, fmt.Errorf("lvs: %s: %w", lv.FullName(), err)
		}
		if p := r["data_percent"]; p != "" {
			if lv.DataPercent, err = strconv.ParseFloat(p, 64); err != nil {
				return nil, fmt.Errorf("lvs: %s: data_percent %q: %w", lv.FullName(), p, err)
			}
		}
		out = append(out, lv)
	}
	return out, nil
}

// LV returns one logical volume, "VG/LV".
func (m *Manager) LV(ctx context.Context, name string) (*LV, error) {
	lvs, err := m.LVs(ctx, name)
	if err != nil {
		return nil, volErr(name, "lvs", err)
	}
	if len(lvs) != 1 {
		return nil, volErr(name, "lvs", ErrNotFound)
	}
	return &lvs[0], nil
}

// VG returns one volume group.
func (m *Manager) VG(ctx context.Context, name string) (*VG, error) {
	rows, err := m.report(ctx, "vg", "vgs", "-o", "vg_name,vg_size,vg_free,vg_extent_size,vg_free_count", name)
	if err != nil {
		return nil, volErr(name, "vgs", err)
	}
	if len(rows) != 1 {
		return nil, volErr(name, "vgs", ErrNotFound)
	}
	r := rows[0]
	vg := VG{Name: r["vg_name"]}
	for _, f := range []struct {
		dst *uint64
		key string
	}{{&vg.Size, "vg_size"}, {&vg.Free, "vg_free"}, {&vg.ExtentSize, "vg_extent_size"}, {&vg.FreeCount, "vg_free_count"}} {
		if *f.dst, err = parseBytes(r[f.key]); err != nil {
			return nil, volErr(name, "vgs", fmt.Errorf("%s: %w", f.key, err))
		}
	}
	if vg.ExtentSize == 0 {
		return nil, volErr(name, "vgs", fmt.Errorf("extent size 0"))
	}
	return &vg, nil
}

// parseBytes reads a size printed with --units b; older lvm2 versions
// keep the "B" suffix despite --nosuffix in some fields.
func parseBytes(s string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSuffix(s, "B"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	return n, nil
}

// SplitName splits "VG/LV" (or "/dev/VG/LV").
func SplitName(name string) (vg, lv string, err error) {
	vg, lv, ok := strings.Cut(strings.TrimPrefix(name, "/dev/"), "/")
	if !ok || vg == "" || lv == "" || strings.Contains(lv, "/") {
		return "", "", fmt.Errorf("%q is not VG/LV", name)
	}
	return vg, lv, nil
}
