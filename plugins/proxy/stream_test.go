package proxy_test

import (
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
			h.Apply(frontYAML(tt.network, addr, "0", proxyYAML(tt.upstream)))
			if got := roundTrip(t, tt.network, h.Addr("front"), "hello, upstream"); got != "hello, upstream" {
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
				h.Apply(frontYAML("tcp", "127.0.0.1:0", "1m", handlers))

				c, err := net.DialTimeout("tcp", h.Addr("front"), 5*time.Second)
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
			h.Apply(frontYAML("tcp", "127.0.0.1:0", "1s", handlers))
			c, err := net.DialTimeout("tcp", h.Addr("front"), 5*time.Second)
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
			// The last byte came at most a tick before stop, give or
			// take a slow machine: half the timeout is a safe floor.
			if d := time.Since(start); d < 500*time.Millisecond {
				t.Errorf("closed %v after the last byte, before the idle timeout", d)
			}
			eventually(t, "the idle timeout to be logged", func() bool {
				return strings.Contains(h.Log(), "idle timeout")
			})
		})
	}
}
