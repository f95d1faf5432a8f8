package reload

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/logging"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/registry"
	"github.com/sluice-dev/sluice/pkg/supervisor"
)

// goleak checks every test of the package: TestMain is in hook_test.go.

// The test-only "tag" handler answers each line it reads with
// "<tag>:<line>", so a client can tell which chain (which generation)
// serves its connection. Closes are counted per tag, to show when a
// retired chain's handlers are closed.
func init() {
	registry.Register("tag", func() any { return new(tagHandler) })
}

type tagHandler struct {
	Tag string `mapstructure:"tag"`
}

var _ chain.StreamHandler = (*tagHandler)(nil)

var (
	tagMu     sync.Mutex
	tagCloses = map[string]int{}
)

func (h *tagHandler) ServeStream(_ context.Context, c *chain.Conn) error {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil
		}
		if _, err := fmt.Fprintf(c, "%s:%s", h.Tag, line); err != nil {
			return err
		}
	}
}

func (h *tagHandler) Close() error {
	tagMu.Lock()
	defer tagMu.Unlock()
	tagCloses[h.Tag]++
	return nil
}

func closes(tag string) int {
	tagMu.Lock()
	defer tagMu.Unlock()
	return tagCloses[tag]
}

// logBuffer collects the JSON log lines of one test.
type logBuffer struct {
	mu    sync.Mutex
	lines []map[string]any
	raw   []string
	part  []byte
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.part = append(b.part, p...)
	for {
		i := strings.IndexByte(string(b.part), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(b.part[:i])
		b.part = b.part[i+1:]
		b.raw = append(b.raw, line)
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			m = map[string]any{"@message": line, "@text": true}
		}
		b.lines = append(b.lines, m)
	}
}

// count returns how many lines have msg as their message.
func (b *logBuffer) count(msg string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, l := range b.lines {
		if l["@message"] == msg {
			n++
		}
	}
	return n
}

// find returns the lines with msg as their message.
func (b *logBuffer) find(msg string) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range b.lines {
		if l["@message"] == msg {
			out = append(out, l)
		}
	}
	return out
}

func (b *logBuffer) dump() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.raw, "\n")
}

// env is one reloader on one supervisor, on a config file in a temporary
// directory, logging JSON into logs.
type env struct {
	t    testing.TB
	dir  string
	path string
	sup  *supervisor.Supervisor
	rl   *Reloader
	m    *metrics.Metrics
	logs *logBuffer
	w    *Watcher // nil unless watching
	stop func()
}

// start serves cfg from dir/config.yaml; with watch the watcher runs and
// is known to be watching when start returns.
func start(t testing.TB, cfg string, watch bool) *env {
	t.Helper()
	// Close counts are per test (tests here do not run in parallel, and
	// -count=N repeats the same tags).
	tagMu.Lock()
	clear(tagCloses)
	tagMu.Unlock()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, path: filepath.Join(dir, "config.yaml"), logs: &logBuffer{}}
	if err := os.WriteFile(e.path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(e.path)
	if err != nil {
		t.Fatalf("first config: %v", err)
	}
	log := logging.New(config.Log{Level: "debug", Format: "json"}, e.logs)
	e.m = metrics.New()
	e.sup = supervisor.New(log.Named("supervisor"), e.m)
	e.rl = New(e.path, e.sup, log, e.m)
	if err := e.rl.Start(context.Background(), c); err != nil {
		t.Fatalf("start: %v", err)
	}
	e.stop = func() {}
	if watch {
		e.watch(nil)
	}
	t.Cleanup(func() {
		e.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.sup.Shutdown(ctx)
		if t.Failed() {
			t.Logf("logs:\n%s", e.logs.dump())
		}
	})
	return e
}

// watch starts the watcher, with tweak applied to it first.
func (e *env) watch(tweak func(*Watcher)) {
	w, err := NewWatcher(e.rl)
	if err != nil {
		e.t.Fatal(err)
	}
	if tweak != nil {
		tweak(w)
	}
	e.w = w
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	e.stop = func() { cancel(); <-done }
	e.waitLog("watching the config file for changes", 1)
}

// waitLog waits until at least n lines with msg were logged.
func (e *env) waitLog(msg string, n int) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.logs.count(msg) < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("waited 5s for %d %q lines; have %d", n, msg, e.logs.count(msg))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitReload waits for the config with hash to be reported reloaded.
func (e *env) waitReload(hash string) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, l := range e.logs.find("config reloaded") {
			if l["sha256"] == hash[:12] {
				return
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("config %s not reloaded within 5s", hash[:12])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hashOf returns the hash that a reload of text will log.
func (e *env) hashOf(text string) string {
	e.t.Helper()
	c, err := config.Parse(e.path, []byte(text))
	if err != nil {
		e.t.Fatalf("test config does not parse: %v", err)
	}
	return c.Hash
}

// addr returns the bound address of listener name.
func (e *env) addr(name string) string {
	e.t.Helper()
	a, ok := e.sup.Addr(name)
	if !ok {
		e.t.Fatalf("listener %q is not running", name)
	}
	return a
}

// tagConn is a client of the tag handler.
type tagConn struct {
	net.Conn
	r *bufio.Reader
}

func dialTag(t testing.TB, addr string) *tagConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &tagConn{Conn: c, r: bufio.NewReader(c)}
}

// ask sends one line and returns the tag that answered it.
func (c *tagConn) ask(t testing.TB) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatalf("write: %v", err)
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	tag, rest, ok := strings.Cut(strings.TrimSuffix(line, "\n"), ":")
	if !ok || rest != "ping" {
		t.Fatalf("unexpected answer %q", line)
	}
	return tag
}

// tagOf dials addr, asks once and hangs up.
func tagOf(t testing.TB, addr string) string {
	t.Helper()
	c := dialTag(t, addr)
	defer c.Close()
	return c.ask(t)
}

// listenerYAML is one listener with the tag handler. Listeners of one
// config on port 0 need hosts of their own (127.0.0.2:0, ...): the
// address is their identity, and it stays the same across reloads, so
// the socket does too.
func listenerYAML(name, addr, tag string) string {
	return fmt.Sprintf(`  - name: %s
    network: tcp
    address: %s
    chain:
      - handler: tag
        tag: %s
`, name, addr, tag)
}

// configYAML is a config with a drain timeout and listeners.
func configYAML(drain string, listeners ...string) string {
	return "log:\n  level: debug\n  format: json\nshutdown:\n  drain_timeout: " + drain + "\nlisteners:\n" + strings.Join(listeners, "")
}

// freePort returns a loopback address that nothing listens on now.
func freePort(t testing.TB) string {
	t.Helper()
	handedOutMu.Lock()
	defer handedOutMu.Unlock()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		// The kernel may hand a just-closed port out again at once; a
		// test that asks twice must get two different ports.
		if !handedOut[addr] {
			handedOut[addr] = true
			return addr
		}
	}
}

var (
	handedOutMu sync.Mutex
	handedOut   = map[string]bool{}
)
