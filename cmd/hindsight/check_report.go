package main

import (
	"fmt"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/snapshot"
)

// checkReport prints problems as they are found and counts them.
type checkReport struct {
	a       *app
	json    bool
	above   func(func()) // prints clear of the status line
	damage  int
	notices int
}

// checkLine is one finding: damage, or a notice of something that loses
// nothing. Fields that do not apply are empty.
type checkLine struct {
	level, area                 string
	snap, pack, blob, seg, path string
	msg                         string
	text                        string // the plain-text line; msg when empty
}

func (r *checkReport) add(l checkLine) {
	if l.level == "damage" {
		r.damage++
	} else {
		r.notices++
	}
	r.above(func() { r.print(l) })
}

func (r *checkReport) print(l checkLine) {
	if r.json {
		_ = writeJSON(r.a.stdout, struct {
			Level    string    `json:"level"`
			Area     string    `json:"area"`
			Snapshot string    `json:"snapshot,omitempty"`
			Pack     string    `json:"pack,omitempty"`
			Blob     string    `json:"blob,omitempty"`
			Segment  string    `json:"segment,omitempty"`
			Path     rawString `json:"path,omitempty"`
			Message  string    `json:"message"`
		}{l.level, l.area, l.snap, l.pack, l.blob, l.seg, rawString(l.path), l.msg})
		return
	}
	text := l.text
	if text == "" {
		text = l.msg
		if l.snap != "" {
			text = "snapshot " + l.snap + ": " + text
		}
	}
	fmt.Fprintf(r.a.stdout, "%s: %s\n", l.level, text)
}

func (r *checkReport) snapshotProblem(p snapshot.Problem) {
	r.add(checkLine{level: "damage", area: "snapshot", snap: p.Snapshot.String(), path: p.Path, msg: p.Message, text: quote(p.String())})
}

func (r *checkReport) segmentProblem(p chunkstore.Problem) {
	l := checkLine{level: "damage", area: "index", msg: p.Message, text: p.String()}
	if p.Harmless {
		l.level = "notice"
	}
	if !p.Segment.IsZero() {
		l.seg = p.Segment.String()
	}
	r.add(l)
}

// packProblem reports a pack check's finding. A pack left by an
// interrupted backup harms nothing; nor does damage no snapshot uses
// (unused), which prune removes.
func (r *checkReport) packProblem(p chunkstore.Problem, unused bool) {
	l := checkLine{level: "damage", area: "pack", msg: p.Message, text: p.String()}
	if !p.Pack.IsZero() {
		l.pack = p.Pack.String()
	}
	if !p.Blob.IsZero() {
		l.blob = p.Blob.String()
	}
	if p.Harmless || unused {
		l.level = "notice"
	}
	if unused && !p.Harmless {
		l.msg += " (no snapshot uses it: nothing is lost; prune removes it)"
		l.text += " (no snapshot uses it: nothing is lost; prune removes it)"
	}
	r.add(l)
}
