package proxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// wrapName is a test-only middleware that wraps the client connection,
// as log with payload or ratelimit with bytes_per_second do: the proxy
// must then copy through its buffer, and still half-close.
const wrapName = "test-wrap"

type wrapper struct{}

func (wrapper) WrapStream(next chain.StreamHandler) chain.StreamHandler {
	return chain.StreamHandlerFunc(func(ctx context.Context, c *chain.Conn) error {
		c.Conn = &wrappedConn{Conn: c.Conn}
		return next.ServeStream(ctx, c)
	})
}

type wrappedConn struct{ net.Conn }

func (w *wrappedConn) CloseWrite() error { return w.Conn.(chain.CloseWriter).CloseWrite() }

func init() {
	registry.Register(wrapName, func() any { return &wrapper{} })
}

func frontYAML(network, address, idle, handlers string) string {
	return fmt.Sprintf(`
listeners:
  - name: front
    network: %s
    address: %s
    idle_timeout: %s
    chain:
%s`, network, address, idle, handlers)
}

func proxyYAML(upstreams ...string) string {
	return "      - handler: proxy\n        upstreams: " + yamlList(upstreams...) + "\n"
}

func TestProxyToTCPAndUnixUpstreams(t *testing.T) {
	tcpUp := serve(t, listenTCP(t), echoConn)
	unixLn, unixPath := listenUnix(t)
	serve(t, unixLn, echoConn)
	tcpURL := "tcp://" + tcpUp.ln.Addr().String()
	unixURL := "unix://" + unixPath

	tests := []struct {
		name, network, upstream string
	}{
		{"tcp to tcp", "tcp", tcpURL},
		{"tcp to unix", "tcp", unixURL},
		{"unix to tcp", "unix", tcpURL},
		{"unix to unix", "unix", unixURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			addr := "127.0.0.1:0"
			if tt.network == "unix" {
				addr = t.TempDir() + "/front.sock"
			}
			h.apply(frontYAML(tt.network, addr, "0", proxyYAML(tt.upstream)))
			if got := roundTrip(t, tt.network, h.addr("front"), "hello, upstream"); got != "hello, upstream" {
				t.Fatalf("got %q", got)
			}
			eventually(t, "the connection to end", func() bool { return h.active("front") == 0 })
			if in, out := h.bytes("front", "in"), h.bytes("front", "out"); in != 15 || out != 15 {
				t.Errorf("bytes in/out = %v/%v, want 15/15", in, out)
			}
		})
	}
}

