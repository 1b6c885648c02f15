package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type runFlags struct {
	wait, json, dryRun bool
}

func (a *app) runCommand() *cobra.Command {
	var fl runFlags
	cmd := &cobra.Command{
		Use:   "run [JOB...]",
		Short: "Do what the configuration file's jobs say",
		Long: `Run the jobs of the configuration file ([jobs.NAME] tables), in the
file's order; with JOB arguments, run those, whatever their schedule.
Without, run each job whose schedule makes it due.

A job runs its before hooks, backs up each of its sources (paths,
lvm_volumes, lvm_images, images), pushes to each of its remotes (registering them in
the repository first), applies forget and prune if it says so, and runs
its after hooks whatever happened; the hooks see HINDSIGHT_JOB, and after
hooks also HINDSIGHT_JOB_STATUS (success or failure). A source that fails
does not stop the others. When a before hook fails, the job's other steps
are skipped; when a backup fails, forget and prune are, so that failing
backups never thin out the snapshots that remain.

Each step is the hindsight command that 'run --dry-run' prints, run
in-process. Progress shows on a terminal; the log (stderr) gets each
step's messages; stdout gets one line per step and a summary, or JSON
lines with --json. After each job the metrics file, if configured, is
rewritten.

Runs of one configuration never overlap: a second one exits with code 13
naming the first, or with --wait waits for it. The exit code is 0 when
every step succeeded, 3 when backups were incomplete but none failed,
otherwise the failed steps' code when they agree (11 for a wrong
password), else 1.`,
		Example: `  hindsight run
  hindsight run nightly --wait
  hindsight run --dry-run
  systemctl start hindsight.service   # docs/examples/systemd`,
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			return a.runJobs(cmd.Context(), args, fl)
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&fl.wait, "wait", false, "wait for a run still going instead of exiting with code 13")
	f.BoolVar(&fl.json, "json", false, "print one JSON object per step and one for the summary")
	f.BoolVar(&fl.dryRun, "dry-run", false, "print each job's steps as hindsight command lines, run nothing")
	return cmd
}

func (a *app) runJobs(ctx context.Context, names []string, fl runFlags) error {
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	if cfg.path == "" || len(cfg.jobOrder) == 0 {
		return usagef("no jobs: the configuration file (%s) has no [jobs.NAME] table", strings.Join(a.defaultConfigPaths(), ", "))
	}
	if err := cfg.mustBeValid(a); err != nil {
		return err
	}
	for _, n := range names {
		if !slices.Contains(cfg.jobOrder, n) {
			return usagef("no job %q in %s (jobs: %s)", n, cfg.path, strings.Join(cfg.jobOrder, ", "))
		}
	}
	if fl.dryRun {
		a.printPlan(cfg, names)
		return nil
	}
	dir, err := a.stateDir(cfg)
	if err != nil {
		return err
	}
	release, err := a.lockRun(ctx, dir, fl.wait)
	if err != nil {
		return err
	}
	defer release()
	st, err := loadState(dir)
	if err != nil {
		return err
	}
	for name := range st.Jobs {
		if !slices.Contains(cfg.jobOrder, name) {
			delete(st.Jobs, name) // gone from the file: its metrics go too
		}
	}
	if err := a.promptOnce(ctx, cfg); err != nil {
		return err
	}
	rep := &runReport{a: a, json: fl.json, start: time.Now()}
	for _, name := range cfg.jobOrder {
		j := cfg.Jobs[name]
		switch {
		case len(names) > 0 && !slices.Contains(names, name):
			continue
		case len(names) == 0 && !due(j.Schedule, st.job(name).SuccessStart, time.Now()):
			rep.notDue(name, j.Schedule, st.job(name).SuccessStart)
			continue
		case ctx.Err() != nil:
			continue
		}
		start := time.Now()
		results := a.runJob(ctx, cfg, name, rep)
		st.job(name).record(results, start, time.Now())
		rep.jobs++
		if err := a.afterJob(ctx, cfg, dir, st); err != nil {
			rep.add(stepResult{Job: name, Step: "metrics", Status: stepFailed, ExitCode: exitFailure, Error: err.Error()})
		}
	}
	return rep.finish(ctx)
}

