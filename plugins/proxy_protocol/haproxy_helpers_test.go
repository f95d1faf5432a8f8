package proxyprotocol_test

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/haproxytest"
)

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

// haproxyBefore starts HAProxy with one frontend whose only server is
// sluice at addr, its server line ending with opts (send-proxy-v2, check,
// ...), and returns the frontend's address.
func haproxyBefore(t *testing.T, addr, opts string) string {
	t.Helper()
	fe := haproxytest.FreeAddr(t)
	haproxytest.Start(t, fe, fmt.Sprintf(`
frontend fe
  bind %s
  default_backend be
backend be
  server sluice %s %s
`, fe, addr, opts))
	return fe
}

// helloThrough has "hello" echoed by sluice through HAProxy's frontend fe,
// from 127.0.0.2, and returns the client's connection, half-closed and
// read to its end.
func helloThrough(t *testing.T, fe string) net.Conn {
	t.Helper()
	c := dialFrom(t, "127.0.0.2", fe)
	if _, err := io.WriteString(c, "hello"); err != nil {
		t.Fatal(err)
	}
	if got := echoed(t, c); got != "hello" {
		t.Fatalf("echoed %q through haproxy", got)
	}
	return c
}
