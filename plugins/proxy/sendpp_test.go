package proxy_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// seen is what a PROXY-aware upstream read on one connection.
type seen struct {
	header *proxyproto.Header
	err    error
	data   string
}

// ppServer reads a PROXY header, then writes "banner" before reading
// anything else (a server that speaks first: the header must not wait for
// the client's bytes), then reads the data to EOF and reports both.
func ppServer(t *testing.T) (*server, chan seen) {
	got := make(chan seen, 16)
	s := serve(t, listenTCP(t), func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		hd, err := proxyproto.Read(r)
		if err != nil {
			got <- seen{err: err}
			return
		}
		_, _ = io.WriteString(c, "banner")
		b, _ := io.ReadAll(r)
		got <- seen{header: hd, data: string(b)}
		closeWrite(c)
	})
	return s, got
}

func TestSendProxyProtocol(t *testing.T) {
	up, got := ppServer(t)
	upURL := "tcp://" + up.ln.Addr().String()
	sock := filepath.Join(t.TempDir(), "front.sock")
	h := newHarness(t)
	h.Apply(`
listeners:
  - name: v1
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: proxy
        upstreams: [` + upURL + `]
        send_proxy_protocol: v1
  - name: v2
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: proxy
        upstreams: [` + upURL + `]
        send_proxy_protocol: v2
  - name: relayed
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: proxy_protocol
        trusted: [127.0.0.1/32]
      - handler: proxy
        upstreams: [` + upURL + `]
        send_proxy_protocol: v2
  - name: unix-v2
    network: unix
    address: ` + sock + `
    chain:
      - handler: proxy
        upstreams: [` + upURL + `]
        send_proxy_protocol: v2
  - name: unix-v1
    network: unix
    address: ` + sock + `1
    chain:
      - handler: proxy
        upstreams: [` + upURL + `]
        send_proxy_protocol: v1
`)
	// talk waits for the banner before it sends: the upstream had the
	// header before the client's first byte.
	talk := func(network, addr, prefix string) (net.Conn, seen) {
		t.Helper()
		c, err := net.DialTimeout(network, addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if prefix != "" {
			if _, err := io.WriteString(c, prefix); err != nil {
				t.Fatal(err)
			}
		}
		banner := make([]byte, 6)
		if _, err := io.ReadFull(c, banner); err != nil || string(banner) != "banner" {
			t.Fatalf("%s: banner %q, %v", addr, banner, err)
		}
		if _, err := io.WriteString(c, "hello"); err != nil {
			t.Fatal(err)
		}
		closeWrite(c)
		_, _ = io.ReadAll(c)
		select {
		case s := <-got:
			if s.err != nil {
				t.Fatalf("%s: upstream read no header: %v", addr, s.err)
			}
			if s.data != "hello" {
				t.Fatalf("%s: upstream data %q after the header, want hello", addr, s.data)
			}
			return c, s
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the upstream saw no connection", addr)
		}
		return nil, seen{}
	}

	for _, name := range []string{"v1", "v2"} {
		c, s := talk("tcp", h.Addr(name), "")
		if want := byte(name[1] - '0'); s.header.Version != want {
			t.Errorf("%s: header version %d", name, s.header.Version)
		}
		if s.header.SourceAddr.String() != c.LocalAddr().String() || s.header.DestinationAddr.String() != h.Addr(name) {
			t.Errorf("%s: header %v -> %v, want %v -> %v", name, s.header.SourceAddr, s.header.DestinationAddr, c.LocalAddr(), h.Addr(name))
		}
	}

	// The client's address from an accepted header is the one passed on.
	in, err := proxyproto.HeaderProxyFromAddrs(1, &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 4242}, &net.TCPAddr{IP: net.ParseIP("198.51.100.1"), Port: 443}).Format()
	if err != nil {
		t.Fatal(err)
	}
	if _, s := talk("tcp", h.Addr("relayed"), string(in)); s.header.SourceAddr.String() != "203.0.113.7:4242" {
		t.Errorf("relayed: header source %v, want the accepted header's 203.0.113.7:4242", s.header.SourceAddr)
	}

	// A Unix client: v2 says UNIX with the socket's path, v1 UNKNOWN.
	if _, s := talk("unix", sock, ""); !s.header.TransportProtocol.IsUnix() || s.header.DestinationAddr.String() != sock {
		t.Errorf("unix v2: header %v %v -> %v, want a UNIX one to %s", s.header.TransportProtocol, s.header.SourceAddr, s.header.DestinationAddr, sock)
	}
	if _, s := talk("unix", sock+"1", ""); !s.header.TransportProtocol.IsUnspec() || s.header.Version != 1 {
		t.Errorf("unix v1: header v%d %v, want v1 UNKNOWN", s.header.Version, s.header.TransportProtocol)
	}
}

