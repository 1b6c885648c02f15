// Package cli tests the hindsight binary from the outside: TestMain builds
// ./cmd/hindsight once and every test runs it as a separate process, the
// way cron, a hypervisor hook or an operator does, judging it by exit
// codes, messages, the repository's files and exact restores.
//
// The tests need root (loop mounts), mkfs.ext4 and mkfs.btrfs. Without
// them they skip, except under CI=true, where they fail.
//
// The golden repository in ../testdata/v1 is regenerated with
//
//	go test ./integration/cli -run TestGoldenRepository -update-golden
package cli
