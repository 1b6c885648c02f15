package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hindsight-backup/hindsight/snapshot"
)

// runReport prints each step's result as it ends and the summary.
type runReport struct {
	a       *app
	json    bool
	start   time.Time
	jobs    int
	results []stepResult
}

func (r *runReport) add(s stepResult) {
	r.results = append(r.results, s)
	if r.json {
		writeJSON(r.a.stdout, s)
		return
	}
	if r.a.quiet {
		return
	}
	fmt.Fprintf(r.a.stdout, "%-11s %s: %s", s.Status, s.Job, s.Step)
	switch {
	case s.Error != "":
		fmt.Fprintf(r.a.stdout, ": %s", s.Error)
	case len(s.Snapshots) > 0:
		fmt.Fprintf(r.a.stdout, ": snapshot %s, %d files, %s, %s new", strings.Join(shortIDs(s.Snapshots), " "),
			s.Files, formatBytes(s.Bytes), formatBytes(s.NewBytes))
	case s.Pushed > 0:
		fmt.Fprintf(r.a.stdout, ": %s sent", formatBytes(uint64(s.Pushed)))
	}
	fmt.Fprintf(r.a.stdout, " (%s)\n", formatDuration(time.Duration(s.Seconds*float64(time.Second))))
}

func shortIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id[:min(len(id), 8)]
	}
	return out
}

func (r *runReport) notDue(job, schedule string, last time.Time) {
	if !r.json && !r.a.quiet {
		fmt.Fprintf(r.a.stdout, "%-11s %s: schedule %s, last success began %s\n", "not due", job, schedule,
			last.Local().Format(timeLayout))
	}
}

// finish prints the summary and returns the run's error.
func (r *runReport) finish(ctx context.Context) error {
	count := map[string]int{}
	var codes []int
	for _, s := range r.results {
		count[s.Status]++
		if s.Status == stepFailed {
			codes = append(codes, s.ExitCode)
		}
	}
	var err error
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case len(codes) > 0:
		code := codes[0]
		if slices.ContainsFunc(codes, func(c int) bool { return c != code }) {
			code = exitFailure
		}
		err = stepsFailed{failed: len(codes), of: len(r.results), code: code}
	case count[stepIncomplete] > 0:
		err = fmt.Errorf("%w: %d backups could not read every file", snapshot.ErrIncomplete, count[stepIncomplete])
	}
	elapsed := time.Since(r.start)
	if r.json {
		writeJSON(r.a.stdout, struct {
			Summary     bool           `json:"summary"`
			Jobs        int            `json:"jobs"`
			Steps       map[string]int `json:"steps"`
			ExitCode    int            `json:"exit_code"`
			DurationSec float64        `json:"duration_seconds"`
		}{true, r.jobs, count, exitCode(err), elapsed.Seconds()})
	} else if !r.a.quiet {
		fmt.Fprintf(r.a.stdout, "run: %d jobs, %d steps: %d ok, %d incomplete, %d failed, %d skipped in %s\n",
			r.jobs, len(r.results), count[stepOK], count[stepIncomplete], count[stepFailed], count[stepSkipped],
			formatDuration(elapsed))
	}
	return err
}
