package fs

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// readAheadKB is the kernel read-ahead asked for the mount: one read
// request's worth (MountOptions.MaxReadAhead).
const readAheadKB = 1024

// raiseReadAhead sets the read-ahead of the mount's backing device to
// readAheadKB. The kernel starts every FUSE mount at its default of 128
// KiB and only ever lowers that to the server's max_readahead, never
// raises it, so without this a sequential reader waits for a round trip
// every 128 KiB. Writing the setting takes root; other users keep the
// default.
func raiseReadAhead(dir string) error {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return err
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	if err := os.WriteFile(p, []byte(strconv.Itoa(readAheadKB)), 0); err != nil {
		return fmt.Errorf("raise read-ahead: %w", err)
	}
	return nil
}