// TestHalfClose8MiB sends 8 MiB each way through the proxy and checks
// both half-closes: the client's EOF reaches the upstream while the
// upstream still sends, and the upstream's EOF reaches the client while
// the client still sends.
func TestHalfClose8MiB(t *testing.T) {
	const size = 8 << 20
	for _, wrapped := range []bool{false, true} {
		for _, upFirst := range []bool{false, true} {
			name := fmt.Sprintf("wrapped=%v/upstream_closes_first=%v", wrapped, upFirst)
			t.Run(name, func(t *testing.T) {
				payloadUp := randomBytes(t, size)
				payloadDown := randomBytes(t, size)
				got := make(chan [32]byte, 1)
				up := serve(t, listenTCP(t), func(c net.Conn) {
					if upFirst {
						// Say everything and half-close, then read
						// what the client still sends.
						_, _ = c.Write(payloadDown)
						closeWrite(c)
						got <- hashAll(c)
						return
					}
					// Read to the client's EOF, then answer.
					got <- hashAll(c)
					_, _ = c.Write(payloadDown)
					closeWrite(c)
				})
				h := newHarness(t)
				handlers := proxyYAML("tcp://" + up.ln.Addr().String())
				if wrapped {
					handlers = "      - handler: " + wrapName + "\n" + handlers
				}
				h.apply(frontYAML("tcp", "127.0.0.1:0", "1m", handlers))

				c, err := net.DialTimeout("tcp", h.addr("front"), 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(60 * time.Second))
				if upFirst {
					// The upstream's EOF comes first; then we send.
					if h := hashAll(c); h != sha256.Sum256(payloadDown) {
						t.Fatal("client received corrupted data")
					}
					if _, err := c.Write(payloadUp); err != nil {
						t.Fatalf("sending after the upstream's EOF: %v", err)
					}
					closeWrite(c)
				} else {
					if _, err := c.Write(payloadUp); err != nil {
						t.Fatal(err)
					}
					closeWrite(c)
					if h := hashAll(c); h != sha256.Sum256(payloadDown) {
						t.Fatal("client received corrupted data")
					}
				}
				select {
				case h := <-got:
					if h != sha256.Sum256(payloadUp) {
						t.Fatal("upstream received corrupted data")
					}
				case <-time.After(60 * time.Second):
					t.Fatal("upstream never saw the client's EOF")
				}
				eventually(t, "the connection to end", func() bool { return h.active("front") == 0 })
				if in, out := h.bytes("front", "in"), h.bytes("front", "out"); in != size || out != size {
					t.Errorf("bytes in/out = %v/%v, want %d each", in, out, size)
				}
			})
		}
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// hashAll reads c to EOF and returns the sha256 of what it read.
func hashAll(c net.Conn) [32]byte {
	hsh := sha256.New()
	_, _ = io.Copy(hsh, struct{ io.Reader }{c})
	var sum [32]byte
	copy(sum[:], hsh.Sum(nil))
	return sum
}

// tagServer answers each connection with its name and closes.
func tagServer(t *testing.T, name string) *server {
	return serve(t, listenTCP(t), func(c net.Conn) {
		_, _ = io.WriteString(c, name)
	})
}

func TestBalance(t *testing.T) {
	for _, balance := range []string{"round_robin", "random"} {
		t.Run(balance, func(t *testing.T) {
			names := []string{"a", "b", "c"}
			var urls []string
			for _, n := range names {
				urls = append(urls, "tcp://"+tagServer(t, n).ln.Addr().String())
			}
			h := newHarness(t)
			h.apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(urls...)+"        balance: "+balance+"\n"))
			conns := 60
			counts := map[string]int{}
			var order []string
			for range conns {
				tag := roundTrip(t, "tcp", h.addr("front"), "")
				counts[tag]++
				order = append(order, tag)
			}
			switch balance {
			case "round_robin":
				for i := 3; i < len(order); i++ {
					if order[i] != order[i-3] {
						t.Fatalf("not in turn: %v", order)
					}
				}
				for _, n := range names {
					if counts[n] != conns/3 {
						t.Fatalf("counts %v, want %d each", counts, conns/3)
					}
				}
			case "random":
				// 60 draws from 3: missing one has odds of 1e-10.
				for _, n := range names {
					if counts[n] == 0 {
						t.Fatalf("upstream %s never picked: %v", n, counts)
					}
				}
			}
		})
	}
}

// TestLeastConn holds connections open and checks that a new one goes to
// the upstream with the fewest.
func TestLeastConn(t *testing.T) {
	hold := func(name string) *server {
		return serve(t, listenTCP(t), func(c net.Conn) {
			_, _ = io.WriteString(c, name)
			_, _ = io.Copy(io.Discard, c) // until the client's EOF
		})
	}
	a, b := hold("a"), hold("b")
	h := newHarness(t)
	h.apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML("tcp://"+a.ln.Addr().String(), "tcp://"+b.ln.Addr().String())+"        balance: least_conn\n"))

	open := func() (net.Conn, string) {
		c, err := net.DialTimeout("tcp", h.addr("front"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		var tag [1]byte
		if _, err := io.ReadFull(c, tag[:]); err != nil {
			t.Fatal(err)
		}
		return c, string(tag[:])
	}
	c1, t1 := open()
	_, t2 := open()
	if t1 == t2 {
		t.Fatalf("two connections on %s while the other upstream had none", t1)
	}
	_, t3 := open() // one each: either
	if _, t4 := open(); t4 == t3 {
		t.Fatalf("connection went to %s, which had two; the other had one", t4)
	}
	// Two each. Closing c1 leaves its upstream with the fewest.
	closeWrite(c1)
	_, _ = io.Copy(io.Discard, c1)
	eventually(t, "the first connection to end", func() bool { return h.active("front") == 3 })
	if _, t5 := open(); t5 != t1 {
		t.Fatalf("connection went to %s; %s had fewer", t5, t1)
	}
}

func TestDeadUpstreamSkipped(t *testing.T) {
	dead := "tcp://" + deadAddr(t)
	live := tagServer(t, "live")
	liveURL := "tcp://" + live.ln.Addr().String()
	h := newHarness(t)
	h.apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(dead, liveURL)+"        fail_timeout: 1m\n"))
	for i := range 10 {
		if got := roundTrip(t, "tcp", h.addr("front"), ""); got != "live" {
			t.Fatalf("connection %d: got %q", i, got)
		}
	}
	if n := h.upstreamErrors("front", dead); n != 1 {
		t.Errorf("errors of the dead upstream = %v, want 1 (tried once, then skipped)", n)
	}
	if n := h.upstreamErrors("front", liveURL); n != 0 {
		t.Errorf("errors of the live upstream = %v, want 0", n)
	}
	if !strings.Contains(h.log.String(), "upstream failed; skipping it") {
		t.Errorf("the upstream's failure was not logged:\n%s", h.log)
	}
}

