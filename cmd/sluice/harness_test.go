package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testbin"
)

// binary is the sluice binary under test, built once by TestMain (with
// the race detector when the tests run with it).
var binary string

func TestMain(m *testing.M) {
	b, cleanup, err := testbin.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = b
	code := m.Run()
	cleanup()
	for _, c := range versions.cleanup { // the upgrade tests' builds
		c()
	}
	os.Exit(code)
}

// proc is a running sluice with its log records.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs []map[string]any
	raw  bytes.Buffer
	done chan struct{}
	err  error
}

// startSluice runs `sluice run -c cfg` with JSON logs at debug and waits
// until it logged "sluice started" (or exited).
func startSluice(t *testing.T, cfgPath string, env ...string) *proc {
	t.Helper()
	p := launch(t, cfgPath, env...)
	if !p.waitLog("sluice started", 20*time.Second) {
		p.stop()
		t.Fatalf("sluice did not start; output:\n%s", p.output())
	}
	return p
}

func launch(t *testing.T, cfgPath string, env ...string) *proc {
	t.Helper()
	// --watch=false: these tests reload by SIGHUP and expect exactly
	// that reload; the file watcher would add one for each write.
	cmd := exec.Command(binary, "run", "-c", cfgPath, "--watch=false")
	cmd.Env = append(os.Environ(), append([]string{"SLUICE_LOG_FORMAT=json", "SLUICE_LOG_LEVEL=debug"}, env...)...)
	return launchCmd(t, cmd)
}

// launchCmd starts cmd, a sluice run prepared by the caller (extra files,
// a wrapper), and collects its JSON log records.
func launchCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.mu.Lock()
			p.raw.Write(line)
			p.raw.WriteByte('\n')
			var rec map[string]any
			if json.Unmarshal(line, &rec) == nil {
				p.logs = append(p.logs, rec)
			}
			p.mu.Unlock()
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	return p
}

// stop kills the process if it still runs.
func (p *proc) stop() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) signal(sig syscall.Signal) {
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal: %v", err)
	}
}

// wait returns the exit code, failing the test after timeout.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("sluice still running after %v; output:\n%s", timeout, p.output())
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	p.t.Fatalf("wait: %v", p.err)
	return -1
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

// find returns the first log record with message msg and matching fields.
func (p *proc) find(msg string, fields ...string) map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
next:
	for _, r := range p.logs {
		if r["@message"] != msg {
			continue
		}
		for i := 0; i+1 < len(fields); i += 2 {
			if fmt.Sprint(r[fields[i]]) != fields[i+1] {
				continue next
			}
		}
		return r
	}
	return nil
}

func (p *proc) waitLog(msg string, timeout time.Duration, fields ...string) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p.find(msg, fields...) != nil {
			return true
		}
		select {
		case <-p.done:
			return p.find(msg, fields...) != nil
		case <-time.After(10 * time.Millisecond):
		}
	}
	return false
}

// addr returns the bound address the listener logged at startup.
func (p *proc) addr(listener string) string {
	p.t.Helper()
	r := p.find("listener up", "listener", listener)
	if r == nil {
		p.t.Fatalf("no 'listener up' for %s; output:\n%s", listener, p.output())
	}
	return r["address"].(string)
}

func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// sockDir is a short temporary directory: t.TempDir paths can exceed the
// 107 bytes a Unix socket path may have.
func sockDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "sl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func dialT(t *testing.T, network, address string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(network, address, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, address, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

func echoOnce(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(buf) != msg {
		t.Fatalf("echo: got %q, want %q", buf, msg)
	}
}

// needSocat returns socat's path, skipping the test when it is missing,
// except in CI, where a missing socat is a failure.
func needSocat(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("socat")
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("socat is not installed, and CI=true requires the socat tests to run (.ci/run installs it)")
	}
	t.Skip("socat is not installed: skipping the socat test (apt-get install socat to run it)")
	return ""
}

// socat sends input through `socat - ADDRESS` and returns what came back.
func socat(t *testing.T, address, input string) string {
	t.Helper()
	cmd := exec.Command(needSocat(t), "-t", "5", "-", address)
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("socat %s: %v\n%s", address, err, out)
	}
	return string(out)
}
