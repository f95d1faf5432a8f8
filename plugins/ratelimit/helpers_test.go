package ratelimit_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/supervisor"
	_ "github.com/sluice-dev/sluice/plugins/all"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a log sink that tests read while connections write.
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

// harness is an in-process sluice: a supervisor serving configs given as
// YAML, with its metrics and its log output at debug.
type harness struct {
	t   *testing.T
	sup *supervisor.Supervisor
	m   *metrics.Metrics
	log *syncBuffer
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, m: metrics.New(), log: &syncBuffer{}}
	logger := hclog.New(&hclog.LoggerOptions{Name: "sluice", Level: hclog.Debug, Output: h.log})
	h.sup = supervisor.New(logger, h.m)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.sup.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return h
}

// apply parses yaml and applies it.
func (h *harness) apply(yaml string) supervisor.Summary {
	h.t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		h.t.Fatalf("config: %v", err)
	}
	sum, err := h.sup.Apply(context.Background(), cfg)
	if err != nil {
		h.t.Fatalf("apply: %v", err)
	}
	return sum
}

func (h *harness) addr(name string) string {
	h.t.Helper()
	a, ok := h.sup.Addr(name)
	if !ok {
		h.t.Fatalf("listener %s is not running", name)
	}
	return a
}

// waitIdle waits until listener has no open connection, so that what a
// closed connection held has been given back.
func (h *harness) waitIdle(listener string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if open(h.sup, listener) == 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	h.t.Fatalf("listener %s still has open connections", listener)
}

func open(s *supervisor.Supervisor, listener string) int {
	for _, st := range s.Status() {
		if st.Name == listener {
			return st.Connections
		}
	}
	return 0
}

// dialFrom connects to addr from the local IP from ("" for any).
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// served reports whether c is echoed to: a connection the ratelimit let
// through answers "x"; a refused one is closed (EOF or reset).
func served(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	if _, err := c.Write([]byte("x")); err != nil {
		return false // reset by a refusal that came first
	}
	var b [1]byte
	_, err := io.ReadFull(c, b[:])
	switch {
	case err == nil:
		return b[0] == 'x'
	case errors.Is(err, io.EOF), isReset(err):
		return false
	}
	t.Fatalf("neither echoed nor closed: %v", err)
	return false
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// finish half-closes c and reads to EOF, so that the server side is done
// with it, then closes it.
func finish(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.(*net.TCPConn).CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("reading to EOF: %v", err)
	}
	_ = c.Close()
}

func waitABit() { time.Sleep(5 * time.Millisecond) }

func usesHandler(chain []config.Handler, name string) bool {
	for _, h := range chain {
		if h.Handler == name {
			return true
		}
	}
	return false
}
