package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testnet"
	"github.com/sluice-dev/sluice/internal/testtool"
)

// A start that fails after part of the config was bound shuts down with
// the configured shutdown.drain_timeout, and its log line says so, not
// the 30s default.
func TestCannotStartShutdownUsesConfiguredDrain(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := fmt.Sprintf("shutdown: {drain_timeout: 7s}\nlisteners:\n  - {name: ok, network: tcp, address: 127.0.0.1:0, chain: [{handler: echo}]}\n  - {name: taken, network: tcp, address: %q, chain: [{handler: echo}]}\n", busy.Addr())
	p := launch(t, writeConfig(t, t.TempDir(), cfg))
	if code := p.wait(20 * time.Second); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if p.find("cannot start") == nil {
		t.Fatalf("no 'cannot start' line:\n%s", p.output())
	}
	r := p.find("shutdown started")
	// JSON logs carry a duration as nanoseconds.
	if r == nil || r["drain_timeout"] != float64(7*time.Second) {
		t.Errorf("shutdown line %v, want drain_timeout=7s:\n%s", r, p.output())
	}
}

// The per-connection "local" field of a Unix listener is the configured
// socket path, not the temporary name the socket was bound under.
func TestUnixConnLogsConfiguredPath(t *testing.T) {
	sock := filepath.Join(sockDir(t), "echo.sock")
	p := startSluice(t, writeConfig(t, t.TempDir(), echoConfig(sock, "")))
	c := dialT(t, "unix", sock)
	testnet.MustEcho(t, c, "where am i\n")
	_ = c.Close()
	if !p.waitLog("connection closed", 10*time.Second, "listener", "echo-unix") {
		t.Fatalf("no 'connection closed' for echo-unix:\n%s", p.output())
	}
	if r := p.find("connection closed", "listener", "echo-unix"); r["local"] != sock {
		t.Errorf("local = %v, want %s", r["local"], sock)
	}
}

// A reload that changes socket.mode changes the socket sluice bound, and
// nothing else: with the socket swapped for a symlink to another file,
// the file's mode stays as it was, the error is logged, and on shutdown
// the symlink is left alone too (it is not sluice's socket).
func TestReloadModeNeverFollowsSymlink(t *testing.T) {
	dir := sockDir(t)
	sock := filepath.Join(dir, "echo.sock")
	cfgPath := writeConfig(t, t.TempDir(), echoConfig(sock, ""))
	p := startSluice(t, cfgPath)
	testnet.MustEcho(t, dialT(t, "unix", sock), "bound\n")

	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("not sluice's"), 0o600); err != nil {
		t.Fatal(err)
	}
	// What another user with write access to the directory can do.
	if err := os.Remove(sock); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, sock); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, filepath.Dir(cfgPath), strings.Replace(echoConfig(sock, ""), `mode: "0600"`, `mode: "0666"`, 1))
	p.signal(syscall.SIGHUP)
	if !p.waitLog("config reloaded", 10*time.Second) {
		t.Fatalf("no reload:\n%s", p.output())
	}
	if !p.waitLog("changing the socket file's mode", 10*time.Second, "listener", "echo-unix") {
		t.Errorf("refused chmod not logged:\n%s", p.output())
	}
	if fi, err := os.Stat(victim); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("symlink target: %v, %v; want mode 0600 untouched", fi.Mode(), err)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(20 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	if fi, err := os.Lstat(sock); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink at the socket path was removed or changed on shutdown: %v, %v", fi, err)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Errorf("symlink target: %v", err)
	}
}

