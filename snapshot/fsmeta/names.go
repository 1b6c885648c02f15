package fsmeta

import (
	"os/user"
	"strconv"
	"sync"
)

// DefaultNameCacheSize bounds each of IDNames' four caches. A host has few
// owners, so hits are the rule; the bound only matters for a tree with
// millions of distinct uids (a container host with user namespaces), where
// an unbounded map would grow for the whole backup.
const DefaultNameCacheSize = 4096

// IDNames resolves user and group ids to names and back through the system
// databases (NSS with cgo, /etc/passwd and /etc/group without), caching
// every answer, unknown ones included, because a lookup can take
// milliseconds against LDAP and a backup asks once per file. It is safe for
// concurrent use.
type IDNames struct {
	users, groups     *boundedCache[uint32, string]
	userIDs, groupIDs *boundedCache[string, idResult]

	// The lookups are fields so that tests can count and fake them.
	lookupUser  func(uid uint32) (string, bool)
	lookupGroup func(gid uint32) (string, bool)
	lookupUID   func(name string) (uint32, bool)
	lookupGID   func(name string) (uint32, bool)
}

type idResult struct {
	id uint32
	ok bool
}

// NewIDNames returns a resolver whose caches hold at most size entries each;
// size <= 0 means DefaultNameCacheSize.
func NewIDNames(size int) *IDNames {
	if size <= 0 {
		size = DefaultNameCacheSize
	}
	return &IDNames{
		users:       newBoundedCache[uint32, string](size),
		groups:      newBoundedCache[uint32, string](size),
		userIDs:     newBoundedCache[string, idResult](size),
		groupIDs:    newBoundedCache[string, idResult](size),
		lookupUser:  systemUser,
		lookupGroup: systemGroup,
		lookupUID:   systemUID,
		lookupGID:   systemGID,
	}
}

// User returns the name of uid, or "" if the system does not know it.
func (n *IDNames) User(uid uint32) string {
	return n.users.get(uid, func() string { name, _ := n.lookupUser(uid); return name })
}

// Group returns the name of gid, or "" if the system does not know it.
func (n *IDNames) Group(gid uint32) string {
	return n.groups.get(gid, func() string { name, _ := n.lookupGroup(gid); return name })
}

// UID returns the id this system gives to the user called name.
func (n *IDNames) UID(name string) (uint32, bool) {
	r := n.userIDs.get(name, func() idResult { id, ok := n.lookupUID(name); return idResult{id, ok} })
	return r.id, r.ok
}

// GID returns the id this system gives to the group called name.
func (n *IDNames) GID(name string) (uint32, bool) {
	r := n.groupIDs.get(name, func() idResult { id, ok := n.lookupGID(name); return idResult{id, ok} })
	return r.id, r.ok
}

func systemUser(uid uint32) (string, bool) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return "", false
	}
	return u.Username, true
}

func systemGroup(gid uint32) (string, bool) {
	g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10))
	if err != nil {
		return "", false
	}
	return g.Name, true
}

func systemUID(name string) (uint32, bool) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, false
	}
	return parseID(u.Uid)
}

func systemGID(name string) (uint32, bool) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, false
	}
	return parseID(g.Gid)
}

func parseID(s string) (uint32, bool) {
	id, err := strconv.ParseUint(s, 10, 32)
	return uint32(id), err == nil
}

// boundedCache is a map that forgets an arbitrary entry when full. Owners
// repeat so much that smarter eviction would not pay for its code.
type boundedCache[K comparable, V any] struct {
	mu  sync.Mutex
	max int
	m   map[K]V
}

func newBoundedCache[K comparable, V any](max int) *boundedCache[K, V] {
	return &boundedCache[K, V]{max: max, m: make(map[K]V)}
}

// get returns the cached value of k or computes it with load. load runs
// without the lock held, so one slow lookup does not stall other workers;
// two workers may then look up the same key once each, which is harmless.
func (c *boundedCache[K, V]) get(k K, load func() V) V {
	c.mu.Lock()
	v, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return v
	}
	v = load()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = v
	return v
}

func (c *boundedCache[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
