package proxy_test

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestHealthCheckEndlessReply: an upstream that answers a check with an
// endless stream that never holds expect fails the check once the first
// 64 KiB are read, not when timeout ends: the check used to read such a
// stream at full speed for all of timeout, every interval (2 GB and a
// third of a core each 10s for one upstream at the defaults).
func TestHealthCheckEndlessReply(t *testing.T) {
	endless := serve(t, listenTCP(t), func(c net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	url := "tcp://" + endless.ln.Addr().String()
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(url)+`        health_check:
          interval: 200ms
          timeout: 1m
          fall: 1
          expect: "PONG"
`))
	waitFor(t, "the endless upstream marked down", 15*time.Second, func() bool { return h.upstreamUp(url) == 0 })
	if !strings.Contains(h.Log(), "expected bytes in the first") {
		t.Errorf("the down line does not say why:\n%s", h.Log())
	}
}
