package fs

import fusefs "github.com/hanwen/go-fuse/v2/fs"

// One line per capability each node type must keep; a signature change in
// go-fuse breaks the build here rather than silently dropping a call.
var (
	_ = (fusefs.NodeGetattrer)((*rootNode)(nil))
	_ = (fusefs.NodeReaddirer)((*rootNode)(nil))
	_ = (fusefs.NodeLookuper)((*rootNode)(nil))

	_ = (fusefs.NodeGetattrer)((*sourceNode)(nil))
	_ = (fusefs.NodeReaddirer)((*sourceNode)(nil))
	_ = (fusefs.NodeLookuper)((*sourceNode)(nil))

	_ = (fusefs.NodeGetattrer)((*latestNode)(nil))
	_ = (fusefs.NodeReadlinker)((*latestNode)(nil))

	_ = (fusefs.NodeGetattrer)((*entryNode)(nil))
	_ = (fusefs.NodeLookuper)((*entryNode)(nil))
	_ = (fusefs.NodeOpendirHandler)((*entryNode)(nil))
	_ = (fusefs.FileReaddirenter)((*dirHandle)(nil))
	_ = (fusefs.FileSeekdirer)((*dirHandle)(nil))
	_ = (fusefs.FileLookuper)((*dirHandle)(nil))
	_ = (fusefs.FileReleasedirer)((*dirHandle)(nil))
	_ = (fusefs.NodeReadlinker)((*entryNode)(nil))
	_ = (fusefs.NodeGetxattrer)((*entryNode)(nil))
	_ = (fusefs.NodeListxattrer)((*entryNode)(nil))
	_ = (fusefs.NodeOpener)((*entryNode)(nil))
	_ = (fusefs.NodeReader)((*entryNode)(nil))
	_ = (fusefs.NodeLseeker)((*entryNode)(nil))

	_ = (fusefs.NodeGetattrer)((*historyNode)(nil))
	_ = (fusefs.NodeReaddirer)((*historyNode)(nil))
	_ = (fusefs.NodeLookuper)((*historyNode)(nil))

	// Every node embeds readOnly; checked once on the type itself.
	_ = (fusefs.NodeSetattrer)(readOnly{})
	_ = (fusefs.NodeSetxattrer)(readOnly{})
	_ = (fusefs.NodeRemovexattrer)(readOnly{})
	_ = (fusefs.NodeCreater)(readOnly{})
	_ = (fusefs.NodeMkdirer)(readOnly{})
	_ = (fusefs.NodeMknoder)(readOnly{})
	_ = (fusefs.NodeLinker)(readOnly{})
	_ = (fusefs.NodeSymlinker)(readOnly{})
	_ = (fusefs.NodeUnlinker)(readOnly{})
	_ = (fusefs.NodeRmdirer)(readOnly{})
	_ = (fusefs.NodeRenamer)(readOnly{})
	_ = (fusefs.NodeWriter)(readOnly{})
	_ = (fusefs.NodeAllocater)(readOnly{})
)
