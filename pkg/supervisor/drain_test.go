package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-dev/sluice/internal/testnet"
	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// streamTag is a test-only stream terminal: it writes its tag when a
// connection starts, then echoes. It records its own Close and the
// context it was handed, so that a test sees when its generation closed.
type streamTag struct {
	Tag string `mapstructure:"tag"`

	closed atomic.Bool
	ctx    atomic.Pointer[context.Context]
}

func (s *streamTag) ServeStream(ctx context.Context, c *chain.Conn) error {
	s.ctx.Store(&ctx)
	if _, err := io.WriteString(c, s.Tag); err != nil {
		return err
	}
	n, err := io.Copy(c.Conn, c.Conn)
	c.AddIn(n)
	c.AddOut(n)
	chain.CloseWrite(c.Conn)
	return err
}

func (s *streamTag) Close() error {
	s.closed.Store(true)
	return nil
}

func (s *streamTag) Provision(chain.ProvisionContext) error {
	streamTags.add(s.Tag, s)
	return nil
}

var streamTags = newTagged[*streamTag]()

func init() {
	registry.Register("draintest-tag", func() any { return new(streamTag) })
}

// drainConfig is a config with listener t (and, when gone is true, a
// second listener "gone") serving tag, the given reload drain timeout and
// a short shutdown drain timeout, so that a test sees which one applies.
func drainConfig(reloadDrain, tag string, gone bool) string {
	l := func(name, tag string) string {
		return fmt.Sprintf("  - {name: %s, network: tcp, address: '127.0.0.1:0', chain: [{handler: draintest-tag, tag: %s}]}\n", name, tag)
	}
	s := fmt.Sprintf("shutdown: {drain_timeout: 200ms}\nreload: {drain_timeout: %s}\nlisteners:\n", reloadDrain) + l("t", tag)
	if gone {
		s += l("gone", tag+"g")
	}
	return s
}

// dialTag connects to listener name and returns the connection with the
// tag of the chain it landed on.
func (h *udpHarness) dialTag(name string, tagLen int) (net.Conn, string) {
	h.t.Helper()
	a, ok := h.s.Addr(name)
	if !ok {
		h.t.Fatalf("no listener %q", name)
	}
	c, err := net.DialTimeout("tcp", a, 5*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	tag := make([]byte, tagLen)
	if _, err := io.ReadFull(c, tag); err != nil {
		h.t.Fatalf("reading the tag: %v", err)
	}
	return c, string(tag)
}

// status returns listener name's status entry.
func (h *udpHarness) status(name string) (ListenerStatus, bool) {
	for _, st := range h.s.Status() {
		if st.Name == name {
			return st, true
		}
	}
	return ListenerStatus{}, false
}

func (h *udpHarness) retiredGauge(name string) float64 {
	return testutil.ToFloat64(h.s.metrics.RetiredConnections.WithLabelValues(name))
}

// logLine returns the first log line containing every one of parts, or "".
func (h *udpHarness) logLine(parts ...string) string {
next:
	for _, line := range strings.Split(h.log.String(), "\n") {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue next
			}
		}
		return line
	}
	return ""
}

// closedWithin reads c until it ends and reports whether it ended by the
// peer's close (EOF or reset) rather than by the read deadline.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestReloadNeverCutsByDefault: with reload.drain_timeout 0, a connection
// on a replaced chain runs on it for as long as it likes (well past
// shutdown.drain_timeout), counts as retired meanwhile, and the old chain
// closes when it ends.
func TestReloadNeverCutsByDefault(t *testing.T) {
	h := newUDPHarness(t)
	h.apply(drainConfig("0s", "d1", false))
	old, tag := h.dialTag("t", 2)
	if tag != "d1" {
		t.Fatalf("first chain: tag %q", tag)
	}
	testnet.MustEcho(t, old, "before")
	h.apply(drainConfig("0s", "d2", false))
	fresh, tag := h.dialTag("t", 2)
	if tag != "d2" {
		t.Fatalf("connection after the reload on chain %q, want d2", tag)
	}
	if st, _ := h.status("t"); st.Connections != 2 || st.RetiredConnections != 1 || st.Removed {
		t.Fatalf("status %+v, want 2 connections, 1 retired", st)
	}
	if g := h.retiredGauge("t"); g != 1 {
		t.Fatalf("sluice_retired_connections = %v, want 1", g)
	}

	// Five times shutdown.drain_timeout: that bound is not the reload's.
	time.Sleep(time.Second)
	testnet.MustEcho(t, old, "still on the old chain")
	d1 := streamTags.last(t, "d1")
	if d1.closed.Load() {
		t.Fatal("old chain closed while a connection still uses it")
	}
	if line := h.logLine("drain timeout"); line != "" {
		t.Fatalf("a drain timeout fired: %s", line)
	}

	_ = old.Close()
	waitFor(t, "the old chain to close", d1.closed.Load)
	if ctx := d1.ctx.Load(); ctx == nil || (*ctx).Err() == nil {
		t.Error("old chain closed but its context is not cancelled")
	}
	waitFor(t, "retired connections to reach 0", func() bool {
		st, _ := h.status("t")
		return st.RetiredConnections == 0 && st.Connections == 1
	})
	if g := h.retiredGauge("t"); g != 0 {
		t.Errorf("sluice_retired_connections = %v after the last one ended, want 0", g)
	}
	waitFor(t, "the retired chain's line", func() bool {
		return h.logLine("[INFO]", "retired chain closed", "listener=t", "duration=", "connections_cut=0") != ""
	})
	testnet.MustEcho(t, fresh, "new chain untouched")
}

