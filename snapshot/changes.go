package snapshot

// ChangeOracle tells an image backup which bytes of the image it reads
// equal those of an earlier point-in-time copy of it — the copy the parent
// snapshot was made from — so that the parent's chunks over them are
// reused without being read. Reading bounds an image backup: a guided one
// hashes what it reads faster than the disk delivers it, and measured on a
// 2 GiB volume a backup with nothing changed took as long as dd reading
// it. Only a source that knows what changed without looking at the data
// can do better: the extent maps of two reflink clones (fsmeta.Unchanged),
// or a thin pool's metadata.
//
// The oracle is trusted, not checked: a range it calls unchanged is never
// read, so a wrong answer records the parent's bytes for it. It is used
// only where the parent's record names the copy the oracle compares with
// (Base equal to the parent's Volume.Clone), so a base that was replaced,
// or a parent made some other way, costs a full guided backup instead.
type ChangeOracle interface {
	// Base identifies the copy compared with, as Volume.Clone records it.
	Base() string
	// Unchanged reports whether the n bytes at off equal the base's.
	Unchanged(off, n int64) bool
}

// trustedChanges returns c if the parent snapshot was made from the copy
// c compares with, else nil.
func trustedChanges(c ChangeOracle, parent *Record) ChangeOracle {
	if c == nil || parent.Volume == nil || parent.Volume.Clone == "" || parent.Volume.Clone != c.Base() {
		return nil
	}
	return c
}

// unread says the change oracle vouches for the parent's chunk c at pos,
// which is then reused without being read or hashed. While prune condemns
// packs its blob must also still be found, as for a reused file.
func (a *archiver) unread(pos int64, c Chunk) bool {
	if !a.changes.Unchanged(pos, int64(c.Size)) || !a.reusable([]Chunk{c}) {
		return false
	}
	a.prog.UnreadBytes.Add(c.Size)
	return true
}
