package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/decode"
)

func newValidateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a config file without binding anything",
		Long: `validate loads the config file, applies defaults and SLUICE_* environment
overrides, and checks every key and every handler's options, like nginx -t.
It binds no socket. It prints "config OK: N listeners" and exits 0, or
prints every problem found, one a line, and exits 1. With -c etcd://...,
it checks the document stored under the key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, name := range config.UnknownEnv(os.Environ()) {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s is not a config override and is ignored (overrides: %s)\n",
					name, strings.Join(config.EnvOverrides(), ", "))
			}
			src, cfg, err := loadConfig(cmd.Context(), cmd, configPath(cmd), nil)
			src.close()
			if err != nil {
				printErrors(cmd, err)
				return exitError{exitFailed}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "config OK: %d listeners\n", len(cfg.Listeners))
			return nil
		},
	}
	addEtcdFlags(cmd)
	return cmd
}

func printErrors(cmd *cobra.Command, err error) {
	for _, e := range decode.Split(err) {
		fmt.Fprintln(cmd.ErrOrStderr(), e)
	}
}
