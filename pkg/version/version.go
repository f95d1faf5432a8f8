// Package version holds what `sluice version` prints. Version and Commit
// are stamped at build time by the Makefile through -ldflags -X.
package version

import "runtime"

var (
	// Version is the release, from git describe.
	Version = "dev"
	// Commit is the git commit the binary was built from.
	Commit = "unknown"
)

// GoVersion is the Go toolchain the binary was built with.
func GoVersion() string { return runtime.Version() }
