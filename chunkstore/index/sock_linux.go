package index

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// maxSocketName is what fits in sockaddr_un's sun_path with its NUL.
const maxSocketName = 107

// withShortName calls fn with a name for the socket at path that fits in
// sun_path. A cache directory under a long home directory, plus a
// 64-digit repository ID, does not fit; such paths are reached through an
// open descriptor of their directory.
func withShortName(path string, fn func(name string) error) error {
	if len(path) <= maxSocketName {
		return fn(path)
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return fn(fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path)))
}

// peerAllowed admits only processes of the holder's own user. The socket's
// mode (0600) already keeps others out; this also holds if the mode is
// changed by hand.
func peerAllowed(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *syscall.Ucred
	var credErr error
	err = raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if err == nil {
		err = credErr
	}
	if err != nil {
		return err
	}
	if int(cred.Uid) != os.Geteuid() {
		return fmt.Errorf("peer pid %d runs as uid %d, the index belongs to uid %d", cred.Pid, cred.Uid, os.Geteuid())
	}
	return nil
}