// A mode change on reload applies to the kept socket in place; a later
// shutdown removes it, since it still is sluice's socket.
func TestReloadModeChangesKeptSocket(t *testing.T) {
	sock := filepath.Join(sockDir(t), "echo.sock")
	cfgPath := writeConfig(t, t.TempDir(), echoConfig(sock, ""))
	p := startSluice(t, cfgPath)
	writeConfig(t, filepath.Dir(cfgPath), strings.Replace(echoConfig(sock, ""), `mode: "0600"`, `mode: "0660"`, 1))
	p.signal(syscall.SIGHUP)
	if !p.waitLog("config reloaded", 10*time.Second) {
		t.Fatalf("no reload:\n%s", p.output())
	}
	if fi, err := os.Lstat(sock); err != nil || fi.Mode().Perm() != 0o660 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket after reload: %v, %v; want a socket with mode 0660", fi.Mode(), err)
	}
	testnet.MustEcho(t, dialT(t, "unix", sock), "still served\n")
	if p.find("changing the socket file's mode") != nil {
		t.Errorf("chmod of our own socket failed:\n%s", p.output())
	}
	p.signal(syscall.SIGTERM)
	p.wait(20 * time.Second)
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left after shutdown: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(sock)); len(ents) != 0 {
		t.Errorf("files left in the socket directory: %v", ents)
	}
}

// launchLimited runs `sluice run -c cfgPath` with RLIMIT_NOFILE lowered to
// nofile (soft and hard, so that Go's start-up raise cannot undo it) and
// waits until it has started.
func launchLimited(t *testing.T, cfgPath string, nofile int) *proc {
	t.Helper()
	prlimit := testtool.Need(t, "prlimit", "util-linux")
	cmd := exec.Command(prlimit, fmt.Sprintf("--nofile=%d:%d", nofile, nofile), binary, "run", "-c", cfgPath, "--watch=false")
	cmd.Env = append(os.Environ(), "SLUICE_LOG_FORMAT=json", "SLUICE_LOG_LEVEL=info")
	p := launchCmd(t, cmd)
	if !p.waitLog("sluice started", 20*time.Second) {
		p.stop()
		t.Fatalf("sluice did not start; output:\n%s", p.output())
	}
	return p
}

// adminAddr is the address the admin endpoint logged when it came up.
func (p *proc) adminAddr() string {
	p.t.Helper()
	r := p.find("admin endpoint up")
	if r == nil {
		p.t.Fatalf("no 'admin endpoint up'; output:\n%s", p.output())
	}
	return r["address"].(string)
}

// healthz GETs /healthz on a fresh connection within timeout.
func healthz(addr string, timeout time.Duration) (int, error) {
	cl := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := cl.Get("http://" + addr + "/healthz")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// A flood of a data listener up to the descriptor limit leaves the admin
// endpoint its reserve: /healthz answers throughout, the listener pauses
// its accepts (and says so), and serves again once the flood is gone.
func TestHealthzWhileDataListenerFlooded(t *testing.T) {
	const nofile = 256
	cfg := "admin: {address: 127.0.0.1:0}\nshutdown: {drain_timeout: 2s}\nlisteners:\n  - {name: echo-tcp, network: tcp, address: 127.0.0.1:0, chain: [{handler: echo}]}\n"
	p := launchLimited(t, writeConfig(t, t.TempDir(), cfg), nofile)
	admin, data := p.adminAddr(), p.addr("echo-tcp")

	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			_ = c.Close()
		}
	}()
	for range nofile + 100 {
		c, err := net.DialTimeout("tcp", data, 5*time.Second)
		if err != nil {
			t.Fatalf("flood dial %d: %v", len(flood), err)
		}
		flood = append(flood, c)
	}
	if !p.waitLog("file descriptors low; accepts paused", 20*time.Second, "listener", "echo-tcp") {
		t.Errorf("no pause logged:\n%s", p.output())
	}
	for i := range 5 {
		if code, err := healthz(admin, 5*time.Second); err != nil || code != http.StatusOK {
			t.Fatalf("/healthz %d under the flood: %d, %v", i, code, err)
		}
	}
	for _, c := range flood {
		_ = c.Close()
	}
	flood = nil
	c, err := net.DialTimeout("tcp", data, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	testnet.MustEcho(t, c, "after the flood\n")
	_ = c.Close()
	p.signal(syscall.SIGTERM)
	if code := p.wait(20 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// metricValue returns the value of one series (name and labels exactly as
// /metrics prints them) from a Prometheus text body.
func metricValue(body, series string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v, true
			}
		}
	}
	return 0, false
}

