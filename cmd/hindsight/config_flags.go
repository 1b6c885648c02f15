package main

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Every flag of every command has a twin in the configuration file: the
// table named after the command ([backup], [lvm.backup]; [lvm] for the
// flags lvm's subcommands share), the key named after the flag with
// underscores for dashes. A variable HINDSIGHT_<COMMAND>_<FLAG>
// (HINDSIGHT_PUSH_LIMIT_UPLOAD) overrides the file, and the command line
// overrides both. The global flags are the top-level keys (repository,
// password_file) and have their own variables.

// ownFlags are the global flags the file and environment already name
// otherwise (repository, $HINDSIGHT_REPOSITORY, ...).
var ownFlags = []string{"repo", "password-file", "config", "help", "version"}

// applyConfigFlags gives each flag of cmd not set on the command line its
// value from the environment or the configuration file.
func (a *app) applyConfigFlags(cmd *cobra.Command, cfg *fileConfig) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || slices.Contains(ownFlags, f.Name) {
			return
		}
		path := commandPath(definingCommand(cmd, f.Name))
		key := strings.ReplaceAll(f.Name, "-", "_")
		env := "HINDSIGHT_" + strings.ToUpper(strings.Join(append(slices.Clone(path), key), "_"))
		if v := a.getenv(env); v != "" {
			if serr := f.Value.Set(v); serr != nil {
				err = fmt.Errorf("$%s: %w", env, serr)
			}
			return
		}
		v, ok := lookupTable(cfg.raw, append(path, key))
		if !ok {
			return
		}
		if perr := setFlag(f, v); perr != nil {
			k := append(path, key)
			err = configProblem{path: cfg.path, line: cfg.lineOf(k), key: strings.Join(k, "."), msg: perr.Error()}
		}
	})
	return err
}

// definingCommand is the command that declares flag name: cmd itself, or
// the ancestor whose persistent flag it inherits.
func definingCommand(cmd *cobra.Command, name string) *cobra.Command {
	for c := cmd; c != nil; c = c.Parent() {
		if c.LocalFlags().Lookup(name) != nil {
			return c
		}
	}
	return cmd
}

// commandPath is cmd's path below the root: ["lvm", "backup"].
func commandPath(cmd *cobra.Command) []string {
	var path []string
	for c := cmd; c.HasParent(); c = c.Parent() {
		path = append([]string{c.Name()}, path...)
	}
	return path
}

func lookupTable(t map[string]any, key []string) (any, bool) {
	for i, k := range key {
		v, ok := t[k]
		if !ok {
			return nil, false
		}
		if i == len(key)-1 {
			return v, true
		}
		if t, ok = v.(map[string]any); !ok {
			return nil, false
		}
	}
	return nil, false
}

// setFlag sets f to a value from the file: a scalar, or an array for a
// repeatable flag.
func setFlag(f *pflag.Flag, v any) error {
	vals, err := flagStrings(v, isRepeatable(f))
	if err != nil {
		return err
	}
	for _, s := range vals {
		if err := f.Value.Set(s); err != nil {
			if _, isNum := errors.AsType[*strconv.NumError](err); isNum {
				want := map[string]string{"bool": "true or false", "int": "a whole number"}[f.Value.Type()]
				return fmt.Errorf("%q: want %s", s, cmp.Or(want, "a "+f.Value.Type()))
			}
			return err
		}
	}
	return nil
}

func isRepeatable(f *pflag.Flag) bool {
	t := f.Value.Type()
	return strings.HasSuffix(t, "Array") || strings.HasSuffix(t, "Slice")
}

// flagStrings spells a TOML value the way the command line would.
func flagStrings(v any, repeatable bool) ([]string, error) {
	arr, isArr := v.([]any)
	if !isArr {
		s, err := scalarString(v)
		return []string{s}, err
	}
	if !repeatable {
		return nil, fmt.Errorf("takes one value, not a list")
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		var err error
		if out[i], err = scalarString(e); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func scalarString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("a %T is not a flag's value", v)
}

// flagArgs turns a table of flags into command-line arguments, in a fixed
// order; subtables (another command's flags) are left out.
func flagArgs(t map[string]any) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(t)) {
		if _, sub := t[k].(map[string]any); sub {
			continue
		}
		vals, _ := flagStrings(t[k], true) // checked when the file was read
		for _, v := range vals {
			out = append(out, "--"+strings.ReplaceAll(k, "_", "-")+"="+v)
		}
	}
	return out
}
