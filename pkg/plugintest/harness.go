package plugintest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/supervisor"
)

// WaitTimeout bounds every wait of a Harness: generous, since tests share
// a loaded machine, and a wait that passes returns at once anyway.
const WaitTimeout = 10 * time.Second

// Options shape a Harness's log.
type Options struct {
	// Level is the log level (default hclog.Debug).
	Level hclog.Level
	// JSON logs JSON lines, as log.format: json does.
	JSON bool
}

// Harness is an in-process sluice for plugin tests: a supervisor serving
// configs given as YAML, with its own metrics and a log the test reads.
// Its supervisor is shut down at the test's cleanup.
type Harness struct {
	Supervisor *supervisor.Supervisor
	Metrics    *metrics.Metrics
	// Out is everything logged so far.
	Out *Buffer

	t testing.TB
}

// NewHarness starts an empty supervisor; Apply gives it listeners.
func NewHarness(t testing.TB, opts Options) *Harness {
	t.Helper()
	if opts.Level == hclog.NoLevel {
		opts.Level = hclog.Debug
	}
	h := &Harness{t: t, Metrics: metrics.New(), Out: &Buffer{}}
	logger := hclog.New(&hclog.LoggerOptions{Name: "sluice", Level: opts.Level, JSONFormat: opts.JSON, Output: h.Out})
	// Named as cmd/sluice names it, so records carry the modules an
	// operator sees.
	h.Supervisor = supervisor.New(logger.Named("supervisor"), h.Metrics)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
		defer cancel()
		if err := h.Supervisor.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		// A failure that shows up once in a hundred runs can only be
		// understood from what sluice said at the time.
		if t.Failed() {
			t.Logf("sluice's log:\n%s", h.Log())
		}
	})
	return h
}

// Apply parses yaml as a whole config file and applies it; either failing
// fails the test.
func (h *Harness) Apply(yaml string) supervisor.Summary {
	h.t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		h.t.Fatalf("config: %v", err)
	}
	sum, err := h.Supervisor.Apply(context.Background(), cfg)
	if err != nil {
		h.t.Fatalf("apply: %v", err)
	}
	return sum
}

// Addr is the bound address of the listener called name (the port picked
// for :0); the test fails when it is not running.
func (h *Harness) Addr(name string) string {
	h.t.Helper()
	a, ok := h.Supervisor.Addr(name)
	if !ok {
		h.t.Fatalf("listener %s is not running", name)
	}
	return a
}

// Open is the number of open connections (UDP: flows) of the listener
// called name on its current chain and older ones; 0 when it is not
// running.
func (h *Harness) Open(name string) int {
	for _, st := range h.Supervisor.Status() {
		if st.Name == name {
			return st.Connections
		}
	}
	return 0
}

// WaitOpen waits until the listener called name has exactly n open
// connections or flows.
func (h *Harness) WaitOpen(name string, n int) {
	h.t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for h.Open(name) != n {
		if time.Now().After(deadline) {
			h.t.Fatalf("listener %s has %d open connections, want %d", name, h.Open(name), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// WaitIdle waits until the listener called name has no open connection
// or flow: what they held has been given back, and their end records,
// written before the chain returns (a flow's in its OnEnd), are all in
// Out.
func (h *Harness) WaitIdle(name string) {
	h.t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for h.Open(name) > 0 {
		if time.Now().After(deadline) {
			h.t.Fatalf("listener %s still has open connections", name)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Log is everything logged so far.
func (h *Harness) Log() string { return h.Out.String() }

// Records returns the JSON log lines whose message is msg (a harness made
// with JSON set), numbers kept as json.Number so that a test can tell a
// number from a string.
func (h *Harness) Records(msg string) []map[string]any {
	h.t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(h.Out.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.UseNumber()
		var rec map[string]any
		if err := dec.Decode(&rec); err != nil {
			h.t.Fatalf("log line is not JSON: %v\n%s", err, sc.Text())
		}
		if rec["@message"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// Buffer is a log sink that tests read while connections write to it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
