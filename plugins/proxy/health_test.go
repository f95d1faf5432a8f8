package proxy_test

import (
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// stop closes s's listener and connections and waits for its goroutines,
// as a backend that goes away; the test's cleanup does it again harmlessly.
func (s *server) stop() {
	_ = s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// listenOn listens on addr again (a backend that comes back).
func listenOn(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// lines counts the log lines with message msg about upstream url.
func (h *harness) lines(msg, url string) int {
	n := 0
	for _, l := range strings.Split(h.Log(), "\n") {
		if strings.Contains(l, " "+msg+": ") && strings.Contains(l, " upstream="+url+" ") {
			n++
		}
	}
	return n
}

func (h *harness) upstreamUp(upstream string) float64 {
	return h.Metric("sluice_upstream_up", "listener", "front", "upstream", upstream)
}

// waitFor polls cond every 10ms for up to limit and returns how long it
// took; it fails the test when cond never holds. Only the tests of how
// fast a state changes use a tight limit; the others wait generously, so
// that a machine busy with other tests does not fail them.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

const healthYAML = `        health_check:
          interval: 200ms
          timeout: 200ms
          rise: 2
          fall: 3
`

// TestHealthCheckDownAndUp: an upstream that stops is marked down within
// interval × fall plus a second; from then on no client is sent to it and
// none fails; when it comes back it is marked up after rise checks and
// gets clients again.
func TestHealthCheckDownAndUp(t *testing.T) {
	a := tagServer(t, "a")
	b := tagServer(t, "b")
	aURL, bURL := "tcp://"+a.ln.Addr().String(), "tcp://"+b.ln.Addr().String()
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(aURL, bURL)+healthYAML))
	waitFor(t, "b checked up", 5*time.Second, func() bool { return h.lines("upstream up", bURL) == 1 })

	b.stop()
	took := waitFor(t, "b marked down", 3*200*time.Millisecond+time.Second, func() bool { return h.upstreamUp(bURL) == 0 })
	t.Logf("b marked down %v after it stopped", took)
	errsBefore := h.upstreamErrors("front", bURL)
	for range 20 {
		if tag := roundTrip(t, "tcp", h.Addr("front"), ""); tag != "a" {
			t.Fatalf("a client got %q while b was down, want a", tag)
		}
	}
	if got := h.upstreamErrors("front", bURL); got != errsBefore {
		t.Errorf("connects to b while it was marked down: errors %v -> %v", errsBefore, got)
	}
	if n := h.lines("upstream down", bURL); n != 1 {
		t.Errorf("%d 'upstream down' lines for b, want 1", n)
	}

	b2 := serve(t, listenOn(t, b.ln.Addr().String()), func(c net.Conn) { _, _ = io.WriteString(c, "b") })
	took = waitFor(t, "b marked up", 2*200*time.Millisecond+time.Second, func() bool { return h.upstreamUp(bURL) == 1 })
	t.Logf("b marked up %v after it came back", took)
	seen := map[string]int{}
	for range 10 {
		seen[roundTrip(t, "tcp", h.Addr("front"), "")]++
	}
	if seen["a"] != 5 || seen["b"] != 5 || b2.accepted() < 5 {
		t.Errorf("after b came back: %v, want 5 each", seen)
	}
}

// TestHealthCheckExpect: an upstream that accepts but never answers
// expect is marked down; one that answers stays up.
func TestHealthCheckExpect(t *testing.T) {
	mute := serve(t, listenTCP(t), func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	pong := serve(t, listenTCP(t), func(c net.Conn) {
		buf := make([]byte, 6)
		if _, err := io.ReadFull(c, buf); err == nil && string(buf) == "PING\r\n" {
			_, _ = io.WriteString(c, "+PONG\r\n")
		}
		_, _ = io.Copy(io.Discard, c)
	})
	muteURL, pongURL := "tcp://"+mute.ln.Addr().String(), "tcp://"+pong.ln.Addr().String()
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(muteURL, pongURL)+healthYAML+`          send: "PING\r\n"
          expect: "PONG"
`))
	waitFor(t, "the mute upstream marked down", 10*time.Second, func() bool { return h.upstreamUp(muteURL) == 0 })
	waitFor(t, "the answering upstream checked", 5*time.Second, func() bool { return h.lines("upstream up", pongURL) == 1 })
	if h.upstreamUp(pongURL) != 1 {
		t.Fatal("the answering upstream is not up")
	}
	if !strings.Contains(h.Log(), "reply does not contain the expected bytes") {
		t.Errorf("the down line does not say why:\n%s", h.Log())
	}
}

