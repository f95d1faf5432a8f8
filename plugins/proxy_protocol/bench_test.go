package proxyprotocol_test

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	proxyproto "github.com/pires/go-proxyproto"

	"github.com/sluice-dev/sluice/internal/testnet"
	"github.com/sluice-dev/sluice/pkg/plugintest"
)

// The cost of proxy_protocol → proxy with send_proxy_protocol: v2 against
// a plain proxy, in one process on loopback (client, sluice and upstream
// share the CPUs, so the figures are relative, not absolute):
//
//	go test -run '^$' -bench . ./plugins/proxy_protocol/

// echoUpstream echoes with a plain buffer, after reading a PROXY header
// when withHeader is set.
func echoUpstream(b *testing.B, withHeader bool) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return testnet.Serve(b, ln, func(c net.Conn) {
		r := bufio.NewReader(c)
		if withHeader {
			if _, err := proxyproto.Read(r); err != nil {
				return
			}
		}
		_, _ = io.Copy(c, r)
	})
}

type benchTarget struct {
	addr   string
	header []byte // sent first on each connection, as a load balancer would
}

func benchTargets(b *testing.B) map[string]benchTarget {
	plainUp, ppUp := echoUpstream(b, false), echoUpstream(b, true)
	h := plugintest.NewHarness(b, plugintest.Options{Level: hclog.Warn})
	h.Apply(`
listeners:
  - name: plain
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: proxy
        upstreams: [tcp://` + plainUp + `]
  - name: pp
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: proxy_protocol
        trusted: [127.0.0.1/32]
      - handler: proxy
        upstreams: [tcp://` + ppUp + `]
        send_proxy_protocol: v2
`)
	hdr, err := proxyproto.HeaderProxyFromAddrs(2, client, balancr).Format()
	if err != nil {
		b.Fatal(err)
	}
	return map[string]benchTarget{
		"proxy":                   {addr: h.Addr("plain")},
		"proxy_protocol-proxy-v2": {addr: h.Addr("pp"), header: hdr},
	}
}

var benchOrder = []string{"proxy", "proxy_protocol-proxy-v2"}

// BenchmarkConnect opens a connection, has one byte echoed and closes it.
func BenchmarkConnect(b *testing.B) {
	ts := benchTargets(b)
	for _, name := range benchOrder {
		t := ts[name]
		b.Run(name, func(b *testing.B) {
			msg := append(append([]byte{}, t.header...), 'x')
			one := make([]byte, 1)
			for range b.N {
				c, err := net.DialTimeout("tcp", t.addr, 5*time.Second)
				if err != nil {
					b.Fatal(err)
				}
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, one); err != nil {
					b.Fatal(err)
				}
				_ = c.Close()
			}
		})
	}
}

// BenchmarkPingPong measures one 64-byte round trip on an open connection.
func BenchmarkPingPong(b *testing.B) {
	ts := benchTargets(b)
	for _, name := range benchOrder {
		t := ts[name]
		b.Run(name, func(b *testing.B) {
			c, err := net.DialTimeout("tcp", t.addr, 5*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(t.header); err != nil {
				b.Fatal(err)
			}
			msg := make([]byte, 64)
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
