//go:build linux

package main

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// The route figures: what deciding on a TLS ClientHello's server name
// (route, sni match → proxy) adds to the plain proxy, in the same rounds,
// and against HAProxy doing the same (tcp-request inspect-delay, then
// use_backend on req.ssl_sni). Every client of these targets starts its
// connection with the same ClientHello, the plain proxy's included, and
// the upstream drops it before echoing: the figures differ by the
// decision alone.

const (
	sluiceRouteT  = "sluice-route"
	haproxyRouteT = "haproxy-route"
	routeSNI      = "app.example.com"
)

// Two routes, the match second, as a real table would be.
const sluiceRouteConfig = configHeader + `  - name: route
    network: tcp
    address: %s
    idle_timeout: 5m
    tcp_keepalive: 0
    chain:
      - handler: route
        routes:
          - match: {sni: [other.example.com]}
            chain: [{handler: proxy, upstreams: ["tcp://%s"], tcp_keepalive: 0}]
          - match: {sni: [` + routeSNI + `]}
            chain: [{handler: proxy, upstreams: ["tcp://%s"], tcp_keepalive: 0}]
`

const haproxyRouteConfig = `global
    nbthread 1
    maxconn %d
defaults
    mode tcp
    timeout connect 5s
    timeout client 5m
    timeout server 5m
frontend bench
    bind %s
    tcp-request inspect-delay 5s
    tcp-request content accept if { req.ssl_hello_type 1 }
    use_backend other if { req.ssl_sni -i other.example.com }
    use_backend app if { req.ssl_sni -i ` + routeSNI + ` }
backend other
    server up %s
backend app
    server up %s
`

// helloTargets holds the addresses whose clients start each connection
// with benchHello (the route figures).
var helloTargets sync.Map

// benchHello is a Go TLS client's ClientHello for routeSNI, made once.
var benchHello = sync.OnceValues(func() ([]byte, error) {
	cli, srv := net.Pipe()
	defer srv.Close()
	go func() {
		c := tls.Client(cli, &tls.Config{ServerName: routeSNI, NextProtos: []string{"h2", "http/1.1"}, InsecureSkipVerify: true})
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_ = c.Handshake()
		_ = cli.Close()
	}()
	_ = srv.SetDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(srv, hdr); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[3:]))
	if _, err := io.ReadFull(srv, body); err != nil {
		return nil, err
	}
	return append(hdr, body...), nil
})

// sendHello starts a route target's connection as a TLS client would.
func sendHello(c net.Conn) error {
	h, err := benchHello()
	if err != nil {
		return err
	}
	_, err = c.Write(h)
	return err
}

// dropHello is the route figures' upstream: it reads the ClientHello
// record and drops it, then echoes.
func dropHello(c *net.TCPConn) {
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return
	}
	if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint16(hdr[3:]))); err != nil {
		return
	}
	plainLoop(c)
}

