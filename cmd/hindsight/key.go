package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) keyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Manage the repository's passwords",
		Long: `Each password of a repository is a key file that wraps the same master
key. Several keys let several people or machines open the repository with
their own password, and a password is changed by adding a new key and
removing the old one.

The new password of 'key add' and 'key passwd' comes from
--new-password-file, or is asked for twice on the terminal. The current
password comes from the usual sources (see 'hindsight --help').`,
		Args: groupArgs,
		RunE: groupRun,
	}
	var newPasswordFile string
	addNewPasswordFlag := func(c *cobra.Command) {
		c.Flags().StringVar(&newPasswordFile, "new-password-file", "", "read the new password from the first line of `FILE`")
	}

	add := &cobra.Command{
		Use:   "add",
		Short: "Add a key with a new password",
		Long: `Add a key that opens the repository with a new password. The current
password and its key stay valid; remove a key with 'hindsight key remove'
when it is no longer wanted.`,
		Example: `  hindsight key add
  hindsight key add --new-password-file /root/.hindsight-pw-2`,
		Args: cobra.NoArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			return a.keyAdd(cmd.Context(), newPasswordFile, false)
		}),
	}
	addNewPasswordFlag(add)

	passwd := &cobra.Command{
		Use:   "passwd",
		Short: "Change the password (replace the key that opened the repository)",
		Long: `Write a key with the new password, then remove the key the current
password opened. Other keys are left alone.`,
		Example: `  hindsight key passwd`,
		Args:    cobra.NoArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			return a.keyAdd(cmd.Context(), newPasswordFile, true)
		}),
	}
	addNewPasswordFlag(passwd)

	var jsonOut bool
	list := &cobra.Command{
		Use:     "list",
		Short:   "List keys",
		Long:    "List the repository's keys; the one that opened it this time is marked with *.",
		Example: `  hindsight key list`,
		Args:    cobra.NoArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			return a.keyList(cmd.Context(), jsonOut)
		}),
	}
	list.Flags().BoolVar(&jsonOut, "json", false, "print one JSON object per key and line")

	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a key",
		Long: `Remove the key with ID (or an unambiguous prefix of it). The key that
opened the repository for this command cannot be removed: open with
another password to remove it.`,
		Example: `  hindsight key remove 3b1f9a`,
		Args:    cobra.ExactArgs(1),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			s, err := a.openRepo(cmd.Context(), openOptions{lock: exclusiveLock, purpose: "key remove", noIndex: true})
			if err != nil {
				return err
			}
			defer s.close()
			if err := s.repo.RemoveKey(s.ctx, args[0]); err != nil {
				return s.err(err)
			}
			if !a.quiet {
				fmt.Fprintf(a.stdout, "removed key %s\n", args[0])
			}
			return nil
		}),
	}
	cmd.AddCommand(add, passwd, list, remove)
	return cmd
}

func (a *app) keyAdd(ctx context.Context, newPasswordFile string, replace bool) error {
	purpose := "key add"
	if replace {
		purpose = "key passwd"
	}
	s, err := a.openRepo(ctx, openOptions{lock: sharedLock, purpose: purpose, noIndex: true})
	if err != nil {
		return err
	}
	defer s.close()
	var pw []byte
	if newPasswordFile != "" {
		p, err := passwordFromFile(newPasswordFile, "--new-password-file "+newPasswordFile)
		if err != nil {
			return err
		}
		pw = p.value
	} else if pw, err = a.promptTwice(s.ctx, "New password: "); err != nil {
		return err
	}
	host, _ := os.Hostname()
	if replace {
		if err := s.repo.ChangePassword(s.ctx, pw, host, currentUser()); err != nil {
			return s.err(err)
		}
		if !a.quiet {
			fmt.Fprintln(a.stdout, "password changed")
		}
		return nil
	}
	id, err := s.repo.AddKey(s.ctx, pw, host, currentUser())
	if err != nil {
		return s.err(err)
	}
	if !a.quiet {
		fmt.Fprintf(a.stdout, "added key %s\n", id)
	}
	return nil
}

func (a *app) keyList(ctx context.Context, jsonOut bool) error {
	s, err := a.openRepo(ctx, openOptions{lock: sharedLock, purpose: "key list", noIndex: true, readOnly: true})
	if err != nil {
		return err
	}
	defer s.close()
	keys, err := s.repo.Keys(s.ctx)
	if err != nil {
		return s.err(err)
	}
	if jsonOut {
		for _, k := range keys {
			err := writeJSON(a.stdout, struct {
				ID      string    `json:"id"`
				Current bool      `json:"current"`
				Created time.Time `json:"created"`
				Host    rawString `json:"host"`
				User    rawString `json:"user"`
			}{k.ID, k.Current, k.Created, rawString(k.Host), rawString(k.User)})
			if err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, " \tID\tCreated\tHost\tUser")
	for _, k := range keys {
		mark := " "
		if k.Current {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", mark, k.ID[:min(len(k.ID), 12)], k.Created.Local().Format(timeLayout), quote(k.Host), quote(k.User))
	}
	return tw.Flush()
}
