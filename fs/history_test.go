package fs

import (
	"syscall"
	"testing"
)

func TestStrictest(t *testing.T) {
	dir := func(mode, uid, gid uint32, acl string) Entry {
		e := Entry{Mode: syscall.S_IFDIR | mode, UID: uid, GID: gid, Mtime: int64(mode)}
		if acl != "" {
			e.Xattrs = []Xattr{{Name: aclXattr, Value: []byte(acl)}, {Name: "user.note", Value: []byte("x")}}
		}
		return e
	}
	tests := []struct {
		name     string
		versions []Entry
		mode     uint32 // permission bits shown
		uid, gid uint32
		acl      bool // the ACL is still shown
	}{
		{"one version", []Entry{dir(0o755, 1000, 100, "")}, 0o755, 1000, 100, false},
		{"private once, public now", []Entry{dir(0o700, 1000, 100, ""), dir(0o755, 1000, 100, "")}, 0o700, 1000, 100, false},
		{"public once, private now", []Entry{dir(0o755, 1000, 100, ""), dir(0o750, 1000, 100, "")}, 0o750, 1000, 100, false},
		{"setgid kept from the newest", []Entry{dir(0o775, 1, 2, ""), dir(0o2770, 1, 2, "")}, 0o2770, 1, 2, false},
		{"owner changed", []Entry{dir(0o700, 1000, 100, ""), dir(0o755, 1001, 100, "")}, 0o000, 0, 0, false},
		{"owner changed, public throughout", []Entry{dir(0o755, 1000, 100, ""), dir(0o755, 1001, 100, "")}, 0o005, 0, 0, false},
		{"group changed", []Entry{dir(0o775, 1000, 100, ""), dir(0o775, 1000, 200, "")}, 0o005, 0, 0, false},
		{"same ACL", []Entry{dir(0o750, 1, 2, "acl"), dir(0o750, 1, 2, "acl")}, 0o750, 1, 2, true},
		{"ACL changed", []Entry{dir(0o750, 1, 2, "old"), dir(0o750, 1, 2, "new")}, 0o000, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := strictest(tc.versions)
			if e.Mode&0o7777 != tc.mode || e.Mode&syscall.S_IFMT != syscall.S_IFDIR || e.UID != tc.uid || e.GID != tc.gid {
				t.Errorf("mode %o uid %d gid %d; want %o, %d, %d", e.Mode, e.UID, e.GID, tc.mode, tc.uid, tc.gid)
			}
			if got := xattr(e, aclXattr) != nil; got != tc.acl {
				t.Errorf("ACL shown: %v, want %v", got, tc.acl)
			}
			if e.Mtime != tc.versions[len(tc.versions)-1].Mtime {
				t.Error("times are not the newest version's")
			}
		})
	}
}
