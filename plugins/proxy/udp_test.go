package proxy_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testtool"
)

// udpEcho is a UDP echo upstream that remembers the source addresses it
// heard from: one per upstream socket sluice opened.
type udpEcho struct {
	pc      *net.UDPConn
	mu      sync.Mutex
	sources map[netip.AddrPort]int
}

func newUDPEcho(t *testing.T) *udpEcho {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	e := &udpEcho{pc: pc, sources: map[netip.AddrPort]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			e.mu.Lock()
			e.sources[from]++
			e.mu.Unlock()
			_, _ = pc.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	t.Cleanup(func() {
		_ = pc.Close()
		<-done
	})
	return e
}

func (e *udpEcho) url() string { return "udp://" + e.pc.LocalAddr().String() }

func (e *udpEcho) sourceCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.sources)
}

func dialUDP(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.UDPConn)
}

// exchange sends msg and returns the next datagram received, or an error
// after wait.
func exchange(c *net.UDPConn, msg string, wait time.Duration) (string, error) {
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 64<<10)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func udpFront(idle string, options string, upstreams ...string) string {
	return frontYAML("udp", "127.0.0.1:0", idle, proxyYAML(upstreams...)+options)
}

// TestUDPProxyRepliesNeverCross: two clients talk through one UDP
// listener at once; each gets only its own replies, and the upstream
// sees one socket per client.
func TestUDPProxyRepliesNeverCross(t *testing.T) {
	up := newUDPEcho(t)
	h := newHarness(t)
	h.Apply(udpFront("0", "", up.url()))
	front := h.Addr("front")

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, name := range []string{"A", "B"} {
		c := dialUDP(t, front)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				msg := fmt.Sprintf("%s-%d", name, i)
				got, err := exchange(c, msg, 5*time.Second)
				if err != nil {
					errs <- fmt.Errorf("%s: %v", msg, err)
					return
				}
				if got != msg {
					errs <- fmt.Errorf("sent %q, got %q", msg, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := up.sourceCount(); n != 2 {
		t.Errorf("upstream heard from %d sockets, want 2 (one per client)", n)
	}
	if n := h.total("front"); n != 2 {
		t.Errorf("connections_total = %v, want 2 flows", n)
	}
}

// TestUDPFlowExpiry: a flow quiet for idle_timeout is forgotten with its
// upstream socket; the client's next datagram starts a new flow on a new
// socket.
func TestUDPFlowExpiry(t *testing.T) {
	up := newUDPEcho(t)
	h := newHarness(t)
	h.Apply(udpFront("1s", "", up.url()))
	c := dialUDP(t, h.Addr("front"))

	if got, err := exchange(c, "one", 5*time.Second); err != nil || got != "one" {
		t.Fatalf("got %q, %v", got, err)
	}
	if n := h.active("front"); n != 1 {
		t.Fatalf("active = %v, want 1 flow", n)
	}
	eventually(t, "the flow to expire", func() bool { return h.active("front") == 0 })
	if !strings.Contains(h.Log(), "flow ended") {
		t.Errorf("the flow's end was not logged:\n%s", h.Log())
	}
	if got, err := exchange(c, "two", 5*time.Second); err != nil || got != "two" {
		t.Fatalf("after expiry: got %q, %v", got, err)
	}
	if n := up.sourceCount(); n != 2 {
		t.Errorf("upstream heard from %d sockets, want 2: a new one after expiry", n)
	}
	if n := h.total("front"); n != 2 {
		t.Errorf("connections_total = %v, want 2", n)
	}
	if in, out := h.bytes("front", "in"), h.bytes("front", "out"); in != 3 || out != 3 {
		t.Errorf("bytes of the expired flow in/out = %v/%v, want 3/3", in, out)
	}
}

// TestUDPDeadUpstreamSkipped: an upstream answering with ICMP port
// unreachable is marked down; the client's retry reaches the live one.
func TestUDPDeadUpstreamSkipped(t *testing.T) {
	deadPC, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	dead := "udp://" + deadPC.LocalAddr().String()
	_ = deadPC.Close()
	live := newUDPEcho(t)

	h := newHarness(t)
	h.Apply(udpFront("0", "        fail_timeout: 1m\n", dead, live.url()))
	c := dialUDP(t, h.Addr("front"))
	answered := false
	for range 20 {
		if got, err := exchange(c, "ping", 500*time.Millisecond); err == nil && got == "ping" {
			answered = true
			break
		}
	}
	if !answered {
		t.Fatal("never answered")
	}
	if n := h.upstreamErrors("front", dead); n < 1 {
		t.Errorf("errors of the dead upstream = %v, want at least 1", n)
	}
	// New clients now go straight to the live upstream.
	for i := range 3 {
		c := dialUDP(t, h.Addr("front"))
		if got, err := exchange(c, "hi", 5*time.Second); err != nil || got != "hi" {
			t.Fatalf("client %d: got %q, %v", i, got, err)
		}
	}
}

// TestUDPProxySocat is the README's "socat - UDP:..." through the proxy.
func TestUDPProxySocat(t *testing.T) {
	socat := testtool.Need(t, "socat", "socat")
	up := newUDPEcho(t)
	h := newHarness(t)
	h.Apply(udpFront("0", "", up.url()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, socat, "-t", "2", "-", "UDP:"+h.Addr("front"))
	cmd.Stdin = strings.NewReader("hello over udp\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("socat: %v\n%s", err, out)
	}
	if string(out) != "hello over udp\n" {
		t.Fatalf("socat printed %q", out)
	}
}
