// Package inputs feeds the hindsight binary the inputs real systems
// produce and test suites forget: names holding every byte, a 20 GiB
// sparse file, a directory of a million files, source files it may not
// read, a source that vanishes while it is read, a repository it may not
// write. Each must give a clear error or a correct result, and lose
// nothing that could be saved.
//
// The tests need root (tmpfs and loop mounts, a second user, FUSE);
// without it they skip, except under CI=true, where they fail. The
// million-file test runs unless -short.
package inputs