// TestHealthCheckAllDown: with every upstream down, a client fails at
// once, and is counted. The upstream drops SYNs, so that a dial to it
// would hold the client for the whole connect_timeout (30s): "at once"
// is then told from a dial by far more than a loaded machine's delays
// (a dead port, refused in a millisecond, needed a 2s bound).
func TestHealthCheckAllDown(t *testing.T) {
	h := newHarness(t)
	dead := "tcp://" + blackhole(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(dead)+healthYAML+"        connect_timeout: 30s\n"))
	waitFor(t, "the upstream marked down", 10*time.Second, func() bool { return h.upstreamUp(dead) == 0 })
	errsBefore := h.upstreamErrors("front", dead)
	start := time.Now()
	c, err := net.DialTimeout("tcp", h.Addr("front"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := closedByPeer(c); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the client waited %v", d)
	}
	waitFor(t, "the refusal counted", 5*time.Second, func() bool {
		return h.Metric("sluice_upstream_unavailable_total", "listener", "front") == 1
	})
	if got := h.upstreamErrors("front", dead); got != errsBefore {
		t.Errorf("the down upstream was dialled: errors %v -> %v", errsBefore, got)
	}
}

// TestHealthCheckReloadKeepsState: a reload that changes an unrelated
// option keeps the checks' state: a down upstream stays down, with no
// new check cycle and no connect attempt from the new chain.
func TestHealthCheckReloadKeepsState(t *testing.T) {
	a := tagServer(t, "a")
	aURL, dead := "tcp://"+a.ln.Addr().String(), "tcp://"+deadAddr(t)
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(aURL, dead)+healthYAML))
	waitFor(t, "the dead upstream marked down", 10*time.Second, func() bool { return h.upstreamUp(dead) == 0 })
	errsBefore := h.upstreamErrors("front", dead)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(aURL, dead)+healthYAML+"        connect_timeout: 3s\n"))
	for range 10 {
		if tag := roundTrip(t, "tcp", h.Addr("front"), ""); tag != "a" {
			t.Fatalf("got %q after the reload", tag)
		}
	}
	if got := h.upstreamErrors("front", dead); got != errsBefore {
		t.Errorf("the new chain dialled the down upstream: errors %v -> %v", errsBefore, got)
	}
	if n := h.lines("upstream down", dead); n != 1 {
		t.Errorf("%d 'upstream down' lines, want 1 (state lost on reload?)", n)
	}
	// Removing the upstream stops its checks (goleak checks the
	// goroutine at the end).
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(aURL)+healthYAML))
}

// TestStatus: /status lists the proxy's upstreams with their state, the
// last check and the open connections.
func TestStatus(t *testing.T) {
	hold := serve(t, listenTCP(t), func(c net.Conn) {
		_, _ = io.WriteString(c, "a")
		_, _ = io.Copy(io.Discard, c)
	})
	aURL, dead := "tcp://"+hold.ln.Addr().String(), "tcp://"+deadAddr(t)
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", "      - handler: log\n"+proxyYAML(aURL, dead)+healthYAML))
	waitFor(t, "the dead upstream marked down", 10*time.Second, func() bool { return h.upstreamUp(dead) == 0 })
	waitFor(t, "a checked up", 5*time.Second, func() bool { return h.lines("upstream up", aURL) == 1 })
	c, err := net.DialTimeout("tcp", h.Addr("front"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for _, st := range h.Supervisor.Status() {
		if st.Name == "front" {
			if len(st.Handlers) != 1 || st.Handlers[0].Index != 1 || st.Handlers[0].Handler != "proxy" {
				t.Fatalf("handlers in status: %+v", st.Handlers)
			}
			if got, err = json.Marshal(st.Handlers[0].Status); err != nil {
				t.Fatal(err)
			}
		}
	}
	var s struct {
		Upstreams []struct {
			URL         string    `json:"url"`
			State       string    `json:"state"`
			LastCheck   time.Time `json:"last_check"`
			LastError   string    `json:"last_error"`
			Connections int64     `json:"connections"`
		} `json:"upstreams"`
	}
	if err := json.Unmarshal(got, &s); err != nil || len(s.Upstreams) != 2 {
		t.Fatalf("status %s: %v", got, err)
	}
	a, d := s.Upstreams[0], s.Upstreams[1]
	if a.URL != aURL || a.State != "up" || a.Connections != 1 || a.LastError != "" || a.LastCheck.IsZero() {
		t.Errorf("a in status: %+v (%s)", a, got)
	}
	if d.URL != dead || d.State != "down" || d.Connections != 0 || !strings.Contains(d.LastError, "refused") || time.Since(d.LastCheck) > 5*time.Second {
		t.Errorf("dead upstream in status: %+v (%s)", d, got)
	}
	if v := h.Metric("sluice_upstream_connections_active", "listener", "front", "upstream", aURL); v != 1 {
		t.Errorf("sluice_upstream_connections_active = %v, want 1", v)
	}
}

// TestHealthCheckUnix: Unix upstreams are checked too.
func TestHealthCheckUnix(t *testing.T) {
	ln, path := listenUnix(t)
	up := serve(t, ln, func(c net.Conn) { _, _ = io.WriteString(c, "u") })
	url := "unix://" + path
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(url)+healthYAML))
	waitFor(t, "the unix upstream checked up", 5*time.Second, func() bool { return h.lines("upstream up", url) == 1 })
	up.stop()
	waitFor(t, "the unix upstream marked down", 10*time.Second, func() bool { return h.upstreamUp(url) == 0 })
}
