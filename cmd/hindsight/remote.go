package main

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/remote"
	"github.com/hindsight-backup/hindsight/remote/local"
	"github.com/hindsight-backup/hindsight/remote/s3"
	"github.com/hindsight-backup/hindsight/remote/swift"
)

const remoteURLHelp = `A remote is an S3 bucket and prefix, written
  s3:https://HOST[:PORT]/BUCKET[/PREFIX][?region=R&lookup=path|dns|auto&ca=FILE]
(lookup: path-style or virtual-host requests; auto picks virtual-host for
AWS and path-style elsewhere; ca: a PEM file of CAs to trust), or a local
directory. Credentials never go into the URL: they come from
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), else
MINIO_ROOT_USER / MINIO_ROOT_PASSWORD, else ~/.aws/credentials (AWS_PROFILE).
The region defaults to AWS_REGION, then AWS_DEFAULT_REGION.

An OpenStack Swift container and prefix is written
  swift:CONTAINER[/PREFIX][?region=R&endpoint=public|internal|admin]
with the credentials of the swift and openstack tools: OS_AUTH_URL,
OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, OS_USER_DOMAIN_NAME,
OS_PROJECT_DOMAIN_NAME, OS_REGION_NAME, OS_INTERFACE (Keystone v2/v3), or
ST_AUTH, ST_USER, ST_KEY (v1 auth, Rackspace Cloud Files). The container
is created when missing.

Remotes are recorded in the repository itself (the file remotes.json at its
top), so the list travels with the repository; the URLs are stored, never
the credentials.`

func (a *app) remoteCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "remote",
		Short: "Manage the remotes a repository is pushed to",
		Long:  remoteURLHelp,
		Args:  groupArgs,
		RunE:  groupRun,
	}
	var noCheck, jsonOut bool
	add := &cobra.Command{
		Use:   "add NAME URL",
		Short: "Add a remote, or change the URL of one",
		Long: `Record URL as the remote NAME. The bucket is checked first (it must
exist and the credentials must work) unless --no-check is given.

` + remoteURLHelp,
		Example: `  hindsight remote add offsite s3:https://s3.example.com/backups/host1`,
		Args:    cobra.ExactArgs(2),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			return a.remoteAdd(cmd.Context(), args[0], args[1], !noCheck)
		}),
	}
	add.Flags().BoolVar(&noCheck, "no-check", false, "record the remote without contacting it")
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the remotes",
		Long:    "Print each remote's name and URL, one a line, tab-separated.",
		Example: "  hindsight remote list",
		Args:    cobra.NoArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			return a.remoteList(cmd.Context())
		}),
	}
	status := &cobra.Command{
		Use:   "status NAME",
		Short: "Show what the remote holds and what is pending",
		Long: `Count the packs that pushes recorded as uploaded to the remote (from the
local index, without asking the remote), and compare the snapshot records
of both sides (one listing of the remote). Pending work is what the next
'hindsight push NAME' uploads.`,
		Example: `  hindsight remote status offsite
  hindsight remote status offsite --json`,
		Args: cobra.ExactArgs(1),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			return a.remoteStatus(cmd.Context(), args[0], jsonOut)
		}),
	}
	status.Flags().BoolVar(&jsonOut, "json", false, "print the status as one JSON object")
	cmd.AddCommand(add, list, status)
	return cmd
}

// openRemote turns a remote's URL into a Backend. openRepo hands --repo
// s3: locations here too, so that every command reads an S3 repository
// the way push writes one.
func (a *app) openRemote(ctx context.Context, url string, check bool) (remote.Backend, error) {
	if swift.IsURL(url) {
		return a.openSwift(ctx, url, check)
	}
	if !s3.IsURL(url) {
		be, err := local.OpenDir(url)
		if remote.IsNotExist(err) {
			return nil, fmt.Errorf("remote %s: directory does not exist", url)
		}
		return be, err
	}
	cfg, err := s3.ParseURL(url)
	if err != nil {
		return nil, usageError{err}
	}
	cfg.Credentials = s3.Credentials{
		AccessKeyID:     a.getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: a.getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    a.getenv("AWS_SESSION_TOKEN"),
	}
	if cfg.Region == "" {
		cfg.Region = a.getenv("AWS_REGION")
	}
	if cfg.Region == "" {
		cfg.Region = a.getenv("AWS_DEFAULT_REGION")
	}
	if !check {
		return s3.New(cfg)
	}
	return s3.Open(ctx, cfg)
}

