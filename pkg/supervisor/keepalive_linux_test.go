//go:build linux

package supervisor_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// testKeepAlive answers with the TCP keepalive of its own socket, as the
// kernel has it: "on idle interval count".
type testKeepAlive struct{}

func (testKeepAlive) ServeStream(_ context.Context, c *chain.Conn) error {
	rc, err := c.Raw().(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	var on, idle, intvl, cnt int
	_ = rc.Control(func(fd uintptr) {
		on, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		idle, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		intvl, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
		cnt, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT)
	})
	if on == 0 {
		_, err = io.WriteString(c, "off\n")
		return err
	}
	_, err = fmt.Fprintf(c, "on %d %d %d\n", idle, intvl, cnt)
	return err
}

func init() { registry.Register("sv-keepalive", func() any { return new(testKeepAlive) }) }

func keepAliveOf(t *testing.T, address string) string {
	t.Helper()
	c := dial(t, "tcp", address)
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTCPKeepAlive: accepted connections get the listener's
// tcp_keepalive (15s by default, 0 for none), and a reload's new value
// applies to the connections accepted after it.
func TestTCPKeepAlive(t *testing.T) {
	s := start(t, "listeners:\n"+
		tcpListener("dflt", "sv-keepalive")+
		tcpListener("off", "sv-keepalive", ", tcp_keepalive: 0")+
		tcpListener("slow", "sv-keepalive", ", tcp_keepalive: 42s"))
	for name, want := range map[string]string{"dflt": "on 15 15 9\n", "off": "off\n", "slow": "on 42 42 9\n"} {
		if got := keepAliveOf(t, addr(t, s, name)); got != want {
			t.Errorf("%s: keepalive %q, want %q", name, got, want)
		}
	}
	before := addr(t, s, "slow")
	cfg := mustParse(t, "listeners:\n"+
		tcpListener("dflt", "sv-keepalive", ", tcp_keepalive: 0")+
		tcpListener("off", "sv-keepalive", ", tcp_keepalive: 2m")+
		tcpListener("slow", "sv-keepalive"))
	if _, err := s.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if a := addr(t, s, "slow"); a != before {
		t.Fatalf("the reload rebound the listener (%s, was %s)", a, before)
	}
	for name, want := range map[string]string{"dflt": "off\n", "off": "on 120 120 9\n", "slow": "on 15 15 9\n"} {
		if got := keepAliveOf(t, addr(t, s, name)); got != want {
			t.Errorf("after the reload, %s: keepalive %q, want %q", name, got, want)
		}
	}
}
