package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hindsight-backup/hindsight/snapshot"
)

// metric is one gauge of the metrics file, with a sample per label value.
type metric struct {
	name, help, label string
	samples           map[string]float64 // label value ("" without a label) → value
}

// writeMetrics writes the Prometheus text format that node_exporter's
// textfile collector reads, from what run recorded.
func writeMetrics(path string, st *runState) error {
	jobs := func(name, help string, value func(*jobState) float64) metric {
		m := metric{name: "hindsight_job_" + name, help: help, label: "job", samples: map[string]float64{}}
		for job, js := range st.Jobs {
			m.samples[job] = value(js)
		}
		return m
	}
	unix := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixMilli()) / 1000
	}
	ms := []metric{
		jobs("last_run_timestamp_seconds", "When the job's last run ended.", func(j *jobState) float64 { return unix(j.LastEnd) }),
		jobs("last_success_timestamp_seconds", "When the job's last successful run ended (0: never).",
			func(j *jobState) float64 { return unix(j.SuccessEnd) }),
		jobs("success", "1 if the job's last run had no failed step.", func(j *jobState) float64 { return bool01(j.Success) }),
		jobs("duration_seconds", "How long the job's last run took.", func(j *jobState) float64 { return j.Seconds }),
		jobs("errors", "Steps of the job's last run that failed.", func(j *jobState) float64 { return float64(j.Failed) }),
		jobs("files", "Files in the snapshots of the job's last run.", func(j *jobState) float64 { return float64(j.Files) }),
		jobs("read_bytes", "Content bytes the job's last run backed up, read or found unchanged.",
			func(j *jobState) float64 { return float64(j.Bytes) }),
		jobs("new_bytes", "Content bytes the repository lacked, added by the job's last run.",
			func(j *jobState) float64 { return float64(j.NewBytes) }),
		jobs("incomplete_files", "Files the job's last run could not read completely.",
			func(j *jobState) float64 { return float64(j.Incomplete) }),
		jobs("pushed_bytes", "Bytes the job's last run uploaded to remotes.",
			func(j *jobState) float64 { return float64(j.Pushed) }),
	}
	if r := st.Repository; r != nil {
		pending := metric{name: "hindsight_remote_pending_bytes", label: "remote", samples: map[string]float64{},
			help: "Bytes of packs not yet uploaded to the remote."}
		for name, n := range r.Pending {
			pending.samples[name] = float64(n)
		}
		ms = append(ms,
			metric{name: "hindsight_repository_size_bytes", help: "Bytes of the repository's packs.",
				samples: map[string]float64{"": float64(r.PackBytes)}},
			metric{name: "hindsight_repository_snapshots", help: "Snapshots in the repository.",
				samples: map[string]float64{"": float64(r.Snapshots)}},
			metric{name: "hindsight_repository_measured_timestamp_seconds", help: "When the repository figures were taken.",
				samples: map[string]float64{"": unix(r.Time)}},
			pending)
	}
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", m.name, m.help, m.name)
		for _, k := range slices.Sorted(maps.Keys(m.samples)) {
			if m.label == "" {
				fmt.Fprintf(&b, "%s %s\n", m.name, formatSample(m.samples[k]))
			} else {
				// Job and remote names are limited to [A-Za-z0-9._-]: nothing to escape.
				fmt.Fprintf(&b, "%s{%s=%q} %s\n", m.name, m.label, k, formatSample(m.samples[k]))
			}
		}
	}
	return writeFileAtomic(path, []byte(b.String()), 0o644)
}

func formatSample(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// measureRepo takes the repository's size and, for each declared remote,
// what is not yet uploaded to it.
func (a *app) measureRepo(ctx context.Context, cfg *fileConfig) (*repoFigures, error) {
	s, err := a.openRepo(ctx, openOptions{lock: sharedLock, purpose: "run metrics"})
	if err != nil {
		return nil, err
	}
	defer s.close()
	st, err := s.repo.Stats()
	if err != nil {
		return nil, err
	}
	snaps, err := snapshot.List(s.ctx, s.repo)
	if err != nil {
		return nil, err
	}
	r := &repoFigures{Time: time.Now(), PackBytes: st.PackBytes, Snapshots: len(snaps), Pending: map[string]int64{}}
	for name := range cfg.Remotes {
		rs, err := s.repo.RemoteStatus(s.ctx, name, nil)
		if err != nil {
			return nil, err
		}
		r.Pending[name] = rs.Bytes - rs.BytesOnRemote
	}
	return r, nil
}
