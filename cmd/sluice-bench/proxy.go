package main

import (
	"fmt"
	"os"
	"time"
)

const (
	directT        = "direct"
	haproxyT       = "haproxy"
	haproxySpliceT = "haproxy-splice"
	sluiceProxyT   = "sluice-proxy"
)

var haproxyBoth = []string{haproxyT, haproxySpliceT}

const sluiceProxyConfig = configHeader + `  - name: proxy
    network: tcp
    address: %s
    idle_timeout: 5m
    chain:
      - handler: proxy
        upstreams: ["tcp://%s"]
`

// proxyTargets starts an upstream echo on the load CPU (it is part of the
// load, not of what is measured), then sluice's proxy and HAProxy in front
// of it on the server CPU. ok is false when sluice has no proxy handler
// yet; the section is then skipped with a note.
func (e *env) proxyTargets() (ts []*target, ok bool, err error) {
	up, err := e.startGo("upstream", "loop", loadCPU)
	if err != nil {
		return nil, false, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, false, err
	}
	path := e.path("sluice-proxy.yaml")
	if err := os.WriteFile(path, fmt.Appendf(nil, sluiceProxyConfig, addr, up.addr), 0o644); err != nil {
		return nil, false, err
	}
	if has, out := e.sluiceHas(path); !has {
		e.note("proxy figures skipped: this sluice build does not accept a proxy listener (%s)", firstLine(out))
		return nil, false, nil
	}
	ts = append(ts, &target{name: directT, addr: up.addr})
	s, err := e.startSluice(sluiceProxyT, path, addr)
	if err != nil {
		return nil, false, err
	}
	ts = append(ts, s)
	if !e.haveHAProxy() {
		e.note("HAProxy comparison skipped: %q not found (make bench BENCH_HAPROXY=install installs it from Debian)", e.o.haproxy)
		return ts, true, nil
	}
	h, err := e.startHAProxy(haproxyT, up.addr, false)
	if err != nil {
		return nil, false, err
	}
	hs, err := e.startHAProxy(haproxySpliceT, up.addr, true)
	if err != nil {
		return nil, false, err
	}
	return append(ts, h, hs), true, nil
}

func proxyThroughput(e *env) error {
	ts, ok, err := e.proxyTargets()
	if err != nil || !ok {
		return err
	}
	c, err := e.rounds(ts, func(addr string, d time.Duration) (loadResult, error) {
		return throughput(addr, 10, 16<<10, d)
	}, throughputMetrics)
	if err != nil {
		return err
	}
	const sec = "Proxy throughput (10 connections, 16 KiB writes, to an echo upstream)"
	e.res.Figures = append(e.res.Figures,
		figure(c, "proxy.throughput.rate", sec, "throughput", "MB/s", "MBps", false, names(ts),
			ratioSpec{sluiceProxyT, []string{directT}, "direct", 0},
			ratioSpec{sluiceProxyT, haproxyBoth, "better HAProxy", 0}),
		figure(c, "proxy.throughput.cpu", sec, "proxy CPU per GB", "ms/GB", "cpu_ms_per_GB", true, names(ts),
			ratioSpec{sluiceProxyT, haproxyBoth, "cheaper HAProxy", 1.0}),
	)
	return nil
}

func proxyPingPong(e *env) error {
	ts, ok, err := e.proxyTargets()
	if err != nil || !ok {
		return err
	}
	c, err := e.rounds(ts, func(addr string, d time.Duration) (loadResult, error) {
		return pingPong(addr, 20, 64, d)
	}, pingPongMetrics)
	if err != nil {
		return err
	}
	e.res.Figures = append(e.res.Figures, pingPongFigures(c, "proxy", "Proxy ping-pong (20 connections, 64-byte messages, to an echo upstream)", names(ts),
		func(metric string, lower bool, target float64) []ratioSpec {
			if metric == "cpu_us_per_op" {
				return []ratioSpec{{sluiceProxyT, haproxyBoth, "cheaper HAProxy", 1.0}}
			}
			return []ratioSpec{
				{sluiceProxyT, []string{directT}, "direct", 0},
				{sluiceProxyT, haproxyBoth, "better HAProxy", 0},
			}
		})...)
	return nil
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}
