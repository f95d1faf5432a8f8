package route

import (
	"crypto/tls"
	"errors"
	"net"
	"time"
)

// verdict is what a matcher can tell from the bytes seen so far.
type verdict uint8

const (
	more verdict = iota // not yet: it needs more bytes
	no
	yes
)

// hello is what a TLS ClientHello says: the server name and the
// protocols offered.
type hello struct {
	sni  string
	alpn []string
}

// errNeedMore ends the parse when the bytes seen so far run out.
var errNeedMore = errors.New("route: need more bytes")

// errGotHello stops the handshake once the ClientHello is parsed.
var errGotHello = errors.New("route: client hello captured")

// parseHello reads a ClientHello from b with Go's own TLS stack, so that
// every extension and every way of splitting a hello over records is
// parsed as a TLS server would: a tls.Server handshakes over the bytes,
// and the callback that would choose a config captures the hello and
// ends the handshake. more: b is a TLS handshake's start that ends before
// the hello does; no: it is not a ClientHello.
func parseHello(b []byte) (hello, verdict) {
	if v := tlsRecord(b); v != yes {
		return hello{}, v
	}
	src := &bytesConn{b: b}
	var got hello
	done := false
	cfg := &tls.Config{
		GetConfigForClient: func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
			got.sni = chi.ServerName
			got.alpn = chi.SupportedProtos
			done = true
			return nil, errGotHello
		},
	}
	_ = tls.Server(src, cfg).Handshake()
	switch {
	case done:
		return got, yes
	case src.drained:
		return hello{}, more
	}
	return hello{}, no
}

// tlsRecord tells a TLS handshake record carrying a ClientHello apart
// from anything else by its first six bytes: content type 22, version
// 3.x, and handshake type 1. It is also the protocol: tls matcher.
func tlsRecord(b []byte) verdict {
	want := [...]struct {
		ok func(byte) bool
	}{
		{func(c byte) bool { return c == 0x16 }},
		{func(c byte) bool { return c == 3 }},
		{func(c byte) bool { return c <= 4 }},
		{func(byte) bool { return true }}, // record length
		{func(byte) bool { return true }},
		{func(c byte) bool { return c == 1 }},
	}
	for i := range want {
		if i >= len(b) {
			return more
		}
		if !want[i].ok(b[i]) {
			return no
		}
	}
	return yes
}

// bytesConn is the client side of parseHello's handshake: it reads the
// bytes seen so far, then reports that it needs more, and swallows what
// the server writes (an alert).
type bytesConn struct {
	b       []byte
	drained bool
}

func (c *bytesConn) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		c.drained = true
		return 0, errNeedMore
	}
	n := copy(p, c.b)
	c.b = c.b[n:]
	return n, nil
}

func (c *bytesConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *bytesConn) Close() error                     { return nil }
func (c *bytesConn) LocalAddr() net.Addr              { return nil }
func (c *bytesConn) RemoteAddr() net.Addr             { return nil }
func (c *bytesConn) SetDeadline(time.Time) error      { return nil }
func (c *bytesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *bytesConn) SetWriteDeadline(time.Time) error { return nil }
