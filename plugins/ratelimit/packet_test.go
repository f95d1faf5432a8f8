package ratelimit_test

import (
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/plugintest"
	"github.com/sluice-dev/sluice/plugins/ratelimit"
)

// udpConfig is one UDP echo listener behind a ratelimit with options
// (YAML lines indented for the handler); withLog puts a log handler first.
func udpConfig(name, options string, withLog bool) string {
	logEntry := ""
	if withLog {
		logEntry = "      - handler: log\n"
	}
	return `
listeners:
  - name: ` + name + `
    network: udp
    address: 127.0.0.1:0
    chain:
` + logEntry + `      - handler: ratelimit
        ` + options + `
      - handler: echo
`
}

// dialUDPFrom opens a client socket on the local IP from, connected to
// addr: a new source port, so a new flow, each time.
func dialUDPFrom(t *testing.T, from, addr string) *net.UDPConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("udp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.UDPConn)
}

// echoed sends msg and waits until it is either echoed (true) or counted
// as dropped (false), so that each datagram's fate is known exactly,
// however slow the machine.
func echoed(t *testing.T, h *harness, listener string, c *net.UDPConn, msg string) bool {
	t.Helper()
	before := rejected(h, listener, "packet_rate")
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	deadline := time.Now().Add(plugintest.WaitTimeout)
	for {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		n, err := c.Read(buf)
		switch {
		case err == nil && string(buf[:n]) == msg:
			return true
		case err == nil:
			t.Fatalf("sent %q, got %q back", msg, buf[:n])
		case !chain.IsTimeout(err):
			t.Fatalf("read: %v", err)
		}
		if rejected(h, listener, "packet_rate") > before {
			return false
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q was neither echoed nor counted as dropped", msg)
		}
	}
}

func TestPacketsPerSecond(t *testing.T) {
	const sent = 50
	h := newHarness(t)
	h.Apply(udpConfig("rl-udp", "packets_per_second: 10\n        burst: 5", false))
	c := dialUDPFrom(t, "127.0.0.1", h.Addr("rl-udp"))

	start := time.Now()
	for i := range sent {
		if _, err := fmt.Fprintf(c, "%02d", i); err != nil {
			t.Fatal(err)
		}
	}
	// Every datagram is echoed or dropped: wait until all are accounted
	// for, then make sure nothing more comes back.
	var got []string
	buf := make([]byte, 64)
	deadline := start.Add(plugintest.WaitTimeout)
	for len(got)+rejected(h, "rl-udp", "packet_rate") < sent {
		if time.Now().After(deadline) {
			t.Fatalf("of %d datagrams, %d echoed and %d counted as dropped", sent, len(got), rejected(h, "rl-udp", "packet_rate"))
		}
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil {
			got = append(got, string(buf[:n]))
		} else if !chain.IsTimeout(err) {
			t.Fatalf("read: %v", err)
		}
	}
	elapsed := time.Since(start)
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(buf); !chain.IsTimeout(err) {
		t.Fatalf("after all were accounted for, read %q, %v; want nothing", buf[:n], err)
	}

	dropped := rejected(h, "rl-udp", "packet_rate")
	t.Logf("%d echoed, %d dropped, in %v", len(got), dropped, elapsed)
	if len(got)+dropped != sent {
		t.Errorf("%d echoed + %d dropped, want %d in all", len(got), dropped, sent)
	}
	// The burst passes; then 10 a second over the time the server can
	// have spent on them, which on a loaded machine is more than the
	// sends took.
	upper := 5 + int(math.Ceil(elapsed.Seconds()*10))
	if len(got) < 5 || len(got) > upper {
		t.Errorf("%d of %d echoed in %v; want 5 to %d", len(got), sent, elapsed, upper)
	}
	if len(got) >= 5 && !slices.Equal(got[:5], []string{"00", "01", "02", "03", "04"}) {
		t.Errorf("the burst echoed %q, want the first five", got[:5])
	}
	// A drop does not end the flow.
	if n := h.Open("rl-udp"); n != 1 {
		t.Errorf("%d open flows, want the client's one", n)
	}

	// Drops are logged at debug, a line a second per flow at most.
	lines := strings.Count(h.Log(), "datagrams dropped")
	if maxLines := 1 + int(elapsed/time.Second); lines < 1 || lines > maxLines {
		t.Errorf("%d \"datagrams dropped\" lines for %d drops in %v, want 1 to %d:\n%s", lines, dropped, elapsed, maxLines, h.Log())
	}
	if !strings.Contains(h.Log(), "reason=packet_rate dropped=1") {
		t.Errorf("the first drop's line lacks its reason and count:\n%s", h.Log())
	}
}

