package route_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testnet"
)

// sniConfig routes two names to two TLS upstreams, h2 to a third, with a
// log line per connection.
func sniConfig(a, b, h2 string) string {
	return routeConfig(withLog, `
        routes:
          - name: h2
            match: {alpn: [h2]}
            chain: [{handler: proxy, upstreams: ["tcp://%s"]}]
          - match: {sni: [a.example.com]}
            chain: [{handler: proxy, upstreams: ["tcp://%s"]}]
          - match: {sni: ["*.example.org"]}
            chain:
              - handler: log
              - handler: proxy
                upstreams: ["tcp://%s"]
`, h2, a, b)
}

func TestSNIRoutesToEachUpstreamsCertificate(t *testing.T) {
	a, b := tlsUpstream(t, "a.example.com"), tlsUpstream(t, "b.example.org")
	h2 := tlsUpstream(t, "h2.example.net", "h2")
	s := newSluice(t, sniConfig(a, b, h2))
	addr := s.Addr("front")
	for _, tc := range []struct {
		sni, want string
		protos    []string
	}{
		{"a.example.com", "a.example.com", nil},
		{"A.Example.COM", "a.example.com", nil},
		{"b.example.org", "b.example.org", []string{"http/1.1"}},
		{"www.example.org", "b.example.org", nil},
		{"a.example.com", "h2.example.net", []string{"h2", "http/1.1"}},
	} {
		c, got := tlsDial(t, addr, tc.sni, tc.protos...)
		if got != tc.want {
			t.Errorf("sni %q alpn %q: handshake with %q, want %q", tc.sni, tc.protos, got, tc.want)
		}
		testnet.MustEcho(t, c, "hello "+tc.sni)
		_ = c.Close()
	}
	for route, n := range map[string]float64{"h2": 1, "1": 2, "2": 2, "default": 0, "closed": 0} {
		wantDecisions(t, s, route, n)
	}
	recs := s.Records("connection closed")
	seen := map[string]bool{}
	for _, r := range recs {
		seen[fmt.Sprint(r["route"], " ", r["sni"], " ", r["alpn"])] = true
	}
	for _, want := range []string{"1 a.example.com <nil>", "2 www.example.org <nil>", "h2 a.example.com h2,http/1.1"} {
		if !seen[want] {
			t.Errorf("no access log line with route, sni, alpn = %s; got %v", want, seen)
		}
	}
}

func TestClientHelloFewBytesAtATime(t *testing.T) {
	a, b := tlsUpstream(t, "a.example.com"), tlsUpstream(t, "b.example.org")
	s := newSluice(t, sniConfig(a, b, a))
	raw, err := net.DialTimeout("tcp", s.Addr("front"), wait)
	if err != nil {
		t.Fatal(err)
	}
	c, got := tlsOver(t, &dribble{Conn: raw, n: 7}, "x.example.org")
	if got != "b.example.org" {
		t.Fatalf("handshake with %q, want b.example.org", got)
	}
	testnet.MustEcho(t, c, "split hello")
}

// roundTrip connects to addr from the local address from ("" any),
// sends send and returns the first line of the answer.
func roundTrip(t testing.TB, from, addr, send string) string {
	t.Helper()
	d := net.Dialer{Timeout: wait}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	if send != "" {
		if _, err := io.WriteString(c, send); err != nil {
			t.Fatal(err)
		}
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the answer: %v (got %q)", err, line)
	}
	return strings.TrimSpace(line)
}

func TestSSHAndTLSOnOnePort(t *testing.T) {
	ssh, tlsUp := tagUpstream(t, "ssh"), tlsUpstream(t, "a.example.com")
	s := newSluice(t, routeConfig("", `
        routes:
          - match: {protocol: ssh}
            chain: [{handler: proxy, upstreams: ["tcp://%s"]}]
          - match: {protocol: tls}
            chain: [{handler: proxy, upstreams: ["tcp://%s"]}]
`, ssh, tlsUp))
	addr := s.Addr("front")
	if got := roundTrip(t, "", addr, "SSH-2.0-test_client\r\n"); got != "ssh SSH-2.0-test_client" {
		t.Errorf("ssh banner: got %q", got)
	}
	if _, got := tlsDial(t, addr, "anything"); got != "a.example.com" {
		t.Errorf("tls: handshake with %q", got)
	}
}

