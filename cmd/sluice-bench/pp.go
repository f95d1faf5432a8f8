//go:build linux

package main

import "fmt"

// The PROXY protocol figures: what accepting a header (proxy_protocol)
// and sending one (send_proxy_protocol: v2) add to the proxy, against the
// plain proxy in the same rounds and HAProxy doing the same
// (accept-proxy, send-proxy-v2). The load generator sends a v2 header
// first on each connection to the PROXY targets, as a load balancer would.

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

// ppTargetsStart starts a plain upstream for the plain proxy, a
// PROXY-reading one for the others, then the three servers measured. ok
// is false when this sluice build has no proxy_protocol handler.
func (e *env) ppTargetsStart() (ts []*target, ok bool, err error) {
	up, err := e.startGo("upstream", "loop", loadCPU)
	if err != nil {
		return nil, false, err
	}
	ppUp, err := e.startGo("upstream-pp", "pp", loadCPU)
	if err != nil {
		return nil, false, err
	}
	cfg := func(addr string) []byte { return fmt.Appendf(nil, sluicePPConfig, addr, ppUp.addr) }
	ts, ok, err = e.hopTargets(ppHop, up.addr, cfg, func() (*target, error) {
		return e.startHAProxyWith(haproxyPPT, ppUp.addr, false, "accept-proxy", "send-proxy-v2")
	})
	if err != nil || !ok {
		return nil, false, err
	}
	// All but the plain proxy read a header.
	for _, t := range ts[1:] {
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
