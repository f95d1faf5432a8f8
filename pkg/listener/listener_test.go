package listener

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopTestUpgrader() // its goroutine ends here, not at a test's end
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func TestUnixModeAndCleanup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := ListenStream(context.Background(), Spec{Network: "unix", Address: path, Mode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want socket 0600", fi.Mode())
	}
	if ln.Addr().String() != path {
		t.Errorf("Addr = %q, want the path", ln.Addr())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file not removed on close: %v", err)
	}
}

func TestUnixStaleReplacedLiveRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	// A stale socket: bound, then the listener closed without unlinking.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	ln, err := ListenStream(context.Background(), Spec{Network: "unix", Address: path})
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	defer ln.Close()

	_, err = ListenStream(context.Background(), Spec{Network: "unix", Address: path})
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), path) {
		t.Fatalf("live socket: err = %v, want ErrInUse naming the path", err)
	}
	// The first listener still serves.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("live socket stolen: %v", err)
	}
	c.Close()
}

func TestUnixRefusesRegularFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ListenStream(context.Background(), Spec{Network: "unix", Address: path}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("err = %v", err)
	}
}

func TestUnixCloseLeavesForeignFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := ListenStream(context.Background(), Spec{Network: "unix", Address: path})
	if err != nil {
		t.Fatal(err)
	}
	// Someone replaces the path (another instance after a move).
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("close removed a file that was not its own: %v", err)
	}
}

func TestTCPInUse(t *testing.T) {
	ln, err := ListenStream(context.Background(), Spec{Network: "tcp", Address: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = ListenStream(context.Background(), Spec{Network: "tcp", Address: ln.Addr().String()})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("err = %v, want ErrInUse", err)
	}
}

func TestUDPInUse(t *testing.T) {
	pc, err := ListenPacket(context.Background(), Spec{Network: "udp", Address: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err = ListenPacket(context.Background(), Spec{Network: "udp", Address: pc.LocalAddr().String()}); !errors.Is(err, ErrInUse) {
		t.Fatalf("err = %v, want ErrInUse", err)
	}
}

// failing is a listener whose Accept fails with EMFILE until closed.
type failing struct {
	calls  atomic.Int32
	closed chan struct{}
}

func (f *failing) Accept() (net.Conn, error) {
	select {
	case <-f.closed:
		return nil, net.ErrClosed
	default:
	}
	f.calls.Add(1)
	return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}
func (f *failing) Close() error   { close(f.closed); return nil }
func (f *failing) Addr() net.Addr { return &net.TCPAddr{} }

// TestAcceptBacksOff checks that a persistent accept error does not spin:
// with 5 ms doubling, 300 ms allow at most 7 attempts (5+10+20+40+80+160).
func TestAcceptBacksOff(t *testing.T) {
	f := &failing{closed: make(chan struct{})}
	done := make(chan error)
	go func() { done <- Accept(f, hclog.NewNullLogger(), func(net.Conn) {}) }()
	time.Sleep(300 * time.Millisecond)
	f.Close()
	if err := <-done; err != nil {
		t.Fatalf("Accept returned %v after close, want nil", err)
	}
	if n := f.calls.Load(); n < 2 || n > 7 {
		t.Errorf("%d accept attempts in 300ms, want 2..7 (backoff)", n)
	}
}

func TestNextBackoff(t *testing.T) {
	d := time.Duration(0)
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000}
	for i, w := range want {
		d = nextBackoff(d)
		if d != w*time.Millisecond {
			t.Fatalf("step %d: %v, want %v", i, d, w*time.Millisecond)
		}
	}
}
