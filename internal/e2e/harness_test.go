package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-dev/sluice/internal/admintest"
	"github.com/sluice-dev/sluice/internal/testbin"
	"github.com/sluice-dev/sluice/pkg/config"
	_ "github.com/sluice-dev/sluice/plugins/all" // so that test configs parse here as in the binary
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
	// Every client, log reader and reaper goroutine must have ended once
	// the tests' cleanups ran.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// waitBound is how long a test waits for something that happens "soon":
// generous, because the test machine is small and shared.
const waitBound = 15 * time.Second

// proc is one running sluice and its log.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	path string // the config file, when startConfig wrote it
	logs *logs
	done chan struct{} // closed once the process has exited
	err  error         // of Wait, once done
	// graceful: the cleanup stops sluice with SIGTERM and checks that it
	// exited 0 without a data race, rather than killing it.
	graceful bool
}

// startSluice runs `sluice run -c cfgPath` with JSON logs at debug and
// waits until it logged "sluice started" (or exited).
func startSluice(t *testing.T, cfgPath string, env ...string) *proc {
	t.Helper()
	p := launch(t, cfgPath, env...)
	if !p.waitLog("sluice started", 20*time.Second) {
		p.stop()
		t.Fatalf("sluice did not start; output:\n%s", p.output())
	}
	return p
}

// launch is startSluice without the wait.
func launch(t *testing.T, cfgPath string, env ...string) *proc {
	t.Helper()
	// --watch=false: these tests reload by SIGHUP and expect exactly
	// that reload; the file watcher would add one for each write.
	cmd := exec.Command(binary, "run", "-c", cfgPath, "--watch=false")
	cmd.Env = append(os.Environ(), append([]string{"SLUICE_LOG_FORMAT=json", "SLUICE_LOG_LEVEL=debug"}, env...)...)
	return launchCmd(t, cmd)
}

// startConfig writes cfg to a fresh config.yaml and runs sluice on it
// with args, logging as cfg says. It returns once the listeners are up
// (and the watcher is watching, unless args turn it off). The cleanup
// stops it with SIGTERM and checks it exited 0 without a data race.
func startConfig(t *testing.T, cfg string, args ...string) *proc {
	t.Helper()
	path := writeConfig(t, t.TempDir(), cfg)
	p := launchCmd(t, exec.Command(binary, append([]string{"run", "-c", path}, args...)...))
	p.path, p.graceful = path, true
	p.mustLog("sluice started", nil, 30*time.Second)
	if !strings.Contains(strings.Join(args, " "), "--watch=false") {
		p.mustLog("watching the config file for changes", nil, 10*time.Second)
	}
	return p
}

// startPlain runs `sluice run -c path` with the config's own log
// settings (text unless it says otherwise), for the tests that read the
// log as an operator does. Skipped with -short.
func startPlain(t *testing.T, path string) *proc {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	// --watch=false: these tests reload by SIGHUP and POST /reload and
	// count the reloads; the file watcher would add its own.
	return launchCmd(t, exec.Command(binary, "run", "-c", path, "--watch=false"))
}

// launchCmd starts cmd, a sluice run prepared by the caller (flags, env,
// extra files, a wrapper), and collects its log. The process is killed
// when the test ends if it still runs.
func launchCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	return launchWith(t, cmd, false)
}

// launchShared is launchCmd for a process that upgrades: the new process
// inherits its log pipe, so done closes when the first process exits
// while the records keep coming from the next one. The processes it
// upgraded to are killed at cleanup.
func launchShared(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	return launchWith(t, cmd, true)
}