func getMetrics(t *testing.T, addr string) string {
	t.Helper()
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d, %v", resp.StatusCode, err)
	}
	return string(b)
}

// A flood of new source ports against a UDP proxy takes at most the UDP
// descriptor budget (a quarter of RLIMIT_NOFILE): flows over it are
// refused and counted as sluice's own shortage, never as upstream errors;
// the upstream is not marked failed; TCP echo and /metrics keep
// answering; the flow warnings are rate-limited.
func TestUDPProxyFloodStaysInBudget(t *testing.T) {
	const nofile = 512 // UDP budget 128, reserve 64
	up, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close() // a live upstream that never answers: no ICMP errors
	cfg := fmt.Sprintf(`admin: {address: 127.0.0.1:0}
shutdown: {drain_timeout: 2s}
listeners:
  - {name: echo-tcp, network: tcp, address: 127.0.0.1:0, chain: [{handler: echo}]}
  - {name: udp-proxy, network: udp, address: 127.0.0.1:0, chain: [{handler: proxy, upstreams: ["udp://%s"]}]}
`, up.LocalAddr())
	p := launchLimited(t, writeConfig(t, t.TempDir(), cfg), nofile)
	admin, tcpAddr := p.adminAddr(), p.addr("echo-tcp")
	target, err := net.ResolveUDPAddr("udp", p.addr("udp-proxy"))
	if err != nil {
		t.Fatal(err)
	}

	const sources = nofile + 100 // more than the process could hold
	begin := time.Now()
	var clients []*net.UDPConn
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	for range sources {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	// Rounds of one datagram from every source, paced so that the
	// listener's receive buffer does not drop them, until the refusals
	// show. A refused source's next datagram tries (and is refused) again.
	series := `sluice_descriptor_shortage_total{listener="udp-proxy"}`
	var body string
	deadline := time.Now().Add(60 * time.Second)
	for {
		for i, c := range clients {
			if _, err := c.WriteToUDP([]byte("x"), target); err != nil {
				t.Fatal(err)
			}
			if i%32 == 31 {
				time.Sleep(2 * time.Millisecond)
			}
		}
		body = getMetrics(t, admin)
		if v, _ := metricValue(body, series); v >= sources-nofile/4 || time.Now().After(deadline) {
			break
		}
	}
	elapsed := time.Since(begin)
	if v, _ := metricValue(body, series); v < sources-nofile/4 {
		t.Errorf("%s = %v, want at least %d refused flows", series, v, sources-nofile/4)
	}
	// The budget, and no more, is in use; plus at most the one flow the
	// listener's read loop may be refusing at the moment of the scrape.
	if v, ok := metricValue(body, `sluice_connections_active{listener="udp-proxy"}`); !ok || v > nofile/4+1 || v < nofile/8 {
		t.Errorf("udp-proxy flows active %v, want up to the budget %d", v, nofile/4)
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "sluice_upstream_errors_total{") && !strings.HasSuffix(line, " 0") {
			t.Errorf("a shortage counted against the upstream: %s", line)
		}
	}
	testnet.MustEcho(t, dialT(t, "tcp", tcpAddr), "tcp still served\n")

	if p.find("upstream failed; skipping it") != nil {
		t.Errorf("upstream marked failed by a descriptor shortage:\n%s", p.output())
	}
	// One warning per second at most, with the rest counted.
	warns := p.count("flow failed")
	if limit := int(elapsed/time.Second) + 2; warns == 0 || warns > limit {
		t.Errorf("%d 'flow failed' lines in %v, want between 1 and %d", warns, elapsed, limit)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(20 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}