// TestReloadDrainTimeoutCuts: with reload.drain_timeout set, connections
// on the replaced chain are closed once it has passed, with one warn
// line; connections on the new chain are not.
func TestReloadDrainTimeoutCuts(t *testing.T) {
	h := newUDPHarness(t)
	h.apply(drainConfig("400ms", "c1", false))
	var olds []net.Conn
	for range 3 {
		c, _ := h.dialTag("t", 2)
		testnet.MustEcho(t, c, "x")
		olds = append(olds, c)
	}
	reloaded := time.Now()
	h.apply(drainConfig("400ms", "c2", false))
	fresh, tag := h.dialTag("t", 2)
	if tag != "c2" {
		t.Fatalf("new connection on chain %q", tag)
	}
	for i, c := range olds {
		if !closedWithin(c, 10*time.Second) {
			t.Fatalf("old connection %d not closed", i)
		}
	}
	if d := time.Since(reloaded); d < 400*time.Millisecond {
		t.Fatalf("old connections closed %v after the reload, before the 400ms drain timeout", d)
	}
	line := h.logLine("reload drain timeout: closing connections still on a retired chain")
	if !strings.Contains(line, "[WARN]") || !strings.Contains(line, "listener=t") || !strings.Contains(line, "connections=3") {
		t.Fatalf("want one warn line with listener=t and connections=3, got %q\n%s", line, h.log.String())
	}
	if n := strings.Count(h.log.String(), "reload drain timeout"); n != 1 {
		t.Errorf("%d warn lines, want 1", n)
	}
	waitFor(t, "the old chain to close", streamTags.last(t, "c1").closed.Load)
	waitFor(t, "retired connections to reach 0", func() bool {
		st, _ := h.status("t")
		return st.RetiredConnections == 0 && h.retiredGauge("t") == 0
	})
	waitFor(t, "the retired chain's line", func() bool {
		return h.logLine("retired chain closed", "connections_cut=3") != ""
	})
	testnet.MustEcho(t, fresh, "the new chain's connection is not cut")
}

// TestLaterReloadBoundsEarlierChains: setting reload.drain_timeout applies
// to the chains earlier reloads retired, counted from their retirement.
func TestLaterReloadBoundsEarlierChains(t *testing.T) {
	h := newUDPHarness(t)
	h.apply(drainConfig("0s", "b1", false))
	first, _ := h.dialTag("t", 2)
	h.apply(drainConfig("0s", "b2", false))
	second, _ := h.dialTag("t", 2)
	time.Sleep(300 * time.Millisecond)
	testnet.MustEcho(t, first, "no bound yet")

	h.apply(drainConfig("200ms", "b3", false))
	if st, _ := h.status("t"); st.RetiredConnections > 2 {
		t.Fatalf("status %+v", st)
	}
	for _, c := range []net.Conn{first, second} {
		if !closedWithin(c, 10*time.Second) {
			t.Fatal("a connection on an earlier chain outlived the new bound")
		}
	}
	waitFor(t, "retired connections to reach 0", func() bool { return h.retiredGauge("t") == 0 })
	third, tag := h.dialTag("t", 2)
	if tag != "b3" {
		t.Fatalf("new connection on chain %q", tag)
	}
	testnet.MustEcho(t, third, "current chain serves")
}

