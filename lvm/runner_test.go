package lvm

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// recorder is a Runner that records every call and answers from a script:
// the first rule whose prefix the command line starts with wins, and a
// rule with times > 0 is used up after that many calls.
type recorder struct {
	calls []string
	rules []*rule
}

type rule struct {
	prefix string
	out    string
	err    error
	times  int
}

func (r *recorder) on(prefix, out string, err error) *recorder {
	r.rules = append(r.rules, &rule{prefix: prefix, out: out, err: err})
	return r
}

func (r *recorder) once(prefix, out string, err error) *recorder {
	r.rules = append(r.rules, &rule{prefix: prefix, out: out, err: err, times: 1})
	return r
}

func (r *recorder) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	r.calls = append(r.calls, line)
	for i, ru := range r.rules {
		if strings.HasPrefix(line, ru.prefix) {
			if ru.times > 0 {
				if ru.times--; ru.times == 0 {
					r.rules = append(r.rules[:i:i], r.rules[i+1:]...)
				}
			}
			var ce *CommandError
			if errors.As(ru.err, &ce) {
				// What ExecRunner would report for this command line.
				return []byte(ru.out), &CommandError{Args: append([]string{name}, args...), Stderr: ce.Stderr, Err: ce.Err}
			}
			return []byte(ru.out), ru.err
		}
	}
	return nil, &CommandError{Args: append([]string{name}, args...), Stderr: "unexpected call", Err: errors.New("exit status 99")}
}

// count returns how many calls started with prefix.
func (r *recorder) count(prefix string) int {
	n := 0
	for _, c := range r.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func failed(stderr string) error {
	return &CommandError{Stderr: stderr, Err: errors.New("exit status 5")}
}

func TestExecRunnerError(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	_, err := ExecRunner{}.Run(context.Background(), "sh", "-c", "echo 'Volume group \"vg9\" not found' >&2; exit 5")
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a CommandError", err)
	}
	for _, want := range []string{"sh -c", "exit status 5", `Volume group "vg9" not found`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if exitCode(ce) != 5 {
		t.Errorf("exit code %d, want 5", exitCode(ce))
	}
}