// runJob runs one job's hooks and steps, reporting each as it ends.
func (a *app) runJob(ctx context.Context, cfg *fileConfig, name string, rep *runReport) []stepResult {
	j := cfg.Jobs[name]
	from := len(rep.results)
	env := []string{"HINDSIGHT_JOB=" + name}
	hookStep := func(hctx context.Context, when, command string, env []string) bool {
		start := time.Now()
		r := stepResult{Job: name, Step: when + " " + command, Status: stepOK}
		if err := a.runHook(hctx, command, j.hookTimeout(), env); err != nil {
			r.Status, r.ExitCode, r.Error = stepFailed, exitFailure, err.Error()
		}
		r.Seconds = time.Since(start).Seconds()
		rep.add(r)
		return r.Status == stepOK
	}
	skip := ""
	for _, h := range j.Before {
		if !hookStep(ctx, "before", h, env) {
			skip = "a before hook failed"
			break
		}
	}
	backupFailed := false
	for _, s := range cfg.jobSteps(name) {
		r := stepResult{Job: name, Step: s.name, Status: stepSkipped}
		switch {
		case ctx.Err() != nil:
			r.Error = "interrupted"
		case skip != "":
			r.Error = skip
		case s.kind == maintenanceStep && backupFailed:
			r.Error = "a backup of this job failed"
		default:
			url := ""
			if s.remote != "" {
				url = cfg.Remotes[s.remote].URL
			}
			r = a.runStep(ctx, name, s, url)
			backupFailed = backupFailed || s.kind == backupStep && r.Status == stepFailed
		}
		rep.add(r)
	}
	status := "success"
	for _, r := range rep.results[from:] {
		if r.Status == stepFailed || r.Status == stepSkipped {
			status = "failure"
		}
	}
	// After hooks undo what before hooks did (thaw a database, resume a
	// guest), so they run even when run is being stopped.
	actx := context.WithoutCancel(ctx)
	for _, h := range j.After {
		hookStep(actx, "after", h, append(env, "HINDSIGHT_JOB_STATUS="+status))
	}
	return rep.results[from:]
}

// afterJob records the job and rewrites the metrics file. The repository
// is measured only for a metrics file; failing to measure it keeps the
// last figures and is logged, failing to write the file is an error.
func (a *app) afterJob(ctx context.Context, cfg *fileConfig, dir string, st *runState) error {
	if cfg.MetricsFile != "" && ctx.Err() == nil {
		r, err := a.measureRepo(ctx, cfg)
		if err != nil {
			fmt.Fprintf(a.stderr, "hindsight: warning: measuring the repository for the metrics file: %v\n", err)
		} else {
			st.Repository = r
		}
	}
	if err := st.save(dir); err != nil {
		return err
	}
	if cfg.MetricsFile == "" {
		return nil
	}
	if err := writeMetrics(cfg.MetricsFile, st); err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	return nil
}

// promptOnce asks for the password once for all steps when nothing
// configures one and run is on a terminal: each step opens the
// repository itself, and would ask again.
func (a *app) promptOnce(ctx context.Context, cfg *fileConfig) error {
	pw, err := a.configuredPassword(ctx, cfg)
	if err != nil || pw.value != nil || a.terminal() == nil {
		return err
	}
	b, err := a.prompt(ctx, "Repository password: ")
	if err != nil {
		return err
	}
	getenv := a.getenv
	a.getenv = func(k string) string {
		if k == "HINDSIGHT_PASSWORD" {
			return string(b)
		}
		return getenv(k)
	}
	return nil
}

func (a *app) printPlan(cfg *fileConfig, names []string) {
	for _, name := range cfg.jobOrder {
		if len(names) > 0 && !slices.Contains(names, name) {
			continue
		}
		j := cfg.Jobs[name]
		fmt.Fprintf(a.stdout, "job %s (schedule %s):\n", name, cmp.Or(j.Schedule, "always"))
		for _, h := range j.Before {
			fmt.Fprintf(a.stdout, "  before: %s\n", h)
		}
		for _, s := range cfg.jobSteps(name) {
			fmt.Fprintln(a.stdout, "  hindsight "+strings.Join(s.args, " "))
		}
		for _, h := range j.After {
			fmt.Fprintf(a.stdout, "  after: %s\n", h)
		}
	}
}
