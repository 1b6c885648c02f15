package chunkstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func FuzzConfigEnvelope(f *testing.F) {
	good, _ := encodeEnvelope(&envelope{Version: 1, ID: "abc", Encryption: "none"}, []byte(`{"version":1}`))
	f.Add(good)
	f.Add([]byte(`{"hindsight":"repository","version":99}`))
	f.Add([]byte(`{"hindsight":"repository","data":"!!!"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, sealed, err := decodeEnvelope(b)
		if err != nil {
			var nf *NewerFormatError
			if !errors.Is(err, ErrNotRepository) && !errors.As(err, &nf) && e != nil {
				t.Fatalf("error %v with a non-nil envelope", err)
			}
			return
		}
		again, err := encodeEnvelope(e, sealed)
		if err != nil {
			t.Fatal(err)
		}
		e2, sealed2, err := decodeEnvelope(again)
		if err != nil || *e2 != *e || !bytes.Equal(sealed, sealed2) {
			t.Fatalf("envelope round trip: %v", err)
		}
		// The sealed part, once opened, is a Config that validate must
		// judge without panicking.
		var c Config
		if json.Unmarshal(sealed, &c) == nil {
			_ = c.validate()
		}
	})
}

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		return Config{Version: 1, Polynomial: 0x3DA3358B4DC173, MinChunk: DefaultMinChunk, AvgChunkLog: 20,
			MaxChunk: DefaultMaxChunk, PackSize: DefaultPackSize, Compression: "zstd", Encryption: "none"}
	}
	if c := base(); c.validate() != nil {
		t.Fatalf("valid config rejected: %v", c.validate())
	}
	tests := map[string]func(*Config){
		"future version":      func(c *Config) { c.Version = 2 },
		"reducible poly":      func(c *Config) { c.Polynomial = 4 },
		"min above max":       func(c *Config) { c.MinChunk = c.MaxChunk },
		"tiny average":        func(c *Config) { c.AvgChunkLog = 2 },
		"huge pack":           func(c *Config) { c.PackSize = 1 << 40 },
		"unknown compression": func(c *Config) { c.Compression = "lz4" },
	}
	for name, mod := range tests {
		c := base()
		mod(&c)
		if c.validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
