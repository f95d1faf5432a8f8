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
	if has, err := e.sluiceAccepts("PROXY protocol", "proxy_protocol", cfg); !has || err != nil {
		return nil, false, err
	}
	plain, err := e.startSluiceProxy(sluiceProxyT, up.addr)
	if err != nil {
		return nil, false, err
	}
	pp, err := e.startSluiceOn(sluicePPT, e.o.sluice, sluicePPT+".yaml", nil, cfg)
	if err != nil {
		return nil, false, err
	}
	ppTargets.Store(pp.addr, true)
	ts = []*target{plain, pp}
	if !e.haveHAProxy() {
		e.note("HAProxy PROXY protocol comparison skipped: %q not found", e.o.haproxy)
		return ts, true, nil
	}
	h, err := e.startHAProxyWith(haproxyPPT, ppUp.addr, false, "accept-proxy", "send-proxy-v2")
	if err != nil {
		return nil, false, err
	}
	ppTargets.Store(h.addr, true)
	return append(ts, h), true, nil
}

// ppRatios compare the PROXY protocol proxy with the plain proxy and
// HAProxy to these targets.
func ppRatios(plain, haproxy float64) []ratioSpec {
	return hopRatios(sluicePPT, haproxyPPT, "HAProxy accept-proxy + send-proxy-v2", plain, haproxy)
}

func ppConnRate(e *env) error {
	return e.connRateSection(e.ppTargetsStart, "pp", "PROXY protocol connection rate (proxy_protocol → proxy with send_proxy_protocol: v2; connect, header, one 64-byte round trip, close; 4 clients)",
		ppRatios(0, 0), ppRatios(1.10, 1.0))
}

func ppPingPong(e *env) error {
	return e.pingPongSection(e.ppTargetsStart, "pp", "PROXY protocol ping-pong (proxy_protocol → proxy with send_proxy_protocol: v2; 20 connections, 64-byte messages)",
		ppRatios(0, 0), ppRatios(1.10, 1.0))
}
