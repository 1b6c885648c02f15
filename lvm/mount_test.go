package lvm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestMountOptions(t *testing.T) {
	tests := []struct {
		fstype, want string
		wantErr      bool
	}{
		{"ext4", "ro", false},
		{"ext3", "ro", false},
		{"xfs", "ro,nouuid", false},
		{"btrfs", "ro", false},
		{"", "", true},
	}
	for _, tt := range tests {
		got, err := MountOptions(tt.fstype)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("MountOptions(%q) = %q, %v; want %q, error %v", tt.fstype, got, err, tt.want, tt.wantErr)
		}
	}
}

// exitErr is a real *exec.ExitError with the given status.
func exitErr(t *testing.T, code string) error {
	t.Helper()
	err := exec.Command("sh", "-c", "exit "+code).Run()
	if err == nil {
		t.Fatal("sh exited 0")
	}
	return err
}

func TestMount(t *testing.T) {
	tests := []struct {
		name     string
		blkid    string
		blkidErr error
		wantRun  string
		wantFS   Filesystem
		wantErr  string
	}{
		{"xfs", "DEVNAME=/dev/vg0/s\nUUID=1b4e28ba-2fa1-11d2-883f-0016d3cca427\nTYPE=xfs\nLABEL=data\n", nil,
			"mount -t xfs -o ro,nouuid /dev/vg0/s ", Filesystem{"xfs", "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "data"}, ""},
		{"ext4", "TYPE=ext4\nUUID=u\n", nil, "mount -t ext4 -o ro /dev/vg0/s ", Filesystem{Type: "ext4", UUID: "u"}, ""},
		{"nothing", "", nil, "", Filesystem{}, "--image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blkidErr := tt.blkidErr
			if tt.blkid == "" {
				blkidErr = &CommandError{Err: exitErr(t, "2")}
			}
			r := (&recorder{}).on("blkid -p -o export /dev/vg0/s", tt.blkid, blkidErr).on("mount", "", nil)
			dir := filepath.Join(t.TempDir(), "mnt")
			fs, err := newTestManager(t, r).Mount(context.Background(), "/dev/vg0/s", dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "/dev/vg0/s") {
					t.Fatalf("got %v, want an error naming the device and %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || fs != tt.wantFS {
				t.Fatalf("got %+v, %v; want %+v", fs, err, tt.wantFS)
			}
			if got := r.calls[len(r.calls)-1]; got != tt.wantRun+dir {
				t.Errorf("ran %q, want %q", got, tt.wantRun+dir)
			}
		})
	}
}

func TestProbeFails(t *testing.T) {
	r := (&recorder{}).on("blkid", "", &CommandError{Stderr: "permission denied", Err: exitErr(t, "4")})
	_, err := newTestManager(t, r).Probe(context.Background(), "/dev/sdz")
	if err == nil || !strings.Contains(err.Error(), "/dev/sdz") || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("got %v", err)
	}
}

func TestMkfs(t *testing.T) {
	tests := []struct {
		fs   Filesystem
		want string
	}{
		{Filesystem{"ext4", "u-1", "root"}, "mkfs.ext4 -F -q -U u-1 -L root /dev/x"},
		{Filesystem{"ext4", "", ""}, "mkfs.ext4 -F -q /dev/x"},
		{Filesystem{"xfs", "u-2", "data"}, "mkfs.xfs -f -q -m uuid=u-2 -L data /dev/x"},
		{Filesystem{"btrfs", "u-3", ""}, "mkfs.btrfs -f -q -U u-3 /dev/x"},
	}
	for _, tt := range tests {
		r := (&recorder{}).on("mkfs", "", nil)
		if err := newTestManager(t, r).Mkfs(context.Background(), "/dev/x", tt.fs); err != nil {
			t.Fatal(err)
		}
		if r.calls[0] != tt.want {
			t.Errorf("ran %q, want %q", r.calls[0], tt.want)
		}
	}
	err := newTestManager(t, &recorder{}).Mkfs(context.Background(), "/dev/x", Filesystem{Type: "ntfs"})
	if err == nil || !strings.Contains(err.Error(), "ntfs") {
		t.Errorf("mkfs of ntfs: %v", err)
	}
}

func TestCreateVolume(t *testing.T) {
	r := (&recorder{}).on("lvcreate", "", nil).on("lvs", lvsJSON(lvRow("vg0", "new", "-wi-a-----", "", 12*mib, "")), nil)
	lv, err := newTestManager(t, r).CreateVolume(context.Background(), "vg0/new", 10*mib+1)
	if err != nil || lv.Size != 12*mib {
		t.Fatalf("got %+v, %v", lv, err)
	}
	if want := "lvcreate -y -Wy -Zy -n new -L 10485761b vg0"; r.calls[0] != want {
		t.Errorf("ran %q, want %q", r.calls[0], want)
	}
	r = (&recorder{}).on("lvcreate", "", failed(`  Volume group "vg0" has insufficient free space (2 extents): 3 required.`))
	_, err = newTestManager(t, r).CreateVolume(context.Background(), "vg0/new", 10*mib)
	if err == nil || !strings.Contains(err.Error(), "vg0/new: create volume: lvcreate") || !strings.Contains(err.Error(), "insufficient free space") {
		t.Errorf("got %v", err)
	}
}

func TestMountsOf(t *testing.T) {
	dev := "/dev/null" // 1:3 on every Linux
	info := filepath.Join(t.TempDir(), "mountinfo")
	table := "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n" +
		"40 22 1:3 / /run/hindsight/lvm/mnt/vg0/web rw - ext4 /dev/vg0/s ro\n" +
		"41 40 1:3 / /mnt/with\\040space ro - ext4 /dev/vg0/s ro\n"
	if err := os.WriteFile(info, []byte(table), 0o600); err != nil {
		t.Fatal(err)
	}
	m := newTestManager(t, &recorder{})
	m.MountInfo = info
	got, err := m.mountsOf(dev)
	if err != nil {
		t.Fatal(err)
	}
	if want := "/run/hindsight/lvm/mnt/vg0/web|/mnt/with space"; strings.Join(got, "|") != want {
		t.Errorf("mounts %q, want %q", got, want)
	}
	if got, err := m.mountsOf("/dev/vg0/gone"); err != nil || got != nil {
		t.Errorf("missing device: %v, %v", got, err)
	}
}

func TestFsck(t *testing.T) {
	tests := []struct{ fstype, want string }{
		{"ext4", "e2fsck -f -n /dev/x"},
		{"xfs", "xfs_repair -n /dev/x"},
		{"btrfs", "btrfs check --readonly /dev/x"},
	}
	for _, tt := range tests {
		r := (&recorder{}).on("", "", nil)
		if err := newTestManager(t, r).Fsck(context.Background(), "/dev/x", tt.fstype); err != nil || r.calls[0] != tt.want {
			t.Errorf("%s: ran %q (%v), want %q", tt.fstype, r.calls, err, tt.want)
		}
	}
	r := (&recorder{}).on("e2fsck", "", failed("Inode 12 has illegal blocks."))
	err := newTestManager(t, r).Fsck(context.Background(), "/dev/x", "ext4")
	if err == nil || !strings.Contains(err.Error(), "/dev/x: fsck: e2fsck -f -n /dev/x") || !strings.Contains(err.Error(), "illegal blocks") {
		t.Errorf("got %v", err)
	}
}
