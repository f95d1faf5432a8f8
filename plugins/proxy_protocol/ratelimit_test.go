package proxyprotocol_test

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/plugintest"
)

// TestPerIPSeesTheClient: a ratelimit after proxy_protocol limits each
// client named by the headers, not the load balancer they all come from.
func TestPerIPSeesTheClient(t *testing.T) {
	h := ppHarness(t, plugintest.Options{Level: hclog.Debug}, `
      - handler: proxy_protocol
        trusted: [127.0.0.1/32]
      - handler: ratelimit
        per_ip:
          max_connections: 1
      - handler: echo
`)
	open := func(ip string, port int) net.Conn {
		c := dial(t, "tcp", h.Addr("pp"))
		src := &net.TCPAddr{IP: net.ParseIP(ip), Port: port}
		writeAll(t, c, 0, header(t, 1, src, balancr), []byte("x"))
		return c
	}
	served := func(c net.Conn) error {
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err != nil {
			return err
		}
		if b[0] != 'x' {
			return fmt.Errorf("echoed %q", b)
		}
		return nil
	}
	a := open("203.0.113.1", 1000)
	b := open("203.0.113.2", 1000)
	for i, c := range []net.Conn{a, b} {
		if err := served(c); err != nil {
			t.Fatalf("client %d, its own address, refused: %v", i+1, err)
		}
	}
	a2 := open("203.0.113.1", 1001)
	_ = a2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := served(a2); err == nil {
		t.Fatal("a second connection of 203.0.113.1 was served over per_ip.max_connections: 1")
	}
	if v := h.Metric("sluice_ratelimit_rejected_total", "listener", "pp", "reason", "per_ip_max"); v != 1 {
		t.Errorf("per_ip_max rejections = %v, want 1", v)
	}
}
