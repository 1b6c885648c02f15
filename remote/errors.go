package remote

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidName is returned (wrapped, and marked permanent) for an object
// name or list prefix that CheckName or CheckPrefix rejects.
var ErrInvalidName = errors.New("invalid object name")

// permanentError marks an error that retrying cannot cure: a full disk, a
// read-only mount, missing permissions, a malformed name. Sending the same
// request again would only delay the report the user needs to see.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying. The result still matches err
// under errors.Is and errors.As. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or any error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// CheckName reports whether name is an acceptable object name: non-empty
// slash-separated elements, none empty, none starting with '.', and no NUL
// or backslash. Every backend applies the same rule so that anything one
// backend stores can be replicated to any other, and so that no name can
// reach outside a local repository's root ("..", "/etc/x") or collide with
// a backend's own hidden temporary files.
func CheckName(name string) error {
	if name == "" {
		return Permanent(fmt.Errorf("%w: empty", ErrInvalidName))
	}
	for elem := range strings.SplitSeq(name, "/") {
		if err := checkElem(elem); err != nil {
			return Permanent(fmt.Errorf("%w %q: %s", ErrInvalidName, name, err))
		}
	}
	return nil
}

// CheckPrefix reports whether prefix can start an object name: "" (all
// objects), a directory such as "packs/", or a partial name such as
// "packs/ab". Its complete elements obey CheckName's rule; the last,
// partial element may be empty.
func CheckPrefix(prefix string) error {
	i := strings.LastIndexByte(prefix, '/')
	if i < 0 {
		if strings.ContainsAny(prefix, "\x00\\") {
			return Permanent(fmt.Errorf("%w: prefix %q", ErrInvalidName, prefix))
		}
		return nil
	}
	if err := CheckName(prefix[:i]); err != nil {
		return err
	}
	if strings.ContainsAny(prefix[i+1:], "\x00\\") {
		return Permanent(fmt.Errorf("%w: prefix %q", ErrInvalidName, prefix))
	}
	return nil
}

func checkElem(elem string) error {
	switch {
	case elem == "":
		return errors.New("empty path element")
	case elem[0] == '.':
		return errors.New("element starts with '.'")
	case strings.ContainsAny(elem, "\x00\\"):
		return errors.New("NUL or backslash")
	}
	return nil
}

// JoinPrefix names object name under prefix ("" for none), as the object
// stores that share one namespace between repositories lay them out.
func JoinPrefix(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "/" + name
}
