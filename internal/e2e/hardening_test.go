package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testnet"
)

// TestValidateRefusesWhatItMustNotRead: sluice validate reads only a
// regular file (a symlink to one is fine) of at most 4 MiB and of bounded
// nesting; anything else exits 1 at once, naming the file and the reason.
// Before, /dev/zero grew without bound and a FIFO hung forever.
func TestValidateRefusesWhatItMustNotRead(t *testing.T) {
	dir := t.TempDir()
	good := writeConfig(t, dir, "listeners: []\n")
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero.yaml")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("listeners: []\n"+strings.Repeat("# padding\n", 420_000)), 0o644); err != nil {
		t.Fatal(err)
	}
	var deep strings.Builder
	deep.WriteString("listeners: []\nx:\n")
	for i := 1; i < 200; i++ {
		fmt.Fprintf(&deep, "%sa:\n", strings.Repeat(" ", i))
	}
	deepPath := filepath.Join(dir, "deep.yaml")
	if err := os.WriteFile(deepPath, []byte(deep.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	if out, errOut, code := runCLI(t, nil, "validate", "-c", link); code != 0 || out != "config OK: 0 listeners\n" {
		t.Errorf("symlink to a regular file: exit %d, %q %q", code, out, errOut)
	}
	for _, tc := range []struct{ path, want string }{
		{fifo, fifo + ": cannot read config: not a regular file (a named pipe)"},
		{zero, zero + ": cannot read config: not a regular file (a character device)"},
		{dir, dir + ": cannot read config: not a regular file (a directory)"},
		{big, big + ": cannot read config: config file too large: 4200014 bytes; the limit is 4 MiB"},
		{deepPath, deepPath + ": config too complex: nested more than 32 levels deep"},
	} {
		start := time.Now()
		_, errOut, code := runCLI(t, nil, "validate", "-c", tc.path)
		if code != 1 || !strings.HasPrefix(errOut, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want 1 and %q", filepath.Base(tc.path), code, errOut, tc.want)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("%s: took %v", filepath.Base(tc.path), d)
		}
	}
}

// TestValidateBoundsValues: values that used to pass validation and break
// at run time, or failed with a misleading reason, are refused with the
// true one.
func TestValidateBoundsValues(t *testing.T) {
	listener := func(extra, chain string) string {
		return "listeners:\n  - name: a\n    network: tcp\n    address: 127.0.0.1:7000\n" + extra + "    chain: [" + chain + "]\n"
	}
	rl := func(opts string) string { return listener("", "{handler: ratelimit, "+opts+"}, {handler: echo}") }
	for _, tc := range []struct{ name, body, want string }{
		{"idle overflow", listener("    idle_timeout: 2100000h\n", "{handler: echo}"),
			`listeners[0].idle_timeout: duration "2100000h" is too long: the maximum is 8760h (365 days)`},
		{"idle past int64", listener("    idle_timeout: 2562048h\n", "{handler: echo}"),
			`listeners[0].idle_timeout: duration "2562048h" is too long`},
		{"drain", "shutdown: {drain_timeout: 99999999h}\nlisteners: []\n",
			`shutdown.drain_timeout: duration "99999999h" is too long`},
		{"proxy timeout", listener("", "{handler: proxy, upstreams: ['tcp://127.0.0.1:1'], connect_timeout: 9000h}"),
			`listeners[0].chain[0] (proxy): connect_timeout: duration "9000h" is too long`},
		{"max_connections huge", rl("max_connections: 99999999999999999999"),
			`listeners[0].chain[0] (ratelimit): max_connections: 100000000000000000000 is too large (at most 9223372036854775807)`},
		{"burst huge", rl("connections_per_second: 5, burst: 99999999999999999999"),
			`listeners[0].chain[0] (ratelimit): burst: 100000000000000000000 is too large`},
		{"max_connections fraction", rl("max_connections: 1.5"),
			`listeners[0].chain[0] (ratelimit): max_connections: expected an integer, got 1.5`},
		{"burst fraction", rl("connections_per_second: 5, burst: 1.5"),
			`listeners[0].chain[0] (ratelimit): burst: expected an integer, got 1.5`},
		{"per_ip fraction", rl("per_ip: {max_connections: 2.5}"),
			`listeners[0].chain[0] (ratelimit): per_ip.max_connections: expected an integer, got 2.5`},
		{"null unknown key", "admin:\n  adress:\nlisteners: []\n", `admin.adress: unknown key (known: address)`},
		{"null unknown top key", "listners:\n", `listners: unknown key`},
		{"null unknown listener key", listener("    adress:\n", "{handler: echo}"), `listeners[0].adress: unknown key`},
		{"no listeners key", "log: {level: info}\n", `listeners: required: this config would serve nothing`},
		{"comments only", "# nothing yet\n\n   \n", `config file is empty (nothing but comments or whitespace)`},
		{"mode 0000", "listeners:\n  - {name: u, network: unix, address: /tmp/u.sock, socket: {mode: \"0000\"}, chain: [{handler: echo}]}\n",
			`listeners[0].socket.mode: mode "0000" lets no one connect`},
		{"mode 0444", "listeners:\n  - {name: u, network: unix, address: /tmp/u.sock, socket: {mode: \"0444\"}, chain: [{handler: echo}]}\n",
			`listeners[0].socket.mode: mode "0444" lets no one connect`},
	} {
		path := writeConfig(t, t.TempDir(), tc.body)
		out, errOut, code := runCLI(t, nil, "validate", "-c", path)
		if code != 1 || !strings.Contains(errOut, path+": "+tc.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 1 and %q", tc.name, code, out, errOut, tc.want)
		}
	}
}

// TestValidateEnvironment: only the documented SLUICE_* overrides are
// read; any other SLUICE_* variable is named in a warning and ignored,
// where SLUICE_LOG used to replace the whole log section.
func TestValidateEnvironment(t *testing.T) {
	path := writeConfig(t, t.TempDir(), "listeners: []\n")
	out, errOut, code := runCLI(t, []string{"SLUICE_LOG=/var/log/sluice.log", "SLUICE_LISTENERS=x", "SLUICE_LOG_LEVEL=debug"}, "validate", "-c", path)
	if code != 0 || out != "config OK: 0 listeners\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, name := range []string{"SLUICE_LOG", "SLUICE_LISTENERS"} {
		if !strings.Contains(errOut, "warning: "+name+" is not a config override and is ignored (overrides: SLUICE_ADMIN_ADDRESS, ") {
			t.Errorf("no warning naming %s: %q", name, errOut)
		}
	}
	if strings.Contains(errOut, "SLUICE_LOG_LEVEL ") {
		t.Errorf("a documented override was warned about: %q", errOut)
	}
	// A documented override is still checked like the file's value.
	_, errOut, code = runCLI(t, []string{"SLUICE_LOG_LEVEL=loud"}, "validate", "-c", path)
	if code != 1 || !strings.Contains(errOut, `log.level: invalid value "loud" (allowed: trace, debug, info, warn, error) (from the environment: SLUICE_LOG_LEVEL)`) {
		t.Errorf("SLUICE_LOG_LEVEL=loud: exit %d, %q", code, errOut)
	}
}

