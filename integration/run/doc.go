// Package run tests "hindsight run" from the outside, as a systemd timer
// runs it on a host: a configuration file with a path source, a volume
// of an emulated LVM volume group (fakelvm, from integration/lvm) and a
// MinIO remote, the metrics file it writes, and the systemd units shipped
// in docs/examples/systemd. It needs root, loop devices, mkfs.ext4,
// MinIO (integration/scripts/install-minio.sh) and systemd-analyze;
// without them the tests skip, except under CI=true, where they fail.
package run
