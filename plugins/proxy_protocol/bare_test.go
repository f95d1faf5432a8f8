package proxyprotocol_test

import (
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/plugintest"
)

// TestBareUnlessBytesFollow: on a socket the header and the bytes that
// came with it are taken in one receive. With nothing after the header
// the next handler gets the bare socket; the bytes that followed it (or
// a client's own, without a header) it gets in a Replay, which the
// terminal's relay sends on first before it works on the socket under
// it (pkg/relay's TestRelaySendsReplayedFirst).
func TestBareUnlessBytesFollow(t *testing.T) {
	plugintest.RegisterWrapProbe()
	h := ppHarness(t, plugintest.Options{Level: hclog.Debug}, `
      - handler: proxy_protocol
        trusted: [127.0.0.1/32]
        required: false
      - handler: `+plugintest.WrapProbe+`
`)
	for _, tc := range []struct {
		first   []byte
		wrapped bool
	}{
		{header(t, 2, client, balancr), false},
		{header(t, 1, client, balancr), false},
		{append(header(t, 2, client, balancr), "hello"...), true},
		{append(header(t, 1, client, balancr), "hello"...), true},
		{[]byte("hello"), true},
	} {
		c := dial(t, "tcp", h.Addr("pp"))
		writeAll(t, c, 0, tc.first)
		if got := plugintest.ProbeWrapped(t); got != tc.wrapped {
			t.Errorf("after %q the next handler got wrapped = %v, want %v", tc.first, got, tc.wrapped)
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
