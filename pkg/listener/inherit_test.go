package listener

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// inheritTCP passes a fresh TCP socket on 127.0.0.1 under name, as systemd
// would, and returns its address. The test's own listener is closed, so
// the inherited descriptor is the socket's only holder, and a ListenStream
// that bound instead of inheriting would fail with "address in use".
func inheritTCP(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	Inherit([]*os.File{namedFile(t, f, name)})
	return addr
}

// namedFile returns f's socket under name, on a descriptor of its own:
// f is closed, and a finalizer must not close what Inherit keeps.
func namedFile(t *testing.T, f *os.File, name string) *os.File {
	t.Helper()
	defer f.Close()
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fd), name)
}

func roundTrip(t *testing.T, ln net.Listener) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, err = c.Write([]byte("x"))
			c.Close()
		}
		done <- err
	}()
	c, err := net.DialTimeout(ln.Addr().Network(), ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 1)
	if _, err := c.Read(b); err != nil || b[0] != 'x' {
		t.Fatalf("read: %q, %v", b, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("accept: %v", err)
	}
}

func TestInheritedTCPIsServedAndSurvivesClose(t *testing.T) {
	addr := inheritTCP(t, "inh-tcp")
	s := Spec{Name: "inh-tcp", Network: "tcp", Address: addr}
	ln, err := ListenStream(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if ln.Addr().String() != addr {
		t.Fatalf("Addr = %s, want the inherited %s", ln.Addr(), addr)
	}
	roundTrip(t, ln)
	// A reload that removes the listener closes it; one that adds it back
	// must get the same socket again, which systemd still holds.
	ln.Close()
	again, err := ListenStream(context.Background(), s)
	if err != nil {
		t.Fatalf("second ListenStream on the inherited socket: %v", err)
	}
	defer again.Close()
	roundTrip(t, again)
}

func TestInheritedMismatchIsAnError(t *testing.T) {
	addr := inheritTCP(t, "inh-mismatch")
	other, err := net.Listen("tcp", "127.0.0.1:0") // a port that is surely not addr's
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, s := range []Spec{
		{Name: "inh-mismatch", Network: "tcp", Address: other.Addr().String()},
		{Name: "inh-mismatch", Network: "unix", Address: filepath.Join(t.TempDir(), "s.sock")},
	} {
		_, err := ListenStream(context.Background(), s)
		if !errors.Is(err, ErrInheritedMismatch) {
			t.Errorf("%s %s: err = %v, want ErrInheritedMismatch", s.Network, s.Address, err)
			continue
		}
		if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), `"inh-mismatch"`) {
			t.Errorf("error does not name the inherited socket and its address: %v", err)
		}
	}
	if _, err := ListenPacket(context.Background(), Spec{Name: "inh-mismatch", Network: "udp", Address: addr}); !errors.Is(err, ErrInheritedMismatch) {
		t.Errorf("a TCP socket taken as UDP: err = %v, want ErrInheritedMismatch", err)
	}
}

func TestInheritedUnixIsNeverUnlinked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false) // the file is systemd's
	f, err := ul.File()
	if err != nil {
		t.Fatal(err)
	}
	ul.Close()
	Inherit([]*os.File{namedFile(t, f, "inh-unix")})

	// A live socket at the path: binding instead of inheriting would be
	// refused as "in use", so success means the inherited one was taken.
	ln, err := ListenStream(context.Background(), Spec{Name: "inh-unix", Network: "unix", Address: path, Mode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ln)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("the inherited socket's file was removed on close: %v", err)
	}
}

func TestInheritedUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := pc.(*net.UDPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	Inherit([]*os.File{namedFile(t, f, "inh-udp")})

	got, err := ListenPacket(context.Background(), Spec{Name: "inh-udp", Network: "udp", Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.LocalAddr().String() != addr {
		t.Fatalf("LocalAddr = %s, want %s", got.LocalAddr(), addr)
	}
	if _, err := ListenStream(context.Background(), Spec{Name: "inh-udp", Network: "tcp", Address: addr}); !errors.Is(err, ErrInheritedMismatch) {
		t.Errorf("a UDP socket taken as TCP: err = %v, want ErrInheritedMismatch", err)
	}
}

func TestNotInheritedBinds(t *testing.T) {
	inheritTCP(t, "inh-other")
	ln, err := ListenStream(context.Background(), Spec{Name: "not-inherited", Network: "tcp", Address: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	roundTrip(t, ln)
}

func TestSameAddr(t *testing.T) {
	tcp := func(s string) net.Addr { a, _ := net.ResolveTCPAddr("tcp", s); return a }
	for _, c := range []struct {
		spec Spec
		got  net.Addr
		want bool
	}{
		{Spec{Network: "tcp", Address: "127.0.0.1:7000"}, tcp("127.0.0.1:7000"), true},
		{Spec{Network: "tcp", Address: "localhost:7000"}, tcp("127.0.0.1:7000"), true},
		{Spec{Network: "tcp", Address: "127.0.0.1:7001"}, tcp("127.0.0.1:7000"), false},
		{Spec{Network: "tcp", Address: "127.0.0.2:7000"}, tcp("127.0.0.1:7000"), false},
		// systemd's ListenStream=7000 is [::]:7000, dual-stack.
		{Spec{Network: "tcp", Address: ":7000"}, tcp("[::]:7000"), true},
		{Spec{Network: "tcp", Address: "0.0.0.0:7000"}, tcp("[::]:7000"), true},
		{Spec{Network: "tcp", Address: "0.0.0.0:7000"}, tcp("127.0.0.1:7000"), false},
		{Spec{Network: "tcp", Address: "127.0.0.1:0"}, tcp("127.0.0.1:7000"), true},
		{Spec{Network: "udp", Address: "127.0.0.1:7000"}, tcp("127.0.0.1:7000"), false},
		{Spec{Network: "unix", Address: "/run/sluice/echo.sock"}, &net.UnixAddr{Net: "unix", Name: "/run/sluice/echo.sock"}, true},
		{Spec{Network: "unix", Address: "/run/sluice/../sluice/echo.sock"}, &net.UnixAddr{Net: "unix", Name: "/run/sluice/echo.sock"}, true},
		{Spec{Network: "unix", Address: "/run/sluice/echo.sock"}, &net.UnixAddr{Net: "unixgram", Name: "/run/sluice/echo.sock"}, false},
		{Spec{Network: "unix", Address: "/run/sluice/other.sock"}, &net.UnixAddr{Net: "unix", Name: "/run/sluice/echo.sock"}, false},
		{Spec{Network: "unix", Address: "@sluice"}, &net.UnixAddr{Net: "unix", Name: "@sluice"}, true},
	} {
		if got := sameAddr(c.spec, c.got); got != c.want {
			t.Errorf("sameAddr(%s %s, %s) = %v, want %v", c.spec.Network, c.spec.Address, c.got, got, c.want)
		}
	}
}
