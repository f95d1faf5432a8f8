//go:build linux

package main

import "fmt"

const (
	directT        = "direct"
	haproxyT       = "haproxy"
	haproxySpliceT = "haproxy-splice"
	sluiceProxyT   = "sluice-proxy"
	// sluiceGoroutT is the same proxy with its event loop off: every pair
	// copied by two goroutines. It tells whether the loop earns its place.
	sluiceGoroutT = "sluice-proxy-goroutines"
	// sluiceEchoT is sluice's splice echo, beside the proxy's bulk figure:
	// a proxied byte crosses four sockets where an echoed one crosses
	// two, so twice the echo's CPU per GB is the floor of the proxy's.
	sluiceEchoT = "sluice-echo"
)

// noLoopEnv turns sluice's proxy event loop off (pkg/relay reads it); only
// the bench sets it.
const noLoopEnv = "SLUICE_RELAY_EVENT_LOOP=off"

// The baseline proxies of the connection rate (see proxies.go).
const (
	goProxyT  = "go-proxy"
	rawProxyT = "go-epoll-proxy"
	rawLoopT  = "go-rawloop-proxy"
)

var haproxyBoth = []string{haproxyT, haproxySpliceT}

const sluiceProxyConfig = configHeader + `  - name: proxy
    network: tcp
    address: %s
    idle_timeout: 5m
    tcp_keepalive: 0
    chain:
      - handler: proxy
        upstreams: ["tcp://%s"]
        tcp_keepalive: 0
`

