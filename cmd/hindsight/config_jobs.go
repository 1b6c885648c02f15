package main

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// jobConfig is a [jobs.NAME] table: what "hindsight run NAME" does, in
// this order: the before hooks, the backups, the pushes, forget, prune,
// the after hooks. A table inside it named after a command
// ([jobs.NAME.backup], [jobs.NAME.lvm.backup]) gives flags to the job's
// steps of that command.
type jobConfig struct {
	Schedule    string      `toml:"schedule"`
	Before      []string    `toml:"before"`
	After       []string    `toml:"after"`
	HookTimeout string      `toml:"hook_timeout"`
	Paths       []string    `toml:"paths"`
	LVM         []string    `toml:"lvm_volumes"`
	LVMImages   []string    `toml:"lvm_images"`
	Images      []string    `toml:"images"`
	Push        []string    `toml:"push"`
	Forget      maintenance `toml:"forget"`
	Prune       maintenance `toml:"prune"`
}

// maintenance is a job's forget or prune key: true, or a table of that
// command's flags for this job, which means true as well (TOML allows no
// key to be both).
type maintenance struct{ on bool }

func (m *maintenance) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case bool:
		m.on = v
	case map[string]any:
		m.on = true
	default:
		return fmt.Errorf("want true, false, or a table of the command's flags")
	}
	return nil
}

// defaultHookTimeout bounds a hook that names none: long enough to stop a
// guest or dump a database, short enough that a hung hook does not
// silently cost the night's backups.
const defaultHookTimeout = 10 * time.Minute

// nameRE is what job and remote names may be: they appear in metric
// labels, file names and remotes.json, whose rule this is.
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)

// schedules say how often "hindsight run" without a job name runs a job:
// when its last success began in an earlier hour, day, ISO week or month.
// Calendar periods rather than intervals, so that a timer firing at 02:30
// every day always finds the job due although yesterday's run began a few
// seconds after 02:30.
var schedules = []string{"always", "hourly", "daily", "weekly", "monthly"}

func (j *jobConfig) hookTimeout() time.Duration {
	if d, err := time.ParseDuration(j.HookTimeout); err == nil {
		return d
	}
	return defaultHookTimeout
}

// sources counts the job's backups.
func (j *jobConfig) sources() int {
	return len(j.Paths) + len(j.LVM) + len(j.LVMImages) + len(j.Images)
}

func (ck *configChecker) jobs() {
	raw, _ := ck.c.raw["jobs"].(map[string]any)
	known := tomlKeys(jobConfig{})
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		key := []string{"jobs", name}
		if !nameRE.MatchString(name) {
			ck.add(key, false, "job names use letters, digits, '.', '_' and '-', starting with a letter or digit")
		}
		ck.job(key, ck.c.Jobs[name])
		t, _ := raw[name].(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(t)) {
			sub, isTable := t[k].(map[string]any)
			if isTable {
				ck.subTable(ck.root, append(key, k), sub)
			} else if !slices.Contains(known, k) {
				ck.add(append(key, k), true, "unknown key")
			}
		}
	}
}

func (ck *configChecker) job(key []string, j *jobConfig) {
	at := func(k string) []string { return append(slices.Clone(key), k) }
	if j.Schedule != "" && !slices.Contains(schedules, j.Schedule) {
		ck.add(at("schedule"), false, "%q: want one of %s", j.Schedule, strings.Join(schedules, ", "))
	}
	if j.HookTimeout != "" {
		if d, err := time.ParseDuration(j.HookTimeout); err != nil || d <= 0 {
			ck.add(at("hook_timeout"), false, "%q: want a duration like 90s or 15m", j.HookTimeout)
		}
	}
	for k, vals := range map[string][]string{"paths": j.Paths, "images": j.Images} {
		for _, p := range vals {
			if !filepath.IsAbs(p) {
				ck.add(at(k), false, "%q: give an absolute path", p)
			}
		}
	}
	for k, vals := range map[string][]string{"lvm_volumes": j.LVM, "lvm_images": j.LVMImages} {
		for _, v := range vals {
			if v == "" || strings.Count(v, "/") > 1 || strings.HasPrefix(v, "/") || strings.HasSuffix(v, "/") {
				ck.add(at(k), false, "%q: want VG/LV, or VG for all its volumes", v)
			}
		}
	}
	for _, r := range j.Push {
		if _, ok := ck.c.Remotes[r]; !ok {
			ck.add(at("push"), false, "remote %q is not declared: add a [remotes.%s] table with its url", r, r)
		}
	}
	if j.sources() == 0 && len(j.Push) == 0 && !j.Forget.on && !j.Prune.on && len(j.Before)+len(j.After) == 0 {
		ck.add(key, false, "the job does nothing: give paths, lvm_volumes, lvm_images, images, push, forget or prune")
	}
}
