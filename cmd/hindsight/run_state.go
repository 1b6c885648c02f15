package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// runState is what run remembers between runs, in STATE_DIR/run-state.json:
// when each job last ran and succeeded (for schedules), and the figures
// the metrics file is written from, so that a job not due this time keeps
// its last figures there.
type runState struct {
	Jobs       map[string]*jobState `json:"jobs"`
	Repository *repoFigures         `json:"repository,omitempty"`
}

type jobState struct {
	LastStart    time.Time `json:"last_start"`
	LastEnd      time.Time `json:"last_end"`
	SuccessStart time.Time `json:"last_success_start"` // schedules count from here
	SuccessEnd   time.Time `json:"last_success_end"`
	Success      bool      `json:"success"`
	Seconds      float64   `json:"seconds"`
	Failed       int       `json:"failed_steps"`
	Files        uint64    `json:"files"`
	Bytes        uint64    `json:"bytes"`
	NewBytes     uint64    `json:"new_bytes"`
	Incomplete   uint64    `json:"incomplete_files"`
	Pushed       int64     `json:"pushed_bytes"`
}

type repoFigures struct {
	Time      time.Time        `json:"time"`
	PackBytes uint64           `json:"pack_bytes"`
	Snapshots int              `json:"snapshots"`
	Pending   map[string]int64 `json:"pending_bytes"` // remote → bytes not uploaded
}

const stateFile = "run-state.json"

// stateDir is where run keeps its lock and state: the state_dir key, else
// the directory systemd's StateDirectory= made, else the XDG state home.
func (a *app) stateDir(cfg *fileConfig) (string, error) {
	if cfg.StateDir != "" {
		return cfg.StateDir, nil
	}
	if d := a.getenv("STATE_DIRECTORY"); d != "" {
		return strings.Split(d, ":")[0], nil
	}
	if d := a.getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "hindsight"), nil
	}
	if h := a.getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "hindsight"), nil
	}
	return "", errors.New("no state directory: set state_dir in the config file")
}

func loadState(dir string) (*runState, error) {
	st := &runState{Jobs: map[string]*jobState{}}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err == nil {
		err = json.Unmarshal(b, st)
	}
	if err != nil {
		return nil, fmt.Errorf("run state: %w", err)
	}
	if st.Jobs == nil {
		st.Jobs = map[string]*jobState{}
	}
	return st, nil
}

func (st *runState) save(dir string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, stateFile), append(b, '\n'), 0o600)
}

func (st *runState) job(name string) *jobState {
	if st.Jobs[name] == nil {
		st.Jobs[name] = &jobState{}
	}
	return st.Jobs[name]
}

// record keeps the outcome of one run of a job.
func (js *jobState) record(results []stepResult, start, end time.Time) {
	*js = jobState{LastStart: start, LastEnd: end, SuccessStart: js.SuccessStart, SuccessEnd: js.SuccessEnd,
		Seconds: end.Sub(start).Seconds()}
	skipped := false
	for _, r := range results {
		switch r.Status {
		case stepFailed:
			js.Failed++
		case stepSkipped:
			skipped = true
		}
		js.Files += r.Files
		js.Bytes += r.Bytes
		js.NewBytes += r.NewBytes
		js.Incomplete += r.Incomplete
		js.Pushed += r.Pushed
	}
	if js.Success = js.Failed == 0 && !skipped; js.Success {
		js.SuccessStart, js.SuccessEnd = start, end
	}
}

// due reports whether a job on schedule, last successful at last, is to
// run at now: when last began in an earlier period (local time).
func due(schedule string, last, now time.Time) bool {
	if last.IsZero() {
		return true
	}
	period := func(t time.Time) string {
		t = t.Local()
		switch schedule {
		case "hourly":
			return t.Format("2006-01-02T15")
		case "daily":
			return t.Format("2006-01-02")
		case "weekly":
			y, w := t.ISOWeek()
			return fmt.Sprint(y, w)
		case "monthly":
			return t.Format("2006-01")
		}
		return t.String() // always
	}
	return schedule == "" || schedule == "always" || period(last) != period(now)
}

// lockRun takes STATE_DIR/run.lock, so that two runs of one configuration
// never overlap. A run still going is named in the error, or waited for.
func (a *app) lockRun(ctx context.Context, dir string, wait bool) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	name := filepath.Join(dir, "run.lock")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for waited := false; ; waited = true {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		holder, _ := os.ReadFile(name)
		if !wait {
			f.Close()
			return nil, fmt.Errorf("%w (%s, lock %s); give --wait to wait for it", errRunBusy, strings.TrimSpace(string(holder)), name)
		}
		if !waited {
			fmt.Fprintf(a.stderr, "hindsight: waiting for the run still going (%s)\n", strings.TrimSpace(string(holder)))
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	f.Truncate(0)
	fmt.Fprintf(f, "pid %d, started %s\n", os.Getpid(), time.Now().Format(time.RFC3339))
	return func() {
		f.Truncate(0)
		f.Close()
	}, nil
}

// writeFileAtomic replaces name with data: a reader sees the old file or
// the new one, never a part of it.
func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	dir, base := filepath.Dir(name), filepath.Base(name)
	// Not ending in the final name's extension: node_exporter reads only
	// *.prom files, and must not read this one half-written.
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}
