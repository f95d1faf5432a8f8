package tlsterm_test

import (
	"crypto/tls"
	"io"
	"net"
	"testing"

	"github.com/sluice-dev/sluice/internal/testcert"
	"github.com/sluice-dev/sluice/internal/testnet"
)

// TestRouteAfterTLS: a route behind tls matches the name the handshake
// negotiated, so one listener terminates for two names and sends each to
// its own plaintext chain; the access line names the route taken.
func TestRouteAfterTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "root")
	aCert, aKey := pair(t, ca, dir, "a", "a.test")
	bCert, bKey := pair(t, ca, dir, "b", "b.test")

	// The default chain's upstream says who it is and closes.
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("default"))
			_ = c.Close()
		}
	}()
	defer func() { _ = up.Close(); <-done }()

	f := newFront(t, certOpts(aCert, aKey, bCert, bKey), `      - handler: route
        routes:
          - name: b-echo
            match: {sni: ["b.test"]}
            chain: [{handler: echo}]
        default:
          - handler: proxy
            upstreams: ["tcp://`+up.Addr().String()+`"]
`)
	b := mustDial(t, f.addr, &tls.Config{ServerName: "b.test", RootCAs: ca.Pool()})
	testnet.MustEcho(t, b, "to b")
	_ = b.Close()

	a := mustDial(t, f.addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool()})
	got, err := io.ReadAll(a)
	if err != nil || string(got) != "default" {
		t.Fatalf("a.test got %q, %v; want the default chain's upstream", got, err)
	}
	_ = a.Close()

	f.WaitIdle("t")
	routes := map[string]bool{}
	for _, r := range f.accessLog() {
		routes[r["sni"].(string)+"→"+r["route"].(string)] = true
	}
	for _, want := range []string{"b.test→b-echo", "a.test→default"} {
		if !routes[want] {
			t.Errorf("access log lacks %s: %v", want, routes)
		}
	}
}
