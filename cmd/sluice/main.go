// Command sluice is the appliance: it serves the listeners and chains of
// one config file, reloads it on change, and drains on shutdown.
package main

import (
	"errors"
	"fmt"
	"os"

	_ "github.com/sluice-dev/sluice/plugins/all" // every bundled handler
)

// Exit codes, as the README and `sluice --help` document them.
const (
	exitOK     = 0
	exitFailed = 1 // invalid config, a listener that cannot start
	exitUsage  = 2 // bad flags or arguments
)

// exitError carries an exit code out of a command whose message has
// already been printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	os.Exit(execute(os.Args[1:]))
}

func execute(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// Anything cobra itself refused is a usage error.
	fmt.Fprintf(os.Stderr, "sluice: %v\nRun 'sluice --help' for usage.\n", err)
	return exitUsage
}
