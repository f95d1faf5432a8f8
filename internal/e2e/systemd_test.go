package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluice-dev/sluice/internal/testnet"
)

// fakeNotifySocket listens where $NOTIFY_SOCKET will point, as systemd
// does for a Type=notify unit.
func fakeNotifySocket(t *testing.T, dir string) (*net.UnixConn, string) {
	t.Helper()
	path := filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, path
}

// nextNotify returns the next notification sluice sent.
func nextNotify(t *testing.T, c *net.UnixConn, p *proc) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatalf("no notification from sluice: %v; output:\n%s", err, p.output())
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

var reloadingMsg = regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=(\d+)\n$`)

// TestSdNotify runs the binary as systemd would run the unit and checks
// what it tells systemd: READY=1 only once every listener is bound;
// RELOADING=1 with the current CLOCK_MONOTONIC, then READY=1, around each
// reload, applied or failed; STOPPING=1 when it starts draining.
func TestSdNotify(t *testing.T) {
	dir := sockDir(t)
	notify, notifyPath := fakeNotifySocket(t, dir)
	sock := filepath.Join(dir, "echo.sock")
	cfgPath := writeConfig(t, t.TempDir(), echoConfig(sock, ""))
	p := launch(t, cfgPath, "NOTIFY_SOCKET="+notifyPath)

	if got, want := nextNotify(t, notify, p), "READY=1\nSTATUS=serving 2 listeners\n"; got != want {
		t.Fatalf("first notification %q, want %q", got, want)
	}
	// Ready means bound: the socket answers at once, with no retry.
	testnet.MustEcho(t, dialT(t, "unix", sock), "ready\n")

	// A reload that adds a listener.
	sock2 := filepath.Join(dir, "two.sock")
	two := fmt.Sprintf("\n  - name: echo-two\n    network: unix\n    address: %s\n    chain: [{handler: echo}]", sock2)
	writeConfig(t, filepath.Dir(cfgPath), echoConfig(sock, two))
	before := monotonicUsec(t)
	p.signal(syscall.SIGHUP)
	got := nextNotify(t, notify, p)
	after := monotonicUsec(t)
	m := reloadingMsg.FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("on SIGHUP: %q, want RELOADING=1 and MONOTONIC_USEC", got)
	}
	if usec, _ := strconv.ParseInt(m[1], 10, 64); usec < before || usec > after {
		t.Errorf("MONOTONIC_USEC=%d is not the time of the reload (CLOCK_MONOTONIC between %d and %d)", usec, before, after)
	}
	if got, want := nextNotify(t, notify, p), "READY=1\nSTATUS=config reloaded (signal)\n"; got != want {
		t.Fatalf("after the reload: %q, want %q", got, want)
	}
	testnet.MustEcho(t, dialT(t, "unix", sock2), "added by the reload\n")

	// A failed reload: systemd still hears READY=1 (the old config runs),
	// and the status says why.
	writeConfig(t, filepath.Dir(cfgPath), "listeners:\n  - name: Bad Name\n")
	p.signal(syscall.SIGHUP)
	if got := nextNotify(t, notify, p); !reloadingMsg.MatchString(got) {
		t.Fatalf("on a failing SIGHUP: %q, want RELOADING=1 and MONOTONIC_USEC", got)
	}
	got = nextNotify(t, notify, p)
	if !strings.HasPrefix(got, "READY=1\nSTATUS=config reload failed (signal); the previous config is still running: ") ||
		!strings.Contains(got, "listeners[0].name") || strings.Count(got, "\n") != 2 {
		t.Fatalf("after a failed reload: %q, want READY=1 and a one-line STATUS naming the error", got)
	}
	testnet.MustEcho(t, dialT(t, "unix", sock2), "still served\n")

	p.signal(syscall.SIGTERM)
	if got, want := nextNotify(t, notify, p), "STOPPING=1\nSTATUS=draining connections\n"; got != want {
		t.Errorf("on SIGTERM: %q, want %q", got, want)
	}
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
}

// socketFile binds a socket as systemd would for a .socket unit and
// returns a descriptor to pass; the test's own listener is closed, so the
// child's inherited descriptor is the socket's only holder (besides the
// returned file, which the caller closes once the child runs).
func socketFile(t *testing.T, network, address string) (*os.File, string) {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	var f *os.File
	switch l := ln.(type) {
	case *net.TCPListener:
		f, err = l.File()
	case *net.UnixListener:
		l.SetUnlinkOnClose(false) // the file is the .socket unit's
		f, err = l.File()
	}
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return f, addr
}

// activate starts `sluice run -c cfgPath` with files passed the way
// systemd passes them: descriptors from 3 on, $LISTEN_FDS, $LISTEN_FDNAMES
// and $LISTEN_PID, which must be the pid of sluice itself; the shell sets
// it to its own pid and then execs sluice, keeping the pid.
func activate(t *testing.T, cfgPath string, names []string, files ...*os.File) *proc {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", `export LISTEN_PID=$$; exec "$0" "$@"`, binary, "run", "-c", cfgPath, "--watch=false")
	cmd.Env = append(os.Environ(), "SLUICE_LOG_FORMAT=json", "SLUICE_LOG_LEVEL=debug",
		"LISTEN_FDS="+strconv.Itoa(len(files)), "LISTEN_FDNAMES="+strings.Join(names, ":"))
	cmd.ExtraFiles = files
	p := launchCmd(t, cmd)
	for _, f := range files {
		f.Close()
	}
	return p
}

// TestSocketActivation: listeners named like the passed sockets serve
// them instead of binding (binding would fail: the child holds both
// sockets), keep them across reloads, even a reload that removes a
// listener and one that adds it back, and never unlink the Unix socket's
// file, which belongs to the .socket unit.
func TestSocketActivation(t *testing.T) {
	dir := sockDir(t)
	sock := filepath.Join(dir, "echo.sock")
	tcpF, tcpAddr := socketFile(t, "tcp", "127.0.0.1:0")
	unixF, _ := socketFile(t, "unix", sock)
	tcpListener := fmt.Sprintf("  - name: echo-tcp\n    network: tcp\n    address: %s\n    chain: [{handler: echo}]\n", tcpAddr)
	unixListener := fmt.Sprintf("  - name: echo-unix\n    network: unix\n    address: %s\n    chain: [{handler: echo}]\n", sock)
	cfgPath := writeConfig(t, t.TempDir(), "shutdown: {drain_timeout: 2s}\nlisteners:\n"+tcpListener+unixListener)

	p := activate(t, cfgPath, []string{"echo-tcp", "echo-unix"}, tcpF, unixF)
	if !p.waitLog("sluice started", 20*time.Second) {
		t.Fatalf("sluice did not start on inherited sockets; output:\n%s", p.output())
	}
	if p.find("sockets inherited from systemd", "names", "echo-tcp,echo-unix") == nil {
		t.Errorf("no log line naming the inherited sockets; output:\n%s", p.output())
	}
	testnet.MustEcho(t, dialT(t, "tcp", tcpAddr), "inherited tcp\n")
	testnet.MustEcho(t, dialT(t, "unix", sock), "inherited unix\n")

	// Remove echo-unix: its file stays, since it is not sluice's.
	writeConfig(t, filepath.Dir(cfgPath), "shutdown: {drain_timeout: 2s}\nlisteners:\n"+tcpListener)
	p.signal(syscall.SIGHUP)
	if !p.waitLog("config reloaded", 20*time.Second, "removed", "echo-unix") {
		t.Fatalf("reload that removes echo-unix not applied; output:\n%s", p.output())
	}
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("the inherited socket's file was removed with its listener: %v", err)
	}
	// Add it back: the same inherited socket is served again.
	writeConfig(t, filepath.Dir(cfgPath), "shutdown: {drain_timeout: 2s}\nlisteners:\n"+tcpListener+unixListener)
	p.signal(syscall.SIGHUP)
	if !p.waitLog("config reloaded", 20*time.Second, "added", "echo-unix") {
		t.Fatalf("reload that adds echo-unix back failed; output:\n%s", p.output())
	}
	testnet.MustEcho(t, dialT(t, "unix", sock), "inherited again\n")
	testnet.MustEcho(t, dialT(t, "tcp", tcpAddr), "tcp kept\n")

	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0; output:\n%s", code, p.output())
	}
	if _, err := os.Lstat(sock); err != nil {
		t.Errorf("the inherited socket's file was removed at shutdown: %v", err)
	}
}

// TestSocketActivationMismatch: a socket passed under a listener's name
// but on another address is an error naming both, not a reason to bind a
// second socket next to it.
func TestSocketActivationMismatch(t *testing.T) {
	f, inheritedAddr := socketFile(t, "tcp", "127.0.0.1:0")
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	otherAddr := other.Addr().String()
	other.Close()
	cfgPath := writeConfig(t, t.TempDir(), fmt.Sprintf("listeners:\n  - name: echo-tcp\n    network: tcp\n    address: %s\n    chain: [{handler: echo}]\n", otherAddr))
	p := activate(t, cfgPath, []string{"echo-tcp"}, f)
	if code := p.wait(20 * time.Second); code != 1 {
		t.Fatalf("exit %d, want 1; output:\n%s", code, p.output())
	}
	out := p.output()
	for _, want := range []string{"listeners[0] (echo-tcp)", "inherited socket does not match the config", inheritedAddr, otherAddr} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not say %q:\n%s", want, out)
		}
	}
}