// TestRunWarnsAboutStrayEnvironment: the running sluice names a stray
// SLUICE_* variable in a warning and starts.
func TestRunWarnsAboutStrayEnvironment(t *testing.T) {
	sock := filepath.Join(sockDir(t), "echo.sock")
	p := startSluice(t, writeConfig(t, t.TempDir(), echoConfig(sock, "")), "SLUICE_LOG=/var/log/sluice.log")
	if p.find("environment variable is not a config override; ignored", "variable", "SLUICE_LOG") == nil {
		t.Errorf("no warning naming SLUICE_LOG:\n%s", p.output())
	}
}

// TestSIGTERMNotBlockedByReload: a reload held inside the config load (by
// the test-only test-stall handler, for a minute) does not delay SIGTERM:
// the drain begins and sluice exits 0 within seconds. Before, the signal
// loop ran the reload itself and saw SIGTERM only once it ended.
func TestSIGTERMNotBlockedByReload(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(sockDir(t), "echo.sock")
	path := writeConfig(t, dir, echoConfig(sock, ""))
	p := startSluice(t, path)
	c := dialT(t, "tcp", p.addr("echo-tcp"))
	testnet.MustEcho(t, c, "before\n")

	started := filepath.Join(dir, "stall-started")
	stall := echoConfig(sock, fmt.Sprintf("\n  - name: stall\n    network: tcp\n    address: 127.0.0.1:0\n    chain: [{handler: test-stall, seconds: 60, started: %q}]", started))
	writeConfig(t, dir, stall)
	p.signal(syscall.SIGHUP)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stalling reload did not begin; output:\n%s", p.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A second SIGHUP while the first reload is stuck must not block
	// the signal loop either.
	p.signal(syscall.SIGHUP)
	// The connection still works while the reload is stuck.
	testnet.MustEcho(t, c, "during\n")
	c.Close()

	sent := time.Now()
	p.signal(syscall.SIGTERM)
	if !p.waitLog("signal received; draining", 5*time.Second) {
		t.Fatalf("the drain did not begin within 5s of SIGTERM; output:\n%s", p.output())
	}
	if code := p.wait(15 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	t.Logf("SIGTERM to exit: %v, with a reload stuck for 60s", time.Since(sent).Round(time.Millisecond))
}

// TestReloadRefusesFIFO: a FIFO at the config path, then SIGHUP: the
// reload fails at once as an ordinary failed reload and sluice keeps
// serving and still stops on SIGTERM. Before, the reload hung forever,
// and SIGTERM with it.
func TestReloadRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(sockDir(t), "echo.sock")
	path := writeConfig(t, dir, echoConfig(sock, ""))
	p := startSluice(t, path)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGHUP)
	if !p.waitLog("config reload failed", 10*time.Second) {
		t.Fatalf("no failed reload; output:\n%s", p.output())
	}
	if r := p.find("config reload failed"); !strings.Contains(fmt.Sprint(r["error"]), "not a regular file (a named pipe)") {
		t.Errorf("failure does not say why: %v", r)
	}
	testnet.MustEcho(t, dialT(t, "tcp", p.addr("echo-tcp")), "still serving\n")
	p.terminate()
}

