// Package crash kills hindsight with SIGKILL at random moments of backup,
// push, prune and "lvm backup", again and again, and checks after each
// kill what the durability order of DESIGN.md promises: the repository
// (and for push the replica) checks clean, every snapshot it lists
// restores bit-exact, and running the command again finishes the work
// without redoing what the killed run had made durable.
//
// The kill moments are drawn from a seed, printed at the start with the
// command line that replays them (HINDSIGHT_TEST_SEED). Under CI=true the
// package needs MinIO, root and loop devices, and kills at least 100
// times in all; go test -short kills a few times per command.
package crash
