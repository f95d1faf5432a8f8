package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/sluice-dev/sluice/pkg/version"
)

// newGenDocsCmd writes the man pages and shell completions that the
// packages ship (make package runs it). They come from the command tree
// itself, so they cannot drift from the flags. It is hidden: operators
// get its output installed.
func newGenDocsCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "gen-docs DIR",
		Short:  "Write man pages (DIR/man1) and bash, zsh and fish completions (DIR/completions)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := genDocs(cmd.Root(), args[0]); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "sluice: gen-docs: %v\n", err)
				return exitError{exitFailed}
			}
			return nil
		},
	}
}

func genDocs(root *cobra.Command, dir string) error {
	// No "auto generated on <date>" line: a rebuild of the same commit
	// must give the same files. The header's date honours
	// $SOURCE_DATE_EPOCH, which the Makefile sets to the commit's time.
	root.DisableAutoGenTag = true
	man := filepath.Join(dir, "man1")
	comp := filepath.Join(dir, "completions")
	for _, d := range []string{man, comp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	hdr := &doc.GenManHeader{Section: "1", Source: "sluice " + version.Version, Manual: "sluice manual"}
	if err := doc.GenManTree(root, hdr, man); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	for name, gen := range map[string]func(*os.File) error{
		"sluice.bash": func(f *os.File) error { return root.GenBashCompletionV2(f, true) },
		"_sluice":     func(f *os.File) error { return root.GenZshCompletion(f) },
		"sluice.fish": func(f *os.File) error { return root.GenFishCompletion(f, true) },
	} {
		if err := writeFile(filepath.Join(comp, name), gen); err != nil {
			return fmt.Errorf("completion %s: %w", name, err)
		}
	}
	return nil
}

func writeFile(path string, gen func(*os.File) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := gen(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
