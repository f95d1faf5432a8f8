//go:build linux

package main

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
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

var routeHop = hop{
	what: "route", handler: "route",
	subject: sluiceRouteT, haproxy: haproxyRouteT, haproxyDoes: "req.ssl_sni",
	haproxyNote: "req.ssl_sni",
}

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

const haproxyRouteConfig = haproxyHeader + `frontend bench
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
	cfg := func(addr string) []byte { return fmt.Appendf(nil, sluiceRouteConfig, addr, up.addr, up.addr) }
	ts, ok, err = e.hopTargets(routeHop, up.addr, cfg, func() (*target, error) {
		return e.startHAProxyConfig(haproxyRouteT, func(addr string, maxconn int) string {
			return fmt.Sprintf(haproxyRouteConfig, maxconn, addr, up.addr, up.addr)
		})
	})
	// Every client starts with the ClientHello, the plain proxy's too.
	for _, t := range ts {
		helloTargets.Store(t.addr, true)
	}
	return ts, ok, err
}

func routeConnRate(e *env) error {
	return e.connRateSection(e.routeTargetsStart, "route", "route connection rate (route: sni match → proxy; connect, a ClientHello, one 64-byte round trip, close; 4 clients)",
		routeHop.ratios(0, 0), routeHop.ratios(1.10, 1.0))
}

func routePingPong(e *env) error {
	return e.pingPongSection(e.routeTargetsStart, "route", "route ping-pong after the decision (route: sni match → proxy; 20 connections, 64-byte messages)",
		routeHop.ratios(0, 0), routeHop.ratios(1.02, 0))
}
