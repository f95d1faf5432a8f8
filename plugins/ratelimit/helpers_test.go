package ratelimit_test

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/sluice-dev/sluice/pkg/plugintest"
	_ "github.com/sluice-dev/sluice/plugins/all"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is an in-process sluice: a supervisor serving configs given as
// YAML, with its metrics and its log output at debug.
type harness = plugintest.Harness

func newHarness(t *testing.T) *harness {
	t.Helper()
	return plugintest.NewHarness(t, plugintest.Options{Level: hclog.Debug})
}

// dialFrom connects to addr from the local IP from ("" for any).
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// served reports whether c is echoed to: a connection the ratelimit let
// through answers "x"; a refused one is closed (EOF or reset).
func served(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	if _, err := c.Write([]byte("x")); err != nil {
		return false // reset by a refusal that came first
	}
	var b [1]byte
	_, err := io.ReadFull(c, b[:])
	switch {
	case err == nil:
		return b[0] == 'x'
	case errors.Is(err, io.EOF), isReset(err):
		return false
	}
	t.Fatalf("neither echoed nor closed: %v", err)
	return false
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// finish half-closes c and reads to EOF, so that the server side is done
// with it, then closes it.
func finish(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.(*net.TCPConn).CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("reading to EOF: %v", err)
	}
	_ = c.Close()
}

func waitABit() { time.Sleep(5 * time.Millisecond) }