// TestHealthChecksCarryNoHeader: with send_proxy_protocol, client
// connections start with a header and health checks never do.
func TestHealthChecksCarryNoHeader(t *testing.T) {
	first := make(chan []byte, 64)
	up := serve(t, listenTCP(t), func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(io.LimitReader(c, 64))
		select {
		case first <- b:
		default: // checks go on until the cleanup; never block it
		}
	})
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML("tcp://"+up.ln.Addr().String())+`        send_proxy_protocol: v2
        health_check:
          interval: 100ms
`))
	for i := range 3 {
		select {
		case b := <-first:
			if len(b) != 0 {
				t.Fatalf("check %d sent %q, want nothing", i, b)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no health check reached the upstream")
		}
	}
	c, err := net.DialTimeout("tcp", h.Addr("front"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c, "hello")
	closeWrite(c)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.ReadAll(c)
	_ = c.Close()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case b := <-first:
			if len(b) == 0 {
				continue // a check
			}
			if len(b) < len(proxyproto.SIGV2) || string(b[:len(proxyproto.SIGV2)]) != string(proxyproto.SIGV2) {
				t.Fatalf("client connection began with %q, want a v2 header", b)
			}
			return
		case <-deadline:
			t.Fatal("the client connection never reached the upstream")
		}
	}
}

// TestProxyHeaderCarriesWaitingBytes: client bytes that are there when
// the upstream connection is made go in the header's own write, so the
// upstream's first read holds both; the bytes are counted once, and the
// rest of the connection relays as usual.
func TestProxyHeaderCarriesWaitingBytes(t *testing.T) {
	first := make(chan []byte, 1)
	segs := make(chan uint32, 1)
	up := serve(t, listenTCP(t), func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 4096)
		n, _ := c.Read(b)
		if s, ok := dataSegsIn(c); ok {
			segs <- s
		}
		first <- b[:n]
		echoConn(c)
	})
	h := newHarness(t)
	h.Apply(`
listeners:
  - name: front
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: proxy_protocol
        trusted: [127.0.0.1/32]
      - handler: proxy
        upstreams: [tcp://` + up.ln.Addr().String() + `]
        send_proxy_protocol: v2
`)
	in, err := proxyproto.HeaderProxyFromAddrs(1, &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 4242}, &net.TCPAddr{IP: net.ParseIP("198.51.100.1"), Port: 443}).Format()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", h.Addr("front"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// One write: the proxy_protocol handler takes the header, and
	// "hello" waits in the socket when the proxy connects.
	if _, err := c.Write(append(in, "hello"...)); err != nil {
		t.Fatal(err)
	}
	var b []byte
	select {
	case b = <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream read nothing")
	}
	r := bufio.NewReader(bytes.NewReader(b))
	hd, err := proxyproto.Read(r)
	if err != nil {
		t.Fatalf("upstream's first read %q: %v", b, err)
	}
	if hd.Version != 2 || hd.SourceAddr.String() != "203.0.113.7:4242" {
		t.Errorf("header v%d from %v, want v2 from 203.0.113.7:4242", hd.Version, hd.SourceAddr)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "hello" {
		t.Fatalf("upstream's first read had %q after the header, want hello in the same read", rest)
	}
	select {
	case n := <-segs:
		if n != 1 {
			t.Errorf("the header and hello came in %d segments, want 1 (one write)", n)
		}
	default: // no TCP_INFO here
	}
	// The rest relays both ways: "hello" comes back (the upstream
	// echoes after its first read), then more.
	if _, err := io.WriteString(c, " again"); err != nil {
		t.Fatal(err)
	}
	closeWrite(c)
	got, err := io.ReadAll(c)
	if err != nil || string(got) != " again" {
		t.Fatalf("read back %q, %v; want the bytes after the first read", got, err)
	}
	// In counts the client's bytes after its PROXY header, the ones
	// sent with sluice's header too, each once.
	eventually(t, "11 bytes in counted", func() bool { return h.bytes("front", "in") == float64(len("hello again")) })
}
