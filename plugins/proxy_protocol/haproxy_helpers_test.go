package proxyprotocol_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// haproxyPath returns Debian's haproxy. Without it the test is skipped
// with a hint, except in CI (CI=true), where it is a failure: these tests
// are sluice's interop with the peer operators actually run.
func haproxyPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("haproxy")
	if err != nil {
		for _, p := range []string{"/usr/sbin/haproxy", "/usr/local/sbin/haproxy"} {
			if _, serr := os.Stat(p); serr == nil {
				return p
			}
		}
		if os.Getenv("CI") == "true" {
			t.Fatal("haproxy is required in CI (apt-get install haproxy)")
		}
		t.Skip("haproxy is not installed; apt-get install haproxy to run the interop tests")
	}
	return path
}

// freePort returns a loopback address nothing listens on right now, for
// HAProxy's frontend (its config needs a fixed port).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	_ = ln.Close()
	return a
}

// syncBuf collects HAProxy's output while it runs.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startHAProxy runs haproxy in the foreground with cfg (defaults for TCP
// mode are prepended) until the test ends, and waits until frontend
// accepts connections.
func startHAProxy(t *testing.T, frontend, cfg string) {
	t.Helper()
	bin := haproxyPath(t)
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	full := `global
  log stdout format raw local0 info
defaults
  log global
  mode tcp
  option tcplog
  timeout connect 5s
  timeout client 10s
  timeout server 10s
` + cfg
	if err := os.WriteFile(path, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	out := &syncBuf{}
	cmd := exec.Command(bin, "-f", path, "-db")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
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

// dialFrom connects to addr from the loopback address from, so that the
// client's address differs from the proxies' 127.0.0.1.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}
