// Package repair damages a repository the ways disks and people do — bytes
// flipped in a pack, a pack truncated or deleted, the index or its segments
// deleted, a snapshot record corrupted, a replica missing a pack — and
// checks that 'hindsight check' reports exactly that damage (the pack,
// blob, segment, snapshot and paths concerned, and nothing else), that
// 'hindsight repair' heals it from a replica on a real MinIO
// (remote/s3/s3test), and that a restore is then bit-exact (treecmp).
//
// It needs root (the source tree is integration/testtree's) and MinIO;
// without them the tests skip, except under CI=true, where they fail.
package repair
