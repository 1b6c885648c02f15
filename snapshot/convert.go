package snapshot

import "github.com/hindsight-backup/hindsight/snapshot/fsmeta"

// nodeFromMeta converts read metadata into a node named name.
func nodeFromMeta(name string, m *fsmeta.Meta) Node {
	n := Node{
		Name: name, Type: NodeType(m.Type), Mode: m.Mode, UID: m.UID, GID: m.GID,
		User: m.User, Group: m.Group, Size: m.Size, Atime: m.Atime, Mtime: m.Mtime, Ctime: m.Ctime,
		DeviceID: m.DeviceID, Inode: m.Inode, Links: m.Links, Rdev: m.Rdev, LinkTarget: m.LinkTarget,
	}
	if n.Type != TypeFile {
		n.Size = 0
	}
	for _, x := range m.Xattrs {
		if !xfsACLMirror[x.Name] {
			n.Xattrs = append(n.Xattrs, Xattr{Name: x.Name, Value: x.Value})
		}
	}
	return n
}

// xfsACLMirror names the attributes in which XFS shows its POSIX ACLs a
// second time. The system.posix_acl_* copies are the portable ones; the
// mirrors would restore as stray trusted.* attributes on other filesystems,
// and XFS recreates them itself when the ACL is set.
var xfsACLMirror = map[string]bool{"trusted.SGI_ACL_FILE": true, "trusted.SGI_ACL_DEFAULT": true}

// metaFromNode converts a node back for fsmeta's Create and Apply.
func metaFromNode(n *Node) fsmeta.Meta {
	m := fsmeta.Meta{
		Type: fsmeta.Type(n.Type), Mode: n.Mode, UID: n.UID, GID: n.GID, User: n.User, Group: n.Group,
		Size: n.Size, Atime: n.Atime, Mtime: n.Mtime, Ctime: n.Ctime,
		DeviceID: n.DeviceID, Inode: n.Inode, Links: n.Links, Rdev: n.Rdev, LinkTarget: n.LinkTarget,
	}
	if len(n.Xattrs) > 0 {
		m.Xattrs = make([]fsmeta.Xattr, len(n.Xattrs))
		for i, x := range n.Xattrs {
			m.Xattrs[i] = fsmeta.Xattr{Name: x.Name, Value: x.Value}
		}
	}
	return m
}
