package proxyprotocol_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/internal/testnet"
	"github.com/sluice-dev/sluice/pkg/plugintest"
)

// upstreamCopy accepts one connection on ln and returns, on the channel,
// everything it read until the client's EOF, after echoing it back.
func upstreamCopy(t *testing.T, ln net.Listener) <-chan []byte {
	t.Helper()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		var all bytes.Buffer
		_, _ = io.Copy(io.MultiWriter(&all, c), c)
		got <- all.Bytes()
	}()
	return got
}

// TestThenRouteThenProxy: the bytes that came with the header (replayed
// by proxy_protocol) are what route decides on, and the chosen proxy
// sends them, then the rest, to its upstream byte for byte, both ways;
// whether they came with the header or after it. The access log names
// the header's client and the route.
func TestThenRouteThenProxy(t *testing.T) {
	ssh, other := testnet.Listen(t, "tcp"), testnet.Listen(t, "tcp")
	h := ppHarness(t, plugintest.Options{Level: hclog.Debug, JSON: true}, fmt.Sprintf(`
      - handler: log
      - handler: proxy_protocol
        trusted: [127.0.0.1/32]
      - handler: route
        routes:
          - name: ssh
            match: {protocol: ssh}
            chain: [{handler: proxy, upstreams: ["tcp://%s"]}]
        default: [{handler: proxy, upstreams: ["tcp://%s"]}]
`, ssh.Addr(), other.Addr()))
	f := &front{Harness: h, t: t}
	bulk := make([]byte, 1<<20)
	_, _ = rand.Read(bulk)
	banner := []byte("SSH-2.0-OpenSSH_9.2\r\n")
	want := append(append([]byte{}, banner...), bulk...)
	for _, apart := range []bool{false, true} {
		got := upstreamCopy(t, ssh)
		c := dial(t, "tcp", h.Addr("pp"))
		hdr := header(t, 2, client, balancr)
		if apart {
			writeAll(t, c, 50*time.Millisecond, hdr, banner[:4], banner[4:])
		} else {
			writeAll(t, c, 0, append(append([]byte{}, hdr...), banner...))
		}
		back := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(c)
			back <- b
		}()
		writeAll(t, c, 0, bulk)
		_ = c.(*net.TCPConn).CloseWrite()
		if up := <-got; !bytes.Equal(up, want) {
			t.Fatalf("apart %v: the ssh upstream read %d bytes, want the banner and the %d after it, intact", apart, len(up), len(bulk))
		}
		if b := <-back; !bytes.Equal(b, want) {
			t.Fatalf("apart %v: the client read back %d bytes, want %d intact", apart, len(b), len(want))
		}
	}
	if got := f.remotes(); len(got) != 2 || got[0] != "203.0.113.7:4242" || got[1] != "203.0.113.7:4242" {
		t.Errorf("access log remotes %q, want the header's client twice", got)
	}
	routed := 0
	for _, r := range f.Records("connection closed") {
		if r["route"] == "ssh" {
			routed++
		}
	}
	if routed != 2 {
		t.Errorf("%d access log records name route ssh, want 2", routed)
	}
	if n := h.Metric("sluice_route_decisions_total", "listener", "pp", "route", "ssh"); n != 2 {
		t.Errorf("route decisions for ssh = %v, want 2", n)
	}
}
