//go:build linux

package listener

import (
	"net"
	"syscall"
	"testing"
	"time"
)

func keepAlive(t *testing.T, c *net.TCPConn) (on, idle int) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	_ = rc.Control(func(fd uintptr) {
		on, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		idle, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
	})
	return on, idle
}

func acceptOne(t *testing.T, ln net.Listener) *net.TCPConn {
	t.Helper()
	cl, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

// TestKeepAliveFreshAndFromFile: a listener sluice binds accepts
// connections without keepalive; one made from a descriptor (an upgrade's
// or systemd's) accepts them with Go's defaults, which GoKeepAlive
// reports; SetKeepAlive brings either to the configured value.
func TestKeepAliveFreshAndFromFile(t *testing.T) {
	fresh, err := ListenStream(t.Context(), Spec{Name: "k", Network: "tcp", Address: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fresh.Close() })
	if GoKeepAlive(fresh) {
		t.Fatal("GoKeepAlive(a listener sluice bound) = true")
	}
	f, err := fresh.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	inherited, err := net.FileListener(f)
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inherited.Close() })
	noteFromFile(inherited)
	if !GoKeepAlive(inherited) {
		t.Fatal("GoKeepAlive(a listener from a descriptor) = false")
	}

	for _, tc := range []struct {
		d       time.Duration
		on, idl int
	}{{0, 0, 0}, {DefaultKeepAlive, 1, 15}, {42 * time.Second, 1, 42}} {
		for _, ln := range []net.Listener{fresh, inherited} {
			c := acceptOne(t, ln)
			on, idle := keepAlive(t, c)
			if goOn := GoKeepAlive(ln); (on == 1) != goOn || (goOn && idle != int(DefaultKeepAlive/time.Second)) {
				t.Fatalf("accepted with keepalive %d idle %d; GoKeepAlive says %v", on, idle, goOn)
			}
			if err := SetKeepAlive(c, tc.d, GoKeepAlive(ln)); err != nil {
				t.Fatal(err)
			}
			on, idle = keepAlive(t, c)
			if on != tc.on || (on == 1 && idle != tc.idl) {
				t.Errorf("tcp_keepalive %v (from file %v): keepalive %d idle %d, want %d %d", tc.d, GoKeepAlive(ln), on, idle, tc.on, tc.idl)
			}
		}
	}
}

// TestMaxKeepAlive: the kernel takes MaxKeepAlive and refuses a second
// more, which config validation therefore refuses too.
func TestMaxKeepAlive(t *testing.T) {
	ln, err := ListenStream(t.Context(), Spec{Name: "k", Network: "tcp", Address: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	c := acceptOne(t, ln)
	if err := SetKeepAlive(c, MaxKeepAlive, false); err != nil {
		t.Fatalf("SetKeepAlive(%v): %v", MaxKeepAlive, err)
	}
	if _, idle := keepAlive(t, c); idle != int(MaxKeepAlive/time.Second) {
		t.Errorf("TCP_KEEPIDLE = %d, want %d", idle, int(MaxKeepAlive/time.Second))
	}
	if err := SetKeepAlive(c, MaxKeepAlive+time.Second, false); err == nil {
		t.Errorf("SetKeepAlive(%v) succeeded; MaxKeepAlive is not the kernel's limit", MaxKeepAlive+time.Second)
	}
}