func TestPacketBucketsArePerSourceAddress(t *testing.T) {
	h := newHarness(t)
	// 0.001/s: after the burst of 2, practically nothing.
	h.Apply(udpConfig("rl-udp-ip", "packets_per_second: 0.001\n        burst: 2", false))
	addr := h.Addr("rl-udp-ip")
	a := dialUDPFrom(t, "127.0.0.1", addr)
	b := dialUDPFrom(t, "127.0.0.2", addr)
	a2 := dialUDPFrom(t, "127.0.0.1", addr) // a's address, another port

	tests := []struct {
		client string
		c      *net.UDPConn
		want   bool
	}{
		{"a", a, true}, {"a", a, true}, {"a", a, false},
		{"b", b, true}, {"b", b, true}, {"b", b, false},
		{"a2", a2, false}, // the bucket is the address's, not the flow's
		{"a", a, false},
	}
	for i, tt := range tests {
		if got := echoed(t, h, "rl-udp-ip", tt.c, fmt.Sprintf("%s-%d", tt.client, i)); got != tt.want {
			t.Fatalf("datagram %d from %s: echoed %v, want %v", i, tt.client, got, tt.want)
		}
	}
	if got := rejected(h, "rl-udp-ip", "packet_rate"); got != 4 {
		t.Errorf("rejected{reason=packet_rate} = %d, want 4", got)
	}
	if n := ratelimit.TableLen(h.Supervisor.Shared(), "rl-udp-ip"); n != 2 {
		t.Errorf("the table holds %d addresses, want 2", n)
	}
	// a's and b's flows go on after their drops; a2's, whose first
	// datagram was dropped, was not kept.
	if n := h.Open("rl-udp-ip"); n != 2 {
		t.Errorf("%d open flows, want 2: drops end no flow but a2's", n)
	}
}

func TestPacketStateSurvivesAReload(t *testing.T) {
	h := newHarness(t)
	opts := "packets_per_second: 0.001\n        burst: 3"
	h.Apply(udpConfig("rl-udp-reload", opts, false))
	addr := h.Addr("rl-udp-reload")
	old := dialUDPFrom(t, "127.0.0.1", addr)
	for i := range 2 {
		if !echoed(t, h, "rl-udp-reload", old, fmt.Sprint("old-", i)) {
			t.Fatalf("datagram %d of the burst dropped", i)
		}
	}

	// Another part of the chain changes: the same socket, a new chain,
	// the same buckets.
	sum := h.Apply(udpConfig("rl-udp-reload", opts, true))
	if !slices.Contains(sum.Changed, "rl-udp-reload") || h.Addr("rl-udp-reload") != addr {
		t.Fatalf("reload did not change the listener in place: %+v", sum)
	}
	if n := ratelimit.States(h.Supervisor.Shared()); n != 1 {
		t.Errorf("%d limiter states after the reload, want the one shared", n)
	}
	// A new flow gets the new chain, and the one token left.
	fresh := dialUDPFrom(t, "127.0.0.1", addr)
	if !echoed(t, h, "rl-udp-reload", fresh, "new-0") {
		t.Fatal("the third datagram was dropped: one token was left")
	}
	if echoed(t, h, "rl-udp-reload", fresh, "new-1") {
		t.Fatal("a fourth datagram was echoed: the reload refilled the bucket")
	}
	// The old flow finishes on its old chain, with the same bucket.
	if echoed(t, h, "rl-udp-reload", old, "old-2") {
		t.Fatal("the old flow got a token of its own")
	}
}

// TestPacketsPerSecondSocat is what a user would try: two socat runs
// from one address, of which only the first fits in a burst of 1.
func TestPacketsPerSecondSocat(t *testing.T) {
	plugintest.Socat(t)
	h := newHarness(t)
	h.Apply(udpConfig("rl-udp-socat", "packets_per_second: 0.001\n        burst: 1", false))
	addr := h.Addr("rl-udp-socat")
	if out := plugintest.SocatUDP(t, addr, "hello\n", time.Second); out != "hello\n" {
		t.Fatalf("first socat printed %q, want \"hello\\n\"", out)
	}
	if out := plugintest.SocatUDP(t, addr, "again\n", time.Second); out != "" {
		t.Fatalf("second socat printed %q; want nothing, its datagram dropped", out)
	}
	deadline := time.Now().Add(plugintest.WaitTimeout)
	for rejected(h, "rl-udp-socat", "packet_rate") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("rejected{reason=packet_rate} = %d, want 1", rejected(h, "rl-udp-socat", "packet_rate"))
		}
		waitABit()
	}
}