func launchWith(t *testing.T, cmd *exec.Cmd, shared bool) *proc {
	t.Helper()
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = wr, wr
	if err := cmd.Start(); err != nil {
		_, _ = rd.Close(), wr.Close()
		t.Fatal(err)
	}
	_ = wr.Close()
	p := &proc{t: t, cmd: cmd, logs: &logs{}, done: make(chan struct{})}
	read := make(chan struct{})
	// The reader ends when every process holding the pipe has exited, or
	// when the cleanup closes it.
	go func() {
		defer close(read)
		_, _ = io.Copy(p.logs, rd)
	}()
	// The reaper ends with the process. Unless the pipe is shared, it
	// reaps only once the log is read to its end, so that a test that
	// saw the exit sees every line.
	go func() {
		if !shared {
			<-read
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.graceful {
			p.stopGracefully()
		} else {
			p.stop()
		}
		if shared {
			for _, pid := range p.upgradedPIDs() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		select {
		case <-read:
		case <-time.After(10 * time.Second):
		}
		_ = rd.Close()
		<-read
		if t.Failed() {
			t.Logf("sluice's log:\n%s", p.output())
		}
	})
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

// stopGracefully sends SIGTERM and checks sluice exits 0, within 30s,
// without a data race.
func (p *proc) stopGracefully() {
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
}

// terminate sends SIGTERM and expects a clean exit.
func (p *proc) terminate() {
	p.t.Helper()
	p.signal(syscall.SIGTERM)
	if code := p.wait(waitBound); code != 0 {
		p.t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
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
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	p.t.Fatalf("wait: %v", p.err)
	return -1
}

// output is the whole log, a line each.
func (p *proc) output() string {
	if s := p.logs.text(); s != "" {
		return s + "\n"
	}
	return ""
}

// find returns the first log record with message msg and fields
// ("key", "value", ...) printing as given.
func (p *proc) find(msg string, fields ...string) map[string]any {
	m := p.logs.filter(msg, func(r map[string]any) bool {
		for i := 0; i+1 < len(fields); i += 2 {
			if fmt.Sprint(r[fields[i]]) != fields[i+1] {
				return false
			}
		}
		return true
	})
	if len(m) == 0 {
		return nil
	}
	return m[0]
}

// waitLog reports whether a record find would return shows up within
// timeout.
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

// mustLog waits for a record with message msg and fields want, and
// returns the last such record; the test fails if none comes within
// the time or sluice exits first.
func (p *proc) mustLog(msg string, want map[string]any, within time.Duration) map[string]any {
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

// waitLine waits for the n-th (1-based) log line matching re and
// returns its first submatch: for text logs.
func (p *proc) waitLine(re *regexp.Regexp, n int) string {
	p.t.Helper()
	var got string
	admintest.WaitFor(p.t, fmt.Sprintf("log line %d matching %s", n, re), func() bool {
		seen := 0
		for _, l := range p.logs.lines() {
			if m := re.FindStringSubmatch(l); m != nil {
				if seen++; seen == n {
					got = m[1]
					return true
				}
			}
		}
		return false
	})
	return got
}

// adminUp is the text log line of the admin endpoint coming up.
var adminUp = regexp.MustCompile(`admin endpoint up: address=(\S+)`)

// waitReload waits for the reload of the config text cfg, by its hash.
func (p *proc) waitReload(cfg string, within time.Duration) map[string]any {
	p.t.Helper()
	return p.mustLog("config reloaded", map[string]any{"sha256": hashOf(p.t, p.path, cfg)[:12]}, within)
}

// addr returns the address listener first came up on.
func (p *proc) addr(listener string) string {
	p.t.Helper()
	r := p.find("listener up", "listener", listener)
	if r == nil {
		p.t.Fatalf("no 'listener up' for %s; output:\n%s", listener, p.output())
	}
	return r["address"].(string)
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

// count is how many log records have message msg.
func (p *proc) count(msg string) int { return len(p.logs.match(msg, nil)) }

// upgradedPIDs are the pids of the processes upgrades started.
func (p *proc) upgradedPIDs() []int {
	var pids []int
	for _, r := range p.logs.match("sluice started", map[string]any{"upgraded": true}) {
		pids = append(pids, int(r["pid"].(float64)))
	}
	return pids
}

// logs collects sluice's output: JSON lines parsed, text lines kept as
// they are (a reload may switch the format).
type logs struct {
	mu   sync.Mutex
	part []byte
	raw  []string
	recs []map[string]any
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
			l.recs = append(l.recs, m)
		}
	}
}

// filter returns the records with message msg that keep says to keep.
func (l *logs) filter(msg string, keep func(map[string]any) bool) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, m := range l.recs {
		if m["@message"] == msg && keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// match returns the records with message msg whose fields include all
// of want.
func (l *logs) match(msg string, want map[string]any) []map[string]any {
	return l.filter(msg, func(m map[string]any) bool {
		for k, v := range want {
			if m[k] != v {
				return false
			}
		}
		return true
	})
}

func (l *logs) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.raw...)
}

func (l *logs) text() string { return strings.Join(l.lines(), "\n") }

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

// writeConfig writes body to config.yaml in dir and returns its path.
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
