package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docFiles are the pages whose examples are checked.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil || len(files) == 0 {
		t.Fatalf("no docs/*.md (%v)", err)
	}
	return append(files, "../../README.md")
}

// codeBlocks returns the fenced blocks of lang in a Markdown file, each
// with the line its text starts on.
func codeBlocks(t *testing.T, file string, langs ...string) map[int]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[int]string{}
	var cur *strings.Builder
	start := 0
	for i, line := range strings.Split(string(b), "\n") {
		fence := strings.TrimSpace(line)
		switch {
		case cur == nil && strings.HasPrefix(fence, "```"):
			for _, l := range langs {
				if strings.TrimPrefix(fence, "```") == l {
					cur, start = &strings.Builder{}, i+2
				}
			}
		case cur != nil && fence == "```":
			blocks[start] = cur.String()
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return blocks
}

// TestDocsConfigExamples parses and checks every TOML example of the docs
// the way 'hindsight config check' does, so that the docs cannot drift
// from what hindsight accepts.
func TestDocsConfigExamples(t *testing.T) {
	root := newApp(nil, io.Discard, io.Discard, func(string) string { return "" }).rootCommand()
	n := 0
	for _, f := range docFiles(t) {
		for line, text := range codeBlocks(t, f, "toml") {
			n++
			c, err := parseConfig(f, text)
			if err != nil {
				t.Errorf("%s, block at line %d: %v", f, line, err)
				continue
			}
			for _, p := range c.check(root) {
				t.Errorf("%s, block at line %d: %v", f, line, p)
			}
		}
	}
	if n < 5 {
		t.Errorf("only %d TOML examples found in the docs", n)
	}
}

// TestDocsCommands finds every hindsight command line in the docs' shell
// examples and checks that the command, and each --flag given to it,
// exists.
func TestDocsCommands(t *testing.T) {
	root := newApp(nil, io.Discard, io.Discard, func(string) string { return "" }).rootCommand()
	root.InitDefaultCompletionCmd() // cobra adds it only when executing
	root.InitDefaultCompletionCmd() // cobra adds it only when executing
	cmdLine := regexp.MustCompile(`(?:^|[;&|(]\s*|^#\s+|exec\s+|--no-block\s+)hindsight\s+([^#\n]*)`)
	for _, f := range docFiles(t) {
		for line, text := range codeBlocks(t, f, "sh", "console") {
			for _, m := range cmdLine.FindAllStringSubmatch(text, -1) {
				args := strings.Fields(m[1])
				c, rest, err := root.Find(args)
				if err != nil || c == root && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
					t.Errorf("%s, block at line %d: no command for %q", f, line, m[0])
					continue
				}
				for _, a := range rest {
					name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
					if strings.HasPrefix(a, "--") && c.Flags().Lookup(name) == nil && c.InheritedFlags().Lookup(name) == nil {
						t.Errorf("%s, block at line %d: %q: %s has no flag --%s", f, line, m[0], c.CommandPath(), name)
					}
				}
			}
		}
	}
}
