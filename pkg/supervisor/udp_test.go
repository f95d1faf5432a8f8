package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// udpTag is a test-only packet terminal: it answers "tag:data", ends the
// flow on "fail" and panics on "panic". It records its flows' ends and
// its own Close.
type udpTag struct {
	Tag string `mapstructure:"tag"`

	ended  atomic.Int64
	closed atomic.Bool
}

func (u *udpTag) ServePacket(_ context.Context, p *chain.Packet) error {
	if p.Flow.Value(u) == nil {
		p.Flow.SetValue(u, true)
		p.Flow.OnEnd(func(*chain.Flow) { u.ended.Add(1) })
	}
	switch string(p.Data) {
	case "fail":
		return errors.New("told to fail")
	case "panic":
		panic("told to panic")
	}
	_, err := p.Flow.Reply([]byte(u.Tag + ":" + string(p.Data)))
	return err
}

func (u *udpTag) Close() error {
	u.closed.Store(true)
	return nil
}

func (u *udpTag) Provision(chain.ProvisionContext) error {
	udpTags.add(u.Tag, u)
	return nil
}

var udpTags = newTagged[*udpTag]()

type streamOnly struct{}

func (streamOnly) ServeStream(context.Context, *chain.Conn) error { return nil }

func init() {
	registry.Register("udptest-tag", func() any { return new(udpTag) })
	registry.Register("udptest-stream", func() any { return new(streamOnly) })
}

type udpHarness struct {
	t   *testing.T
	s   *Supervisor
	log *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newUDPHarness(t *testing.T) *udpHarness {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs last
	h := &udpHarness{t: t, log: &lockedBuffer{}}
	h.s = New(hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: h.log}), nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.s.Shutdown(ctx)
	})
	return h
}

func udpConfig(tag, idle string) string {
	return fmt.Sprintf(`
listeners:
  - name: u
    network: udp
    address: 127.0.0.1:0
    idle_timeout: %s
    chain:
      - handler: udptest-tag
        tag: %s
`, idle, tag)
}

func (h *udpHarness) apply(yaml string) Summary {
	h.t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		h.t.Fatal(err)
	}
	sum, err := h.s.Apply(context.Background(), cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return sum
}

func (h *udpHarness) addr() string {
	a, ok := h.s.Addr("u")
	if !ok {
		h.t.Fatal("listener u is not running")
	}
	return a
}

func (h *udpHarness) metric(name string) float64 {
	m := h.s.metrics
	switch name {
	case "total":
		return testutil.ToFloat64(m.ConnectionsTotal.WithLabelValues("u"))
	case "active":
		return testutil.ToFloat64(m.ConnectionsActive.WithLabelValues("u"))
	case "in":
		return testutil.ToFloat64(m.BytesTotal.WithLabelValues("u", "in"))
	case "out":
		return testutil.ToFloat64(m.BytesTotal.WithLabelValues("u", "out"))
	}
	panic(name)
}

func (h *udpHarness) client() *net.UDPConn {
	h.t.Helper()
	c, err := net.Dial("udp", h.addr())
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = c.Close() })
	return c.(*net.UDPConn)
}

