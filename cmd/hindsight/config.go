package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/BurntSushi/toml"
)

// systemConfig is read when it exists: backups of a whole host run as root
// from cron or a systemd timer, with no $HOME worth speaking of.
const systemConfig = "/etc/hindsight/hindsight.toml"

// fileConfig is the configuration file (docs/configuration.md). Besides
// the keys below, a table named after a command ([backup], [lvm.backup])
// sets defaults for that command's flags; configFlags reads those.
type fileConfig struct {
	Repository      string `toml:"repository"`
	PasswordFile    string `toml:"password_file"`
	PasswordCommand string `toml:"password_command"`
	// StateDir holds run's lock and the record of past jobs.
	StateDir string `toml:"state_dir"`
	// MetricsFile is rewritten after each job run, for node_exporter's
	// textfile collector.
	MetricsFile string                   `toml:"metrics_file"`
	Remotes     map[string]*remoteConfig `toml:"remotes"`
	Jobs        map[string]*jobConfig    `toml:"jobs"`

	path     string         // where it was read from, for messages
	raw      map[string]any // the whole file, for the flag tables
	lines    map[string]int // key → line, for messages
	jobOrder []string       // job names as the file lists them
}

// remoteConfig declares a remote; run registers it in the repository
// before pushing. Keys other than url are flags of push to this remote.
type remoteConfig struct {
	URL string `toml:"url"`
}

// loadConfig reads --config (or $HINDSIGHT_CONFIG), else the first
// default file that exists; it reads the file once per invocation. No file
// at all is an empty configuration; an unreadable one is an error.
func (a *app) loadConfig() (*fileConfig, error) {
	if a.cfg == nil {
		c, err := a.findConfig()
		if err != nil {
			return nil, err
		}
		for _, p := range c.check(a.commandTree()) {
			if p.unknown {
				// Reported, not fatal, so that one file can serve hosts
				// running different versions; run and config check refuse.
				fmt.Fprintf(a.stderr, "hindsight: warning: %s\n", p)
				continue
			}
			return nil, p
		}
		a.cfg = c
	}
	return a.cfg, nil
}

func (a *app) findConfig() (*fileConfig, error) {
	if name := a.configName(); name != "" {
		return readConfig(name)
	}
	for _, p := range a.defaultConfigPaths() {
		c, err := readConfig(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		return c, err
	}
	return &fileConfig{}, nil
}

func (a *app) configName() string {
	if a.configFile != "" {
		return a.configFile
	}
	return a.getenv("HINDSIGHT_CONFIG")
}

func (a *app) defaultConfigPaths() []string {
	paths := []string{systemConfig}
	dir := a.getenv("XDG_CONFIG_HOME")
	if dir == "" {
		if home := a.getenv("HOME"); home != "" {
			dir = filepath.Join(home, ".config")
		}
	}
	if dir != "" {
		paths = append(paths, filepath.Join(dir, "hindsight", "config.toml"))
	}
	return paths
}

var lastKeyRE = regexp.MustCompile(`\(last key "([^"]*)"\): (.*)`)

func readConfig(path string) (*fileConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return parseConfig(path, string(data))
}

// parseConfig decodes a file's text. Errors of syntax and of a value's
// type carry the line; the rest is checked by check.
func parseConfig(path, data string) (*fileConfig, error) {
	c := &fileConfig{path: path}
	md, err := toml.Decode(data, c)
	if err == nil {
		_, err = toml.Decode(data, &c.raw)
	}
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("config file %s:%d: %s", path, perr.Position.Line, perr.Message)
		}
		// A value of the wrong type is reported with its key alone.
		if m := lastKeyRE.FindStringSubmatch(err.Error()); m != nil {
			if n := keyLines(data)[m[1]]; n > 0 {
				return nil, fmt.Errorf("config file %s:%d: %s: %s", path, n, m[1], m[2])
			}
		}
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	c.lines = keyLines(data)
	for _, k := range md.Keys() {
		if len(k) == 2 && k[0] == "jobs" {
			c.jobOrder = append(c.jobOrder, k[1])
		}
	}
	c.resolvePaths()
	return c, nil
}

// resolvePaths makes relative file names relative to the config file, as a
// reader of the file would expect, not to wherever cron happens to run.
func (c *fileConfig) resolvePaths() {
	dir := filepath.Dir(c.path)
	for _, p := range []*string{&c.PasswordFile, &c.StateDir, &c.MetricsFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	if c.Repository != "" && scheme(c.Repository) == "" && !filepath.IsAbs(c.Repository) {
		c.Repository = filepath.Join(dir, c.Repository)
	}
}