func TestRemoteRoutesByBoundSource(t *testing.T) {
	two, one := tagUpstream(t, "two"), tagUpstream(t, "one")
	s := newSluice(t, routeConfig("", `
        routes:
          - match: {remote: [127.0.0.2/32, "::1/128"]}
            chain: [{handler: proxy, upstreams: ["tcp://%s"]}]
          - match: {remote: [127.0.0.0/8]}
            chain: [{handler: proxy, upstreams: ["tcp://%s"]}]
`, two, one))
	addr := s.Addr("front")
	if got := roundTrip(t, "127.0.0.2", addr, "hi\n"); got != "two hi" {
		t.Errorf("from 127.0.0.2: %q", got)
	}
	if got := roundTrip(t, "127.0.0.1", addr, "hi\n"); got != "one hi" {
		t.Errorf("from 127.0.0.1: %q", got)
	}
}

// A route table that needs no bytes decides at once: a server-first
// protocol gets its greeting with no delay.
func TestRemoteOnlyServerFirstNoDelay(t *testing.T) {
	smtp := greeter(t, "220 smtp ready")
	s := newSluice(t, routeConfig("", `
        timeout: 30s
        routes:
          - match: {remote: [127.0.0.0/8]}
            chain: [{handler: proxy, upstreams: ["tcp://%s"]}]
`, smtp))
	start := time.Now()
	if got := roundTrip(t, "", s.Addr("front"), ""); got != "220 smtp ready" {
		t.Fatalf("greeting: %q", got)
	}
	// The timeout is 30s: well under it means no peek waited.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("greeting took %v: the route waited for bytes it does not need", d)
	}
}

func TestTimeoutGoesToDefault(t *testing.T) {
	smtp, ssh := greeter(t, "220 smtp ready"), tagUpstream(t, "ssh")
	s := newSluice(t, routeConfig(withLog, `
        timeout: 300ms
        routes:
          - match: {protocol: ssh}
            chain: [{handler: proxy, upstreams: ["tcp://%s"]}]
        default: [{handler: proxy, upstreams: ["tcp://%s"]}]
`, ssh, smtp))
	start := time.Now()
	if got := roundTrip(t, "", s.Addr("front"), ""); got != "220 smtp ready" {
		t.Fatalf("greeting: %q", got)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("greeting after %v: the default must wait for the timeout", d)
	}
	wantDecisions(t, s, "timeout", 1)
	// Bytes that match nothing go to the default at once, counted as such.
	if got := roundTrip(t, "", s.Addr("front"), "EHLO x\n"); got != "220 smtp ready" {
		t.Fatalf("greeting: %q", got)
	}
	wantDecisions(t, s, "default", 1)
}

func TestNoDefaultClosesAndCounts(t *testing.T) {
	ssh := tagUpstream(t, "ssh")
	s := newSluice(t, routeConfig(withLog, `
        timeout: 200ms
        routes:
          - match: {protocol: ssh}
            chain: [{handler: proxy, upstreams: ["tcp://%s"]}]
`, ssh))
	for _, send := range []string{"", "GET / HTTP/1.1\r\n\r\n"} {
		c, err := net.DialTimeout("tcp", s.Addr("front"), wait)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(wait))
		_, _ = io.WriteString(c, send)
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("sent %q: read %d bytes, want the connection closed", send, n)
		}
		_ = c.Close()
	}
	wantDecisions(t, s, "closed", 2)
	if !strings.Contains(s.Log(), `"route":"closed"`) {
		t.Errorf("no access log line names route closed:\n%s", s.Log())
	}
}

// A client that half-closes before its bytes decide is judged at its EOF,
// not at the timeout.
func TestHalfCloseDecidesAtOnce(t *testing.T) {
	smtp, a := greeter(t, "220 ready"), tlsUpstream(t, "a.example.com")
	s := newSluice(t, routeConfig("", `
        timeout: 30s
        routes:
          - match: {sni: [a.example.com]}
            chain: [{handler: proxy, upstreams: ["tcp://%s"]}]
        default: [{handler: proxy, upstreams: ["tcp://%s"]}]
`, a, smtp))
	c, err := net.DialTimeout("tcp", s.Addr("front"), wait)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetDeadline(time.Now().Add(wait))
	_, _ = c.Write([]byte("\x16\x03\x01"))
	_ = c.(*net.TCPConn).CloseWrite()
	line, err := bufio.NewReader(c).ReadString('\n')
	if line != "220 ready\n" {
		t.Fatalf("got %q, %v", line, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("decided after %v: the client's EOF must end the wait", d)
	}
	wantDecisions(t, s, "default", 1)
}