// openSwift opens a swift:CONTAINER/PREFIX remote as the OS_* or ST_*
// variables say; checked, it logs in and creates the container if needed.
func (a *app) openSwift(ctx context.Context, url string, check bool) (remote.Backend, error) {
	cfg, err := swift.ParseURL(url)
	if err != nil {
		return nil, usageError{err}
	}
	if cfg.Auth, err = swift.AuthFromEnv(a.getenv); err != nil {
		return nil, usageError{err}
	}
	if !check {
		return swift.New(cfg)
	}
	return swift.Open(ctx, cfg)
}

// openWithRemote opens the repository under a shared lock for purpose, and
// the remote called name, wrapped as o says and always retried. The caller
// closes both.
func (a *app) openWithRemote(ctx context.Context, purpose, name string, o remote.WrapOptions) (_ *session, _ remote.Backend, err error) {
	s, err := a.openRepo(ctx, openOptions{lock: sharedLock, purpose: purpose})
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	url, err := s.repo.Remote(s.ctx, name)
	if err != nil {
		return nil, nil, usageError{err}
	}
	be, err := a.remoteBackend(s.ctx, url, o)
	if err != nil {
		return nil, nil, err
	}
	return s, be, nil
}

// remoteBackend opens url, checked, with the decorators every command puts
// around a remote: always retried, and o's limits. A repository given as
// --repo s3:... is opened here too.
func (a *app) remoteBackend(ctx context.Context, url string, o remote.WrapOptions) (remote.Backend, error) {
	be, err := a.openRemote(ctx, url, true)
	if err != nil {
		return nil, err
	}
	o.Retry = &remote.RetryOptions{Logger: a.log}
	return remote.Wrap(be, o), nil
}

func (a *app) remoteAdd(ctx context.Context, name, url string, check bool) error {
	s, err := a.openRepo(ctx, openOptions{noIndex: true})
	if err != nil {
		return err
	}
	defer s.close()
	be, err := a.openRemote(s.ctx, url, check)
	if err != nil {
		return err
	}
	be.Close()
	if err := s.repo.SaveRemote(s.ctx, name, url); err != nil {
		return err
	}
	if !a.quiet {
		fmt.Fprintf(a.stdout, "remote %s: %s\n", name, be.Location())
	}
	return nil
}

func (a *app) remoteList(ctx context.Context) error {
	s, err := a.openRepo(ctx, openOptions{noIndex: true, readOnly: true})
	if err != nil {
		return err
	}
	defer s.close()
	all, err := s.repo.Remotes(s.ctx)
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		fmt.Fprintf(a.stdout, "%s\t%s\n", name, all[name])
	}
	return nil
}

func (a *app) remoteStatus(ctx context.Context, name string, jsonOut bool) error {
	s, be, err := a.openWithRemote(ctx, "remote status", name, remote.WrapOptions{})
	if err != nil {
		return err
	}
	defer s.close()
	defer be.Close()
	st, err := s.repo.RemoteStatus(s.ctx, name, be)
	if err != nil {
		return s.err(err)
	}
	pending := idStrings(st.SnapshotsPending)
	if jsonOut {
		return writeJSON(a.stdout, struct {
			Remote           string   `json:"remote"`
			URL              string   `json:"url"`
			Packs            int      `json:"packs"`
			PacksOnRemote    int      `json:"packs_on_remote"`
			Bytes            int64    `json:"bytes"`
			BytesOnRemote    int64    `json:"bytes_on_remote"`
			Snapshots        int      `json:"snapshots"`
			SnapshotsPending []string `json:"snapshots_pending"`
		}{name, be.Location(), st.Packs, st.PacksOnRemote, st.Bytes, st.BytesOnRemote, st.Snapshots, pending})
	}
	fmt.Fprintf(a.stdout, "remote %s: %s\n", name, be.Location())
	fmt.Fprintf(a.stdout, "  packs:     %d of %d uploaded (%s of %s); %d pending (%s)\n",
		st.PacksOnRemote, st.Packs, formatBytes(uint64(st.BytesOnRemote)), formatBytes(uint64(st.Bytes)),
		st.Packs-st.PacksOnRemote, formatBytes(uint64(st.Bytes-st.BytesOnRemote)))
	fmt.Fprintf(a.stdout, "  snapshots: %d of %d on the remote; %d pending\n",
		st.Snapshots-len(pending), st.Snapshots, len(pending))
	printCapped(a.stdout, "  pending snapshots:", pending, 0, 10)
	return nil
}
