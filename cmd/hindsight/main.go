// Command hindsight is the command-line interface of the hindsight backup
// system: it parses flags and the configuration file, opens the repository
// and hands the work to the snapshot and chunkstore packages.
//
// Exit codes (exitcodes.go; also `hindsight help exit-codes`):
//
//	0   success
//	1   failure (the error message says what failed)
//	2   usage error: unknown command, bad flag or argument
//	3   backup written, but incomplete: some files changed while being read
//	    or could not be read; the snapshot exists and lists them
//	4   check found damage in the repository, or repair (index rebuild)
//	    could not heal all of it
//	10  the repository does not exist, or is not a hindsight repository
//	11  wrong password: no key of the repository opens with it
//	12  the repository is locked by another process
//	13  another "hindsight run" is still going (run without --wait)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"
)

// memoryLimit is the Go heap's soft limit unless GOMEMLIMIT overrides it.
// The pipeline's buffers are bounded by configuration, but with the default
// GOGC the heap may grow to twice the live data before a collection; the
// limit makes the collector run sooner instead. Measured on the benchmark's
// 5 GiB dataset: peak RSS about 100 MB (26 MB of it the binary's own mapped
// pages, 12 MB Pebble's off-heap cache and memtables), where without the
// limit it reaches 190 MB; the pipeline's buffers are pooled, so the
// collector's extra runs cost little time.
const memoryLimit = 56 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	// Cancelling the context, rather than dying on the signal, lets every
	// command release its repository lock and leave no half-written state.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	a := newApp(os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	a.setDefaultLogger = true
	stopProfile := startProfile(os.Getenv("HINDSIGHT_CPUPROFILE"))
	code := a.run(ctx, os.Args[1:])
	stopProfile()
	writeHeapProfile(os.Getenv("HINDSIGHT_HEAPPROFILE"))
	stop()
	os.Exit(code)
}

// startProfile writes a CPU profile of the whole run to path, and
// writeHeapProfile what the heap held at the end, for the benchmarks under
// integration/bench; the variables are for developers and not documented
// to users.
func startProfile(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "hindsight: HINDSIGHT_CPUPROFILE: %v\n", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// app holds what one invocation needs: its streams, its environment and
// the global flags. Tests build one per run, so nothing is package state.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	// setDefaultLogger makes --verbose reach the libraries, which log
	// through slog.Default; tests leave the process-wide logger alone.
	setDefaultLogger bool
	log              *slog.Logger

	repo         string
	passwordFile string
	configFile   string
	quiet        bool
	verbose      bool

	cfg *fileConfig // read once, by loadConfig
	// inRun marks the commands run starts for its steps: their progress
	// shows as a bar on run's terminal (stderrTTY, since their stderr is
	// a tee), never as JSON among run's own output.
	inRun     bool
	stderrTTY *os.File
	// jsonProgress is set for a command given --json: its progress goes
	// to stderr as JSON lines.
	jsonProgress bool

	// started is set once a command's own code runs: an error before that
	// came from parsing flags or arguments, and is a usage error.
	started bool
}

func newApp(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *app {
	return &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, log: slog.New(slog.DiscardHandler)}
}

// run executes one command line and returns the process exit code.
func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	_, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	if !a.started {
		err = usageError{err}
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = errors.New("interrupted")
	}
	a.printError(err)
	return exitCode(err)
}

func (a *app) printError(err error) {
	fmt.Fprintf(a.stderr, "hindsight: %v\n", err)
	var u usageError
	if errors.As(err, &u) {
		fmt.Fprintln(a.stderr, "Run 'hindsight --help' or 'hindsight help COMMAND' for usage.")
	}
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "hindsight",
		Short: "Deduplicating, encrypted backups of Linux hosts",
		Long: `hindsight backs up directory trees into an encrypted, deduplicating
repository, lists and restores snapshots, and shows each file's history.

The repository is chosen by --repo, else $HINDSIGHT_REPOSITORY, else the
"repository" key of the configuration file (--config; by default
/etc/hindsight/hindsight.toml if it exists, else
$XDG_CONFIG_HOME/hindsight/config.toml; $HINDSIGHT_CONFIG names another).
Every flag of every command can be set there too ('hindsight help config').
The password comes from
--password-file, $HINDSIGHT_PASSWORD, $HINDSIGHT_PASSWORD_FILE,
$HINDSIGHT_PASSWORD_COMMAND or the configuration file, in that order, and is
otherwise asked for on the terminal.

Wherever a snapshot is named, "latest" or an unambiguous prefix of its ID
(at least 4 hex digits) will do.` + exitCodesHelp,
		Version:       buildVersion(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          groupArgs,
		RunE:          groupRun,
	}
	root.SetVersionTemplate("hindsight {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	f := root.PersistentFlags()
	f.StringVarP(&a.repo, "repo", "r", "", "repository `LOCATION` (default $HINDSIGHT_REPOSITORY, then the config file)")
	f.StringVar(&a.passwordFile, "password-file", "", "read the repository password from the first line of `FILE`")
	f.StringVar(&a.configFile, "config", "", "configuration `FILE` (default /etc/hindsight/hindsight.toml, then $XDG_CONFIG_HOME/hindsight/config.toml)")
	f.BoolVarP(&a.quiet, "quiet", "q", false, "print no progress and no summaries")
	f.BoolVarP(&a.verbose, "verbose", "v", false, "log debug messages to stderr")

	root.AddCommand(
		a.initCommand(), a.backupCommand(), a.snapshotsCommand(), a.lsCommand(),
		a.restoreCommand(), a.checkCommand(), a.statsCommand(), a.keyCommand(),
		a.indexCommand(), a.historyCommand(), a.mountCommand(), exitCodesTopic(),
		a.pushCommand(), a.remoteCommand(), a.cloneCommand(), a.repairCommand(),
		a.lvmCommand(), a.backupVolumeCommand(), a.restoreVolumeCommand(),
		a.forgetCommand(), a.tagCommand(), a.findCommand(), a.diffCommand(),
		a.runCommand(), a.configCommand(),
		a.pruneCommand(),
	)
	return root
}

// action wraps a command's body: it marks the point after which errors are
// the command's own rather than usage errors, gives the flags not on the
// command line their values from the environment or the configuration
// file, and sets up logging.
func (a *app) action(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a.started = true
		cfg, err := a.loadConfig()
		if err == nil {
			err = a.applyConfigFlags(cmd, cfg)
		}
		a.setupLogging()
		if err != nil {
			return err
		}
		if f := cmd.Flags().Lookup("json"); f != nil && f.Value.String() == "true" && !a.inRun {
			a.jsonProgress = true
		}
		return fn(cmd, args)
	}
}

func (a *app) setupLogging() {
	level := slog.LevelWarn
	if a.verbose {
		level = slog.LevelDebug
	}
	a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	if a.setDefaultLogger {
		slog.SetDefault(a.log)
	}
}

// groupArgs rejects an unknown subcommand of a command that only groups
// others; cobra would otherwise print the help and exit 0.
func groupArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return nil
}

func groupRun(cmd *cobra.Command, _ []string) error { return cmd.Help() }

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "(devel)"
}

func writeHeapProfile(path string) {
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err == nil {
		err = errors.Join(pprof.Lookup("heap").WriteTo(f, 0), f.Close())
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "hindsight: HINDSIGHT_HEAPPROFILE: %v\n", err)
	}
}
