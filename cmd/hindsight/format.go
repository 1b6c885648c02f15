package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// timeLayout is how times are shown to people, in local time.
const timeLayout = "2006-01-02 15:04:05"

func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func formatRate(bytes uint64, d time.Duration) string {
	if d <= 0 {
		return "0.0 MiB/s"
	}
	return fmt.Sprintf("%.1f MiB/s", float64(bytes)/(1<<20)/d.Seconds())
}

func formatDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// quote makes a name safe to print on a line of its own: a name that holds
// a newline, an escape sequence or bytes that are not UTF-8 is shown
// Go-quoted, so it can neither forge output lines nor drive the terminal.
// A name starting with a double quote is quoted too, so that any quoted
// output is unambiguous.
func quote(s string) string {
	if needsQuote(s) {
		return strconv.Quote(s)
	}
	return s
}

func needsQuote(s string) bool {
	if s == "" || strings.HasPrefix(s, `"`) || !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if !unicode.IsPrint(r) && r != ' ' {
			return true
		}
	}
	return false
}

// rawString carries a name that may not be UTF-8 into JSON, the same way
// snapshot records store it: a plain string when it is valid UTF-8, else
// {"base64": "..."}. encoding/json would silently replace the bad bytes.
type rawString string

func (s rawString) MarshalJSON() ([]byte, error) {
	if utf8.ValidString(string(s)) {
		return json.Marshal(string(s))
	}
	return json.Marshal(struct {
		Base64 string `json:"base64"`
	}{base64.StdEncoding.EncodeToString([]byte(s))})
}

func rawStrings(list []string) []rawString {
	out := make([]rawString, len(list))
	for i, s := range list {
		out[i] = rawString(s)
	}
	return out
}

// writeJSON writes v as one line.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// printCapped prints a titled list of at most max entries, quoted, and how
// many more there were.
func printCapped(w io.Writer, title string, list []string, more uint64, max int) {
	total := uint64(len(list)) + more
	if total == 0 {
		return
	}
	fmt.Fprintf(w, "%s (%d):\n", title, total)
	for i, p := range list {
		if i == max {
			break
		}
		fmt.Fprintf(w, "  %s\n", quote(p))
	}
	if shown := uint64(min(len(list), max)); total > shown {
		fmt.Fprintf(w, "  ... and %d more\n", total-shown)
	}
}
