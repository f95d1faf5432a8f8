package proxy_test

import (
	"io"
	"net"
	"testing"
	"time"
)

// The proxy's cost against a direct connection to the same upstream, on
// loopback. `go test -run '^$' -bench . ./plugins/proxy/` prints both; the
// comparison with HAProxy belongs to `make bench`.

// sink reads everything with a plain buffer, then half-closes, so that
// the client knows all its bytes arrived.
func sink(c net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		if _, err := c.Read(buf); err != nil {
			break
		}
	}
	closeWrite(c)
}

// pingPong echoes fixed-size messages with a plain buffer.
func pingPong(c net.Conn) {
	buf := make([]byte, 64)
	for {
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// benchTargets returns the address to dial for each variant: the
// upstream itself, and sluice's proxy in front of it (unwrapped: splice;
// wrapped: the buffered path).
func benchTargets(b *testing.B, handle func(net.Conn)) map[string]string {
	up := serve(b, listenTCP(b), handle)
	upURL := "tcp://" + up.ln.Addr().String()
	h := newHarness(b)
	h.Apply(`
listeners:
  - name: splice
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: proxy
        upstreams: [` + upURL + `]
  - name: buffered
    network: tcp
    address: 127.0.0.2:0
    chain:
      - handler: ` + wrapName + `
      - handler: proxy
        upstreams: [` + upURL + `]
`)
	return map[string]string{
		"direct":         up.ln.Addr().String(),
		"proxy-splice":   h.Addr("splice"),
		"proxy-buffered": h.Addr("buffered"),
	}
}

var benchOrder = []string{"direct", "proxy-splice", "proxy-buffered"}

// BenchmarkThroughput sends b.N chunks of 64 KiB one way and waits for
// the upstream's EOF, so every byte is counted as delivered.
func BenchmarkThroughput(b *testing.B) {
	targets := benchTargets(b, sink)
	chunk := make([]byte, 64<<10)
	for _, name := range benchOrder {
		b.Run(name, func(b *testing.B) {
			c, err := net.DialTimeout("tcp", targets[name], 5*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.SetBytes(int64(len(chunk)))
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			closeWrite(c)
			if _, err := io.Copy(io.Discard, c); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkPingPong measures one 64-byte round trip.
func BenchmarkPingPong(b *testing.B) {
	targets := benchTargets(b, pingPong)
	msg := make([]byte, 64)
	for _, name := range benchOrder {
		b.Run(name, func(b *testing.B) {
			c, err := net.DialTimeout("tcp", targets[name], 5*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
