// Package testtool finds the programs that tests run as real peers and
// probes: socat, openssl, curl, ssh, haproxy, etcd, strace. Without one,
// a test is skipped with the Debian package to install, except in CI
// (CI=true): .ci/run installs them all, so there a missing one is a
// failure, not a test that quietly did not run.
package testtool

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Need returns the path of the program name, looked up in PATH, then in
// dirs (Debian puts haproxy in /usr/sbin, which a user's PATH may lack).
// pkg is the Debian package that provides it.
func Need(t testing.TB, name, pkg string, dirs ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed, and CI=true requires the tests that use it to run (.ci/run installs %s)", name, pkg)
	}
	t.Skipf("%s is not installed; apt-get install %s to run this test", name, pkg)
	return ""
}
