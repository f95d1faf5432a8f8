//go:build linux

package main

import "fmt"

// The PROXY protocol figures: what accepting a header (proxy_protocol)
// and sending one (send_proxy_protocol: v2) add to the proxy, against the
// plain proxy in the same rounds and HAProxy doing the same
// (accept-proxy, send-proxy-v2). The load generator sends a v2 header
// first on each connection, as a load balancer would, to all three.

const (
	sluicePPT  = "sluice-pp"
	haproxyPPT = "haproxy-pp"
)

var ppHop = hop{
	what: "PROXY protocol", handler: "proxy_protocol",
	subject: sluicePPT, haproxy: haproxyPPT, haproxyDoes: "accept-proxy + send-proxy-v2",
	haproxyNote: "PROXY protocol",
}

const sluicePPConfig = configHeader + `  - name: pp
    network: tcp
    address: %s
    idle_timeout: 5m
    tcp_keepalive: 0
    chain:
      - handler: proxy_protocol
        trusted: [127.0.0.0/8]
      - handler: proxy
        upstreams: ["tcp://%s"]
        tcp_keepalive: 0
        send_proxy_protocol: v2
`

// ppTargetsStart starts a PROXY-reading upstream, then the three servers
// measured in front of it. Every client, the plain proxy's too, starts
// with a v2 header in its own write: the plain proxy relays it as data and
// the upstream reads it as it reads sluice's and HAProxy's. So the bytes
// on every socket and the upstream's work are the same for all, and the
// plain figure is the proxy without the two handlers, not a lighter load.
// ok is false when this sluice build has no proxy_protocol handler.
func (e *env) ppTargetsStart() (ts []*target, ok bool, err error) {
	ppUp, err := e.startGo("upstream-pp", "pp", loadCPU)
	if err != nil {
		return nil, false, err
	}
	cfg := func(addr string) []byte { return fmt.Appendf(nil, sluicePPConfig, addr, ppUp.addr) }
	ts, ok, err = e.hopTargets(ppHop, ppUp.addr, cfg, func() (*target, error) {
		return e.startHAProxyWith(haproxyPPT, ppUp.addr, false, "accept-proxy", "send-proxy-v2")
	})
	if err != nil || !ok {
		return nil, false, err
	}
	for _, t := range ts {
		ppTargets.Store(t.addr, true)
	}
	return ts, true, nil
}

func ppConnRate(e *env) error {
	return e.connRateSection(e.ppTargetsStart, "pp", "PROXY protocol connection rate (proxy_protocol → proxy with send_proxy_protocol: v2; connect, header, one 64-byte round trip, close; 4 clients)",
		ppHop.ratios(0, 0), ppHop.ratios(1.10, 1.0))
}

func ppPingPong(e *env) error {
	return e.pingPongSection(e.ppTargetsStart, "pp", "PROXY protocol ping-pong (proxy_protocol → proxy with send_proxy_protocol: v2; 20 connections, 64-byte messages)",
		ppHop.ratios(0, 0), ppHop.ratios(1.10, 1.0))
}
