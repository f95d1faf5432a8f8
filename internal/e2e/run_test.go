package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testnet"
	"github.com/sluice-dev/sluice/internal/testtool"
)

func echoConfig(sock string, extra string) string {
	return fmt.Sprintf(`shutdown: {drain_timeout: 2s}
listeners:
  - name: echo-tcp
    network: tcp
    address: 127.0.0.1:0
    chain: [{handler: echo}]%s
  - name: echo-unix
    network: unix
    address: %s
    socket: {mode: "0600"}
    chain: [{handler: echo}]
`, extra, sock)
}

func TestRunServesTCPAndUnix(t *testing.T) {
	sock := filepath.Join(sockDir(t), "echo.sock")
	p := startSluice(t, writeConfig(t, t.TempDir(), echoConfig(sock, "")))
	testnet.MustEcho(t, dialT(t, "tcp", p.addr("echo-tcp")), "over tcp\n")
	testnet.MustEcho(t, dialT(t, "unix", sock), "over unix\n")
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket file: %v, %v; want mode 0600", fi.Mode(), err)
	}
}

func TestRunWithSocat(t *testing.T) {
	testtool.Need(t, "socat", "socat")
	sock := filepath.Join(sockDir(t), "echo.sock")
	p := startSluice(t, writeConfig(t, t.TempDir(), echoConfig(sock, "")))
	if got := socat(t, "TCP:"+p.addr("echo-tcp"), "hello over tcp\n"); got != "hello over tcp\n" {
		t.Errorf("socat tcp: %q", got)
	}
	if got := socat(t, "UNIX-CONNECT:"+sock, "hello over unix\n"); got != "hello over unix\n" {
		t.Errorf("socat unix: %q", got)
	}
	// A larger stream through socat, which half-closes after stdin's EOF:
	// every byte must come back before sluice closes.
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB
	if got := socat(t, "TCP:"+p.addr("echo-tcp"), big); got != big {
		t.Errorf("socat 1 MiB: got %d bytes back", len(got))
	}
}

// TestSecondInstanceRefused: neither the TCP port nor the live Unix socket
// of a running sluice can be taken by a second one, which exits 1 naming
// the listener and address, and the first keeps serving.
func TestSecondInstanceRefused(t *testing.T) {
	sock := filepath.Join(sockDir(t), "echo.sock")
	first := startSluice(t, writeConfig(t, t.TempDir(), echoConfig(sock, "")))
	tcpAddr := first.addr("echo-tcp")

	sameTCP := fmt.Sprintf("listeners:\n  - {name: dup, network: tcp, address: %q, chain: [{handler: echo}]}\n", tcpAddr)
	second := launch(t, writeConfig(t, t.TempDir(), sameTCP))
	if code := second.wait(20 * time.Second); code != 1 {
		t.Errorf("second instance on the same port: exit %d, want 1", code)
	}
	if out := second.output(); !strings.Contains(out, "listeners[0] (dup)") || !strings.Contains(out, tcpAddr) || !strings.Contains(out, "address already in use") {
		t.Errorf("error does not name listener and address:\n%s", out)
	}

	sameSock := fmt.Sprintf("listeners:\n  - {name: dup, network: unix, address: %q, chain: [{handler: echo}]}\n", sock)
	third := launch(t, writeConfig(t, t.TempDir(), sameSock))
	if code := third.wait(20 * time.Second); code != 1 {
		t.Errorf("second instance on the same socket: exit %d, want 1", code)
	}
	if out := third.output(); !strings.Contains(out, sock) || !strings.Contains(out, "another process accepts on this socket") {
		t.Errorf("error does not name the socket:\n%s", out)
	}

	testnet.MustEcho(t, dialT(t, "tcp", tcpAddr), "first still serves tcp\n")
	testnet.MustEcho(t, dialT(t, "unix", sock), "first still serves unix\n")
}

func TestStaleSocketReplaced(t *testing.T) {
	sock := filepath.Join(sockDir(t), "echo.sock")
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close() // the file stays, with nobody accepting: as after a crash
	p := startSluice(t, writeConfig(t, t.TempDir(), echoConfig(sock, "")))
	testnet.MustEcho(t, dialT(t, "unix", sock), "fresh socket\n")
	p.signal(syscall.SIGTERM)
	p.wait(20 * time.Second)
}