// ask sends msg and returns the answer, or "" and the error after wait.
func ask(c *net.UDPConn, msg string, wait time.Duration) (string, error) {
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func mustAsk(t *testing.T, c *net.UDPConn, msg, want string) {
	t.Helper()
	got, err := ask(c, msg, 5*time.Second)
	if err != nil || got != want {
		t.Fatalf("sent %q: got %q, %v; want %q", msg, got, err, want)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestUDPFlowsAreCountedAndExpire(t *testing.T) {
	h := newUDPHarness(t)
	h.apply(udpConfig("v1", "1s"))
	c := h.client()
	mustAsk(t, c, "x", "v1:x")
	mustAsk(t, c, "yy", "v1:yy")
	if total, active := h.metric("total"), h.metric("active"); total != 1 || active != 1 {
		t.Fatalf("total/active = %v/%v, want one flow", total, active)
	}
	if st := h.s.Status(); len(st) != 1 || st[0].Connections != 1 || st[0].Network != "udp" {
		t.Fatalf("status %+v", st)
	}
	// A scrape sees an open flow's bytes; its end adds no more. Reply
	// counts a datagram once it is sent, so the client may read the
	// answer a moment before it is counted.
	waitFor(t, "the open flow's bytes in a scrape", func() bool {
		h.s.FlushBytes()
		return h.metric("in") == 3 && h.metric("out") == 9
	})
	waitFor(t, "the flow to expire", func() bool { return h.metric("active") == 0 })
	if in, out := h.metric("in"), h.metric("out"); in != 3 || out != 9 {
		t.Errorf("ended flow: bytes in/out = %v/%v, want 3/9", in, out)
	}
	if n := udpTags.last(t, "v1").ended.Load(); n != 1 {
		t.Errorf("OnEnd ran %d times, want 1", n)
	}
	mustAsk(t, c, "z", "v1:z")
	if total := h.metric("total"); total != 2 {
		t.Errorf("total = %v after a new flow, want 2", total)
	}
}

// TestUDPReload: the socket stays through a chain change, the open flow
// finishes on its chain, new flows take the new one, and the old chain is
// closed once its last flow has gone.
func TestUDPReload(t *testing.T) {
	h := newUDPHarness(t)
	h.apply(udpConfig("v1", "3s"))
	addr := h.addr()
	a := h.client()
	mustAsk(t, a, "a", "v1:a")

	if sum := h.apply(udpConfig("v2", "3s")); len(sum.Changed) != 1 {
		t.Fatalf("summary %+v", sum)
	}
	if h.addr() != addr {
		t.Fatalf("address changed from %s to %s: the socket was not kept", addr, h.addr())
	}
	mustAsk(t, a, "a", "v1:a") // the open flow keeps its chain
	b := h.client()
	mustAsk(t, b, "b", "v2:b") // a new flow takes the new one
	old := udpTags.last(t, "v1")
	if old.closed.Load() {
		t.Fatal("old chain closed while a flow still used it")
	}
	waitFor(t, "the old flow to expire", func() bool { return old.ended.Load() == 1 })
	waitFor(t, "the old chain to close", old.closed.Load)
	mustAsk(t, a, "a", "v2:a")
}

// TestUDPFlowTableBounded: datagrams from new addresses are dropped while
// the table is full, established flows are kept, and room made by expiry
// is used again.
func TestUDPFlowTableBounded(t *testing.T) {
	defer func(n int) { maxFlows = n }(maxFlows)
	maxFlows = 2
	h := newUDPHarness(t)
	h.apply(udpConfig("v1", "2s"))
	a, b, c := h.client(), h.client(), h.client()
	mustAsk(t, a, "a", "v1:a")
	mustAsk(t, b, "b", "v1:b")
	if got, err := ask(c, "c", 300*time.Millisecond); err == nil {
		t.Fatalf("a third flow was served (%q) in a table of two", got)
	}
	mustAsk(t, a, "a", "v1:a")
	if !strings.Contains(h.log.String(), "flow table full") {
		t.Errorf("the full table was not logged:\n%s", h.log)
	}
	waitFor(t, "the flows to expire", func() bool { return h.metric("active") == 0 })
	mustAsk(t, c, "c", "v1:c")
}

// TestUDPHandlerErrorsEndTheFlow: an error or a panic ends that flow
// only; the next datagram starts a new one.
func TestUDPHandlerErrorsEndTheFlow(t *testing.T) {
	h := newUDPHarness(t)
	h.apply(udpConfig("v1", "1m"))
	c, other := h.client(), h.client()
	mustAsk(t, other, "o", "v1:o")
	for i, msg := range []string{"fail", "panic"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the flow to end", func() bool { return udpTags.last(t, "v1").ended.Load() == int64(i+1) })
		mustAsk(t, c, "x", "v1:x")
	}
	mustAsk(t, other, "o", "v1:o")
	if total := h.metric("total"); total != 4 {
		t.Errorf("total = %v, want 4 (other, then c three times)", total)
	}
	for _, want := range []string{"flow failed", "told to fail", "handler panicked"} {
		if !strings.Contains(h.log.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// TestUDPListenerRemoved: removing the listener closes its socket and
// ends its flows at once.
func TestUDPListenerRemoved(t *testing.T) {
	h := newUDPHarness(t)
	h.apply(udpConfig("v1", "1m"))
	c := h.client()
	mustAsk(t, c, "a", "v1:a")
	// Another listener only.
	h.apply(`
listeners:
  - name: other
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: udptest-stream
`)
	if n := udpTags.last(t, "v1").ended.Load(); n != 1 {
		t.Fatalf("flow ends seen: %d, want 1", n)
	}
	if !udpTags.last(t, "v1").closed.Load() {
		t.Fatal("the removed listener's chain was not closed")
	}
	if got, err := ask(c, "a", 2*time.Second); err == nil {
		t.Fatalf("removed listener answered %q", got)
	}
}

// TestUDPShutdownEndsFlows: shutdown does not wait out the idle timeout
// of open flows.
func TestUDPShutdownEndsFlows(t *testing.T) {
	h := newUDPHarness(t)
	h.apply(udpConfig("v1", "1h"))
	mustAsk(t, h.client(), "a", "v1:a")
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	if n := udpTags.last(t, "v1").ended.Load(); n != 1 {
		t.Errorf("flow ends seen: %d, want 1", n)
	}
}

// TestKindMismatchRefused: a stream-only handler on a UDP listener, and a
// datagram-only one on a stream listener, are validation errors.
func TestKindMismatchRefused(t *testing.T) {
	for _, tt := range []struct{ network, handler, want string }{
		{"udp", "udptest-stream", `listeners[0].chain[0].handler: handler "udptest-stream" does not work on udp listeners`},
		{"tcp", "udptest-tag", `listeners[0].chain[0].handler: handler "udptest-tag" does not work on tcp listeners`},
	} {
		_, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`
listeners:
  - name: x
    network: %s
    address: 127.0.0.1:0
    chain:
      - handler: %s
`, tt.network, tt.handler)))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s on %s: got %v, want %q", tt.handler, tt.network, err, tt.want)
		}
	}
}

// TestUDPFailuresHeld: a client whose flows keep failing (a dead
// upstream) gets holdAfter flows at once, then its datagrams are dropped
// until holdFor has passed, instead of each starting a flow that fails
// in turn; other clients are served meanwhile, and it is served again
// afterwards.
func TestUDPFailuresHeld(t *testing.T) {
	t.Cleanup(func(d time.Duration) func() { return func() { holdFor = d } }(holdFor))
	holdFor = 3 * time.Second // long enough for the datagrams below, under -race
	h := newUDPHarness(t)
	h.apply(udpConfig("v1", "1m"))
	c, other := h.client(), h.client()
	const sent = 30
	for range sent {
		if _, err := c.Write([]byte("fail")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // within the socket's buffer
	}
	// The listener reads in order: once other is answered, every "fail"
	// has been read.
	mustAsk(t, other, "o", "v1:o")
	tag := udpTags.last(t, "v1")
	waitFor(t, "the failed flows to end", func() bool { return tag.ended.Load() >= holdAfter })
	if got, err := ask(c, "x", 300*time.Millisecond); err == nil {
		t.Errorf("a held client was answered (%q)", got)
	}
	if n := tag.ended.Load(); n != holdAfter {
		t.Errorf("%d flows failed for %d failing datagrams, want %d", n, sent, holdAfter)
	}
	if total := h.metric("total"); total != holdAfter+1 {
		t.Errorf("total = %v, want %d (the failed flows and other's)", total, holdAfter+1)
	}
	deadline := time.Now().Add(3 * holdFor)
	for {
		got, err := ask(c, "x", 200*time.Millisecond)
		if err == nil && got == "v1:x" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still held %v after the last failure: %q, %v", 3*holdFor, got, err)
		}
	}
	mustAsk(t, other, "o", "v1:o")
}
