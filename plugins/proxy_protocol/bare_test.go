package proxyprotocol_test

import (
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/plugintest"
)

// TestStaysBare: on a socket only the header is taken out, so the next
// handler gets the bare socket (the proxy can splice) even when data came
// in the same segment, and without a header too.
func TestStaysBare(t *testing.T) {
	plugintest.RegisterWrapProbe()
	h := ppHarness(t, plugintest.Options{Level: hclog.Debug}, `
      - handler: proxy_protocol
        trusted: [127.0.0.1/32]
        required: false
      - handler: `+plugintest.WrapProbe+`
`)
	for _, first := range [][]byte{
		append(header(t, 2, client, balancr), "hello"...),
		append(header(t, 1, client, balancr), "hello"...),
		[]byte("hello"),
	} {
		c := dial(t, "tcp", h.Addr("pp"))
		writeAll(t, c, 0, first)
		if plugintest.ProbeWrapped(t) {
			t.Errorf("after %q the next handler got a wrapped connection", first)
		}
		_ = c.Close()
	}
}

// TestAcceptedWrapped: behind a middleware that wrapped the connection
// (log with payload), the header is read, not peeked, and the bytes after
// it are replayed.
func TestAcceptedWrapped(t *testing.T) {
	h := ppHarness(t, plugintest.Options{Level: hclog.Trace, JSON: true}, `
      - handler: log
        payload: true
      - handler: proxy_protocol
        trusted: [127.0.0.1/32]
      - handler: echo
`)
	f := &front{Harness: h, t: t}
	v2 := header(t, 2, client, balancr)
	for _, parts := range [][][]byte{
		{append(header(t, 1, client, balancr), "hello"...)},
		{v2[:5], v2[5:14], append(v2[14:], "hel"...), []byte("lo")},
	} {
		c := dial(t, "tcp", h.Addr("pp"))
		writeAll(t, c, 20*time.Millisecond, parts...)
		if got := echoed(t, c); got != "hello" {
			t.Fatalf("echoed %q", got)
		}
	}
	if got := f.remotes(); !slices.Equal(got, []string{"203.0.113.7:4242", "203.0.113.7:4242"}) {
		t.Errorf("access log remote %q", got)
	}
	f.wantRejected("", 0)
}