// routeTargetsStart starts the hello-dropping upstream, then the plain
// proxy, the route and HAProxy in front of it. ok is false when this
// sluice build has no route handler.
func (e *env) routeTargetsStart() (ts []*target, ok bool, err error) {
	if _, err := benchHello(); err != nil {
		return nil, false, fmt.Errorf("making the ClientHello: %w", err)
	}
	up, err := e.startGo("upstream-hello", "hello", loadCPU)
	if err != nil {
		return nil, false, err
	}
	probe := e.path("sluice-route-probe.yaml")
	if err := os.WriteFile(probe, fmt.Appendf(nil, sluiceRouteConfig, "127.0.0.1:1", up.addr, up.addr), 0o644); err != nil {
		return nil, false, err
	}
	if has, out := e.sluiceHas(probe); !has {
		e.note("route figures skipped: this sluice build does not accept a route listener (%s)", firstLine(out))
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
	path := e.path(sluiceRouteT + ".yaml")
	if err := os.WriteFile(path, fmt.Appendf(nil, sluiceRouteConfig, addr, up.addr, up.addr), 0o644); err != nil {
		return nil, false, err
	}
	rt, err := e.startSluiceFull(sluiceRouteT, e.o.sluice, path, addr, nil)
	if err != nil {
		return nil, false, err
	}
	helloTargets.Store(plain.addr, true)
	helloTargets.Store(rt.addr, true)
	ts = []*target{plain, rt}
	if !e.haveHAProxy() {
		e.note("HAProxy req.ssl_sni comparison skipped: %q not found", e.o.haproxy)
		return ts, true, nil
	}
	h, err := e.startHAProxyRoute(up.addr)
	if err != nil {
		return nil, false, err
	}
	helloTargets.Store(h.addr, true)
	return append(ts, h), true, nil
}

func (e *env) startHAProxyRoute(upstream string) (*target, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	maxconn := min(50000, (int(e.nofile)-200)/4)
	path := e.path(haproxyRouteT + ".cfg")
	if err := os.WriteFile(path, fmt.Appendf(nil, haproxyRouteConfig, maxconn, addr, upstream, upstream), 0o644); err != nil {
		return nil, err
	}
	p, _, err := startProc(haproxyRouteT, serverCPU, e.logPath(haproxyRouteT), e.o.haproxy, "-db", "-f", path)
	if err != nil {
		return nil, err
	}
	e.procs = append(e.procs, p)
	t := &target{name: haproxyRouteT, addr: addr, proc: p}
	return t, waitReady(p, addr)
}

func routeConnRate(e *env) error {
	ts, ok, err := e.routeTargetsStart()
	if err != nil || !ok {
		return err
	}
	c, err := e.rounds(ts, func(addr string, d time.Duration) (loadResult, error) {
		return connRate(addr, 4, d)
	}, connRateMetrics)
	if err != nil {
		return err
	}
	const sec = "route connection rate (route: sni match → proxy; connect, a ClientHello, one 64-byte round trip, close; 4 clients)"
	e.res.Figures = append(e.res.Figures,
		figure(c, "route.connrate.rate", sec, "connections per second", "conn/s", "rate", false, names(ts),
			ratioSpec{sluiceRouteT, []string{sluiceProxyT}, "plain sluice proxy", 0, 0},
			ratioSpec{sluiceRouteT, []string{haproxyRouteT}, "HAProxy req.ssl_sni", 0, 0}),
		figure(c, "route.connrate.cpu", sec, "server CPU per connection", "µs/conn", "cpu_us_per_conn", true, names(ts),
			ratioSpec{sluiceRouteT, []string{sluiceProxyT}, "plain sluice proxy", 1.10, 0},
			ratioSpec{sluiceRouteT, []string{haproxyRouteT}, "HAProxy req.ssl_sni", 1.0, 0}),
	)
	return nil
}

func routePingPong(e *env) error {
	ts, ok, err := e.routeTargetsStart()
	if err != nil || !ok {
		return err
	}
	c, err := e.rounds(ts, func(addr string, d time.Duration) (loadResult, error) {
		return pingPong(addr, 20, 64, d)
	}, pingPongMetrics)
	if err != nil {
		return err
	}
	e.res.Figures = append(e.res.Figures, pingPongFigures(c, "route", "route ping-pong after the decision (route: sni match → proxy; 20 connections, 64-byte messages)", names(ts),
		func(metric string, lower bool, target float64) []ratioSpec {
			if metric == "cpu_us_per_op" {
				return []ratioSpec{
					{sluiceRouteT, []string{sluiceProxyT}, "plain sluice proxy", 1.02, 0},
					{sluiceRouteT, []string{haproxyRouteT}, "HAProxy req.ssl_sni", 0, 0},
				}
			}
			return []ratioSpec{
				{sluiceRouteT, []string{sluiceProxyT}, "plain sluice proxy", 0, 0},
				{sluiceRouteT, []string{haproxyRouteT}, "HAProxy req.ssl_sni", 0, 0},
			}
		})...)
	return nil
}
