// Package haproxytest runs Debian's haproxy in tests: HAProxy is the peer
// operators put in front of sluice or behind it, so its interop is tested
// against the real program, not a stand-in.
package haproxytest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testtool"
	"github.com/sluice-dev/sluice/pkg/plugintest"
)

// Bin returns haproxy's path. Without it the test is skipped with a hint,
// except under CI=true, where it is a failure: .ci/run installs it.
func Bin(t testing.TB) string {
	t.Helper()
	return testtool.Need(t, "haproxy", "haproxy", "/usr/sbin", "/usr/local/sbin")
}

// FreeAddr returns a loopback address nothing listens on right now, for
// a bind line: HAProxy's config needs a fixed port.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	_ = ln.Close()
	return a
}

// defaults go before every config: TCP mode, logs on stdout, timeouts
// that end a stuck test's connections well within its own deadline.
const defaults = `global
  log stdout format raw local0 info
defaults
  log global
  mode tcp
  option tcplog
  timeout connect 5s
  timeout client 10s
  timeout server 10s
`

// Start runs haproxy in the foreground with cfg (its frontends and
// backends; global and defaults sections for TCP mode are put before
// them) until the test ends, and returns once frontend, the address of a
// bind line in cfg, accepts connections. On a failed test haproxy's
// output is logged.
func Start(t testing.TB, frontend, cfg string) {
	t.Helper()
	bin := Bin(t)
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(defaults+cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out := &plugintest.Buffer{}
	cmd := exec.Command(bin, "-f", path, "-db")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The waiter ends when haproxy exits: killed at the test's cleanup
	// at the latest.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("haproxy output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", frontend, time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("haproxy exited: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy does not listen on %s: %v\n%s", frontend, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
