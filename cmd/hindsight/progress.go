package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// statusInterval is how often the status line is redrawn: often enough to
// look alive, rarely enough to cost nothing next to the work.
const statusInterval = 250 * time.Millisecond

// status redraws one line on the terminal with what a running command is
// doing. It is a carriage return and an erase-line, nothing more: a full
// progress-bar library would add memory and goroutines for no gain here.
type status struct {
	w      io.Writer
	fd     int
	render func(elapsed time.Duration) (counts, current string)
	start  time.Time
	stop   chan struct{}
	done   sync.WaitGroup
	mu     sync.Mutex // held while the line is drawn or cleared
}

// startStatus shows render's line until the returned function is called.
// It shows nothing unless stderr is a terminal and --quiet is off, so cron
// mail and logs get only the summary.
func (a *app) startStatus(render func(elapsed time.Duration) (counts, current string)) (stop func()) {
	stop, _ = a.startStatusAbove(render)
	return stop
}

// startStatusAbove is startStatus for a command that prints lines while
// its status shows: above runs fn, which prints them, with the status line
// cleared, so that no line is printed into the middle of it.
func (a *app) startStatusAbove(render func(elapsed time.Duration) (counts, current string)) (stop func(), above func(fn func())) {
	f, ok := a.stderr.(*os.File)
	if a.quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}, func(fn func()) { fn() }
	}
	s := &status{w: f, fd: int(f.Fd()), render: render, start: time.Now(), stop: make(chan struct{})}
	s.done.Add(1)
	go s.loop()
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
		fmt.Fprint(s.w, "\r\x1b[K")
		fn()
	}
}

func (s *status) loop() {
	defer s.done.Done()
	t := time.NewTicker(statusInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			s.mu.Lock()
			fmt.Fprint(s.w, "\r\x1b[K")
			s.mu.Unlock()
			return
		case <-t.C:
			s.draw()
		}
	}
}

func (s *status) draw() {
	s.mu.Lock()
	defer s.mu.Unlock()
	width := 80
	if w, _, err := term.GetSize(s.fd); err == nil && w > 0 {
		width = w
	}
	counts, current := s.render(time.Since(s.start))
	line := counts
	if current != "" {
		// The last column stays empty: writing into it makes some
		// terminals wrap, and the next \r would then redraw one line down.
		line += "  " + shortenLeft(quote(current), width-1-utf8.RuneCountInString(counts)-2)
	}
	fmt.Fprint(s.w, "\r"+shortenLeft(line, width-1)+"\x1b[K")
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
