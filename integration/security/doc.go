// Package security tests what SECURITY.md promises, from the outside, with
// the hindsight binary and real components: that a remote (a real MinIO)
// and the repository's files hold no plaintext content or file names;
// that tampered objects and foreign or damaged key files are refused with
// an error rather than read; that passwords stay out of output, logs and
// process arguments; and that a restore never writes outside its target,
// whatever the snapshot's trees say.
//
// The tests need root (a second user, chown) and the MinIO binary that
// integration/scripts/install-minio.sh builds; without them they skip,
// except under CI=true, where they fail.
package security
