package snapshot

import "testing"

// TestUnchangedOnNewDevice: an LVM snapshot is a new device on every run;
// with NewDevice its unchanged files are still recognised, changed ones
// still are not.
func TestUnchangedOnNewDevice(t *testing.T) {
	prev := Node{Type: TypeFile, Size: 5, Mtime: 1, Ctime: 2, Inode: 7, DeviceID: 0xfd01}
	moved := prev
	moved.DeviceID = 0xfd02
	edited := moved
	edited.Ctime = 3
	tests := []struct {
		name      string
		newDevice bool
		n         Node
		want      bool
	}{
		{"same device", false, prev, true},
		{"other device", false, moved, false},
		{"other device, NewDevice", true, moved, true},
		{"changed, NewDevice", true, edited, false},
	}
	for _, tt := range tests {
		a := &archiver{opts: BackupOptions{NewDevice: tt.newDevice}}
		if got := a.unchanged(&tt.n, &prev); got != tt.want {
			t.Errorf("%s: unchanged = %v, want %v", tt.name, got, tt.want)
		}
	}
}
