package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"

	"golang.org/x/term"
)

// password is a password and where it came from, so that "wrong password"
// can say which file or variable to fix.
type password struct {
	value  []byte
	source string // "" when typed at the prompt
}

const passwordHelp = "set $HINDSIGHT_PASSWORD, $HINDSIGHT_PASSWORD_FILE or $HINDSIGHT_PASSWORD_COMMAND, " +
	"give --password-file, or run on a terminal"

// password finds the repository password: --password-file, then the
// environment, then the config file, then a prompt. The command line wins
// over the environment, which wins over the file, so that a one-off run can
// override what cron's environment or /etc sets.
func (a *app) password(ctx context.Context, cfg *fileConfig) (password, error) {
	pw, err := a.configuredPassword(ctx, cfg)
	if err != nil || pw.value != nil {
		return pw, err
	}
	b, err := a.prompt(ctx, "Repository password: ")
	return password{value: b}, err
}

// newRepoPassword is the password for init: like password, but typed twice
// when it comes from the prompt.
func (a *app) newRepoPassword(ctx context.Context, cfg *fileConfig) (password, error) {
	pw, err := a.configuredPassword(ctx, cfg)
	if err != nil || pw.value != nil {
		return pw, err
	}
	b, err := a.promptTwice(ctx, "New repository password: ")
	return password{value: b}, err
}

// configuredPassword returns the first password source that is set, or a
// nil value when none is.
func (a *app) configuredPassword(ctx context.Context, cfg *fileConfig) (password, error) {
	switch {
	case a.passwordFile != "":
		return passwordFromFile(a.passwordFile, "--password-file "+a.passwordFile)
	case a.getenv("HINDSIGHT_PASSWORD") != "":
		return password{value: []byte(a.getenv("HINDSIGHT_PASSWORD")), source: "$HINDSIGHT_PASSWORD"}, nil
	case a.getenv("HINDSIGHT_PASSWORD_FILE") != "":
		f := a.getenv("HINDSIGHT_PASSWORD_FILE")
		return passwordFromFile(f, "$HINDSIGHT_PASSWORD_FILE "+f)
	case a.getenv("HINDSIGHT_PASSWORD_COMMAND") != "":
		return a.passwordFromCommand(ctx, a.getenv("HINDSIGHT_PASSWORD_COMMAND"), "$HINDSIGHT_PASSWORD_COMMAND")
	case cfg.PasswordFile != "":
		return passwordFromFile(cfg.PasswordFile, "password_file "+cfg.PasswordFile+" of "+cfg.path)
	case cfg.PasswordCommand != "":
		return a.passwordFromCommand(ctx, cfg.PasswordCommand, "password_command of "+cfg.path)
	}
	return password{}, nil
}

func passwordFromFile(path, source string) (password, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return password{}, fmt.Errorf("password file: %w", err)
	}
	return checkPassword(firstLine(b), source)
}

func (a *app) passwordFromCommand(ctx context.Context, command, source string) (password, error) {
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	// The command may need the terminal (a pinentry) and must be able to
	// say why it failed; only its standard output is the password.
	cmd.Stdin = a.stdin
	cmd.Stderr = a.stderr
	out, err := cmd.Output()
	if err != nil {
		return password{}, fmt.Errorf("password command (%s) %q: %w", source, command, err)
	}
	return checkPassword(firstLine(out), source)
}

func checkPassword(b []byte, source string) (password, error) {
	if len(b) == 0 {
		return password{}, fmt.Errorf("empty password from %s", source)
	}
	return password{value: b, source: source}, nil
}

// firstLine keeps what precedes the first newline: `echo secret > file`
// and commands that print a trailing newline must not add one to the
// password.
func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return bytes.TrimSuffix(b, []byte("\r"))
}

// terminal returns the standard input as a terminal, or nil when it is not
// one: a password is never read from a pipe that happens to be stdin.
func (a *app) terminal() *os.File {
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return f
}

func (a *app) prompt(ctx context.Context, label string) ([]byte, error) {
	tty := a.terminal()
	if tty == nil {
		return nil, errors.New("no password given and no terminal to ask on: " + passwordHelp)
	}
	fmt.Fprint(a.stderr, label)
	b, err := readPassword(ctx, tty)
	fmt.Fprintln(a.stderr)
	if err != nil {
		return nil, fmt.Errorf("reading password: %w", err)
	}
	if len(b) == 0 {
		return nil, errors.New("empty password")
	}
	return b, nil
}

func (a *app) promptTwice(ctx context.Context, label string) ([]byte, error) {
	b, err := a.prompt(ctx, label)
	if err != nil {
		return nil, err
	}
	again, err := a.prompt(ctx, "Repeat the password: ")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(b, again) {
		return nil, errors.New("the passwords do not match")
	}
	return b, nil
}

// readPassword reads without echo. SIGINT only cancels ctx, so the read
// must give up on ctx itself, or the terminal would be left without echo
// until the user pressed Enter.
func readPassword(ctx context.Context, tty *os.File) ([]byte, error) {
	fd := int(tty.Fd())
	state, err := term.GetState(fd)
	if err != nil {
		return nil, err
	}
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := term.ReadPassword(fd)
		ch <- result{b, err}
	}()
	select {
	case r := <-ch:
		return r.b, r.err
	case <-ctx.Done():
		_ = term.Restore(fd, state)
		return nil, ctx.Err()
	}
}
