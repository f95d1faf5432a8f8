package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/etcdsource"
)

func newPublishCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "publish -c FILE etcd://host:port[,host:port...]/key",
		Short: "Validate a config file and store it under an etcd key",
		Long: `publish checks the config file as validate does and, only if it is valid,
stores it under the etcd key, in one write: every sluice run with
-c etcd://.../key applies it within a second. It prints the key's new
revision.

--if-revision N writes only while the key is still at revision N (the
revision printed by the publish that wrote it, or shown in /status as
source.revision); 0 means the key must not exist yet. Two operators who
publish from the same revision cannot overwrite each other: the second
is refused.

Exit codes: 0 published, 1 invalid config, revision conflict or etcd
unreachable (nothing written), 2 usage error.`,
		Example: `  sluice publish -c fleet.yaml etcd://127.0.0.1:2379/sluice/config.yaml
  sluice publish -c fleet.yaml --if-revision 42 etcd://10.0.0.1:2379,10.0.0.2:2379/sluice/config.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: publish,
	}
	cmd.Flags().Int64("if-revision", 0, "write only while the key is at this revision (0: only if it does not exist)")
	addEtcdFlags(cmd)
	return cmd
}

func publish(cmd *cobra.Command, args []string) error {
	path, _ := cmd.Flags().GetString("config")
	if path == "" {
		return errors.New("publish needs the file to publish: -c FILE")
	}
	if etcdsource.IsURL(path) {
		return errors.New("publish reads the document from a file: -c FILE, and the etcd URL as its argument")
	}
	t, err := etcdsource.ParseURL(args[0])
	if err != nil {
		return err
	}
	for _, name := range config.UnknownEnv(os.Environ()) {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s is not a config override and is ignored (overrides: %s)\n",
			name, strings.Join(config.EnvOverrides(), ", "))
	}
	// The very bytes validated are the ones written: no second read.
	cfg, data, err := config.LoadData(path)
	if err != nil {
		printErrors(cmd, err)
		fmt.Fprintln(cmd.ErrOrStderr(), "not published: the config is invalid")
		return exitError{exitFailed}
	}
	var ifRev *int64
	if cmd.Flags().Changed("if-revision") {
		n, _ := cmd.Flags().GetInt64("if-revision")
		if n < 0 {
			return fmt.Errorf("--if-revision %d: a revision is >= 0", n)
		}
		ifRev = &n
	}
	access, err := etcdAccess(cmd)
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", t.URL, err)
		return exitError{exitFailed}
	}
	cli, err := etcdsource.NewClient(t, access)
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "%v\n", err)
		return exitError{exitFailed}
	}
	defer cli.Close()
	rev, err := etcdsource.Publish(cmd.Context(), cli, t.Key, data, ifRev)
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "%s: not published: %v\n", t.URL, err)
		return exitError{exitFailed}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "published %s to %s: %d listeners, revision %d\n", path, t.URL, len(cfg.Listeners), rev)
	return nil
}
