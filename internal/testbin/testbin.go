// Package testbin builds the real sluice binary for integration tests that
// run it as an operator would: as a process, with files, sockets and
// signals. The end-to-end tests (internal/e2e) build it once, in their
// TestMain.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Package is the import path of the sluice command.
const Package = "github.com/sluice-dev/sluice/cmd/sluice"

// Build compiles sluice into a new temporary directory and returns the
// binary's path and a cleanup that removes the directory. When the tests
// themselves run with -race, so is the binary built: the integration tests
// then check the real process for data races too. The binary is built with
// the sluice_testhooks tag, which adds what tests need to hold sluice in a
// given state (cmd/sluice/testhooks.go) and nothing else.
func Build() (bin string, cleanup func(), err error) { return BuildVersion("") }

// BuildVersion is Build with the version stamp set as `make build` sets
// it, so that an upgrade test can tell two builds apart; "" keeps the
// default.
func BuildVersion(version string) (bin string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "sluice-bin-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { _ = os.RemoveAll(dir) }
	bin = filepath.Join(dir, "sluice")
	args := []string{"build", "-tags", "sluice_testhooks", "-o", bin}
	if Race {
		args = append(args, "-race")
	}
	if version != "" {
		args = append(args, "-ldflags", "-X github.com/sluice-dev/sluice/pkg/version.Version="+version)
	}
	out, err := exec.Command("go", append(args, Package)...).CombinedOutput()
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("building sluice: %v\n%s", err, out)
	}
	return bin, cleanup, nil
}