// TestReloadRefusesCertificateDevice: a reload whose tls handler names
// /dev/zero as its certificate and a FIFO as its key fails as an
// ordinary reload, and an open connection keeps working. Before, the
// certificate was read with os.ReadFile: the read never ended, and the
// process died out of memory with every connection.
func TestReloadRefusesCertificateDevice(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "key.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	refusedReloads(t, dir, []refusal{{`
  - name: tls
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: tls
        certificates:
          - {cert: /dev/zero, key: /dev/zero}
          - {cert: /dev/zero, key: ` + fifo + `}
      - handler: echo`, "certificates[0].cert: /dev/zero: not a regular file (a character device)"}})
}

// refusal is a listener added to the echo config (echoConfig's extra)
// that makes its reload fail, and what the failure must say.
type refusal struct{ extra, want string }

// refusedReloads starts sluice on the echo config and holds a
// connection; then, for each refusal, saves the config with its extra,
// sends SIGHUP, and checks that the reload failed saying why and that
// the held connection still echoes. At the end SIGTERM exits 0.
func refusedReloads(t *testing.T, dir string, rs []refusal) {
	t.Helper()
	sock := filepath.Join(sockDir(t), "echo.sock")
	p := startSluice(t, writeConfig(t, dir, echoConfig(sock, "")))
	c := dialT(t, "tcp", p.addr("echo-tcp"))
	testnet.MustEcho(t, c, "before\n")
	for _, r := range rs {
		before := p.count("config reload failed")
		writeConfig(t, dir, echoConfig(sock, r.extra))
		p.signal(syscall.SIGHUP)
		deadline := time.Now().Add(10 * time.Second)
		for p.count("config reload failed") == before {
			if time.Now().After(deadline) {
				t.Fatalf("no failed reload; output:\n%s", p.output())
			}
			time.Sleep(20 * time.Millisecond)
		}
		failed := p.logs.filter("config reload failed", func(map[string]any) bool { return true })
		if f := failed[len(failed)-1]; !strings.Contains(fmt.Sprint(f["error"]), r.want) {
			t.Errorf("failure does not say why: want %q in %.300v", r.want, f)
		}
		testnet.MustEcho(t, c, "after\n")
	}
	p.terminate()
}

// TestEmptyFileOnSIGHUPFails: a file of only comments is not a config
// that stops everything: SIGHUP on it is a failed reload that names the
// cause, and the listeners keep serving.
func TestEmptyFileOnSIGHUPFails(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(sockDir(t), "echo.sock")
	path := writeConfig(t, dir, echoConfig(sock, ""))
	p := startSluice(t, path)
	writeConfig(t, dir, "# emptied\n\n")
	p.signal(syscall.SIGHUP)
	if !p.waitLog("config reload failed", 10*time.Second) {
		t.Fatalf("no failed reload; output:\n%s", p.output())
	}
	if r := p.find("config reload failed"); !strings.Contains(fmt.Sprint(r["error"]), "config file is empty") {
		t.Errorf("failure does not say why: %v", r)
	}
	testnet.MustEcho(t, dialT(t, "tcp", p.addr("echo-tcp")), "still serving\n")
	testnet.MustEcho(t, dialT(t, "unix", sock), "still serving\n")
}

// TestLongIdleTimeoutServes: the longest idle_timeout accepted leaves
// connections working. Longer ones (2100000h passed validation, and its
// deadline overflowed and reset every connection at its first write) are
// refused: see TestValidateBoundsValues.
func TestLongIdleTimeoutServes(t *testing.T) {
	sock := filepath.Join(sockDir(t), "echo.sock")
	p := startSluice(t, writeConfig(t, t.TempDir(), echoConfig(sock, "\n    idle_timeout: 8760h")))
	c := dialT(t, "tcp", p.addr("echo-tcp"))
	testnet.MustEcho(t, c, "first\n")
	testnet.MustEcho(t, c, "second\n")
}

// TestUnixSocketDefaultMode: without socket.mode the socket file is 0666
// minus the umask, as documented (it was 0777 minus the umask), and a
// reload that removes socket.mode brings it back to that.
func TestUnixSocketDefaultMode(t *testing.T) {
	want := os.FileMode(0o666 &^ umaskOf(t))

	dir := t.TempDir()
	sock := filepath.Join(sockDir(t), "echo.sock")
	withMode := echoConfig(sock, "")
	noMode := strings.Replace(withMode, "    socket: {mode: \"0600\"}\n", "", 1)
	p := startSluice(t, writeConfig(t, dir, noMode))
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != want {
		t.Fatalf("socket mode %v (%v), want %v", fi.Mode().Perm(), err, want)
	}
	writeConfig(t, dir, withMode)
	p.signal(syscall.SIGHUP)
	if !p.waitLog("config reloaded", 10*time.Second) {
		t.Fatalf("no reload; output:\n%s", p.output())
	}
	if fi, _ := os.Stat(sock); fi.Mode().Perm() != 0o600 {
		t.Fatalf("after setting 0600: %v", fi.Mode().Perm())
	}
	writeConfig(t, dir, noMode)
	p.signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for {
		fi, _ := os.Stat(sock)
		if fi.Mode().Perm() == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after removing socket.mode: %v, want %v; output:\n%s", fi.Mode().Perm(), want, p.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	testnet.MustEcho(t, dialT(t, "unix", sock), "default mode\n")
}

// umaskOf reads this process's umask, which the binary inherits, without
// setting it (other goroutines may be creating files).
func umaskOf(t *testing.T) uint32 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("cannot read the umask: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				t.Fatal(err)
			}
			return uint32(m)
		}
	}
	t.Skip("no Umask line in /proc/self/status")
	return 0
}

// TestReloadRefusesHealthCheckStorm: a proxy's health_check with an
// interval of 1ns, or an expect of megabytes, is a failed reload naming
// the key, and sluice keeps serving. Before, both reloaded: 1ns made
// each upstream's checker a busy loop of connects (100 upstreams took
// both CPUs), and a 2 MB expect on 500 upstreams held 2.5 GB.
func TestReloadRefusesHealthCheckStorm(t *testing.T) {
	checked := func(check string) string {
		return `
  - name: checked
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: proxy
        upstreams: [tcp://127.0.0.1:1, tcp://127.0.0.1:2]
        health_check: ` + check
	}
	refusedReloads(t, t.TempDir(), []refusal{
		{checked("{interval: 1ns}"), "listeners[1].chain[0] (proxy): health_check.interval: must be at least 100ms"},
		{checked(`{expect: "` + strings.Repeat("x", 1<<20) + `"}`), "listeners[1].chain[0] (proxy): health_check.expect: is 1048576 bytes long; at most 4096"},
	})
}

// TestReloadNotHeldByHealthCheck: a reload that removes an upstream whose
// health check is waiting for its reply (expect, within a timeout of an
// hour) completes at once, the next reload too, and SIGTERM exits.
// Before, the reload waited for the probe to time out, and everything
// after it with it.
func TestReloadNotHeldByHealthCheck(t *testing.T) {
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mute.Close() })
	probed := make(chan net.Conn, 1)
	go func() {
		c, err := mute.Accept() // and never answer
		if err == nil {
			probed <- c
		}
	}()
	dir := t.TempDir()
	sock := filepath.Join(sockDir(t), "echo.sock")
	checked := echoConfig(sock, fmt.Sprintf(`
  - name: checked
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: proxy
        upstreams: [tcp://%s]
        health_check: {interval: 100ms, timeout: 1h, expect: PONG}`, mute.Addr()))
	p := startSluice(t, writeConfig(t, dir, checked))
	select {
	case c := <-probed:
		t.Cleanup(func() { _ = c.Close() })
	case <-time.After(10 * time.Second):
		t.Fatalf("no health check reached the upstream; output:\n%s", p.output())
	}
	plain := echoConfig(sock, "")
	writeConfig(t, dir, plain)
	p.signal(syscall.SIGHUP)
	p.mustLog("config reloaded", map[string]any{"removed": "checked"}, 10*time.Second)
	again := echoConfig(sock, "\n  - {name: extra, network: tcp, address: 127.0.0.1:0, chain: [{handler: echo}]}")
	writeConfig(t, dir, again)
	p.signal(syscall.SIGHUP)
	p.mustLog("config reloaded", map[string]any{"added": "extra"}, 10*time.Second)
	testnet.MustEcho(t, dialT(t, "tcp", p.addr("echo-tcp")), "still serving\n")
	p.terminate()
}