// TestSIGTERMDrains: SIGTERM stops accepting at once, lets an open
// connection finish, closes what is still open at the drain timeout,
// exits 0 and removes the socket file.
func TestSIGTERMDrains(t *testing.T) {
	sock := filepath.Join(sockDir(t), "echo.sock")
	p := startSluice(t, writeConfig(t, t.TempDir(), echoConfig(sock, "")))
	a := p.addr("echo-tcp")
	busy := dialT(t, "tcp", a)
	lingering := dialT(t, "unix", sock)
	testnet.MustEcho(t, lingering, "x")

	begin := time.Now()
	p.signal(syscall.SIGTERM)
	if !p.waitLog("shutdown started", 10*time.Second) {
		t.Fatalf("no shutdown log:\n%s", p.output())
	}
	if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
		c.Close()
		t.Error("still accepting after SIGTERM")
	}
	// The open connection keeps working during the drain and finishes.
	testnet.MustEcho(t, busy, "finishing my work\n")
	busy.(*net.TCPConn).CloseWrite()
	if rest, err := io.ReadAll(busy); err != nil || len(rest) != 0 {
		t.Errorf("drained connection: %q, %v", rest, err)
	}
	// The lingering one is closed at the 2s drain timeout; then exit 0.
	if code := p.wait(20 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	if d := time.Since(begin); d < 2*time.Second {
		t.Errorf("exited after %v, before the 2s drain timeout with a connection open", d)
	}
	_ = lingering.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := lingering.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("lingering connection: %v, want closed", err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left after shutdown: %v", err)
	}
	if p.find("shutdown finished") == nil {
		t.Errorf("no 'shutdown finished' log:\n%s", p.output())
	}
}

func TestSecondSIGINTExitsAtOnce(t *testing.T) {
	sock := filepath.Join(sockDir(t), "echo.sock")
	cfg := strings.Replace(echoConfig(sock, ""), "drain_timeout: 2s", "drain_timeout: 1h", 1)
	p := startSluice(t, writeConfig(t, t.TempDir(), cfg))
	testnet.MustEcho(t, dialT(t, "tcp", p.addr("echo-tcp")), "hold the drain open")
	p.signal(syscall.SIGINT)
	if !p.waitLog("shutdown started", 10*time.Second) {
		t.Fatal("no drain after the first SIGINT")
	}
	p.signal(syscall.SIGINT)
	if code := p.wait(10 * time.Second); code != 1 {
		t.Errorf("exit %d after a second SIGINT, want 1", code)
	}
}

func TestIdleTimeout(t *testing.T) {
	sock := filepath.Join(sockDir(t), "echo.sock")
	p := startSluice(t, writeConfig(t, t.TempDir(), echoConfig(sock, "\n    idle_timeout: 300ms")))
	c := dialT(t, "tcp", p.addr("echo-tcp"))
	// Activity keeps it open past the timeout...
	for i := 0; i < 5; i++ {
		time.Sleep(100 * time.Millisecond)
		testnet.MustEcho(t, c, "tick")
	}
	// ...and silence closes it, not before the timeout.
	begin := time.Now()
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: %v, want EOF", err)
	}
	if d := time.Since(begin); d < 300*time.Millisecond {
		t.Errorf("closed after %v of silence, before the 300ms idle timeout", d)
	}
	if !p.waitLog("connection failed", 5*time.Second, "error", "echo: read: idle timeout") {
		t.Errorf("idle close not logged:\n%s", p.output())
	}
}

func TestStartupFailureExits1(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free := filepath.Join(sockDir(t), "never.sock")
	cfg := fmt.Sprintf("listeners:\n  - {name: first, network: unix, address: %q, chain: [{handler: echo}]}\n  - {name: taken, network: tcp, address: %q, chain: [{handler: echo}]}\n", free, busy.Addr())
	p := launch(t, writeConfig(t, t.TempDir(), cfg))
	if code := p.wait(20 * time.Second); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if _, err := os.Lstat(free); !errors.Is(err, os.ErrNotExist) {
		t.Error("half-started: the first listener's socket was left behind")
	}
	if !strings.Contains(p.output(), "listeners[1] (taken)") {
		t.Errorf("error does not name the listener:\n%s", p.output())
	}
	// And an invalid config exits 1 too, with its errors on stderr.
	bad := launch(t, writeConfig(t, t.TempDir(), "listeners: [{name: x}]\n"))
	if code := bad.wait(20 * time.Second); code != 1 || !strings.Contains(bad.output(), "listeners[0].network: required") {
		t.Errorf("invalid config: exit %d\n%s", code, bad.output())
	}
}
