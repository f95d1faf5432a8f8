package sdnotify

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// fakeSystemd listens where $NOTIFY_SOCKET points, as systemd does.
func fakeSystemd(t *testing.T) *net.UnixConn {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn") // short: a socket path has 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return c
}

func next(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(b[:n])
}

func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

func TestMessages(t *testing.T) {
	c := fakeSystemd(t)
	n := New(hclog.NewNullLogger())

	n.Ready("serving 2 listeners")
	if got, want := next(t, c), "READY=1\nSTATUS=serving 2 listeners\n"; got != want {
		t.Errorf("Ready: %q, want %q", got, want)
	}

	before := monotonicUsec(t)
	n.ReloadBegin("signal")
	got := next(t, c)
	after := monotonicUsec(t)
	m := regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=(\d+)\n$`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("ReloadBegin: %q, want RELOADING=1 and MONOTONIC_USEC", got)
	}
	if usec, _ := strconv.ParseInt(m[1], 10, 64); usec < before || usec > after {
		t.Errorf("MONOTONIC_USEC=%d is not CLOCK_MONOTONIC now (between %d and %d)", usec, before, after)
	}

	n.ReloadEnd("signal", nil)
	if got, want := next(t, c), "READY=1\nSTATUS=config reloaded (signal)\n"; got != want {
		t.Errorf("ReloadEnd ok: %q, want %q", got, want)
	}
	n.ReloadEnd("file", errors.New("config.yaml: listeners[0].name: required\nconfig.yaml: log.level: bad"))
	want := "READY=1\nSTATUS=config reload failed (file); the previous config is still running: config.yaml: listeners[0].name: required; config.yaml: log.level: bad\n"
	if got := next(t, c); got != want {
		t.Errorf("ReloadEnd failed:\n got %q\nwant %q", got, want)
	}

	n.Stopping("draining connections")
	if got, want := next(t, c), "STOPPING=1\nSTATUS=draining connections\n"; got != want {
		t.Errorf("Stopping: %q, want %q", got, want)
	}

	// A reload that ends during the drain says nothing: READY=1 would
	// tell systemd the unit is active again.
	n.ReloadBegin("file")
	n.ReloadEnd("file", errors.New("abandoned"))
	n.Ready("marker")
	if got := next(t, c); got != "READY=1\nSTATUS=marker\n" {
		t.Errorf("after Stopping, a reload sent %q", got)
	}
}

func TestWithoutSystemdNothingIsSent(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	var logs bytes.Buffer
	n := New(hclog.New(&hclog.LoggerOptions{Output: &logs}))
	n.Ready("x")
	n.Reloading()
	n.Stopping("")
	if logs.Len() != 0 {
		t.Errorf("logged without NOTIFY_SOCKET: %s", logs.String())
	}
}

func TestUnreachableSocketIsLogged(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody"))
	var logs bytes.Buffer
	n := New(hclog.New(&hclog.LoggerOptions{Output: &logs}))
	n.Ready("x")
	if !bytes.Contains(logs.Bytes(), []byte("cannot notify systemd")) {
		t.Errorf("a failed notification was not logged: %q", logs.String())
	}
}

// MainPID hands the unit to the process an upgrade started.
func TestMainPID(t *testing.T) {
	c := fakeSystemd(t)
	New(hclog.NewNullLogger()).MainPID(4321, "upgraded: pid 4321 serves,\npid 1 drains")
	if got, want := next(t, c), "MAINPID=4321\nSTATUS=upgraded: pid 4321 serves,; pid 1 drains\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
