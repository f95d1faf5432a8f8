//go:build linux

package main

import (
	"fmt"
	"os"
	"time"
)

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
	probe := e.path("sluice-pp-probe.yaml")
	if err := os.WriteFile(probe, fmt.Appendf(nil, sluicePPConfig, "127.0.0.1:1", ppUp.addr), 0o644); err != nil {
		return nil, false, err
	}
	if has, out := e.sluiceHas(probe); !has {
		e.note("PROXY protocol figures skipped: this sluice build does not accept a proxy_protocol listener (%s)", firstLine(out))
		return nil, false, nil
	}
	plain, err := e.startSluiceProxy(sluiceProxyT, up.addr)
	if err != nil {
		return nil, false, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, false, err
	}
	path := e.path(sluicePPT + ".yaml")
	if err := os.WriteFile(path, fmt.Appendf(nil, sluicePPConfig, addr, ppUp.addr), 0o644); err != nil {
		return nil, false, err
	}
	pp, err := e.startSluiceFull(sluicePPT, e.o.sluice, path, addr, nil)
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

func ppConnRate(e *env) error {
	ts, ok, err := e.ppTargetsStart()
	if err != nil || !ok {
		return err
	}
	c, err := e.rounds(ts, func(addr string, d time.Duration) (loadResult, error) {
		return connRate(addr, 4, d)
	}, connRateMetrics)
	if err != nil {
		return err
	}
	const sec = "PROXY protocol connection rate (proxy_protocol → proxy with send_proxy_protocol: v2; connect, header, one 64-byte round trip, close; 4 clients)"
	e.res.Figures = append(e.res.Figures,
		figure(c, "pp.connrate.rate", sec, "connections per second", "conn/s", "rate", false, names(ts),
			ratioSpec{sluicePPT, []string{sluiceProxyT}, "plain sluice proxy", 0, 0},
			ratioSpec{sluicePPT, []string{haproxyPPT}, "HAProxy accept-proxy + send-proxy-v2", 0, 0}),
		figure(c, "pp.connrate.cpu", sec, "server CPU per connection", "µs/conn", "cpu_us_per_conn", true, names(ts),
			ratioSpec{sluicePPT, []string{sluiceProxyT}, "plain sluice proxy", 1.10, 0},
			ratioSpec{sluicePPT, []string{haproxyPPT}, "HAProxy accept-proxy + send-proxy-v2", 1.0, 0}),
	)
	return nil
}

func ppPingPong(e *env) error {
	ts, ok, err := e.ppTargetsStart()
	if err != nil || !ok {
		return err
	}
	c, err := e.rounds(ts, func(addr string, d time.Duration) (loadResult, error) {
		return pingPong(addr, 20, 64, d)
	}, pingPongMetrics)
	if err != nil {
		return err
	}
	e.res.Figures = append(e.res.Figures, pingPongFigures(c, "pp", "PROXY protocol ping-pong (proxy_protocol → proxy with send_proxy_protocol: v2; 20 connections, 64-byte messages)", names(ts),
		func(metric string, lower bool, target float64) []ratioSpec {
			if metric == "cpu_us_per_op" {
				return []ratioSpec{
					{sluicePPT, []string{sluiceProxyT}, "plain sluice proxy", 1.10, 0},
					{sluicePPT, []string{haproxyPPT}, "HAProxy accept-proxy + send-proxy-v2", 1.0, 0},
				}
			}
			return []ratioSpec{
				{sluicePPT, []string{sluiceProxyT}, "plain sluice proxy", 0, 0},
				{sluicePPT, []string{haproxyPPT}, "HAProxy accept-proxy + send-proxy-v2", 0, 0},
			}
		})...)
	return nil
}
