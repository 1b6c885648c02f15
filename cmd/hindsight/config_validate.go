package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// configProblem is one fault of the configuration file, placed by key and
// line.
type configProblem struct {
	path    string
	line    int
	key     string
	msg     string
	unknown bool // a key this version does not know
}

func (p configProblem) Error() string {
	loc := p.path
	if p.line > 0 {
		loc += ":" + strconv.Itoa(p.line)
	}
	return fmt.Sprintf("config file %s: %s: %s", loc, p.key, p.msg)
}

// configChecker collects the problems of one file.
type configChecker struct {
	c        *fileConfig
	root     *cobra.Command
	problems []configProblem
}

func (ck *configChecker) add(key []string, unknown bool, format string, args ...any) {
	ck.problems = append(ck.problems, configProblem{path: ck.c.path, line: ck.c.lineOf(key),
		key: strings.Join(key, "."), msg: fmt.Sprintf(format, args...), unknown: unknown})
}

// commandTree is a command tree to check flag tables against, of an app
// of its own: building one binds its flags to the app's fields.
func (a *app) commandTree() *cobra.Command {
	return newApp(nil, io.Discard, io.Discard, a.getenv).rootCommand()
}

// check finds every problem of the file, in the order of its lines.
func (c *fileConfig) check(root *cobra.Command) []configProblem {
	ck := &configChecker{c: c, root: root}
	top := map[string]any{}
	known := tomlKeys(fileConfig{})
	for k, v := range c.raw {
		if !slices.Contains(known, k) {
			top[k] = v
		}
	}
	ck.flagTable(root, nil, nil, top)
	ck.remotes()
	ck.jobs()
	slices.SortStableFunc(ck.problems, func(x, y configProblem) int {
		return cmp.Or(cmp.Compare(x.line, y.line), strings.Compare(x.key, y.key))
	})
	return ck.problems
}

// flagTable checks a table of cmd's flags (or pending's, for a command
// this build lacks) found at key; a subtable belongs to a subcommand.
func (ck *configChecker) flagTable(cmd *cobra.Command, pending *pflag.FlagSet, key []string, t map[string]any) {
	name := "hindsight"
	flags := pending
	if cmd != nil {
		name, flags = cmd.CommandPath(), cmd.LocalFlags()
	}
	for _, k := range slices.Sorted(maps.Keys(t)) {
		v, at := t[k], append(slices.Clone(key), k)
		if sub, ok := v.(map[string]any); ok {
			ck.subTable(cmd, at, sub)
			continue
		}
		f := flags.Lookup(strings.ReplaceAll(k, "_", "-"))
		if f == nil || slices.Contains(ownFlags, f.Name) {
			ck.add(at, true, "unknown key: not a flag of %q", name)
			continue
		}
		if err := setFlag(f, v); err != nil {
			ck.add(at, false, "%v", err)
		}
	}
}

func (ck *configChecker) subTable(parent *cobra.Command, key []string, t map[string]any) {
	name := key[len(key)-1]
	if parent != nil {
		for _, c := range parent.Commands() {
			if c.Name() == name {
				ck.flagTable(c, nil, key, t)
				return
			}
		}
	}
	ck.add(key, true, "unknown table: no command %q", name)
}

func (ck *configChecker) remotes() {
	push, _, _ := ck.root.Find([]string{"push"})
	raw, _ := ck.c.raw["remotes"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		key := []string{"remotes", name}
		if !nameRE.MatchString(name) {
			ck.add(key, false, "remote names use letters, digits, '.', '_' and '-', starting with a letter or digit")
		}
		r := ck.c.Remotes[name]
		switch {
		case r.URL == "":
			ck.add(key, false, "no url")
		case scheme(r.URL) == "" && !strings.HasPrefix(r.URL, "/"):
			ck.add(append(key, "url"), false, "%q: want s3:..., swift:... or an absolute directory", r.URL)
		}
		t, _ := raw[name].(map[string]any)
		flags := map[string]any{}
		for k, v := range t {
			if k != "url" {
				flags[k] = v
			}
		}
		ck.flagTable(push, nil, key, flags)
	}
}

// tomlKeys lists the keys a struct decodes.
func tomlKeys(v any) []string {
	var keys []string
	t := reflect.TypeOf(v)
	for i := range t.NumField() {
		if k := t.Field(i).Tag.Get("toml"); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}
