package main

import (
	"context"
	"fmt"

	"github.com/hindsight-backup/hindsight/remote"
)

// openReplica opens the remote called name, as configured in the
// repository, as a repository of its own, the way --repo URL does: with
// its own index segments, snapshot records and cached index. The password
// is the one that opened the repository, asked for once.
func (a *app) openReplica(ctx context.Context, name string, o openOptions) (*session, error) {
	local, err := a.openRepo(ctx, openOptions{noIndex: true, readOnly: true})
	if err != nil {
		return nil, err
	}
	url, err := local.repo.Remote(local.ctx, name)
	pw := local.pw
	local.close()
	if err != nil {
		return nil, usageError{err}
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	be, err := a.remoteBackend(ctx, url, remote.WrapOptions{Connections: 8})
	if err != nil {
		return nil, fmt.Errorf("remote %s: %w", name, err)
	}
	o.password = &pw
	s, err := a.openSession(ctx, cfg, be, o)
	if err != nil {
		be.Close()
		return nil, fmt.Errorf("remote %s as a repository: %w", name, err)
	}
	return s, nil
}
