package proxyprotocol_test

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/internal/haproxytest"
	"github.com/sluice-dev/sluice/pkg/plugintest"
)

// TestHAProxySends: HAProxy with send-proxy-v2 and with send-proxy in
// front of a proxy_protocol listener; sluice's access log shows the
// address of HAProxy's client (127.0.0.2), not HAProxy's (127.0.0.1).
func TestHAProxySends(t *testing.T) {
	for _, opt := range []string{"send-proxy-v2", "send-proxy"} {
		t.Run(opt, func(t *testing.T) {
			f := newFront(t, "tcp", "127.0.0.1:0", "        trusted: [127.0.0.1/32]\n")
			c := helloThrough(t, haproxyBefore(t, f.Addr("pp"), opt))
			// The readiness probe (from 127.0.0.1) may be logged too.
			var remotes []string
			for _, r := range f.remotes() {
				if strings.HasPrefix(r, "127.0.0.2:") {
					remotes = append(remotes, r)
				}
			}
			if want := c.LocalAddr().String(); !slices.Equal(remotes, []string{want}) {
				t.Errorf("access log remote %q, want [%s] (HAProxy's client)", remotes, want)
			}
			f.wantRejected("", 0)
		})
	}
}

// TestHAProxyAccepts: sluice's proxy with send_proxy_protocol v1 and v2
// in front of an HAProxy accept-proxy frontend; HAProxy's src, which it
// takes from the header, is sluice's client (127.0.0.2): HAProxy answers
// with it.
func TestHAProxyAccepts(t *testing.T) {
	fe := haproxytest.FreeAddr(t)
	haproxytest.Start(t, fe, fmt.Sprintf(`
frontend fe
  mode http
  bind %s accept-proxy
  http-request return status 200 content-type text/plain lf-string "src=%%[src]\n"
`, fe))
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			h := plugintest.NewHarness(t, plugintest.Options{Level: hclog.Debug})
			h.Apply(`
listeners:
  - name: front
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: proxy
        upstreams: [tcp://` + fe + `]
        send_proxy_protocol: ` + version + `
`)
			c := dialFrom(t, "127.0.0.2", h.Addr("front"))
			if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), "src=127.0.0.2\n") {
				t.Fatalf("HAProxy answered %q, want src=127.0.0.2", b)
			}
		})
	}
}

// TestHAProxyChecksLeaveNoRecord: HAProxy's health checks of a sluice
// server (check-send-proxy: a v2 header, then a reset) are served and not
// refused, and a log with skip_empty writes no record for them; the
// client HAProxy forwards gets its record, with its own address.
func TestHAProxyChecksLeaveNoRecord(t *testing.T) {
	h := ppHarness(t, plugintest.Options{Level: hclog.Info, JSON: true}, `
      - handler: log
        skip_empty: true
      - handler: proxy_protocol
        trusted: [127.0.0.1/32]
      - handler: echo
`)
	fe := haproxyBefore(t, h.Addr("pp"), "send-proxy-v2 check check-send-proxy inter 100ms")
	// Three checks at least, with the one Start's readiness probe made.
	deadline := time.Now().Add(10 * time.Second)
	for h.Metric("sluice_connections_total", "listener", "pp") < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%v connections from HAProxy's checks, want 4 or more", h.Metric("sluice_connections_total", "listener", "pp"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	c := helloThrough(t, fe)
	_ = c.Close()
	h.WaitIdle("pp")
	recs := h.Records("connection closed")
	if len(recs) != 1 || recs[0]["remote"] != c.LocalAddr().String() {
		t.Fatalf("records %v, want the one of %s alone (no check's)", recs, c.LocalAddr())
	}
	(&front{Harness: h, t: t}).wantRejected("", 0) // the checks are served
}