// TestRemovedListenerLingers: a removed listener stops accepting, keeps
// its open connection, and is listed in Status, marked removed, until
// that connection ends.
func TestRemovedListenerLingers(t *testing.T) {
	h := newUDPHarness(t)
	h.apply(drainConfig("0s", "r1", true))
	goneAddr, _ := h.s.Addr("gone")
	c, _ := h.dialTag("gone", 3)
	h.apply(drainConfig("0s", "r1", false))

	if nc, err := net.DialTimeout("tcp", goneAddr, time.Second); err == nil {
		_ = nc.Close()
		t.Fatal("removed listener still accepts")
	}
	st, ok := h.status("gone")
	want := ListenerStatus{Name: "gone", Network: "tcp", Address: goneAddr, Connections: 1, RetiredConnections: 1, Removed: true}
	if !ok || !reflect.DeepEqual(st, want) {
		t.Fatalf("status of the removed listener %+v, want %+v", st, want)
	}
	if st, _ := h.status("t"); st.Removed || st.RetiredConnections != 0 {
		t.Fatalf("kept listener %+v", st)
	}
	if g := h.retiredGauge("gone"); g != 1 {
		t.Fatalf("sluice_retired_connections{listener=gone} = %v, want 1", g)
	}
	time.Sleep(500 * time.Millisecond)
	testnet.MustEcho(t, c, "the removed listener's connection still works")

	_ = c.Close()
	waitFor(t, "the removed listener to leave Status", func() bool {
		_, ok := h.status("gone")
		return !ok
	})
	if g := h.retiredGauge("gone"); g != 0 {
		t.Errorf("sluice_retired_connections{listener=gone} = %v, want 0", g)
	}
	waitFor(t, "its chain to close", streamTags.last(t, "r1g").closed.Load)
	if len(h.s.Status()) != 1 {
		t.Errorf("status %+v", h.s.Status())
	}
}

// TestShutdownBoundsRetiredChains: a shutdown while a retired chain has
// no reload bound closes its connections after shutdown.drain_timeout
// instead of waiting for them.
func TestShutdownBoundsRetiredChains(t *testing.T) {
	h := newUDPHarness(t)
	h.apply(drainConfig("0s", "s1", true))
	old, _ := h.dialTag("t", 2)
	gone, _ := h.dialTag("gone", 3)
	h.apply(drainConfig("0s", "s2", false))
	current, _ := h.dialTag("t", 2)

	begin := time.Now()
	done := make(chan error, 1)
	go func() { done <- h.s.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown waits for connections on retired chains beyond shutdown.drain_timeout")
	}
	if d := time.Since(begin); d < 200*time.Millisecond {
		t.Errorf("shutdown took %v, less than the 200ms drain timeout with connections open", d)
	}
	for i, c := range []net.Conn{old, gone, current} {
		if !closedWithin(c, 5*time.Second) {
			t.Errorf("connection %d still open after shutdown", i)
		}
	}
	for _, tag := range []string{"s1", "s1g", "s2"} {
		if !streamTags.last(t, tag).closed.Load() {
			t.Errorf("chain %s not closed by shutdown", tag)
		}
	}
	if line := h.logLine("reload drain timeout"); line != "" {
		t.Errorf("shutdown's cut logged as a reload's: %s", line)
	}
}

// TestUDPRetiredFlows: flows on a replaced chain count as retired, keep
// their chain without a bound, and are ended by one like connections.
func TestUDPRetiredFlows(t *testing.T) {
	h := newUDPHarness(t)
	h.apply(udpConfig("f1", "1m"))
	a := h.client()
	mustAsk(t, a, "a", "f1:a")
	h.apply(udpConfig("f2", "1m"))
	if st, _ := h.status("u"); st.Connections != 1 || st.RetiredConnections != 1 {
		t.Fatalf("status %+v, want the flow retired", st)
	}
	if g := h.retiredGauge("u"); g != 1 {
		t.Fatalf("sluice_retired_connections = %v, want 1", g)
	}
	time.Sleep(500 * time.Millisecond)
	mustAsk(t, a, "a", "f1:a")

	h.apply("reload: {drain_timeout: 100ms}\n" + udpConfig("f3", "1m"))
	f1 := udpTags.last(t, "f1")
	waitFor(t, "the retired flow to end", func() bool { return f1.ended.Load() == 1 })
	waitFor(t, "the old chain to close", f1.closed.Load)
	waitFor(t, "retired flows to reach 0", func() bool {
		st, _ := h.status("u")
		return st.RetiredConnections == 0 && h.retiredGauge("u") == 0
	})
	if h.logLine("[WARN]", "reload drain timeout", "listener=u", "connections=1") == "" {
		t.Fatalf("no warn line for the cut flow:\n%s", h.log.String())
	}
	mustAsk(t, a, "a", "f3:a")
}
