package proxy_test

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestDeadUpstreamSkipped(t *testing.T) {
	dead := "tcp://" + deadAddr(t)
	live := tagServer(t, "live")
	liveURL := "tcp://" + live.ln.Addr().String()
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(dead, liveURL)+"        fail_timeout: 1m\n"))
	for i := range 10 {
		if got := roundTrip(t, "tcp", h.Addr("front"), ""); got != "live" {
			t.Fatalf("connection %d: got %q", i, got)
		}
	}
	if n := h.upstreamErrors("front", dead); n != 1 {
		t.Errorf("errors of the dead upstream = %v, want 1 (tried once, then skipped)", n)
	}
	if n := h.upstreamErrors("front", liveURL); n != 0 {
		t.Errorf("errors of the live upstream = %v, want 0", n)
	}
	if n := live.accepted(); n != 10 {
		t.Errorf("live upstream accepted %d connections, want 10", n)
	}
	if !strings.Contains(h.Log(), "upstream failed; skipping it") {
		t.Errorf("the upstream's failure was not logged:\n%s", h.Log())
	}
}

func TestAllUpstreamsDown(t *testing.T) {
	dead1, dead2 := "tcp://"+deadAddr(t), "tcp://"+deadAddr(t)
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(dead1, dead2)))
	c, err := net.DialTimeout("tcp", h.Addr("front"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := closedByPeer(c); err != nil {
		t.Fatalf("client not closed: %v", err)
	}
	eventually(t, "the failure to be logged", func() bool {
		return strings.Contains(h.Log(), "connection failed")
	})
	var records []string
	for _, line := range strings.Split(h.Log(), "\n") {
		if strings.Contains(line, "connection failed") {
			records = append(records, line)
		}
	}
	if len(records) != 1 {
		t.Fatalf("want one record of the failure, got %d:\n%s", len(records), h.Log())
	}
	for _, want := range []string{"no upstream reachable", "tried " + dead1 + ", " + dead2, "[WARN]"} {
		if !strings.Contains(records[0], want) {
			t.Errorf("record lacks %q: %s", want, records[0])
		}
	}
	for _, u := range []string{dead1, dead2} {
		if n := h.upstreamErrors("front", u); n != 1 {
			t.Errorf("errors of %s = %v, want 1", u, n)
		}
	}
}

// TestUpstreamClosesFirst: an upstream that says its piece and closes
// at once; the client gets all of it, then EOF, and the proxied
// connection ends when the client closes.
func TestUpstreamClosesFirst(t *testing.T) {
	up := serve(t, listenTCP(t), func(c net.Conn) {
		_, _ = io.WriteString(c, "bye")
	})
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML("tcp://"+up.ln.Addr().String())))
	c, err := net.DialTimeout("tcp", h.Addr("front"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "bye" {
		t.Fatalf("got %q, %v; want \"bye\" and EOF", b, err)
	}
	_ = c.Close()
	eventually(t, "the connection to end", func() bool { return h.active("front") == 0 })
}

// blackhole returns a loopback address whose SYNs are dropped: a
// listening socket with a full accept queue that never accepts. A
// connect to it neither succeeds nor fails until the caller's timeout.
func blackhole(t *testing.T) string {
	t.Helper()
	ln := listenTCP(t)
	t.Cleanup(func() { _ = ln.Close() })
	// Fill the accept queue (Go asks for the kernel's maximum backlog,
	// but each completed handshake takes a slot until accepted; SYNs
	// beyond that are dropped). Stop at the first connect that hangs.
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := shrinkBacklog(rc); err != nil {
		t.Skipf("cannot shrink the backlog: %v", err)
	}
	addr := ln.Addr().String()
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			_ = c.Close()
		}
	})
	for range 64 {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return addr
		}
		held = append(held, c)
	}
	t.Skip("could not fill the accept queue")
	return ""
}

func TestConnectTimeout(t *testing.T) {
	hole := "tcp://" + blackhole(t)
	live := tagServer(t, "live")
	liveURL := "tcp://" + live.ln.Addr().String()

	t.Run("next upstream", func(t *testing.T) {
		h := newHarness(t)
		h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(hole, liveURL)+"        connect_timeout: 300ms\n"))
		start := time.Now()
		if got := roundTrip(t, "tcp", h.Addr("front"), ""); got != "live" {
			t.Fatalf("got %q", got)
		}
		if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
			t.Errorf("answered after %v: want the blackhole tried first, for its connect_timeout (300ms)", d)
		}
		if n := h.upstreamErrors("front", hole); n != 1 {
			t.Errorf("errors of the blackhole = %v, want 1", n)
		}
	})
	t.Run("only upstream", func(t *testing.T) {
		h := newHarness(t)
		h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(hole)+"        connect_timeout: 300ms\n"))
		start := time.Now() // before the connect, so the bound holds
		c, err := net.DialTimeout("tcp", h.Addr("front"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := closedByPeer(c); err != nil {
			t.Fatalf("client not closed: %v", err)
		}
		if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
			t.Errorf("closed after %v, want after the connect timeout (300ms) and soon after it", d)
		}
		eventually(t, "the failure to be logged", func() bool {
			return strings.Contains(h.Log(), "i/o timeout")
		})
	})
}

// TestWriteAfterUpstreamReset: the client keeps sending to an upstream
// that is gone; the pair ends with an error instead of hanging.
func TestWriteAfterUpstreamReset(t *testing.T) {
	up := serve(t, listenTCP(t), func(c net.Conn) {
		_ = c.(*net.TCPConn).SetLinger(0) // close with a reset
	})
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML("tcp://"+up.ln.Addr().String())))
	c, err := net.DialTimeout("tcp", h.Addr("front"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for range 200 {
		if _, err := c.Write(chunk); err != nil {
			break
		}
	}
	eventually(t, "the connection to end", func() bool { return h.active("front") == 0 })
}
