package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
)

// TestStartConnect: the dialer's hook connects the socket by itself (on
// loopback the handshake is over when the call returns), and net's own
// connect after it still dials, reports a refusal as one, and leaves the
// connection carrying bytes both ways.
func TestStartConnect(t *testing.T) {
	for _, family := range []struct {
		network, listen string
		domain          int
	}{{"tcp4", "127.0.0.1:0", syscall.AF_INET}, {"tcp6", "[::1]:0", syscall.AF_INET6}} {
		t.Run(family.network, func(t *testing.T) {
			ln, err := net.Listen(family.network, family.listen)
			if err != nil {
				t.Skipf("no %s loopback here: %v", family.network, err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						_, _ = io.Copy(c, c)
					}()
				}
			}()
			addr := ln.Addr().String()

			// The hook alone.
			fd, err := syscall.Socket(family.domain, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			f := os.NewFile(uintptr(fd), "socket")
			defer f.Close()
			rc, err := f.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			if err := startConnect(family.network, addr, rc); err != nil {
				t.Fatal(err)
			}
			var peer syscall.Sockaddr
			var perr error
			_ = rc.Control(func(fd uintptr) { peer, perr = syscall.Getpeername(int(fd)) })
			if perr != nil {
				t.Fatalf("after the hook the socket is not connected: %v", perr)
			}
			if got, want := sockaddrPort(peer), netip.MustParseAddrPort(addr).Port(); got != want {
				t.Fatalf("connected to port %d, want %d", got, want)
			}

			// Through the proxy's dialer.
			d := keepAliveDialer(0)
			c, err := d.DialContext(context.Background(), family.network, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("echo: %q, %v", buf, err)
			}

			// A refusal is net's error, as before.
			gone, err := net.Listen(family.network, family.listen)
			if err != nil {
				t.Fatal(err)
			}
			closed := gone.Addr().String()
			_ = gone.Close()
			if _, err := d.DialContext(context.Background(), family.network, closed); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("dial to a closed port: %v, want connection refused", err)
			}
		})
	}
}

func sockaddrPort(sa syscall.Sockaddr) uint16 {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return uint16(sa.Port)
	case *syscall.SockaddrInet6:
		return uint16(sa.Port)
	}
	return 0
}
