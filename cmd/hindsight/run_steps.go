package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

type stepKind int

const (
	backupStep stepKind = iota
	pushStep
	maintenanceStep // forget, prune: skipped when a backup of the job failed
)

// step is one thing a job does, written as the hindsight command line
// that does it: run executes that command in-process, so a step does
// exactly what the same command typed by hand would, and --dry-run can
// show it. forget and prune are wired the same way: once this build has
// the command, its step runs.
type step struct {
	name   string
	kind   stepKind
	args   []string
	remote string // a push's remote, registered first
}

// Step results, as run reports them.
const (
	stepOK         = "ok"
	stepIncomplete = "incomplete"
	stepFailed     = "failed"
	stepSkipped    = "skipped"
)

type stepResult struct {
	Job        string   `json:"job"`
	Step       string   `json:"step"`
	Status     string   `json:"status"`
	ExitCode   int      `json:"exit_code"`
	Error      string   `json:"error,omitempty"`
	Snapshots  []string `json:"snapshots,omitempty"`
	Files      uint64   `json:"files"`
	Bytes      uint64   `json:"bytes"`
	NewBytes   uint64   `json:"new_bytes"`
	Incomplete uint64   `json:"incomplete_files"`
	Pushed     int64    `json:"pushed_bytes"`
	Seconds    float64  `json:"seconds"`
}

// jobSteps lists what job name does between its hooks.
func (c *fileConfig) jobSteps(name string) []step {
	j := c.Jobs[name]
	jt, _ := lookupTable(c.raw, []string{"jobs", name})
	flags := func(path ...string) []string {
		t, _ := lookupTable(jt.(map[string]any), path)
		m, _ := t.(map[string]any)
		return flagArgs(m)
	}
	var steps []step
	add := func(kind stepKind, name string, args ...[]string) {
		steps = append(steps, step{name: name, kind: kind, args: slices.Concat(args...)})
	}
	for _, p := range j.Paths {
		add(backupStep, "backup "+p, []string{"backup", "--json"}, flags("backup"), []string{"--", p})
	}
	for _, image := range []bool{false, true} {
		vols, what, opt := j.LVM, "lvm ", []string(nil)
		if image {
			vols, what, opt = j.LVMImages, "lvm image ", []string{"--image"}
		}
		for _, v := range vols {
			target := []string{"--", v}
			if !strings.Contains(v, "/") {
				target = []string{"--all", v}
			}
			add(backupStep, what+v, []string{"lvm"}, flags("lvm"), []string{"backup", "--json"}, opt,
				flags("lvm", "backup"), target)
		}
	}
	for _, dev := range j.Images {
		add(backupStep, "image "+dev, []string{"backup-volume", "--json"}, flags("backup-volume"), []string{"--", dev})
	}
	for _, r := range j.Push {
		// The remote's own limits come last and so win over the job's.
		remote, _ := lookupTable(c.raw, []string{"remotes", r})
		limits := maps.Clone(remote.(map[string]any))
		delete(limits, "url")
		add(pushStep, "push "+r, []string{"push", "--json"}, flags("push"), flagArgs(limits), []string{"--", r})
		steps[len(steps)-1].remote = r
	}
	if j.Forget.on {
		add(maintenanceStep, "forget", []string{"forget"}, flags("forget"))
	}
	if j.Prune.on {
		add(maintenanceStep, "prune", []string{"prune"}, flags("prune"))
	}
	return steps
}

// execStep runs one step's command in-process, with run's global flags.
// Its stderr goes on to run's (the log), its stdout is returned.
func (a *app) execStep(ctx context.Context, s step) (code int, stdout []byte, lastErr string) {
	var out bytes.Buffer
	tail := &errorTail{}
	child := newApp(a.stdin, &out, io.MultiWriter(a.stderr, tail), a.getenv)
	child.inRun, child.stderrTTY = true, a.terminalStderr()
	var global []string
	if a.configFile != "" {
		global = append(global, "--config", a.configFile)
	}
	if a.repo != "" {
		global = append(global, "--repo", a.repo)
	}
	if a.passwordFile != "" {
		global = append(global, "--password-file", a.passwordFile)
	}
	if a.verbose {
		global = append(global, "--verbose")
	}
	if a.quiet {
		global = append(global, "--quiet")
	}
	code = child.run(ctx, append(global, s.args...))
	return code, out.Bytes(), tail.last
}

// runStep runs a step and reads its result.
func (a *app) runStep(ctx context.Context, job string, s step, remoteURL string) (r stepResult) {
	r = stepResult{Job: job, Step: s.name}
	start := time.Now()
	defer func() { r.Seconds = time.Since(start).Seconds() }()
	if s.remote != "" {
		if err := a.registerRemote(ctx, s.remote, remoteURL); err != nil {
			r.Status, r.ExitCode, r.Error = stepFailed, exitCode(err), err.Error()
			return r
		}
	}
	code, out, lastErr := a.execStep(ctx, s)
	r.ExitCode, r.Error = code, lastErr
	switch code {
	case exitOK:
		r.Status, r.Error = stepOK, ""
	case exitIncomplete:
		r.Status = stepIncomplete
	default:
		r.Status = stepFailed
	}
	switch s.kind {
	case backupStep:
		r.addBackups(out)
	case pushStep:
		var p struct {
			Bytes int64 `json:"bytes_sent"`
		}
		if json.Unmarshal(out, &p) == nil {
			r.Pushed = p.Bytes
		}
	default:
		if !a.quiet {
			a.stderr.Write(out) // forget's and prune's report, for the log
		}
	}
	return r
}

// addBackups sums the JSON summaries a backup step printed: one per
// volume for lvm --all.
func (r *stepResult) addBackups(out []byte) {
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var b backupJSON
		if dec.Decode(&b) != nil {
			return
		}
		r.Snapshots = append(r.Snapshots, b.Snapshot)
		r.Files += b.Files
		r.Bytes += b.Bytes
		r.NewBytes += b.NewBytes
		r.Incomplete += uint64(len(b.Incomplete)) + b.IncompleteMore
	}
}

// registerRemote makes the repository's remote name point at url, as the
// configuration file declares it, so that push finds it.
func (a *app) registerRemote(ctx context.Context, name, url string) error {
	s, err := a.openRepo(ctx, openOptions{noIndex: true})
	if err != nil {
		return err
	}
	defer s.close()
	have, err := s.repo.Remotes(s.ctx)
	if err != nil || have[name] == url {
		return err
	}
	be, err := a.openRemote(s.ctx, url, true)
	if err != nil {
		return fmt.Errorf("remote %s: %w", name, err)
	}
	be.Close()
	if old := have[name]; old != "" {
		fmt.Fprintf(a.stderr, "hindsight: remote %s: URL %s replaced by %s, as the config file says\n", name, old, url)
	}
	return s.repo.SaveRemote(s.ctx, name, url)
}

// errorTail keeps the last error line a step printed, for run's summary.
type errorTail struct {
	partial []byte
	last    string
}

func (t *errorTail) Write(p []byte) (int, error) {
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		line := string(t.partial[:i])
		if j := strings.LastIndexByte(line, '\r'); j >= 0 {
			line = strings.TrimPrefix(line[j+1:], "\x1b[K") // after a progress line
		}
		if strings.HasPrefix(line, "hindsight: ") && !strings.HasPrefix(line, "hindsight: warning: ") {
			t.last = strings.TrimPrefix(line, "hindsight: ")
		}
		t.partial = t.partial[i+1:]
	}
	if len(t.partial) > 4096 {
		t.partial = t.partial[len(t.partial)-4096:]
	}
	return len(p), nil
}
