package e2e

// Clients for the end-to-end tests: plain dials, echo checks, socat.

import (
	"errors"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testtool"
)

func dialT(t *testing.T, network, address string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(network, address, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, address, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

// socat sends input through `socat - ADDRESS` and returns what came back.
func socat(t *testing.T, address, input string) string {
	t.Helper()
	cmd := exec.Command(testtool.Need(t, "socat", "socat"), "-t", "5", "-", address)
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("socat %s: %v\n%s", address, err, out)
	}
	return string(out)
}

// refused reports whether nothing accepts on addr (any more): the
// connect is refused.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		_ = c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}
