// Package reload_test runs the real sluice binary against real config
// files, sockets and signals, and checks the hot reload contract of
// docs/reload.md from the outside, the way an operator would see it.
package reload_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-dev/sluice/internal/testbin"
	"github.com/sluice-dev/sluice/pkg/config"
	_ "github.com/sluice-dev/sluice/plugins/all" // so that test configs validate here as in the binary
)

// bin is the sluice binary built by TestMain.
var bin string

func TestMain(m *testing.M) {
	b, cleanup, err := testbin.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = b
	code := m.Run()
	cleanup()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// logs collects the binary's stderr: JSON lines parsed, text lines kept
// as they are (a reload may switch the format).
type logs struct {
	mu    sync.Mutex
	part  []byte
	raw   []string
	lines []map[string]any
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.part = append(l.part, p...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(l.part[:i])
		l.part = l.part[i+1:]
		l.raw = append(l.raw, line)
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			l.lines = append(l.lines, m)
		}
	}
}

// match returns the JSON lines with message msg whose fields include all
// of want.
func (l *logs) match(msg string, want map[string]any) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
next:
	for _, m := range l.lines {
		if m["@message"] != msg {
			continue
		}
		for k, v := range want {
			if m[k] != v {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

func (l *logs) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.raw, "\n")
}

// proc is one running sluice.
type proc struct {
	t    *testing.T
	dir  string
	path string
	cmd  *exec.Cmd
	logs *logs
	done chan struct{} // closed when the process has exited
	err  error         // of Wait, once done
}

// startSluice writes cfg to a fresh config.yaml and runs sluice on it.
// It returns once the listeners are up (and the watcher is watching,
// unless args turn it off). Cleanup stops it with SIGTERM and checks it
// exited 0 without a data race.
func startSluice(t *testing.T, cfg string, args ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	p := &proc{t: t, dir: dir, path: filepath.Join(dir, "config.yaml"), logs: &logs{}, done: make(chan struct{})}
	if err := os.WriteFile(p.path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, append([]string{"run", "-c", p.path}, args...)...)
	p.cmd.Stderr = p.logs
	p.cmd.Stdout = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	p.waitLog("sluice started", nil, 30*time.Second)
	if !strings.Contains(strings.Join(args, " "), "--watch=false") {
		p.waitLog("watching the config file for changes", nil, 10*time.Second)
	}
	return p
}

func (p *proc) stop() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			p.t.Errorf("sluice did not stop within 30s of SIGTERM")
		}
	}
	if p.err != nil {
		p.t.Errorf("sluice exited with %v", p.err)
	}
	if strings.Contains(p.logs.text(), "DATA RACE") {
		p.t.Errorf("sluice reported a data race")
	}
	if p.t.Failed() {
		p.t.Logf("sluice's log:\n%s", p.logs.text())
	}
}

// waitLog waits for a line with message msg and fields want, and returns
// the last such line.
func (p *proc) waitLog(msg string, want map[string]any, within time.Duration) map[string]any {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if m := p.logs.match(msg, want); len(m) > 0 {
			return m[len(m)-1]
		}
		select {
		case <-p.done:
			p.t.Fatalf("sluice exited (%v) while waiting for %q %v", p.err, msg, want)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no %q line with %v within %v", msg, want, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitReload waits for the reload of the config text cfg, by its hash.
func (p *proc) waitReload(cfg string, within time.Duration) map[string]any {
	p.t.Helper()
	return p.waitLog("config reloaded", map[string]any{"sha256": hashOf(p.t, p.path, cfg)[:12]}, within)
}

// addrOf returns the address listener name was last brought up on.
func (p *proc) addrOf(name string) string {
	p.t.Helper()
	m := p.logs.match("listener up", map[string]any{"listener": name})
	if len(m) == 0 {
		p.t.Fatalf("listener %s never came up", name)
	}
	return m[len(m)-1]["address"].(string)
}

// hashOf is the sha256 sluice logs for cfg: both sides parse the same
// text with the same handlers and environment.
func hashOf(t testing.TB, path, cfg string) string {
	t.Helper()
	c, err := config.Parse(path, []byte(cfg))
	if err != nil {
		t.Fatalf("test config does not parse: %v", err)
	}
	return c.Hash
}

// echo sends msg on c and checks it comes back whole.
func echo(c net.Conn, msg []byte) error {
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	got := make([]byte, len(msg))
	for n := 0; n < len(got); {
		m, err := c.Read(got[n:])
		if err != nil {
			return fmt.Errorf("read after %d of %d bytes: %w", n, len(got), err)
		}
		n += m
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo mismatch: sent %q, got %q", msg, got)
	}
	return nil
}

// dialEcho connects to addr and checks one echo.
func dialEcho(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := echo(c, []byte("hello "+addr)); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// checkEcho connects to addr, checks one echo and hangs up.
func checkEcho(addr string) error {
	c, err := dialEcho(addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// refused reports whether a connect to addr is refused.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return true
	}
	_ = c.Close()
	return false
}

// echoListener is a config listener entry for the echo handler; extra
// goes into it verbatim (options such as idle_timeout).
func echoListener(name, addr, extra string) string {
	return fmt.Sprintf("  - name: %s\n    network: tcp\n    address: %s\n%s    chain:\n      - handler: echo\n", name, addr, extra)
}

// configText is a config logging JSON at info, with a drain timeout.
func configText(drain string, listeners ...string) string {
	return "log:\n  level: info\n  format: json\nshutdown:\n  drain_timeout: " + drain + "\nlisteners:\n" + strings.Join(listeners, "")
}
