package snapshot

import (
	"context"
	"fmt"
	"sort"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// LoadTree loads and decodes one tree blob.
func LoadTree(ctx context.Context, repo Repo, id blob.ID) (*Tree, error) {
	b, err := repo.LoadBlob(ctx, blob.Tree, id, nil)
	if err != nil {
		return nil, err
	}
	return decodeTreeBlob(id, b)
}

// decodeTreeBlob decodes tree blob id, naming it in an error.
func decodeTreeBlob(id blob.ID, b []byte) (*Tree, error) {
	t, err := DecodeTree(b)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", id.Short(), err)
	}
	return t, nil
}

// SaveTree encodes and stores a tree, returning its blob ID.
func SaveTree(ctx context.Context, repo Repo, t *Tree) (blob.ID, error) {
	b, err := EncodeTree(t)
	if err != nil {
		return blob.ID{}, err
	}
	id := repo.BlobID(b)
	_, err = repo.SaveBlob(ctx, blob.Tree, id, b)
	return id, err
}

// Find returns the node called name, or nil.
func (t *Tree) Find(name string) *Node {
	if t == nil {
		return nil
	}
	i := sort.Search(len(t.Nodes), func(i int) bool { return t.Nodes[i].Name >= name })
	if i < len(t.Nodes) && t.Nodes[i].Name == name {
		return &t.Nodes[i]
	}
	return nil
}
