package main

import (
	"strings"

	"github.com/BurntSushi/toml"
)

// keyLines maps each key of a TOML document that parsed cleanly to the
// line defining it, in toml.Key's dotted spelling. The TOML decoder keeps
// positions to itself, and a message that names the key but not its line
// leaves the reader searching the file. Keys inside inline tables and
// arrays of tables are not listed; lineOf falls back to their parent.
func keyLines(doc string) map[string]int {
	lines := map[string]int{}
	var table []string
	var sc valueScanner
	for i, line := range strings.Split(doc, "\n") {
		n := i + 1
		if sc.open() {
			sc.scan(line)
			continue
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#':
		case strings.HasPrefix(line, "[["):
			table = nil // arrays of tables: only their name is located
			if k, _ := splitKey(strings.TrimPrefix(line, "[["), ']'); k != nil {
				setLine(lines, k, n)
			}
		case line[0] == '[':
			k, _ := splitKey(line[1:], ']')
			table = k
			setLine(lines, k, n)
		default:
			k, rest := splitKey(line, '=')
			if k == nil {
				continue
			}
			setLine(lines, append(append([]string{}, table...), k...), n)
			sc.scan(rest)
		}
	}
	return lines
}

// setLine records a key and, for a dotted key, the tables it implies.
func setLine(lines map[string]int, k []string, n int) {
	for i := 1; i <= len(k); i++ {
		s := toml.Key(k[:i]).String()
		if _, ok := lines[s]; !ok {
			lines[s] = n
		}
	}
}

// splitKey reads a dotted key, bare or quoted, up to end and returns its
// parts and what follows end.
func splitKey(s string, end byte) ([]string, string) {
	var parts []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return nil, ""
		}
		var part string
		switch s[0] {
		case '"', '\'':
			j := strings.IndexByte(s[1:], s[0])
			if j < 0 {
				return nil, ""
			}
			part, s = s[1:1+j], s[2+j:]
		default:
			j := strings.IndexAny(s, ". \t=]")
			if j <= 0 {
				return nil, ""
			}
			part, s = s[:j], s[j:]
		}
		parts = append(parts, part)
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return nil, ""
		}
		switch s[0] {
		case '.':
			s = s[1:]
		case end:
			return parts, s[1:]
		default:
			return nil, ""
		}
	}
}

// valueScanner follows a value across lines: a multi-line string, or an
// array or inline table whose brackets close on a later line.
type valueScanner struct {
	depth int    // open brackets and braces
	quote string // the delimiter of a string still open: `"""` or `'''`
}

func (v *valueScanner) open() bool { return v.depth > 0 || v.quote != "" }

func (v *valueScanner) scan(s string) {
	for i := 0; i < len(s); i++ {
		if v.quote != "" {
			if strings.HasPrefix(s[i:], v.quote) {
				i += len(v.quote) - 1
				v.quote = ""
			} else if s[i] == '\\' && v.quote == `"""` {
				i++
			}
			continue
		}
		switch c := s[i]; c {
		case '#':
			return
		case '[', '{':
			v.depth++
		case ']', '}':
			v.depth--
		case '"', '\'':
			if q := strings.Repeat(string(c), 3); strings.HasPrefix(s[i:], q) {
				v.quote = q
				i += 2
				continue
			}
			i = skipString(s, i)
		}
	}
}

// skipString returns the index of the quote closing the one-line string
// opened at s[i].
func skipString(s string, i int) int {
	q := s[i]
	for i++; i < len(s); i++ {
		switch {
		case s[i] == '\\' && q == '"':
			i++
		case s[i] == q:
			return i
		}
	}
	return i
}

// lineOf returns the line of key, or of its nearest located parent; 0 when
// neither is known.
func (c *fileConfig) lineOf(key []string) int {
	for i := len(key); i > 0; i-- {
		if n, ok := c.lines[toml.Key(key[:i]).String()]; ok {
			return n
		}
	}
	return 0
}