// proxyTargets starts an upstream echo on the load CPU (it is part of the
// load, not of what is measured), then sluice's proxy and HAProxy in front
// of it on the server CPU. ok is false when sluice has no proxy handler
// yet; the section is then skipped with a note.
//
// extra asks for sluiceGoroutT and sluiceEchoT too.
func (e *env) proxyTargets(extra ...string) (ts []*target, ok bool, err error) {
	up, ts, ok, err := e.sluiceProxyStart()
	if err != nil || !ok {
		return nil, ok, err
	}
	ts = append([]*target{{name: directT, addr: up.addr}}, ts...)
	for _, x := range extra {
		var t *target
		switch x {
		case sluiceGoroutT:
			t, err = e.startSluiceProxy(sluiceGoroutT, up.addr, noLoopEnv)
		case sluiceEchoT:
			t, err = e.startSluiceEchoAs(sluiceEchoT, e.o.sluice)
		}
		if err != nil {
			return nil, false, err
		}
		ts = append(ts, t)
	}
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

// startSluiceProxy runs sluice as target name, proxying to upstream, with
// env added to its environment.
func (e *env) startSluiceProxy(name, upstream string, env ...string) (*target, error) {
	return e.startSluiceProxyBin(name, e.o.sluice, upstream, env...)
}

func (e *env) startSluiceProxyBin(name, bin, upstream string, env ...string) (*target, error) {
	return e.startSluiceOn(name, bin, name+".yaml", env, proxyConfig(upstream))
}

// proxyConfig is sluiceProxyConfig to upstream.
func proxyConfig(upstream string) sluiceConfig {
	return func(addr string) []byte { return fmt.Appendf(nil, sluiceProxyConfig, addr, upstream) }
}

func proxyThroughput(e *env) error {
	const sec = "Proxy throughput (10 connections, 16 KiB writes, to an echo upstream)"
	return e.section(e.proxyStart(sluiceEchoT), streamLoad, throughputMetrics, func(c *collector, ts []string) []Figure {
		return []Figure{
			figure(c, "proxy.throughput.rate", sec, "throughput", "MB/s", "MBps", false, ts,
				ratioSpec{sluiceProxyT, []string{directT}, "direct", 0, 0},
				ratioSpec{sluiceProxyT, haproxyBoth, "better HAProxy", 0, 0}),
			figure(c, "proxy.throughput.cpu", sec, "proxy CPU per GB", "ms/GB", "cpu_ms_per_GB", true, ts,
				ratioSpec{sluiceProxyT, haproxyBoth, "cheaper HAProxy", 1.0, 0},
				ratioSpec{sluiceProxyT, []string{sluiceEchoT}, "2 × sluice splice echo (floor)", 1.25, 2},
				ratioSpec{sluiceProxyT, []string{compareT}, "the -compare build", 0, 0}),
		}
	})
}

func proxyPingPong(e *env) error {
	return e.pingPongSection(e.proxyStart(sluiceGoroutT), "proxy", "Proxy ping-pong (20 connections, 64-byte messages, to an echo upstream)",
		[]ratioSpec{
			{sluiceProxyT, []string{directT}, "direct", 0, 0},
			{sluiceProxyT, haproxyBoth, "better HAProxy", 0, 0},
		},
		[]ratioSpec{
			{sluiceProxyT, haproxyBoth, "cheaper HAProxy", 1.0, 0},
			// The event loop stays only while it saves 10 %.
			{sluiceProxyT, []string{sluiceGoroutT}, "event loop off", 0.90, 0},
			{sluiceProxyT, []string{compareT}, "the -compare build", 0, 0},
		})
}

// proxyStart is proxyTargets(extra...) as a section's start.
func (e *env) proxyStart(extra ...string) startTargets {
	return func() ([]*target, bool, error) { return e.proxyTargets(extra...) }
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}

// proxyConnRate measures what a proxied connection costs: sluice's plain
// proxy against HAProxy, and both against the bounds of Go itself: its
// net package with a goroutine per connection (go-proxy), and an event
// loop on raw sockets making its system calls through the runtime
// (go-epoll-proxy) or around it (go-rawloop-proxy).
func proxyConnRate(e *env) error {
	const sec = "Proxy connection rate (connect, one 64-byte round trip, close; 4 clients)"
	ratios := []ratioSpec{
		{sluiceProxyT, []string{haproxyT}, "HAProxy", 0, 0},
		{sluiceProxyT, []string{goProxyT}, "Go net proxy (a goroutine per connection)", 0, 0},
		{sluiceProxyT, []string{compareT}, "the -compare build", 0, 0},
		{rawProxyT, []string{haproxyT}, "HAProxy", 0, 0},
		{rawLoopT, []string{haproxyT}, "HAProxy", 0, 0},
	}
	return e.connRateSection(e.proxyConnTargets, "proxy", sec, ratios, ratios)
}

func (e *env) proxyConnTargets() (ts []*target, ok bool, err error) {
	up, ts, ok, err := e.sluiceProxyStart()
	if err != nil || !ok {
		return nil, ok, err
	}
	for _, v := range []struct{ name, variant string }{{goProxyT, "goproxy"}, {rawProxyT, "rawproxy"}, {rawLoopT, "rawloop"}} {
		t, err := e.startGo(v.name, v.variant, serverCPU, "-upstream", up.addr)
		if err != nil {
			return nil, false, err
		}
		ts = append(ts, t)
	}
	if !e.haveHAProxy() {
		e.note("HAProxy comparison of the proxy connection rate skipped: %q not found", e.o.haproxy)
		return ts, true, nil
	}
	h, err := e.startHAProxy(haproxyT, up.addr, false)
	if err != nil {
		return nil, false, err
	}
	return append(ts, h), true, nil
}

// sluiceProxyStart starts an upstream echo on the load CPU (it is part of
// the load, not of what is measured), then sluice's proxy in front of it
// and, with -compare, the other build's. ok is false, with a note, when
// this sluice build has no proxy handler.
func (e *env) sluiceProxyStart() (up *target, ts []*target, ok bool, err error) {
	up, err = e.startGo("upstream", "loop", loadCPU)
	if err != nil {
		return nil, nil, false, err
	}
	if has, err := e.sluiceAccepts("proxy", "proxy", proxyConfig(up.addr)); !has || err != nil {
		return nil, nil, false, err
	}
	s, err := e.startSluiceProxy(sluiceProxyT, up.addr)
	if err != nil {
		return nil, nil, false, err
	}
	ts = append(ts, s)
	if e.o.compare != "" {
		c, err := e.startSluiceProxyBin(compareT, e.o.compare, up.addr)
		if err != nil {
			return nil, nil, false, err
		}
		ts = append(ts, c)
	}
	return up, ts, true, nil
}
