package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// Progress is redrawn on a terminal every statusInterval, often enough to
// look alive, rarely enough to cost nothing next to the work; as JSON lines
// every jsonInterval, as often as a program watching needs.
const (
	statusInterval = 250 * time.Millisecond
	jsonInterval   = time.Second
)

// progressLine is one moment of a running command. With a total, the line
// starts with a bar and an ETA.
type progressLine struct {
	counts, current string
	done, total     uint64 // bytes (or items); total 0 when unknown
	// etaKnown says eta is the command's own estimate, better than one
	// from the whole run's rate (a push's, say, counts from its first
	// upload, not from the checking before).
	eta      time.Duration
	etaKnown bool
}

// status redraws one line on the terminal with what a running command is
// doing, or writes it as JSON. It is a carriage return and an erase-line,
// nothing more: a progress-bar library would add memory and goroutines
// for no gain here.
type status struct {
	w      io.Writer
	fd     int // the terminal; -1 for JSON lines
	render func(elapsed time.Duration) progressLine
	start  time.Time
	stop   chan struct{}
	done   sync.WaitGroup
	mu     sync.Mutex // held while the line is drawn or cleared
}

// startStatus is startProgress for a command that knows no total.
func (a *app) startStatus(render func(elapsed time.Duration) (counts, current string)) (stop func()) {
	stop, _ = a.startStatusAbove(render)
	return stop
}

// startStatusAbove is startStatus for a command that prints lines while
// its status shows: above runs fn, which prints them, with the status line
// cleared, so that no line is printed into the middle of it.
func (a *app) startStatusAbove(render func(elapsed time.Duration) (counts, current string)) (stop func(), above func(fn func())) {
	return a.startProgressAbove(func(elapsed time.Duration) progressLine {
		c, cur := render(elapsed)
		return progressLine{counts: c, current: cur}
	})
}

// startProgress shows render's line until the returned function is
// called: on stderr when it is a terminal, as JSON lines on stderr under
// --json (stdout keeps the one result object), and not at all with
// --quiet or otherwise, so that cron mail and logs get only the summary.
func (a *app) startProgress(render func(elapsed time.Duration) progressLine) (stop func()) {
	stop, _ = a.startProgressAbove(render)
	return stop
}

// startProgressAbove is startProgress with the above of startStatusAbove.
func (a *app) startProgressAbove(render func(elapsed time.Duration) progressLine) (stop func(), above func(fn func())) {
	s := &status{w: a.stderr, fd: -1, render: render, start: time.Now(), stop: make(chan struct{})}
	interval := jsonInterval
	switch tty := a.terminalStderr(); {
	case a.quiet:
		return func() {}, func(fn func()) { fn() }
	case a.jsonProgress:
	case tty != nil:
		s.fd, interval = int(tty.Fd()), statusInterval
	default:
		return func() {}, func(fn func()) { fn() }
	}
	s.done.Add(1)
	go s.loop(interval)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(s.stop)
			s.done.Wait()
		})
	}
	return stop, func(fn func()) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.clear()
		fn()
	}
}

// clear erases the status line; the caller holds mu.
func (s *status) clear() {
	if s.fd >= 0 {
		fmt.Fprint(s.w, "\r\x1b[K")
	}
}

// terminalStderr returns stderr as a terminal, or nil when it is not one.
func (a *app) terminalStderr() *os.File {
	if a.stderrTTY != nil {
		return a.stderrTTY
	}
	if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return f
	}
	return nil
}

func (s *status) loop(interval time.Duration) {
	defer s.done.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			s.mu.Lock()
			s.clear()
			s.mu.Unlock()
			return
		case <-t.C:
			if s.fd >= 0 {
				s.draw()
			} else {
				s.writeJSON()
			}
		}
	}
}

// eta extrapolates the rate so far; ok is false until there is one.
func (p progressLine) estimate(elapsed time.Duration) (time.Duration, bool) {
	if p.etaKnown {
		return p.eta, true
	}
	if p.total == 0 || p.done == 0 || p.done > p.total {
		return 0, false
	}
	return time.Duration(float64(elapsed) * float64(p.total-p.done) / float64(p.done)), true
}

func (s *status) writeJSON() {
	s.mu.Lock()
	defer s.mu.Unlock()
	elapsed := time.Since(s.start)
	p := s.render(elapsed)
	line := struct {
		Type    string   `json:"type"`
		Elapsed float64  `json:"elapsed_seconds"`
		Done    uint64   `json:"done,omitempty"`
		Total   uint64   `json:"total,omitempty"`
		ETA     *float64 `json:"eta_seconds,omitempty"`
		Status  string   `json:"status"`
		Current string   `json:"current,omitempty"`
	}{Type: "progress", Elapsed: elapsed.Seconds(), Done: p.done, Total: p.total, Status: p.counts, Current: p.current}
	if eta, ok := p.estimate(elapsed); ok {
		sec := eta.Round(time.Second).Seconds()
		line.ETA = &sec
	}
	b, _ := json.Marshal(line)
	s.w.Write(append(b, '\n'))
}

func (s *status) draw() {
	s.mu.Lock()
	defer s.mu.Unlock()
	width := 80
	if w, _, err := term.GetSize(s.fd); err == nil && w > 0 {
		width = w
	}
	elapsed := time.Since(s.start)
	fmt.Fprint(s.w, "\r"+s.render(elapsed).text(elapsed, width)+"\x1b[K")
}

// text is the line drawn on a terminal width columns wide.
func (p progressLine) text(elapsed time.Duration, width int) string {
	line := p.counts
	if eta, ok := p.estimate(elapsed); ok {
		line += "  ETA " + formatDuration(eta.Round(time.Second))
	}
	if p.total > 0 {
		// On a narrow terminal the percentage alone stays, rather than
		// the counts being cut.
		b := bar(p.done, p.total, 20)
		if utf8.RuneCountInString(b+line) >= width-1 {
			b = b[strings.LastIndexByte(b, ']')+1:]
		}
		line = strings.TrimSpace(b) + " " + line
	}
	if p.current != "" {
		// The last column stays empty: writing into it makes some
		// terminals wrap, and the next \r would then redraw one line down.
		line += "  " + shortenLeft(quote(p.current), width-1-utf8.RuneCountInString(line)-2)
	}
	return shortenLeft(line, width-1)
}

// bar draws done of total as "[=====>    ]  45%" in width cells.
func bar(done, total uint64, width int) string {
	frac := min(float64(done)/float64(total), 1)
	n := int(frac * float64(width))
	b := strings.Repeat("=", n)
	if n < width {
		b += ">" + strings.Repeat(" ", width-n-1)
	}
	return fmt.Sprintf("[%s] %3.0f%%", b, frac*100)
}

// shortenLeft keeps the end of s, the part of a path that says most, within
// max runes.
func shortenLeft(s string, max int) string {
	n := utf8.RuneCountInString(s)
	if n <= max {
		return s
	}
	if max <= 1 {
		return ""
	}
	r := []rune(s)
	return "…" + string(r[n-max+1:])
}
