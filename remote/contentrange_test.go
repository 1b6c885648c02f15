package remote

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestCheckContentRange(t *testing.T) {
	tests := []struct {
		body, header string
		short        bool
	}{
		{"0123456789", "bytes 0-9/10", false},
		{"0123", "bytes 6-9/10", false},
		{"01234", "bytes 0-9/10", true},
		{"", "bytes 3-3/10", true},
		{"0123", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			rc, err := CheckContentRange(io.NopCloser(strings.NewReader(tt.body)), tt.header)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			if string(got) != tt.body {
				t.Errorf("read %q; want %q", got, tt.body)
			}
			if short := errors.Is(err, io.ErrUnexpectedEOF); short != tt.short || (err != nil && !short) {
				t.Errorf("error %v; want short = %v", err, tt.short)
			}
		})
	}
	for _, bad := range []string{"bytes */10", "bytes 9-3/10", "items 0-1/2"} {
		if _, err := CheckContentRange(io.NopCloser(strings.NewReader("")), bad); err == nil {
			t.Errorf("Content-Range %q accepted", bad)
		}
	}
}
