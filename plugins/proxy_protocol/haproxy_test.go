package proxyprotocol_test

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

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
			fe := haproxytest.FreeAddr(t)
			haproxytest.Start(t, fe, fmt.Sprintf(`
frontend fe
  bind %s
  default_backend be
backend be
  server sluice %s %s
`, fe, f.Addr("pp"), opt))
			c := dialFrom(t, "127.0.0.2", fe)
			if _, err := io.WriteString(c, "hello"); err != nil {
				t.Fatal(err)
			}
			if got := echoed(t, c); got != "hello" {
				t.Fatalf("echoed %q through haproxy", got)
			}
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
