package log_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/supervisor"
	_ "github.com/sluice-dev/sluice/plugins/all"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is an in-process sluice whose log output the test reads.
type harness struct {
	t   *testing.T
	sup *supervisor.Supervisor
	out *syncBuffer
}

// newHarness logs at level, as JSON when json is set (log.format: json).
func newHarness(t *testing.T, level hclog.Level, json bool) *harness {
	t.Helper()
	h := &harness{t: t, out: &syncBuffer{}}
	logger := hclog.New(&hclog.LoggerOptions{Name: "sluice", Level: level, JSONFormat: json, Output: h.out})
	h.sup = supervisor.New(logger, nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.sup.Shutdown(ctx)
	})
	return h
}

// serve applies a config of one TCP listener, name, with chain (YAML list
// items indented for it), and returns its address.
func (h *harness) serve(name, chain string) string {
	h.t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(`
listeners:
  - name: `+name+`
    network: tcp
    address: 127.0.0.1:0
    chain:
`+chain))
	if err != nil {
		h.t.Fatalf("config: %v", err)
	}
	if _, err := h.sup.Apply(context.Background(), cfg); err != nil {
		h.t.Fatalf("apply: %v", err)
	}
	addr, _ := h.sup.Addr(name)
	return addr
}

// waitIdle waits until name has no open connection: its records, written
// before the chain returns, are then all in the output.
func (h *harness) waitIdle(name string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		busy := false
		for _, st := range h.sup.Status() {
			busy = busy || (st.Name == name && st.Connections > 0)
		}
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("listener %s still has open connections", name)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// jsonRecords returns the JSON lines whose message is msg, numbers kept as
// json.Number so that a test can tell a number from a string.
func (h *harness) jsonRecords(msg string) []map[string]any {
	h.t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(h.out.String()))
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

// exchange sends each message, reads its echo, then half-closes and reads
// to EOF, as "socat -" does at the end of its input.
func exchange(t *testing.T, addr string, msgs ...[]byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, m := range msgs {
		if _, err := c.Write(m); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(m))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("echo: %v", err)
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(c); err != nil || len(rest) > 0 {
		t.Fatalf("after half-close: %q, %v; want EOF", rest, err)
	}
	return c
}
