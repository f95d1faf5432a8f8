package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/pkg/registry"
	"github.com/sluice-dev/sluice/pkg/version"
)

// defaultConfig is where a packaged sluice keeps its config.
const defaultConfig = "/etc/sluice/config.yaml"

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "sluice",
		Short: "A config-driven TCP, Unix socket and UDP appliance with hot reload",
		Long: `sluice serves the listeners declared in one YAML file. Each listener
(TCP, Unix stream socket or UDP) passes its connections through a chain of
handlers: ` + strings.Join(registry.Names(), ", ") + `. Edit the file and the
change applies at once, without dropping a connection.

The config file is taken from -c/--config, else $SLUICE_CONFIG, else
` + defaultConfig + `. An etcd URL (etcd://host:2379,host2:2379/key) in its
place reads the document stored under that key, and follows its changes.

Exit codes: 0 success, 1 invalid config or a listener that cannot start,
2 usage error.`,
		Example: `  sluice validate -c config.example.yaml   # check a config, bind nothing
  sluice run -c config.example.yaml        # serve it in the foreground
  socat - TCP:127.0.0.1:7000               # talk to the echo listener`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Version,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q", args[0])
			}
			cmd.SetOut(os.Stderr)
			_ = cmd.Help()
			return exitError{exitUsage}
		},
	}
	root.SetVersionTemplate(versionLine() + "\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return err })
	root.PersistentFlags().StringP("config", "c", "", "config file or etcd://host:port[,...]/key (default $SLUICE_CONFIG, else "+defaultConfig+")")
	root.AddCommand(newRunCmd(), newValidateCmd(), newPublishCmd(), newVersionCmd(), newGenDocsCmd())
	return root
}

// configPath resolves the config file: the flag, then $SLUICE_CONFIG, then
// the packaged default.
func configPath(cmd *cobra.Command) string {
	if p, _ := cmd.Flags().GetString("config"); p != "" {
		return p
	}
	if p := os.Getenv("SLUICE_CONFIG"); p != "" {
		return p
	}
	return defaultConfig
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), versionLine())
		},
	}
}

func versionLine() string {
	return fmt.Sprintf("sluice %s (commit %s, %s)", version.Version, version.Commit, version.GoVersion())
}
