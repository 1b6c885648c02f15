package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
)

// systemConfig is read when it exists: backups of a whole host run as root
// from cron or a systemd timer, with no $HOME worth speaking of.
const systemConfig = "/etc/hindsight/hindsight.toml"

// fileConfig is the configuration file. Keys are added here as features
// need them; a key this version does not know is reported, not fatal, so
// that one file can serve hosts running different versions.
type fileConfig struct {
	Repository      string `toml:"repository"`
	PasswordFile    string `toml:"password_file"`
	PasswordCommand string `toml:"password_command"`

	path string // where it was read from, for messages
}

// loadConfig reads --config, else the first default file that exists. No
// file at all is an empty configuration; an unreadable one is an error.
func (a *app) loadConfig() (*fileConfig, error) {
	if a.configFile != "" {
		return a.readConfig(a.configFile)
	}
	for _, p := range a.defaultConfigPaths() {
		c, err := a.readConfig(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		return c, err
	}
	return &fileConfig{}, nil
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

func (a *app) readConfig(path string) (*fileConfig, error) {
	c := &fileConfig{path: path}
	md, err := toml.DecodeFile(path, c)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("config file %s: %s", path, perr.ErrorWithPosition())
		}
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if undec := md.Undecoded(); len(undec) > 0 {
		keys := make([]string, len(undec))
		for i, k := range undec {
			keys[i] = k.String()
		}
		fmt.Fprintf(a.stderr, "hindsight: warning: config file %s: ignoring unknown keys: %s\n", path, strings.Join(keys, ", "))
	}
	c.resolvePaths()
	return c, nil
}

// resolvePaths makes relative file names relative to the config file, as a
// reader of the file would expect, not to wherever cron happens to run.
func (c *fileConfig) resolvePaths() {
	dir := filepath.Dir(c.path)
	if c.PasswordFile != "" && !filepath.IsAbs(c.PasswordFile) {
		c.PasswordFile = filepath.Join(dir, c.PasswordFile)
	}
	if c.Repository != "" && scheme(c.Repository) == "" && !filepath.IsAbs(c.Repository) {
		c.Repository = filepath.Join(dir, c.Repository)
	}
}
