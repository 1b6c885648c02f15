package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

const configHelp = `The configuration file is TOML: /etc/hindsight/hindsight.toml, else
$XDG_CONFIG_HOME/hindsight/config.toml, or what --config or
$HINDSIGHT_CONFIG names. docs/configuration.md describes it in full.

Top-level keys:
  repository, password_file, password_command
                   as --repo and --password-file; $HINDSIGHT_REPOSITORY and
                   $HINDSIGHT_PASSWORD* override them
  state_dir        run's lock and record of past jobs (default
                   $STATE_DIRECTORY, else $XDG_STATE_HOME/hindsight)
  metrics_file     Prometheus textfile, rewritten after each job
  quiet, verbose   the global flags

[COMMAND] tables ([backup], [push], [lvm], [lvm.backup], [forget],
[prune], ...) set that command's flags, dashes written as underscores:
  [backup]
  exclude = ["*.tmp"]
  one_file_system = true
A variable HINDSIGHT_COMMAND_FLAG (HINDSIGHT_PUSH_LIMIT_UPLOAD=8M)
overrides the file; the command line overrides both.

[remotes.NAME]: url, and push's flags for pushes to it (limit_upload, jobs).
run registers each in the repository as 'hindsight remote add' would.

[jobs.NAME]: what 'hindsight run' does, in the file's order:
  schedule       always (default), hourly, daily, weekly or monthly
  before, after  hook commands (sh -c), after runs whatever happened
  hook_timeout   per hook (default 10m)
  paths          directories to back up
  lvm_volumes    VG/LV volumes to back up through snapshots, or VG for all
  lvm_images     the same, as raw images
  images         block devices or image files (backup-volume)
  push           remotes to push to afterwards
  forget, prune  true to run forget with [forget]'s flags (keep_last,
                 keep_daily, keep_weekly, keep_monthly, keep_yearly,
                 keep_within, keep_tag) and prune with [prune]'s (max_unused)
                 after the backups; or a table [jobs.NAME.forget] of flags
                 for this job, which also turns it on
  [jobs.NAME.COMMAND] tables ([jobs.NAME.backup], [jobs.NAME.lvm.backup],
  [jobs.NAME.push]) give that job's steps more flags.`

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check the configuration file",
		Long:  configHelp,
		Args:  groupArgs,
		RunE:  groupRun,
	}
	check := &cobra.Command{
		Use:   "check [FILE]",
		Short: "Validate the configuration file, naming the line at fault",
		Long: `Read the configuration file (FILE, else the one every command reads) and
report each problem with its line and key: syntax, values of the wrong
type or out of range, keys this version does not know, flags a command
lacks, remotes a job pushes to but nobody declared. Nothing is contacted.
Exits 0 when the file is valid, 1 otherwise.`,
		Example: `  hindsight config check
  hindsight config check /etc/hindsight/new.toml`,
		Args: cobra.MaximumNArgs(1),
		// Not a.action: that reads the file first and would stop at the
		// first problem, which is this command's to report.
		RunE: func(_ *cobra.Command, args []string) error {
			a.started = true
			a.setupLogging()
			return a.checkConfig(args)
		},
	}
	cmd.AddCommand(check)
	return cmd
}

func (a *app) checkConfig(args []string) error {
	name := a.configName()
	if len(args) == 1 {
		name = args[0]
	}
	if name == "" {
		for _, p := range a.defaultConfigPaths() {
			if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
				name = p
				break
			}
		}
	}
	if name == "" {
		return fmt.Errorf("no configuration file: looked for %s", strings.Join(a.defaultConfigPaths(), ", "))
	}
	c, err := readConfig(name)
	if err != nil {
		return err
	}
	problems := c.check(a.commandTree())
	for _, p := range problems {
		fmt.Fprintln(a.stdout, p)
	}
	if len(problems) > 0 {
		return fmt.Errorf("config file %s: %d problems", name, len(problems))
	}
	if !a.quiet {
		fmt.Fprintf(a.stdout, "config file %s: valid; %d jobs (%s), %d remotes\n", name,
			len(c.jobOrder), strings.Join(c.jobOrder, ", "), len(c.Remotes))
	}
	return nil
}

// mustBeValid refuses a file with any problem, unknown keys included: a
// run does what the file says, so a key it does not understand is work it
// would silently leave undone.
func (c *fileConfig) mustBeValid(a *app) error {
	problems := c.check(a.commandTree())
	if len(problems) == 0 {
		return nil
	}
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = p.Error()
	}
	return fmt.Errorf("%s\n(%d problems; 'hindsight config check' lists them)", strings.Join(msgs, "\n"), len(problems))
}
