package main

import (
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/crypto"
)

func (a *app) initCommand() *cobra.Command {
	var encryption, compression string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a new repository",
		Long: `Create a new, empty repository at the location given by --repo,
$HINDSIGHT_REPOSITORY or the config file, and print its ID.

The password is taken from the usual sources (see 'hindsight --help'); when
it is typed at the terminal it is asked for twice. Keep it safe: without a
password the backups cannot be read, by anyone.

--encryption xaes-256-gcm, the default, is AES-256-GCM with 192-bit random
nonces (C2SP XAES-256-GCM), the fastest choice on CPUs with AES instructions
('grep -wm1 aes /proc/cpuinfo' finds them). On a CPU without them AES is
slow: choose xchacha20-poly1305, which is as safe. A repository keeps the
encryption it was made with, and hindsight reads every one.

--encryption none stores everything in the clear, without even integrity
protection. It is meant for disks that never leave a trusted machine.`,
		Example: `  hindsight init --repo /srv/backup
  HINDSIGHT_PASSWORD_FILE=/root/.hindsight-pw hindsight init -r /srv/backup
  hindsight init -r /mnt/usb/backup --compression none`,
		Args: cobra.NoArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(crypto.SealerNames(), encryption) {
				return usagef("--encryption %q: choose one of %s", encryption, strings.Join(crypto.SealerNames(), ", "))
			}
			if compression != "zstd" && compression != "none" {
				return usagef("--compression %q: choose zstd or none", compression)
			}
			return a.runInit(cmd, encryption, compression, jsonOut)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&encryption, "encryption", crypto.DefaultSealer, "`ALGORITHM`: "+crypto.XAES256GCM+", "+crypto.XChaCha20Poly1305+
		" (for CPUs without AES instructions) or "+crypto.NoEncryption+" (no encryption, no integrity)")
	f.StringVar(&compression, "compression", "zstd", "`ALGORITHM`: zstd or none")
	f.BoolVar(&jsonOut, "json", false, "print the result as JSON")
	return cmd
}

func (a *app) runInit(cmd *cobra.Command, encryption, compression string, jsonOut bool) error {
	ctx := cmd.Context()
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	loc, err := a.location(cfg)
	if err != nil {
		return err
	}
	var pw password
	if encryption == crypto.NoEncryption {
		fmt.Fprintln(a.stderr, "hindsight: WARNING: creating an UNENCRYPTED repository: anyone who can read its files can read every backup, and damage or tampering will not be detected as such.")
	} else if pw, err = a.newRepoPassword(ctx, cfg); err != nil {
		return err
	}
	be, err := openBackend(loc, true)
	if err != nil {
		return err
	}
	defer be.Close()
	host, _ := os.Hostname()
	c, err := chunkstore.Init(ctx, be, pw.value, chunkstore.InitOptions{
		Encryption: encryption, Compression: compression, Host: host, User: currentUser(),
	})
	if err != nil {
		return fmt.Errorf("init %s: %w", be.Location(), err)
	}
	if jsonOut {
		return writeJSON(a.stdout, struct {
			ID          string `json:"id"`
			Location    string `json:"location"`
			Encryption  string `json:"encryption"`
			Compression string `json:"compression"`
		}{c.ID, be.Location(), c.Encryption, c.Compression})
	}
	fmt.Fprintf(a.stdout, "created repository %s at %s\n", c.ID, be.Location())
	return nil
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}