func TestAllUpstreamsDown(t *testing.T) {
	dead1, dead2 := "tcp://"+deadAddr(t), "tcp://"+deadAddr(t)
	h := newHarness(t)
	h.apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(dead1, dead2)))
	c, err := net.DialTimeout("tcp", h.addr("front"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := closedByPeer(c); err != nil {
		t.Fatalf("client not closed: %v", err)
	}
	eventually(t, "the failure to be logged", func() bool {
		return strings.Contains(h.log.String(), "connection failed")
	})
	var records []string
	for _, line := range strings.Split(h.log.String(), "\n") {
		if strings.Contains(line, "connection failed") {
			records = append(records, line)
		}
	}
	if len(records) != 1 {
		t.Fatalf("want one record of the failure, got %d:\n%s", len(records), h.log)
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
	h.apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML("tcp://"+up.ln.Addr().String())))
	c, err := net.DialTimeout("tcp", h.addr("front"), 5*time.Second)
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
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
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
		h.apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(hole, liveURL)+"        connect_timeout: 300ms\n"))
		start := time.Now()
		if got := roundTrip(t, "tcp", h.addr("front"), ""); got != "live" {
			t.Fatalf("got %q", got)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("answered after %v: the blackhole was not tried first", d)
		}
		if n := h.upstreamErrors("front", hole); n != 1 {
			t.Errorf("errors of the blackhole = %v, want 1", n)
		}
	})
	t.Run("only upstream", func(t *testing.T) {
		h := newHarness(t)
		h.apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(hole)+"        connect_timeout: 300ms\n"))
		c, err := net.DialTimeout("tcp", h.addr("front"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		if err := closedByPeer(c); err != nil {
			t.Fatalf("client not closed: %v", err)
		}
		if d := time.Since(start); d < 250*time.Millisecond {
			t.Errorf("closed after %v, before the connect timeout", d)
		}
		eventually(t, "the failure to be logged", func() bool {
			return strings.Contains(h.log.String(), "i/o timeout")
		})
	})
}

// TestIdleTimeoutIsShared: a connection whose upstream keeps talking
// while the client stays silent is not idle; once both are silent it is
// closed.
func TestIdleTimeoutIsShared(t *testing.T) {
	for _, wrapped := range []bool{false, true} {
		t.Run(fmt.Sprintf("wrapped=%v", wrapped), func(t *testing.T) {
			stop := make(chan struct{})
			var once sync.Once
			stopTalking := func() { once.Do(func() { close(stop) }) }
			t.Cleanup(stopTalking)
			up := serve(t, listenTCP(t), func(c net.Conn) {
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						_, _ = io.Copy(io.Discard, c) // silent until closed
						return
					case <-tick.C:
						if _, err := c.Write([]byte{'.'}); err != nil {
							return
						}
					}
				}
			})
			h := newHarness(t)
			handlers := proxyYAML("tcp://" + up.ln.Addr().String())
			if wrapped {
				handlers = "      - handler: " + wrapName + "\n" + handlers
			}
			h.apply(frontYAML("tcp", "127.0.0.1:0", "1s", handlers))
			c, err := net.DialTimeout("tcp", h.addr("front"), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()

			// 3 seconds of one-way traffic: three idle timeouts.
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			n, err := io.Copy(io.Discard, c)
			if !chain.IsTimeout(err) {
				t.Fatalf("connection ended while the upstream was talking (after %d bytes): %v", n, err)
			}
			stopTalking()
			start := time.Now()
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
				t.Fatalf("not closed once idle: %v", err)
			}
			if d := time.Since(start); d < 900*time.Millisecond {
				t.Errorf("closed %v after the last byte, before the idle timeout", d)
			}
			eventually(t, "the idle timeout to be logged", func() bool {
				return strings.Contains(h.log.String(), "idle timeout")
			})
		})
	}
}

// TestWriteAfterUpstreamReset: the client keeps sending to an upstream
// that is gone; the pair ends with an error instead of hanging.
func TestWriteAfterUpstreamReset(t *testing.T) {
	up := serve(t, listenTCP(t), func(c net.Conn) {
		_ = c.(*net.TCPConn).SetLinger(0) // close with a reset
	})
	h := newHarness(t)
	h.apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML("tcp://"+up.ln.Addr().String())))
	c, err := net.DialTimeout("tcp", h.addr("front"), 5*time.Second)
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
