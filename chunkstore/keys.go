package chunkstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore/crypto"
	"github.com/hindsight-backup/hindsight/remote"
)

// KeyInfo describes one key file.
type KeyInfo struct {
	ID      string
	Current bool // the key that opened this repository
	Created time.Time
	Host    string
	User    string
}

var errUnencrypted = errors.New("the repository is not encrypted: it has no keys")

// AddKey adds a key file that opens the repository with password.
func (r *Repository) AddKey(ctx context.Context, password []byte, host, user string) (string, error) {
	if r.cfg.Encryption == crypto.NoEncryption {
		return "", errUnencrypted
	}
	if len(password) == 0 {
		return "", errors.New("an empty password is not allowed")
	}
	return writeKey(ctx, r.be, r.key, password, nil, host, user)
}

// Keys lists the key files.
func (r *Repository) Keys(ctx context.Context) ([]KeyInfo, error) {
	var out []KeyInfo
	err := r.be.List(ctx, keysPrefix, func(fi remote.FileInfo) error {
		b, err := loadAll(ctx, r.be, fi.Name)
		if err != nil {
			return err
		}
		kf, err := crypto.DecodeKeyFile(b)
		if err != nil {
			return fmt.Errorf("key %s: %w", fi.Name, err)
		}
		out = append(out, KeyInfo{ID: strings.TrimPrefix(fi.Name, keysPrefix), Current: fi.Name == r.keyName,
			Created: kf.Created, Host: kf.Host, User: kf.User})
		return nil
	})
	return out, err
}

// RemoveKey deletes a key file by ID or unambiguous prefix. The key that
// opened the repository cannot be removed, so at least one key always
// remains that somebody knows the password of.
func (r *Repository) RemoveKey(ctx context.Context, prefix string) error {
	keys, err := r.Keys(ctx)
	if err != nil {
		return err
	}
	var match []KeyInfo
	for _, k := range keys {
		if strings.HasPrefix(k.ID, prefix) {
			match = append(match, k)
		}
	}
	switch {
	case len(match) == 0:
		return fmt.Errorf("no key %q", prefix)
	case len(match) > 1:
		return fmt.Errorf("key prefix %q is ambiguous (%d keys)", prefix, len(match))
	case match[0].Current:
		return errors.New("refusing to remove the key this session was opened with; open with another password first")
	}
	return r.be.Remove(ctx, keysPrefix+match[0].ID)
}

// ChangePassword replaces the current key file with one for password.
func (r *Repository) ChangePassword(ctx context.Context, password []byte, host, user string) error {
	id, err := r.AddKey(ctx, password, host, user)
	if err != nil {
		return err
	}
	old := r.keyName
	r.keyName = keysPrefix + id
	return r.be.Remove(ctx, old)
}
