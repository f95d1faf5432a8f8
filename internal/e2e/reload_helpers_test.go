package e2e

// Helpers for the hot reload tests: echo clients and config texts.

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"time"
)

// echo sends msg on c and checks it comes back whole.
func echo(c net.Conn, msg []byte) error {
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	got := make([]byte, len(msg))
	for n := 0; n < len(got); {
		m, err := c.Read(got[n:])
		if err != nil {
			return fmt.Errorf("read after %d of %d bytes: %w", n, len(got), err)
		}
		n += m
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo mismatch: sent %q, got %q", msg, got)
	}
	return nil
}

// dialEcho connects to addr and checks one echo.
func dialEcho(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := echo(c, []byte("hello "+addr)); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// checkEcho connects to addr, checks one echo and hangs up.
func checkEcho(addr string) error {
	c, err := dialEcho(addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// echoListener is a config listener entry for the echo handler; extra
// goes into it verbatim (options such as idle_timeout).
func echoListener(name, addr, extra string) string {
	return fmt.Sprintf("  - name: %s\n    network: tcp\n    address: %s\n%s    chain:\n      - handler: echo\n", name, addr, extra)
}

// configText is a config logging JSON at info, with a drain timeout.
func configText(drain string, listeners ...string) string {
	return "log:\n  level: info\n  format: json\nshutdown:\n  drain_timeout: " + drain + "\nlisteners:\n" + strings.Join(listeners, "")
}
