package chunkstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore/crypto"
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
			MaxChunk: DefaultMaxChunk, PackSize: DefaultPackSize, Compression: "zstd", Encryption: "none",
			IDKey: bytes.Repeat([]byte{7}, crypto.KeySize)}
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
		"short blob-ID key":   func(c *Config) { c.IDKey = c.IDKey[:5] },
		"no blob-ID key":      func(c *Config) { c.IDKey = nil },
		"key beside key files": func(c *Config) {
			c.Encryption = crypto.DefaultSealer
		},
	}
	for name, mod := range tests {
		c := base()
		mod(&c)
		if c.validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzConfig decodes arbitrary opened config JSON, which only a holder of
// the key (or anyone, for --encryption none) can write. What passes
// validation must survive saveConfig's encoding unchanged.
func FuzzConfig(f *testing.F) {
	good, err := json.Marshal(Config{Version: 1, ID: "abc", Created: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		Polynomial: 0x3DA3358B4DC173, MinChunk: DefaultMinChunk, AvgChunkLog: DefaultAvgChunkLog,
		MaxChunk: DefaultMaxChunk, PackSize: DefaultPackSize, Compression: "zstd", Encryption: crypto.DefaultSealer})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":1,"chunker_polynomial":"3da3358b4dc173","encryption":"none","id_key":"AAAA"}`))
	f.Add([]byte(`{"version":1,"chunker_polynomial":18446744073709551615}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeConfig(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(c)
		if err != nil {
			return // a Created past year 9999: only a forged config has one, and it is never written back
		}
		c2, err := decodeConfig(again)
		if err != nil {
			t.Fatalf("re-encoded config %s fails: %v", again, err)
		}
		if !c2.Created.Equal(c.Created) {
			t.Fatalf("round trip changed Created: %v, %v", c.Created, c2.Created)
		}
		c.Created, c2.Created = time.Time{}, time.Time{}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, c2)
		}
	})
}
